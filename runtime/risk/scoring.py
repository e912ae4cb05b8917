"""Scoring an exported risk model: one tree walk per batch, the tier decision, policy floors, reasons.

`RiskModel` is what serving's `RiskScorer` and training's evaluation, drift and `ankang score risk`
share; it takes validated batches (runtime.risk.validate) and returns `BatchScores`. The trees run
on onnxruntime (the released graph as it is) or, with `engine="compiled"` (serving's default through
"auto"), on the same trees compiled to machine code at load (runtime/risk/engines.py), checked
against onnxruntime before it is used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runtime.cards import RiskCard
from runtime.modeldir import ModelDir
from runtime.risk.engines import ENGINES, CompiledTrees, EngineUnavailable, check_against
from runtime.risk.floors import POLICY_PATH, FloorRule, fired_rules, floor_tiers, load_policy
from runtime.risk.schema import RiskSchema
from runtime.risk.tiers import decide_tiers, final_tiers
from runtime.risk.validate import ValidatedBatch, validate_frame
from runtime.session import SessionOptions, create_session, usable_cores

log = logging.getLogger(__name__)

TOP_REASONS = 3
REASONS_INPUT = "with_reasons"


@dataclass
class BatchScores:
    ids: np.ndarray
    probabilities: np.ndarray
    model_tier: np.ndarray
    tier: np.ndarray
    fired: np.ndarray  # (rows, rules) bool
    contributions: np.ndarray  # (rows, features)
    batch: ValidatedBatch


class RiskModel:
    """A verified risk model directory, its onnxruntime session and the policy floors it is scored with."""

    DEFAULT_ENGINE = "onnxruntime"  # engine=None means this (serving's RiskScorer: "auto")

    def __init__(
        self,
        model: ModelDir,
        *,
        policy: list[FloorRule],
        options: SessionOptions = SessionOptions(),
        engine: str | None = None,
    ):
        engine = engine or self.DEFAULT_ENGINE
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        self.model = model
        self.schema = RiskSchema.from_dict(model.card["schema"])
        self.policy = policy
        unknown = sorted({rule.field for rule in policy} - set(self.schema.features))
        if unknown:
            raise ValueError(f"policy floors name fields the model's schema lacks: {', '.join(unknown)}")
        self.cost = RiskCard.from_model_dir(model).cost_matrix  # the card checked against its schema
        self.session = quietly(lambda: create_session(model.onnx_path, options=options))
        self._input_names = [node.name for node in self.session.get_inputs()]  # with_reasons is optional
        self.compiled = (
            None if engine == "onnxruntime" else self._compiled_trees(options, required=engine == "compiled")
        )
        self.engine = "compiled" if self.compiled is not None else "onnxruntime"

    def _compiled_trees(self, options: SessionOptions, *, required: bool) -> CompiledTrees | None:
        """The compiled engine, checked against onnxruntime; None (with a warning) where it cannot be had
        and `required` is false."""
        try:
            trees = CompiledTrees.build(
                self.model.onnx_path, sha256=self.model.card["sha256"], threads=options.threads or usable_cores()
            )
            check_against(trees, lambda numeric, categorical: self._run_onnx(numeric, categorical, reasons=True))
            return trees
        except EngineUnavailable as error:
            if required:
                raise
            log.warning("risk model %s scores on onnxruntime: %s", self.model.version, error)
            return None

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        policy_path: str | Path = POLICY_PATH,
        options: SessionOptions = SessionOptions(),
        engine: str | None = None,
    ) -> RiskModel:
        """Verify and open `model_dir` (its card's sha256 must match model.onnx)."""
        return cls(ModelDir.load(model_dir), policy=load_policy(policy_path), options=options, engine=engine)

    @property
    def info(self) -> dict[str, str]:
        return {"name": self.model.name, "version": self.model.version}

    def score_frame(self, frame: pd.DataFrame, *, text_cells: bool, reasons: bool = True) -> BatchScores:
        """Validate and score a whole batch; `reasons=False` runs the trees without contribution targets
        (onnxruntime about 20 % faster at 100,000 rows)."""
        return self.score_batch(validate_frame(self.schema, frame, text_cells=text_cells), reasons=reasons)

    def score_batch(self, batch: ValidatedBatch, *, reasons: bool) -> BatchScores:
        probabilities, contributions = self._run(batch, reasons=reasons)
        model_tier = decide_tiers(probabilities, self.cost)
        fired = fired_rules(self.policy, numeric=batch.numeric, categorical=batch.categorical, rows=len(batch))
        tier = final_tiers(model_tier, floor_tiers(self.policy, fired))
        return BatchScores(
            ids=batch.ids,
            probabilities=probabilities,
            model_tier=model_tier,
            tier=tier,
            fired=fired,
            contributions=contributions,
            batch=batch,
        )

    def _run(self, batch: ValidatedBatch, *, reasons: bool) -> tuple[np.ndarray, np.ndarray]:
        if self.compiled is not None:
            return self.compiled.run(batch.numeric, batch.categorical, reasons=reasons)
        return self._run_onnx(batch.numeric, batch.categorical, reasons=reasons)

    def _run_onnx(
        self, numeric: dict[str, np.ndarray], categorical: dict[str, np.ndarray], *, reasons: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        feeds = {REASONS_INPUT: np.array([reasons])}
        for name in self._input_names:
            column = numeric[name].astype(np.float32) if name in numeric else categorical[name]
            feeds[name] = column.reshape(-1, 1)
        probabilities, contributions = self.session.run(["probabilities", "contributions"], feeds)
        return probabilities.astype(float), contributions

    def _reasons_index(self, scores: BatchScores) -> tuple[np.ndarray, np.ndarray]:
        """Top contributing features per row (imputed fields never count as a reason)."""
        contributions = np.where(scores.batch.missing, 0.0, scores.contributions)
        top = np.argsort(-contributions, axis=1)[:, :TOP_REASONS]
        return top, np.take_along_axis(contributions, top, axis=1)

    def results(self, scores: BatchScores) -> list[dict]:
        """One JSON-ready result per enterprise."""
        features = self.schema.features
        top, top_values = self._reasons_index(scores)
        rounded = np.round(scores.probabilities, 4).tolist()
        return [
            {
                "enterprise_id": scores.ids[row],
                "tier": int(scores.tier[row]),
                "model_tier": int(scores.model_tier[row]),
                "probabilities": {str(t): p for t, p in zip(self.schema.tiers, rounded[row])},
                "rules_fired": [
                    {"id": rule.id, "description": rule.description, "min_tier": rule.min_tier}
                    for rule, hit in zip(self.policy, scores.fired[row])
                    if hit
                ],
                "reasons": [
                    {
                        "field": features[i],
                        "value": self._value(scores.batch, features[i], row),
                        "contribution": round(float(c), 3),
                    }
                    for i, c in zip(top[row], top_values[row])
                    if c > 0
                ],
                "imputed": [features[i] for i in np.flatnonzero(scores.batch.missing[row])],
            }
            for row in range(len(scores.ids))
        ]

    def _value(self, batch: ValidatedBatch, name: str, row: int) -> Any:
        spec = self.schema.fields[name]
        if spec.type == "category":
            return batch.categorical[name][row]
        value = float(batch.numeric[name][row])
        return bool(value) if spec.type == "boolean" else (int(value) if spec.type == "integer" else value)

    def results_table(self, scores: BatchScores) -> pd.DataFrame:
        """One row per enterprise: ids, tiers, probabilities, and ';'-joined rules, reasons, imputed fields."""
        table = pd.DataFrame({"enterprise_id": scores.ids, "tier": scores.tier, "model_tier": scores.model_tier})
        for index, tier in enumerate(self.schema.tiers):
            table[f"p_tier_{tier}"] = np.round(scores.probabilities[:, index], 4)
        table["rules_fired"] = _join_flags(scores.fired, np.array([rule.id for rule in self.policy], dtype=object))
        if len(scores.contributions):
            top, top_values = self._reasons_index(scores)
            names = np.asarray(self.schema.features, dtype=object)[top]
            table["reasons"] = _join_flags(top_values > 0, names, per_row=True)
        table["imputed"] = _join_flags(scores.batch.missing, np.asarray(self.schema.features, dtype=object))
        return table


def quietly(create):
    """Create a session without onnxruntime's warning that the optional `with_reasons` input has a default.

    An ONNX input backed by an initializer is the standard way to make an input optional; onnxruntime
    still warns about it at every load, which would look like a fault in every `ankang score risk`.
    """
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    try:
        return create()
    finally:
        ort.set_default_logger_severity(2)  # onnxruntime's default: warnings


def _join_flags(flags: np.ndarray, names: np.ndarray, *, per_row: bool = False) -> np.ndarray:
    """';'-joined names of the set flags in each row, column by column over the rows that have the flag."""
    out = np.full(len(flags), "", dtype=object)
    for column in range(flags.shape[1]):
        rows = np.flatnonzero(flags[:, column])
        if not len(rows):
            continue
        label = names[rows, column] if per_row else names[column]
        current = out[rows]
        out[rows] = np.where(current == "", label, current + ";" + label)
    return out
