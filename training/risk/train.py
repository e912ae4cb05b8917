"""Train the risk model: data (generated or a user's file), pipeline fit, ONNX export, card, parity check.

`train_risk` is the entry point for callers (the CLI, tests, the MLflow wrapper): it returns a
`RiskTrainResult` and keeps experiment tracking out.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runtime.modeldir import file_sha256
from serving.risk import RiskSchema, cost_matrix, decide_tiers
from training.risk.config import GeneratorConfig, RiskModelConfig
from training.risk.evaluate import tier_metrics
from training.risk.generator import generate_with_oracle
from training.risk.pipeline import build_pipeline, feature_frame
from training.risk.schema import load_schema

PARITY_ROWS = 10_000
PARITY_TOLERANCE = 1e-4


@dataclass
class RiskTrainResult:
    model_dir: Path
    metrics: dict[str, Any]
    seconds: float
    fit_seconds: float
    card: dict[str, Any] = field(repr=False)


@dataclass
class LabeledData:
    frame: pd.DataFrame  # schema columns (features may be missing) + tier
    oracle: np.ndarray | None  # Bayes-optimal P(tier) when the data is generated
    source: dict[str, Any]
    text_cells: bool = False  # CSV cells are text: "true", "12", "" (missing)


def oracle_path(path: Path) -> Path:
    """Sidecar with the generator's Bayes-optimal probabilities: `<file stem>.oracle.parquet`."""
    return path.with_name(path.name.split(".")[0] + ".oracle.parquet")


def read_frame(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; pass a CSV or Parquet file")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def load_labeled(path: str | Path, schema: RiskSchema) -> LabeledData:
    """A user's CSV/Parquet: the schema's columns plus an integer `tier` column 1-5 (+ optional oracle sidecar)."""
    path = Path(path)
    frame = read_frame(path)
    target = schema.raw.get("target", "tier")
    if target not in frame.columns:
        raise ValueError(f"{path} has no `{target}` column; add the historical tier (an integer 1-5) per enterprise")
    tiers = pd.to_numeric(frame[target], errors="coerce")
    bad = ~tiers.isin(schema.tiers)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}: `{target}` must be an integer 1-5 in every row; row {row} has "
                         f"{frame[target].iloc[row]!r} ({int(bad.sum())} bad rows)")
    frame = frame.assign(**{target: tiers.astype("int64")})
    oracle = None
    if oracle_path(path).is_file():
        sidecar = pd.read_parquet(oracle_path(path)).set_index("enterprise_id")
        oracle = sidecar.loc[frame["enterprise_id"].astype(str), [f"p_tier_{t}" for t in schema.tiers]].to_numpy()
    source = {"kind": "file", "path": str(path), "rows": len(frame), "oracle": oracle is not None}
    return LabeledData(frame=frame, oracle=oracle, source=source, text_cells=True)


def generated_data(generator: GeneratorConfig) -> LabeledData:
    frame, oracle = generate_with_oracle(generator)
    return LabeledData(frame=frame, oracle=oracle, source={"kind": "generated", **generator.__dict__})


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the data's content (order-sensitive), independent of file format."""
    hashed = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def split_holdout(data: LabeledData, *, fraction: float, seed: int) -> tuple[LabeledData, LabeledData]:
    order = np.random.default_rng(seed).permutation(len(data.frame))
    cut = int(len(order) * (1 - fraction))
    pick = lambda idx: LabeledData(frame=data.frame.iloc[idx].reset_index(drop=True),  # noqa: E731
                                   oracle=None if data.oracle is None else data.oracle[idx], source=data.source,
                                   text_cells=data.text_cells)
    return pick(order[:cut]), pick(order[cut:])


def train_risk(config: RiskModelConfig, *, data: str | Path | LabeledData | None = None,
               generator: GeneratorConfig | None = None, holdout_fraction: float = 0.2) -> RiskTrainResult:
    """Fit on `data` (a file, LabeledData, or a generated population) and write model.onnx + card.json to config.out."""
    if config.strategy != "cumulative":
        raise ValueError(f"strategy {config.strategy!r} is for comparison only (ankang evaluate risk-strategies); "
                         "the exported model uses the cumulative strategy")
    started = time.perf_counter()
    schema = load_schema()
    labeled = data if isinstance(data, LabeledData) else (
        load_labeled(data, schema) if data is not None else generated_data(generator or GeneratorConfig()))
    train, holdout = split_holdout(labeled, fraction=holdout_fraction, seed=config.seed)
    target = schema.raw.get("target", "tier")
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
    card = build_card(config=config, schema=schema, cost=cost, reasons=reasons, metrics=metrics, labeled=labeled,
                      rows=(len(train.frame), len(holdout.frame)), onnx_path=staged_onnx, fit_seconds=fit_seconds)
    staged_card.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    staged_onnx.replace(out / "model.onnx")  # both files are complete before either replaces the old model
    staged_card.replace(out / "card.json")
    return RiskTrainResult(model_dir=out, metrics=metrics, seconds=time.perf_counter() - started,
                           fit_seconds=fit_seconds, card=card)


def holdout_metrics(pipeline, features: pd.DataFrame, holdout: LabeledData, cost: np.ndarray, *, target: str) -> dict:
    truth = holdout.frame[target].to_numpy()
    probabilities = pipeline.predict_proba(features)
    metrics = {"holdout_rows": len(truth), **tier_metrics(truth, decide_tiers(probabilities, cost), probabilities)}
    if holdout.oracle is not None:
        metrics["oracle"] = tier_metrics(truth, decide_tiers(holdout.oracle, cost), holdout.oracle)
        metrics["qwk_vs_oracle"] = round(metrics["qwk"] / metrics["oracle"]["qwk"], 4)
    return metrics


def _export(pipeline, schema: RiskSchema, path: Path) -> dict:
    from training.risk.export import export_onnx

    return export_onnx(pipeline, schema, path)


def check_parity(pipeline, features: pd.DataFrame, onnx_path: Path, cost: np.ndarray, *, rows: int = PARITY_ROWS) -> dict:
    """ONNX vs native predict_proba on up to `rows` rows; raises when they disagree beyond 1e-4 or on a tier."""
    from runtime.session import create_session

    sample = features.iloc[:rows]
    session = create_session(onnx_path)
    feeds = {name: (sample[name].to_numpy(np.float32) if pd.api.types.is_numeric_dtype(sample[name])
                    else sample[name].to_numpy(object)).reshape(-1, 1) for name in sample.columns}
    feeds["with_reasons"] = np.array([False])
    onnx_probabilities = session.run(["probabilities"], feeds)[0].astype(float)
    native = pipeline.predict_proba(sample)
    max_diff = float(np.abs(onnx_probabilities - native).max())
    same_tiers = float(np.mean(decide_tiers(onnx_probabilities, cost) == decide_tiers(native, cost)))
    if max_diff > PARITY_TOLERANCE or same_tiers < 1.0:
        raise RuntimeError(f"ONNX export differs from the native model: max |diff| {max_diff:.2e}, "
                           f"identical tiers {same_tiers:.4%}; the model was not released")
    return {"rows": len(sample), "max_abs_diff": max_diff, "identical_tiers": same_tiers}


def build_card(*, config: RiskModelConfig, schema: RiskSchema, cost: np.ndarray, reasons: dict, metrics: dict,
               labeled: LabeledData, rows: tuple[int, int], onnx_path: Path, fit_seconds: float) -> dict:
    categorical = set(schema.categorical_features)
    return {
        "name": "labor_risk", "version": config.version, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "task": "labor-relation risk tier of an enterprise, 1 (lowest) to 5 (highest)",
        "tiers": list(schema.tiers), "schema": schema.raw, "feature_order": schema.features,
        "input_spec": [{"name": name, "dtype": "string" if name in categorical else "float32", "shape": [None, 1],
                        "missing": '""' if name in categorical else "NaN"} for name in schema.features],
        "outputs": {"probabilities": "[N, 5] P(tier = 1..5)",
                    "contributions": "[N, features] Saabas contributions to the summed cumulative logit"},
        "strategy": config.strategy,
        "decision": {"rule": "expected_cost", "cost_matrix": cost.tolist(), "under_tier_cost": config.under_tier_cost},
        "reasons": {"method": "saabas_leaf_vectors", "bias": reasons["bias"],
                    "score": "sum over k of logit P(tier > k)"},
        "metrics": metrics, "sha256": file_sha256(onnx_path), "size_bytes": onnx_path.stat().st_size,
        "data": {"fingerprint": fingerprint(labeled.frame), "train_rows": rows[0], "holdout_rows": rows[1],
                 "source": labeled.source},
        "training_config": config.to_dict(), "fit_seconds": round(fit_seconds, 2),
    }
