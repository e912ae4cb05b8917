"""The enterprise profile schema (datasets/labor_risk/schema.yaml): field types, ranges, categories, tiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from runtime.paths import DATASETS_DIR

SCHEMA_PATH = DATASETS_DIR / "labor_risk" / "schema.yaml"
NUMERIC_TYPES = ("integer", "number", "boolean")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    description: str = ""
    categories: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    exclusive_min: float | None = None
    risk_direction: int | None = None
    required: bool = False
    feature: bool = True


@dataclass(frozen=True)
class RiskSchema:
    """The enterprise profile: field types, ranges and categories, and the tiers a model grades into."""

    id_field: str
    fields: dict[str, FieldSpec]
    tiers: tuple[int, ...]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RiskSchema:
        specs = {
            name: FieldSpec(name=name, **{k: tuple(v) if k == "categories" else v for k, v in spec.items()})
            for name, spec in raw["fields"].items()
        }
        return cls(id_field=raw["id_field"], fields=specs, tiers=tuple(raw["tiers"]), raw=raw)

    @classmethod
    def load(cls, path: str | Path) -> RiskSchema:
        return cls.from_dict(yaml.safe_load(Path(path).read_text(encoding="utf-8")))

    @property
    def target(self) -> str:
        """The labelled tier column of a training file."""
        return self.raw.get("target", "tier")

    @property
    def n_tiers(self) -> int:
        return len(self.tiers)

    @property
    def features(self) -> list[str]:
        return [name for name, spec in self.fields.items() if spec.feature]

    @property
    def numeric_features(self) -> list[str]:
        return [name for name in self.features if self.fields[name].type in NUMERIC_TYPES]

    @property
    def categorical_features(self) -> list[str]:
        return [name for name in self.features if self.fields[name].type == "category"]

    @property
    def categories(self) -> dict[str, list[str]]:
        return {name: list(self.fields[name].categories) for name in self.categorical_features}


@lru_cache(maxsize=4)
def load_schema(path: Path = SCHEMA_PATH) -> RiskSchema:
    """The dataset's schema, parsed once per process."""
    return RiskSchema.load(path)
