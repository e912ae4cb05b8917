"""Risk drift data: the released model's training population versus a recent profile file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from runtime.paths import PROJECT_ROOT
from training.lifecycle.drift import feature_drift, tier_drift


def reference_frame(card: dict, *, reference_path: Path | None, rows: int) -> tuple[pd.DataFrame, bool, str]:
    """(frame, text_cells, description) of the data the card says the model was trained on."""
    from training.risk.config import GeneratorConfig
    from training.risk.data import read_frame
    from training.risk.generator import generate

    source = (card.get("data") or {}).get("source") or {}
    if reference_path is None and source.get("kind") == "file":
        reference_path = PROJECT_ROOT / source["path"]  # cards record project-relative paths (or names only)
        if not reference_path.is_file():
            raise ValueError(
                f"the model was trained on {source['path']}, which is not in this project; pass it as --reference FILE"
            )
    if reference_path is not None:
        frame = read_frame(reference_path)
        return frame.iloc[:rows], True, f"file {reference_path}"
    if source.get("kind") != "generated":
        raise ValueError("the card does not say what the model was trained on; pass --reference FILE")
    fields = {k: source[k] for k in ("seed", "variant", "missing_rate") if k in source}
    config = GeneratorConfig(rows=min(rows, int(source.get("rows", rows))), **fields)
    return generate(config), False, f"generated population {config}"


def risk_drift(
    *, model_dir: Path, recent_path: Path, reference_path: Path | None, reference_rows: int
) -> tuple[dict, dict]:
    """({"features": [DriftRow], "tier": [DriftRow]}, summary) for the report."""
    from runtime.risk.scoring import RiskModel
    from training.risk.data import read_frame
    from training.risk.pipeline import feature_frame

    scorer = RiskModel.load(model_dir)
    schema = scorer.schema
    reference, reference_text, described = reference_frame(
        scorer.model.card, reference_path=reference_path, rows=reference_rows
    )
    recent = read_frame(recent_path)
    target = schema.target
    frames = {}
    for name, frame, text in (("reference", reference, reference_text), ("recent", recent, True)):
        profiles = frame.drop(columns=[target], errors="ignore")
        frames[name] = (
            feature_frame(schema, profiles, text_cells=text),
            scorer.score_frame(profiles, text_cells=text).tier,
        )
    features = feature_drift(frames["reference"][0], frames["recent"][0], categorical=schema.categories)
    summary = {
        "model": f"{scorer.model.name} {scorer.model.version}",
        "reference": described,
        "reference rows": len(reference),
        "recent": str(recent_path),
        "recent rows": len(recent),
    }
    return {"features": features, "tier": [tier_drift(frames["reference"][1], frames["recent"][1])]}, summary
