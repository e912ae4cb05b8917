"""Policy floors (datasets/labor_risk/policy_floors.yaml): rules that raise a tier whatever the model says."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from runtime.paths import DATASETS_DIR

POLICY_PATH = DATASETS_DIR / "labor_risk" / "policy_floors.yaml"


@dataclass(frozen=True)
class FloorRule:
    id: str
    description: str
    field: str
    op: str
    value: Any
    min_tier: int

    def fires(self, column: np.ndarray) -> np.ndarray:
        if self.op == "eq":
            return column == self.value
        if self.op == "in":
            return np.isin(column, list(self.value))
        if self.op == "ge":
            return column >= self.value
        if self.op == "gt":
            return column > self.value
        raise ValueError(f"policy rule {self.id}: unknown op {self.op!r}; use eq, in, ge or gt")


def load_policy(path: str | Path = POLICY_PATH) -> list[FloorRule]:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return [
        FloorRule(
            id=r["id"],
            description=r["description"],
            field=r["when"]["field"],
            op=r["when"]["op"],
            value=r["when"]["value"],
            min_tier=int(r["min_tier"]),
        )
        for r in raw["rules"]
    ]


def fired_rules(
    policy: list[FloorRule], *, numeric: dict[str, np.ndarray], categorical: dict[str, np.ndarray], rows: int
) -> np.ndarray:
    """(rows, rules) bool; a missing (imputed) field never fires a rule."""
    fired = np.zeros((rows, len(policy)), dtype=bool)
    for index, rule in enumerate(policy):
        if rule.field in categorical:
            column = categorical[rule.field]
            fired[:, index] = rule.fires(column) & (column != "")
        else:
            column = numeric[rule.field]
            fired[:, index] = rule.fires(column) & ~np.isnan(column)
    return fired


def floor_tiers(policy: list[FloorRule], fired: np.ndarray) -> np.ndarray:
    """Per row, the highest floor among the rules that fired (0 when none did)."""
    floors = np.array([rule.min_tier for rule in policy], dtype=np.int64)
    return (fired * floors).max(axis=1, initial=0)
