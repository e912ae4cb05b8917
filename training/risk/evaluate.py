"""Evaluate risk models: QWK, macro-F1, per-tier recall, confusion matrices and calibration, next to the oracle.

`evaluate_risk` scores through runtime.risk's RiskModel (the served ONNX path, policy floors included);
`compare_strategies` measures the three ordinal strategies natively on the same split.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from runtime.risk.schema import load_schema
from runtime.risk.tiers import cost_matrix, decide_tiers
from training.reporting import Report, Table, cell, figure, save_plot
from training.reporting import write_report as write_report_files
from training.risk.config import RISK_HOLDOUT
from training.risk.data import generated_data, load_labeled, split_holdout


def tier_metrics(
    truth: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray | None = None, *, tiers: tuple[int, ...]
) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score, recall_score

    labels = list(tiers)
    recall = recall_score(truth, predicted, labels=labels, average=None, zero_division=0)
    metrics = {
        "qwk": round(float(cohen_kappa_score(truth, predicted, labels=labels, weights="quadratic")), 4),
        "macro_f1": round(float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)), 4),
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "per_tier_recall": {str(t): round(float(r), 4) for t, r in zip(labels, recall)},
        "confusion": confusion_matrix(truth, predicted, labels=labels).tolist(),
    }
    if probabilities is not None:
        from sklearn.metrics import log_loss

        metrics["log_loss"] = round(float(log_loss(truth, np.clip(probabilities, 1e-15, 1), labels=labels)), 4)
        onehot = np.eye(len(labels))[np.searchsorted(labels, truth)]
        metrics["brier"] = round(float(np.mean(np.sum((probabilities - onehot) ** 2, axis=1))), 4)
    return metrics


def evaluate_risk(*, model_dir: Path, report_dir: Path, data: Path | None = None, generator=None) -> dict[str, Any]:
    """Score held-out data through the exported model and write report.md, report.html and PNG plots."""
    from runtime.risk.scoring import RiskModel

    scorer = RiskModel.load(model_dir)
    tiers, target = scorer.schema.tiers, scorer.schema.target
    labeled = load_labeled(data, scorer.schema) if data else generated_data(generator or RISK_HOLDOUT.generator())
    truth = labeled.frame[target].to_numpy()
    started = time.perf_counter()
    scores = scorer.score_frame(labeled.frame.drop(columns=[target]), text_cells=labeled.text_cells)
    seconds = time.perf_counter() - started
    result = {
        "model": scorer.info,
        "data": labeled.source,
        "rows": len(truth),
        "scoring_seconds": round(seconds, 3),
        "model_tier": tier_metrics(truth, scores.model_tier, scores.probabilities, tiers=tiers),
        "final_tier_after_floors": tier_metrics(truth, scores.tier, tiers=tiers),
    }
    if labeled.oracle is not None:
        result["oracle"] = tier_metrics(truth, decide_tiers(labeled.oracle, scorer.cost), labeled.oracle, tiers=tiers)
        result["qwk_vs_oracle"] = round(result["model_tier"]["qwk"] / result["oracle"]["qwk"], 4)
    write_report(report_dir, result, truth=truth, probabilities=scores.probabilities)
    return result


def write_report(report_dir: Path, result: dict, *, truth: np.ndarray, probabilities: np.ndarray) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    plots = [
        _plot_confusion(report_dir, result),
        _plot_calibration(report_dir, truth, probabilities, tiers=_tiers(result)),
    ]
    (report_dir / "metrics.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_report_files(report_dir, risk_report(result, plots))


def _tiers(result: dict) -> list[str]:
    """The tiers the metrics were computed for, as their keys."""
    return list(result["model_tier"]["per_tier_recall"])


def _rows(result: dict) -> list[tuple[str, dict]]:
    rows = [
        ("model (before floors)", result["model_tier"]),
        ("final (after policy floors)", result["final_tier_after_floors"]),
    ]
    return rows + ([("oracle (Bayes-optimal)", result["oracle"])] if "oracle" in result else [])


def _metric_table(result: dict) -> Table:
    tiers = _tiers(result)
    columns = ["", "QWK", "macro-F1", "accuracy", "log-loss"] + [f"recall tier {t}" for t in tiers]
    rows = [
        [name, f"{m['qwk']:.4f}", f"{m['macro_f1']:.4f}", f"{m['accuracy']:.4f}", cell(m.get("log_loss"))]
        + [f"{m['per_tier_recall'][t]:.3f}" for t in tiers]
        for name, m in _rows(result)
    ]
    return Table(columns=columns, rows=rows, numeric=columns[1:], heading="Metrics")


def _data_table(result: dict) -> Table:
    """Where the enterprises came from, one fact a row (a file's path as the card records it)."""
    rows = [[key, cell(value)] for key, value in result["data"].items()]
    rows += [["enterprises", f"{result['rows']:,}"], ["scoring seconds", cell(result["scoring_seconds"], digits=3)]]
    return Table(columns=["data", "value"], rows=rows, heading="Data")


def risk_report(result: dict, plots: list[str]) -> Report:
    tiers = _tiers(result)
    ratio = (
        [f"Model QWK / oracle QWK = {result['qwk_vs_oracle']:.4f} (target ≥ 0.97)."]
        if "qwk_vs_oracle" in result
        else []
    )
    confusion = Table(
        columns=["true \\ model", *tiers],
        heading="Confusion matrix (rows: true tier, columns: model tier)",
        rows=[[t, *row] for t, row in zip(tiers, result["model_tier"]["confusion"])],
        numeric=tiers,
    )
    return Report(
        title=f"Labor-relation risk: evaluation of {result['model']['name']} {result['model']['version']}",
        tables=[_data_table(result), _metric_table(result), confusion],
        notes=ratio,
        plots=[(name, name) for name in plots],
    )


def _plot_confusion(report_dir: Path, result: dict) -> str:
    panels = [("model", result["model_tier"]["confusion"])] + (
        [("oracle", result["oracle"]["confusion"])] if "oracle" in result else []
    )
    tiers = _tiers(result)
    plot, axes = figure(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    for axis, (title, matrix) in zip(axes[0], panels):
        matrix = np.asarray(matrix, dtype=float)
        share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(tiers)):
            for j in range(len(tiers)):
                axis.text(
                    j,
                    i,
                    f"{int(matrix[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black",
                )
        axis.set(
            title=f"{title}: rows true tier (row-normalised colour)",
            xlabel="predicted tier",
            ylabel="true tier",
            xticks=range(len(tiers)),
            yticks=range(len(tiers)),
            xticklabels=tiers,
            yticklabels=tiers,
        )
    return save_plot(plot, report_dir / "confusion.png")


def _plot_calibration(report_dir: Path, truth: np.ndarray, probabilities: np.ndarray, *, tiers: list[str]) -> str:
    plot, axis = figure(figsize=(5.5, 5))
    bins = np.linspace(0, 1, 11)
    for index, tier in enumerate(map(int, tiers)):
        observed, predicted = [], []
        which = np.digitize(probabilities[:, index], bins[1:-1])
        for b in range(10):
            mask = which == b
            if mask.sum() >= 20:
                predicted.append(probabilities[mask, index].mean())
                observed.append(np.mean(truth[mask] == tier))
        axis.plot(predicted, observed, marker="o", label=f"tier {tier}")
    axis.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect")
    axis.set(
        title="Calibration: predicted P(tier) vs observed share",
        xlabel="predicted probability",
        ylabel="observed frequency",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    axis.legend()
    return save_plot(plot, report_dir / "calibration.png")


def compare_strategies(*, generator, config, report_dir: Path | None = None) -> list[dict[str, Any]]:
    """Fit each ordinal strategy (and cumulative without monotone constraints) on one split; same holdout."""
    from dataclasses import replace

    from training.risk.pipeline import build_pipeline, feature_frame

    schema = load_schema()
    tiers, target = schema.tiers, schema.target
    train, holdout = split_holdout(generated_data(generator), fraction=0.2, seed=config.seed)
    features, held = (feature_frame(schema, part.frame.drop(columns=[target])) for part in (train, holdout))
    cost, truth = cost_matrix(schema.n_tiers, under_tier_cost=config.under_tier_cost), holdout.frame[target].to_numpy()
    oracle = tier_metrics(truth, decide_tiers(holdout.oracle, cost), holdout.oracle, tiers=tiers)
    rows = [{"strategy": "oracle (Bayes-optimal)", **oracle, "fit_seconds": None}]
    variants = [("cumulative", True), ("cumulative", False), ("multiclass", False), ("regression", True)]
    for strategy, monotone in variants:
        started = time.perf_counter()
        pipeline = build_pipeline(schema, replace(config, strategy=strategy, monotone=monotone)).fit(
            features, train.frame[target]
        )
        seconds = time.perf_counter() - started
        probabilities = pipeline.predict_proba(held)
        predicted = pipeline.predict(held) if strategy == "regression" else decide_tiers(probabilities, cost)
        metrics = tier_metrics(truth, predicted, probabilities, tiers=tiers)
        label = f"{strategy}{' + monotone' if monotone else ''}"
        rows.append(
            {
                "strategy": label,
                **metrics,
                "qwk_vs_oracle": round(metrics["qwk"] / oracle["qwk"], 4),
                "fit_seconds": round(seconds, 1),
            }
        )
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "strategies.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        (report_dir / "strategies.md").write_text(strategies_markdown(rows), encoding="utf-8")
    return rows


def strategies_markdown(rows: list[dict]) -> str:
    lines = [
        "| strategy | QWK | QWK / oracle | macro-F1 | Brier | recall by tier | fit s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        recall = " / ".join(f"{value:.2f}" for value in row["per_tier_recall"].values())
        lines.append(
            f"| {row['strategy']} | {row['qwk']:.4f} | {row.get('qwk_vs_oracle', 1.0):.4f} | {row['macro_f1']:.4f} "
            f"| {row.get('brier', float('nan')):.4f} | {recall} "
            f"| {row['fit_seconds'] if row['fit_seconds'] is not None else '-'} |"
        )
    return "\n".join(lines) + "\n"
