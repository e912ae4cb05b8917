"""`ankang models list`: registered versions, their aliases and what models/<name>/ holds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from runtime.errors import ModelIntegrityError
from runtime.modeldir import ModelDir
from training.lifecycle import registry
from training.lifecycle.kinds import KINDS, ModelKind

HEADLINE_TAGS = {"test_mean_roc_auc": "test AUC", "holdout_qwk": "QWK"}


def released_sha256(models_dir: Path, kind: ModelKind) -> str | None:
    try:
        return ModelDir.load(Path(models_dir) / kind.dir_name).card["sha256"]
    except (ModelIntegrityError, KeyError):
        return None


def version_rows(kind: ModelKind, *, models_dir: Path) -> list[dict]:
    """One dict per registered version, newest first."""
    by_version: dict[str, list[str]] = {}
    for alias, version in registry.aliases(kind).items():
        by_version.setdefault(str(version), []).append(alias)
    live = released_sha256(models_dir, kind)
    rows = []
    for version in registry.versions(kind):
        tags = dict(version.tags)
        headline = next((f"{label} {float(tags[key]):.4f}" for key, label in HEADLINE_TAGS.items() if key in tags), "–")
        promotion = next(
            (
                f"{key.split('.')[1]} {tags[key][5:16].replace('T', ' ')}"
                for key in ("promotion.forced", "promotion.released", "promotion.refused")
                if key in tags
            ),
            "",
        )
        rows.append(
            {
                "model": kind.registered_name,
                "version": str(version.version),
                "aliases": ", ".join(sorted(by_version.get(str(version.version), []))),
                "created": dt.datetime.fromtimestamp(version.creation_timestamp / 1000).strftime("%m-%d %H:%M"),
                "card_version": tags.get("card_version", "")[:20],
                "headline": headline,
                "data": tags.get("data_fingerprint", "")[:8],
                "released": "yes" if live and tags.get("sha256") == live else "",
                "promotion": promotion,
                "run_id": version.run_id,
            }
        )
    return rows


def models_table(*, models_dir: Path):
    from rich.table import Table

    from training.tracking import tracking_uri

    table = Table(
        title=f"registered models in {tracking_uri()}",
        caption=f"released: the version {models_dir}/<name>/ "
        "holds; data: fingerprint of the training data; promotion: last promotion event (month-day time)",
    )
    columns = ("model", "version", "aliases", "created", "card_version", "headline", "data", "released", "promotion")
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for kind in KINDS.values():
        rows = version_rows(kind, models_dir=models_dir)
        if not rows:
            table.add_row(kind.registered_name, "–", "", "", "", f"none: ankang train {kind.noun}", "", "", "")
        for row in rows:
            table.add_row(*(row[c] for c in columns))
    return table
