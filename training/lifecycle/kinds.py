"""The two model kinds and what differs between them: names, input examples, held-out scoring.

Every comparable metric is "higher is better" (ROC AUC, QWK, recall), keyed by a readable name;
`per_source` metrics (one photo source's ROC AUC) get the looser source tolerance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.photo.config import DEFAULT_CACHE
from training.risk.config import RISK_HOLDOUT


@dataclass(frozen=True)
class Comparable:
    """Held-out metrics of one model: {name: value or None}, plus which names are per-source."""

    values: dict[str, float | None]
    per_source: frozenset[str] = frozenset()
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PhotoHeldOut:
    """The photos both models are scored on when a photo challenger meets the champion."""

    data: tuple[Path, ...]
    split: str = "test"
    limit: int = 0  # every-k-th subset of N photos before splitting; 0 = all
    cache_dir: Path = DEFAULT_CACHE
    workers: int = 1


@dataclass(frozen=True)
class RiskHeldOut:
    """The enterprises both risk models are scored on: a labelled file, else the generated held-out population."""

    data: Path | None = None
    rows: int = RISK_HOLDOUT.rows
    seed: int = RISK_HOLDOUT.seed


@dataclass(frozen=True)
class ModelKind:
    noun: str  # the CLI noun: ankang train photo
    registered_name: str  # MLflow registered model
    dir_name: str  # models/<dir_name>/

    def card(self, model_dir: Path) -> dict:
        return json.loads((Path(model_dir) / "card.json").read_text(encoding="utf-8"))

    def data_fingerprint(self, card: dict) -> dict:
        """The card header's `data` block: the fingerprint and what the kind records beside it."""
        return dict(card.get("data") or {})

    def fingerprint_text(self, card: dict) -> str:
        return str((card.get("data") or {}).get("fingerprint", ""))


class PhotoKind(ModelKind):
    def input_example(self, card: dict) -> dict[str, np.ndarray]:
        size = int(card["input"]["height"]), int(card["input"]["width"])
        pixels = np.random.default_rng(0).integers(0, 256, (1, 3, *size), dtype=np.uint8)
        return {card["input"].get("name", "image"): pixels}

    def headline(self, card: dict) -> dict[str, float]:
        aucs = [entry.get("roc_auc") for entry in card.get("metrics", {}).get("test", {}).values()]
        aucs = [value for value in aucs if value is not None]
        return {"test_mean_roc_auc": round(float(np.mean(aucs)), 4)} if aucs else {}

    def evaluate(self, model_dir: Path, *, heldout: PhotoHeldOut, report_dir: Path) -> Comparable:
        """Per-flag and per-(flag, source) ROC AUC on the `heldout.split` photos of `heldout.data`, and what
        an officer meets: box AP50 per class on that split, triage and alarms on the fully labelled audit photos."""
        from training.photo.report import officer_metrics

        scored, metrics = officer_metrics(
            Path(model_dir),
            data=list(heldout.data),
            split=heldout.split,
            cache_dir=heldout.cache_dir,
            workers=heldout.workers,
            limit=heldout.limit,
        )
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        values, per_source = {}, set()
        for flag, entry in metrics[heldout.split].items():
            values[f"roc_auc {flag}"] = entry["roc_auc"]
            for source, sub in entry["per_source"].items():
                values[f"roc_auc {flag} @ {source}"] = sub["roc_auc"]
                per_source.add(f"roc_auc {flag} @ {source}")
        small_sets = officer_values(metrics, split=heldout.split)  # a few hundred photos: the looser tolerance
        return Comparable(
            values=values | small_sets,
            per_source=frozenset(per_source | set(small_sets)),
            detail={"photos": len(scored.frame)},
        )


def officer_values(metrics: dict, *, split: str) -> dict[str, float | None]:
    """Higher-is-better figures of what officers see: box AP50 and the audit set's triage."""
    values = {
        f"box AP50 {name}": entry["all"]["ap50_all"] for name, entry in metrics.get("boxes", {}).get(split, {}).items()
    }
    # what an officer gets: the boxes drawn at the card's operating threshold (a candidate that finds
    # fewer of them is refused, whatever its AP50)
    for name, entry in metrics.get("boxes_operating", {}).get(split, {}).items():
        values[f"box recall at operating threshold {name}"] = entry["all"]["recall"]
    audit = metrics.get("audit")
    if audit:
        values["audit urgent recall"] = audit["urgent_recall"]["rate"]
        values["audit not falsely urgent"] = _complement(audit["false_urgent"]["rate"])
        values["audit clear photos left clear"] = _complement(audit["false_review_or_urgent_of_clear"]["rate"])
    return values


def _complement(rate: float | None) -> float | None:
    return None if rate is None else round(1 - rate, 5)


class RiskKind(ModelKind):
    def input_example(self, card: dict) -> dict[str, np.ndarray]:
        """Two generated enterprises, validated and laid out exactly as serving feeds the graph."""
        from runtime.risk.schema import RiskSchema
        from training.risk.config import GeneratorConfig
        from training.risk.generator import generate
        from training.risk.pipeline import feature_frame

        schema = RiskSchema.from_dict(card["schema"])
        frame = generate(GeneratorConfig(rows=2, seed=1))
        features = feature_frame(schema, frame.drop(columns=[schema.target]))
        numeric = set(schema.numeric_features)
        return {
            name: (features[name].to_numpy(np.float32) if name in numeric else features[name].to_numpy(object)).reshape(
                -1, 1
            )
            for name in schema.features
        }

    def headline(self, card: dict) -> dict[str, float]:
        qwk = card.get("metrics", {}).get("qwk")
        return {"holdout_qwk": float(qwk)} if qwk is not None else {}

    def evaluate(self, model_dir: Path, *, heldout: RiskHeldOut, report_dir: Path) -> Comparable:
        """QWK and per-tier recall of the model's own tier (before policy floors) on held-out data."""
        from training.risk.config import GeneratorConfig
        from training.risk.evaluate import evaluate_risk

        result = evaluate_risk(
            model_dir=Path(model_dir),
            report_dir=report_dir,
            data=heldout.data,
            generator=GeneratorConfig(rows=heldout.rows, seed=heldout.seed),
        )
        model_tier = result["model_tier"]
        values = {"qwk": model_tier["qwk"]}
        values.update({f"recall tier {tier}": value for tier, value in model_tier["per_tier_recall"].items()})
        return Comparable(values=values, detail={"rows": result["rows"]})


PHOTO = PhotoKind(noun="photo", registered_name="hazard-photo", dir_name="hazard_photo")
RISK = RiskKind(noun="risk", registered_name="labor-risk", dir_name="labor_risk")
KINDS: dict[str, ModelKind] = {"photo": PHOTO, "risk": RISK}


def kind_of(name: str) -> ModelKind:
    """`photo`, `hazard-photo` or `hazard_photo` (and the same for risk) -> its kind."""
    for kind in KINDS.values():
        if name in (kind.noun, kind.registered_name, kind.dir_name):
            return kind
    known = ", ".join(f"{k.noun} ({k.registered_name})" for k in KINDS.values())
    raise ValueError(f"unknown model {name!r}; use one of {known}")
