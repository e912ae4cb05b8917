"""The evaluation summary logged with every training run: summary.md, summary.html and a PNG,
built from the card's held-out metrics (computed by the trainer through onnxruntime)."""

from __future__ import annotations

from pathlib import Path

from training.lifecycle.kinds import ModelKind
from training.reporting import Report, Table, figure, save_plot, write_report


def _photo_rows(card: dict) -> list[list[str]]:
    rows = []
    for flag, entry in card.get("metrics", {}).get("test", {}).items():
        for source, sub in [("all", entry), *entry.get("per_source", {}).items()]:
            rows.append([flag, source, *(sub.get(key) for key in ("roc_auc", "average_precision", "f1", "n"))])
    return rows


def _risk_rows(card: dict) -> list[list[str]]:
    metrics = card.get("metrics", {})
    oracle = metrics.get("oracle", {})
    rows = [[key, metrics.get(key), oracle.get(key)] for key in ("qwk", "macro_f1", "accuracy", "brier")]
    for tier, value in metrics.get("per_tier_recall", {}).items():
        rows.append([f"recall tier {tier}", value, oracle.get("per_tier_recall", {}).get(tier)])
    return rows


def _plot(kind: ModelKind, card: dict, path: Path) -> None:
    plot, axis = figure(figsize=(8, 4))
    if kind.noun == "photo":
        test = card.get("metrics", {}).get("test", {})
        flags = list(test)
        sources = sorted({s for entry in test.values() for s in entry.get("per_source", {})})
        width = 0.8 / (len(sources) + 1)
        for offset, source in enumerate(["all", *sources]):
            entries = [test[f] if source == "all" else test[f]["per_source"].get(source, {}) for f in flags]
            values = [entry.get("roc_auc") for entry in entries]
            axis.bar(
                [i + offset * width for i in range(len(flags))],
                [v if v is not None else 0 for v in values],
                width=width,
                label=source,
            )
        axis.set_xticks([i + 0.4 for i in range(len(flags))], flags, rotation=20, fontsize=7)
        axis.set(ylabel="test ROC AUC", ylim=(0, 1), title="test ROC AUC per flag and source (0 = undefined)")
        axis.legend(fontsize=6, ncol=2)
    else:
        metrics = card.get("metrics", {})
        tiers = list(metrics.get("per_tier_recall", {}))
        recall = [metrics["per_tier_recall"][t] for t in tiers]
        axis.bar([i - 0.2 for i in range(len(tiers))], recall, 0.4, label="model")
        oracle = metrics.get("oracle", {}).get("per_tier_recall")
        if oracle:
            axis.bar([i + 0.2 for i in range(len(tiers))], [oracle[t] for t in tiers], 0.4, label="oracle")
        axis.set_xticks(range(len(tiers)), [f"tier {t}" for t in tiers])
        axis.set(ylabel="holdout recall", ylim=(0, 1), title=f"holdout recall per tier (QWK {metrics.get('qwk')})")
        axis.legend()
    save_plot(plot, path)


def write_summary(kind: ModelKind, card: dict, report_dir: Path) -> Path:
    """Write summary.md, summary.html and metrics.png into report_dir; returns report_dir."""
    report_dir.mkdir(parents=True, exist_ok=True)
    if kind.noun == "photo":
        header, rows = ["flag", "source", "ROC AUC", "AP", "F1", "n"], _photo_rows(card)
    else:
        header, rows = ["metric", "model", "oracle"], _risk_rows(card)
    _plot(kind, card, report_dir / "metrics.png")
    title = f"{kind.registered_name} {card.get('version')}: held-out metrics"
    table = Table(columns=header, rows=rows, numeric=header[2:] if kind.noun == "photo" else header[1:])
    write_report(report_dir, Report(title=title, tables=[table], plots=[("metrics", "metrics.png")]), stem="summary")
    return report_dir
