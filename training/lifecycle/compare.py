"""Challenger versus champion on the same held-out data: the rule, the table, the report.

The rule (`PromotionPolicy`): every headline metric (per-flag ROC AUC; QWK and per-tier
recall) may be at most `tolerance` (0.005) below the champion's; every per-source ROC AUC, and
the photo figures of small sets (box AP50 per class, the audit photos' urgent recall and false
alarms), at most `source_tolerance` (0.02: small sets are noisier). A metric that one of the
two models cannot compute (one class only) is shown but not judged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from training.lifecycle.kinds import Comparable
from training.reporting import Report, Table, figure, save_plot
from training.reporting import write_report as write_report_files


@dataclass(frozen=True)
class PromotionPolicy:
    tolerance: float = 0.005
    source_tolerance: float = 0.02


@dataclass(frozen=True)
class Row:
    metric: str
    champion: float | None
    challenger: float | None
    allowed_drop: float

    @property
    def delta(self) -> float | None:
        if self.champion is None or self.challenger is None:
            return None
        return round(self.challenger - self.champion, 5)

    @property
    def worse(self) -> bool:
        return self.delta is not None and self.delta < -self.allowed_drop - 1e-12

    @property
    def verdict(self) -> str:
        if self.delta is None:
            return "not judged"
        return "WORSE" if self.worse else "ok"


def compare(champion: Comparable, challenger: Comparable, policy: PromotionPolicy) -> list[Row]:
    names = list(dict.fromkeys([*challenger.values, *champion.values]))
    per_source = champion.per_source | challenger.per_source
    return [
        Row(
            metric=name,
            champion=champion.values.get(name),
            challenger=challenger.values.get(name),
            allowed_drop=policy.source_tolerance if name in per_source else policy.tolerance,
        )
        for name in names
    ]


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def rich_table(rows: list[Row], *, title: str):
    from rich.table import Table

    shown = [row for row in rows if row.champion is not None or row.challenger is not None]
    hidden = len(rows) - len(shown)
    caption = f"{hidden} rows where neither model has a value (one class only) are in the report" if hidden else None
    table = Table(title=title, caption=caption)
    for header, justify in (
        ("metric", "left"),
        ("champion", "right"),
        ("challenger", "right"),
        ("Δ", "right"),
        ("allowed drop", "right"),
        ("verdict", "left"),
    ):
        table.add_column(header, justify=justify)
    for row in shown:
        style = "bold red" if row.worse else ("dim" if row.delta is None else "")
        delta = "–" if row.delta is None else f"{row.delta:+.4f}"
        table.add_row(
            row.metric,
            _cell(row.champion),
            _cell(row.challenger),
            delta,
            f"{row.allowed_drop:.3f}",
            row.verdict,
            style=style,
        )
    return table


def write_report(report_dir: Path, rows: list[Row], *, title: str, summary: dict) -> list[Path]:
    """comparison.md, comparison.html, comparison.json and deltas.png in report_dir."""
    report_dir.mkdir(parents=True, exist_ok=True)
    plot = _delta_plot(report_dir / "deltas.png", rows)
    table = Table(
        columns=["metric", "champion", "challenger", "Δ", "allowed drop", "verdict"],
        rows=[
            [
                r.metric,
                r.champion,
                r.challenger,
                "–" if r.delta is None else f"{r.delta:+.4f}",
                f"{r.allowed_drop:.3f}",
                r.verdict,
            ]
            for r in rows
        ],
        flagged=[r.worse for r in rows],
        numeric=["champion", "challenger", "Δ", "allowed drop"],
    )
    write_report_files(
        report_dir, Report(title=title, facts=summary, tables=[table], plots=[("deltas", plot.name)]), stem="comparison"
    )
    payload = {"summary": summary, "rows": [{**asdict(r), "delta": r.delta, "verdict": r.verdict} for r in rows]}
    (report_dir / "comparison.json").write_text(
        json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return [report_dir / name for name in ("comparison.md", "comparison.html", "comparison.json", plot.name)]


def _delta_plot(path: Path, rows: list[Row]) -> Path:
    judged = [r for r in rows if r.delta is not None]
    plot, axis = figure(figsize=(7, 0.3 * max(len(judged), 3) + 1.2))
    names = [r.metric for r in judged]
    axis.barh(names, [r.delta for r in judged], color=["#c0392b" if r.worse else "#2e86c1" for r in judged])
    axis.scatter([-r.allowed_drop for r in judged], names, marker="|", color="black", s=120, label="allowed drop")
    axis.axvline(0, color="grey", linewidth=0.8)
    axis.set(xlabel="challenger − champion", title="held-out metrics: challenger minus champion")
    axis.invert_yaxis()
    if judged:
        axis.legend(loc="lower right", fontsize=7)
    axis.tick_params(axis="y", labelsize=7)
    save_plot(plot, path)
    return path
