"""Train the risk model: data (generated or a user's file), pipeline fit, ONNX export, card, parity check.

`train_risk` is the entry point for callers (the CLI, tests, the MLflow wrapper): it returns a
`RiskTrainResult` and keeps experiment tracking out.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runtime.cards import card_header
from runtime.modeldir import file_sha256
from runtime.risk.schema import RiskSchema, load_schema
from runtime.risk.tiers import cost_matrix, decide_tiers
from training.risk.config import GeneratorConfig, RiskModelConfig, model_version
from training.risk.data import LabeledData, fingerprint, generated_data, load_labeled, split_holdout
from training.risk.evaluate import tier_metrics
from training.risk.pipeline import build_pipeline, feature_frame, rearranged_tier_probabilities

PARITY_ROWS = 10_000
PARITY_TOLERANCE = 1e-4


@dataclass
class RiskTrainResult:
    model_dir: Path
    metrics: dict[str, Any]
    seconds: float
    fit_seconds: float
    card: dict[str, Any] = field(repr=False)


def train_risk(
    config: RiskModelConfig,
    *,
    data: str | Path | LabeledData | None = None,
    generator: GeneratorConfig | None = None,
    holdout_fraction: float = 0.2,
) -> RiskTrainResult:
    """Fit on `data` (a file, LabeledData, or a generated population) and write model.onnx + card.json to config.out."""
    if config.strategy != "cumulative":
        raise ValueError(
            f"strategy {config.strategy!r} is for comparison only (ankang evaluate risk-strategies); "
            "the exported model uses the cumulative strategy"
        )
    started = time.perf_counter()
    schema = load_schema()
    labeled = (
        data
        if isinstance(data, LabeledData)
        else (load_labeled(data, schema) if data is not None else generated_data(generator or GeneratorConfig()))
    )
    train, holdout = split_holdout(labeled, fraction=holdout_fraction, seed=config.seed)
    target = schema.target
    features = feature_frame(schema, train.frame.drop(columns=[target]), text_cells=labeled.text_cells)
    fit_started = time.perf_counter()
    pipeline = build_pipeline(schema, config).fit(features, train.frame[target].to_numpy())
    fit_seconds = time.perf_counter() - fit_started
    held_features = feature_frame(schema, holdout.frame.drop(columns=[target]), text_cells=labeled.text_cells)
    cost = cost_matrix(len(schema.tiers), under_tier_cost=config.under_tier_cost)
    metrics = holdout_metrics(pipeline, held_features, holdout, cost, target=target)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    staged_onnx, staged_card = out / ".model.onnx.partial", out / ".card.json.partial"
    reasons = _export(pipeline, schema, staged_onnx)
    metrics["onnx_parity"] = check_parity(pipeline, held_features, staged_onnx, cost)
    card = build_card(
        config=config,
        schema=schema,
        cost=cost,
        reasons=reasons,
        metrics=metrics,
        labeled=labeled,
        rows=(len(train.frame), len(holdout.frame)),
        onnx_path=staged_onnx,
        fit_seconds=fit_seconds,
    )
    staged_card.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    staged_onnx.replace(out / "model.onnx")  # both files are complete before either replaces the old model
    staged_card.replace(out / "card.json")
    return RiskTrainResult(
        model_dir=out, metrics=metrics, seconds=time.perf_counter() - started, fit_seconds=fit_seconds, card=card
    )


def holdout_metrics(pipeline, features: pd.DataFrame, holdout: LabeledData, cost: np.ndarray, *, target: str) -> dict:
    truth = holdout.frame[target].to_numpy()
    probabilities = pipeline.predict_proba(features)
    tiers = tuple(pipeline.classes_)
    metrics = {
        "holdout_rows": len(truth),
        **tier_metrics(truth, decide_tiers(probabilities, cost), probabilities, tiers=tiers),
    }
    if holdout.oracle is not None:
        metrics["oracle"] = tier_metrics(truth, decide_tiers(holdout.oracle, cost), holdout.oracle, tiers=tiers)
        metrics["qwk_vs_oracle"] = round(metrics["qwk"] / metrics["oracle"]["qwk"], 4)
    metrics["noncrossing"] = noncrossing_comparison(pipeline, features, truth, cost, tiers=tiers)
    return metrics


def noncrossing_comparison(
    pipeline, features: pd.DataFrame, truth: np.ndarray, cost: np.ndarray, *, tiers: tuple[int, ...]
) -> dict:
    """The same trees made non-crossing two ways on the holdout: rearrangement (released) against the
    running minimum that models up to 1.1.0 used, which zeroed a middle tier wherever the models crossed."""
    exceedance = pipeline.named_steps["model"].exceedance(pipeline.named_steps["prep"].transform(features))
    comparison = {"crossing_rows": int((np.diff(exceedance, axis=1) > 0).any(axis=1).sum())}
    for method, above in (
        ("rearrangement", exceedance),
        ("running_minimum", np.minimum.accumulate(exceedance, axis=1)),
    ):
        probabilities = rearranged_tier_probabilities(above)  # sorting an already non-increasing curve keeps it
        metrics = tier_metrics(truth, decide_tiers(probabilities, cost), probabilities, tiers=tiers)
        zeroed = (probabilities[:, 1:-1] == 0) & (probabilities[:, :-2] > 0) & (probabilities[:, 2:] > 0)
        comparison[method] = {
            "log_loss": metrics["log_loss"],
            "qwk": metrics["qwk"],
            "rows_with_a_zero_tier_between_non_zero_ones": int(zeroed.any(axis=1).sum()),
        }
    return comparison


def _export(pipeline, schema: RiskSchema, path: Path) -> dict:
    from training.risk.export import export_onnx

    return export_onnx(pipeline, schema, path)


def check_parity(
    pipeline, features: pd.DataFrame, onnx_path: Path, cost: np.ndarray, *, rows: int = PARITY_ROWS
) -> dict:
    """ONNX vs native predict_proba on up to `rows` rows; raises when they disagree beyond 1e-4 or on a tier."""
    from runtime.risk.scoring import quietly
    from runtime.session import create_session

    sample = features.iloc[:rows]
    session = quietly(lambda: create_session(onnx_path))
    feeds = {
        name: (
            sample[name].to_numpy(np.float32)
            if pd.api.types.is_numeric_dtype(sample[name])
            else sample[name].to_numpy(object)
        ).reshape(-1, 1)
        for name in sample.columns
    }
    feeds["with_reasons"] = np.array([False])
    onnx_probabilities = session.run(["probabilities"], feeds)[0].astype(float)
    native = pipeline.predict_proba(sample)
    max_diff = float(np.abs(onnx_probabilities - native).max())
    same_tiers = float(np.mean(decide_tiers(onnx_probabilities, cost) == decide_tiers(native, cost)))
    if max_diff > PARITY_TOLERANCE or same_tiers < 1.0:
        raise RuntimeError(
            f"ONNX export differs from the native model: max |diff| {max_diff:.2e}, "
            f"identical tiers {same_tiers:.4%}; the model was not released"
        )
    return {"rows": len(sample), "max_abs_diff": max_diff, "identical_tiers": same_tiers}


def build_card(
    *,
    config: RiskModelConfig,
    schema: RiskSchema,
    cost: np.ndarray,
    reasons: dict,
    metrics: dict,
    labeled: LabeledData,
    rows: tuple[int, int],
    onnx_path: Path,
    fit_seconds: float,
) -> dict:
    categorical = set(schema.categorical_features)
    lowest, highest = schema.tiers[0], schema.tiers[-1]
    created, sha256 = time.gmtime(), file_sha256(onnx_path)
    return {
        **card_header(
            name="labor_risk",
            version=config.version or model_version(created, sha256),
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", created),
            sha256=sha256,
            training_config=config.to_dict(),
            data={
                "fingerprint": fingerprint(labeled.frame),
                "train_rows": rows[0],
                "holdout_rows": rows[1],
                "source": labeled.source,
            },
        ),
        "task": f"labor-relation risk tier of an enterprise, {lowest} (lowest) to {highest} (highest)",
        "tiers": list(schema.tiers),
        "schema": schema.raw,
        "feature_order": schema.features,
        "input_spec": [
            {
                "name": name,
                "dtype": "string" if name in categorical else "float32",
                "shape": [None, 1],
                "missing": '""' if name in categorical else "NaN",
            }
            for name in schema.features
        ],
        "outputs": {
            "probabilities": f"[N, {schema.n_tiers}] P(tier = {lowest}..{highest})",
            "contributions": "[N, features] Saabas contributions to the summed cumulative logit",
        },
        "strategy": config.strategy,
        "decision": {"rule": "expected_cost", "cost_matrix": cost.tolist(), "under_tier_cost": config.under_tier_cost},
        "reasons": {
            "method": "saabas_leaf_vectors",
            "bias": reasons["bias"],
            "score": "sum over k of logit P(tier > k)",
        },
        "metrics": metrics,
        "size_bytes": onnx_path.stat().st_size,
        "fit_seconds": round(fit_seconds, 2),
    }
