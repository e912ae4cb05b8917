"""The risk feature schema as training sees it (parsing lives in serving.risk, training imports serving)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from serving.risk import RiskSchema
from training.risk.config import SCHEMA_PATH


@lru_cache(maxsize=4)
def load_schema(path: Path = SCHEMA_PATH) -> RiskSchema:
    return RiskSchema.load(path)


def monotone_directions(schema: RiskSchema) -> list[int]:
    """LightGBM monotone constraints for the numeric features (categories are one-hot, unconstrained)."""
    return [int(schema.fields[name].risk_direction or 0) for name in schema.numeric_features]
