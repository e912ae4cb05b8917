"""`ankang drift photo|risk --report DIR`: drift tables (rich), drift.md/html/json and PNG plots."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from runtime.errors import ModelIntegrityError
from runtime.modeldir import ModelDir
from runtime.paths import MODELS_DIR, PROJECT_ROOT
from training.reporting import Report, Table, figure, save_plot
from training.reporting import write_report as write_report_files

PHOTO_HELP = """\
Compare the hazard-photo flags the service raised recently (the review store: every assessed
photo with its flags and triage) with the released model's test-split flag rates at its
thresholds, and the triage mix of the last --days days with the --days before. PSI per flag:
< 0.1 stable, 0.1-0.25 moderate, > 0.25 major."""
RISK_HELP = """\
Compare a recent file of enterprise profiles (--data: CSV/Parquet with the schema's columns, as
sent to the service) with the data the released model was trained on (regenerated from its
card, or --reference FILE): PSI per feature and of the predicted tier (both scored by the
released ONNX model, policy floors included)."""


def register_drift(verb) -> None:
    photo = verb("drift").add_parser(
        "photo",
        help="flag rates and triage mix seen by the service vs training",
        description=PHOTO_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    photo.add_argument("--report", type=Path, required=True, help="folder for drift.md, drift.html, drift.json, PNGs")
    photo.add_argument("--model", type=Path, default=MODELS_DIR / "hazard_photo", help="released model directory")
    photo.add_argument(
        "--database-url",
        default=None,
        help="review store (default: $ANKANG_DATABASE_URL, else the service's var/review/review.db)",
    )
    photo.add_argument("--days", type=int, default=30, help="recent window in days (default: 30)")
    photo.set_defaults(func=run_photo_drift)
    risk = verb("drift").add_parser(
        "risk",
        help="feature and predicted-tier drift of recent enterprises vs training",
        description=RISK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    risk.add_argument("--report", type=Path, required=True, help="folder for drift.md, drift.html, drift.json, PNGs")
    risk.add_argument("--data", type=Path, required=True, help="recent enterprise profiles (CSV or Parquet)")
    risk.add_argument("--model", type=Path, default=MODELS_DIR / "labor_risk", help="released model directory")
    risk.add_argument("--reference", type=Path, default=None, help="training data file (default: from the card)")
    risk.add_argument(
        "--reference-rows", type=int, default=20_000, help="at most this many reference rows (default: 20000)"
    )
    risk.set_defaults(func=run_risk_drift)


def service_database_url(env: Mapping[str, str] | None = None) -> str:
    """The review store the service writes to, resolved as `serving.settings.ServingSettings` does
    (`ANKANG_DATABASE_URL`, else `ANKANG_DATA_DIR`/review/review.db); tests/contract holds them equal."""
    env = os.environ if env is None else env
    if env.get("ANKANG_DATABASE_URL"):
        return env["ANKANG_DATABASE_URL"]
    data_dir = Path(env.get("ANKANG_DATA_DIR", "").strip() or PROJECT_ROOT / "var")
    return f"sqlite:///{data_dir / 'review' / 'review.db'}"


def read_cases(database_url: str | None):
    """Assessed photos from the review store: created_at, triage, flagged, model_version.

    The store's `review_cases` table is read by reflection (training never imports serving); the
    columns read here are a contract tested against serving's own store in tests/contract."""
    import pandas as pd
    import sqlalchemy as sa

    url = database_url or service_database_url()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            cases = sa.Table("review_cases", sa.MetaData(), autoload_with=connection)
            query = sa.select(cases.c.created_at, cases.c.triage, cases.c.flagged, cases.c.model_version)
            rows = connection.execute(query).fetchall()
    except sa.exc.NoSuchTableError:
        raise RuntimeError(
            f"cannot read the review store at {url}: it has no review_cases table; start the service "
            "once (it creates the store) or pass --database-url"
        ) from None
    except sa.exc.OperationalError as error:
        raise RuntimeError(
            f"cannot read the review store at {url}: {error.orig}; start the service once "
            "(it creates the store) or pass --database-url"
        ) from error
    finally:
        engine.dispose()
    return pd.DataFrame(rows, columns=["created_at", "triage", "flagged", "model_version"]), url


def _friendly(run):
    """Expected problems (no store, no model, bad file) print one line and exit 2, no traceback."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (RuntimeError, ValueError, FileNotFoundError, ModelIntegrityError) as error:
            print(f"ankang drift: {error}", file=sys.stderr)
            return 2

    return wrapper


@_friendly
def run_photo_drift(args: argparse.Namespace) -> int:
    from training.lifecycle.drift import photo_drift

    model = ModelDir.load(args.model)
    frame, url = read_cases(args.database_url)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    result = photo_drift(model.card, frame, now=now, days=args.days)
    plots = [_rates_plot(args.report, result["flags"]), _triage_plot(args.report, result)]
    sections = {"flag rate: released card (test split) vs service": result["flags"]}
    if result["triage"] is not None:
        sections[f"triage mix: {args.days} days before vs last {args.days} days"] = [result["triage"]]
    versions = frame["model_version"].value_counts().to_dict() if len(frame) else {}
    summary = {
        "model": f"{model.name} {model.version}",
        "review store": url,
        "recent photos": result["recent"],
        "photos in the window before": result["before"],
        "photos per model version": versions,
    }
    write_report(
        args.report,
        title=f"hazard-photo drift (last {args.days} days)",
        summary=summary,
        sections=sections,
        plots=[p for p in plots if p],
    )
    return 0


@_friendly
def run_risk_drift(args: argparse.Namespace) -> int:
    from training.lifecycle.risk_drift import risk_drift

    sections, summary = risk_drift(
        model_dir=args.model, recent_path=args.data, reference_path=args.reference, reference_rows=args.reference_rows
    )
    rows = sections["features"]
    plot = _psi_plot(args.report, rows)
    write_report(
        args.report,
        title="labor-risk drift",
        summary=summary,
        sections={"predicted tier": sections["tier"], "features (highest PSI first)": rows},
        plots=[plot],
    )
    return 0


def write_report(report_dir: Path, *, title: str, summary: dict, sections: dict, plots: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console()
    console.width = max(console.width, 110)  # feature names stay readable in pipes and CI logs
    columns, tables = ["name", "reference", "recent", "PSI", "level"], []
    for heading, rows in sections.items():
        cells = [(r.name, r.reference, r.recent, f"{r.psi:.4f}", r.level) for r in rows]
        shown = RichTable(*columns, title=heading)
        for row in cells:
            shown.add_row(*row, style="bold red" if row[-1] == "MAJOR" else "")
        console.print(shown)
        tables.append(
            Table(
                columns=columns,
                rows=cells,
                heading=heading,
                numeric=["PSI"],
                flagged=[row[-1] == "MAJOR" for row in cells],
            )
        )
    write_report_files(
        report_dir,
        Report(
            title=title,
            facts=summary,
            tables=tables,
            plots=[(p, p) for p in plots],
            notes=["PSI: < 0.1 stable, 0.1-0.25 moderate, > 0.25 major."],
        ),
        stem="drift",
    )
    payload = {
        "summary": summary,
        "sections": {
            h: [
                {"name": r.name, "reference": r.reference, "recent": r.recent, "psi": r.psi, "level": r.level}
                for r in rows
            ]
            for h, rows in sections.items()
        },
    }
    (report_dir / "drift.json").write_text(
        json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    console.print(f"wrote {report_dir / 'drift.md'}, drift.html, drift.json and {len(plots)} PNG plot(s)")


def _rates_plot(report_dir: Path, rows) -> str | None:
    if not rows:
        return None
    report_dir.mkdir(parents=True, exist_ok=True)
    plot, axis = figure(figsize=(7, 4))
    x = np.arange(len(rows))
    axis.bar(x - 0.2, [float(r.reference) for r in rows], 0.4, label="released card (test split)")
    axis.bar(x + 0.2, [float(r.recent) for r in rows], 0.4, label="service, recent")
    axis.set_xticks(x, [r.name for r in rows], rotation=20, fontsize=7)
    axis.set(ylabel="share of photos flagged", title="flag rates")
    axis.legend(fontsize=7)
    return save_plot(plot, report_dir / "flag_rates.png")


def _triage_plot(report_dir: Path, result: dict) -> str | None:
    levels = result["triage_levels"]
    if not levels or not result["triage_recent"]:
        return None
    plot, axis = figure(figsize=(5, 3.5))
    x = np.arange(len(levels))
    for offset, key, label in ((-0.2, "triage_before", "window before"), (0.2, "triage_recent", "recent")):
        counts = np.asarray(result[key] or [0] * len(levels), float)
        axis.bar(x + offset, counts / max(counts.sum(), 1), 0.4, label=label)
    axis.set_xticks(x, levels)
    axis.set(ylabel="share of photos", title="triage mix")
    axis.legend(fontsize=7)
    return save_plot(plot, report_dir / "triage.png")


def _psi_plot(report_dir: Path, rows) -> str:
    report_dir.mkdir(parents=True, exist_ok=True)
    top = rows[:15]
    plot, axis = figure(figsize=(7, 0.3 * len(top) + 1.5))
    colours = ["#c0392b" if r.level == "MAJOR" else "#2e86c1" for r in top]
    axis.barh([r.name for r in top], [r.psi for r in top], color=colours)
    for line, style in ((0.1, ":"), (0.25, "--")):
        axis.axvline(line, color="black", linestyle=style, linewidth=0.8)
    axis.invert_yaxis()
    axis.set(xlabel="PSI (0.1 moderate, 0.25 major)", title="feature drift: recent vs training")
    axis.tick_params(axis="y", labelsize=7)
    return save_plot(plot, report_dir / "feature_psi.png")
