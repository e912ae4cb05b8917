"""Union grades (工会分类分层分级) from datasets/unions/grading.yaml: every union's points per factor,
its grade (1-5) and its management layer, vectorised over all unions at once.

The input is one row per union with its type, its members in the three focus groups and the
aggregates of its enterprises' latest tiers (`UNION_AGGREGATES`); the store computes them in SQL,
`ankang batch unions` on Ray. Each grade comes with its factors, as an enterprise's tier comes with
its reasons: `[{"factor", "value", "points"}]`, strongest first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from runtime.paths import DATASETS_DIR
from runtime.risk.schema import load_schema
from serving.unions.schema import FOCUS_GROUPS

GRADING_PATH = DATASETS_DIR / "unions" / "grading.yaml"
GRADES = (1, 2, 3, 4, 5)
HIGH_TIER = 4
# What grading reads per union, beside union_type and the member counts.
UNION_AGGREGATES = ("enterprises", "scored", "highest_tier", "high_tier")


def union_types() -> tuple[str, ...]:
    """The schema's union_type categories that are unions ("none" means an enterprise has none)."""
    return tuple(name for name in load_schema().fields["union_type"].categories if name != "none")


@dataclass(frozen=True)
class Bands:
    """Ascending thresholds: a value scores the points of the last threshold it reaches, else 0."""

    mins: np.ndarray
    points: np.ndarray

    @classmethod
    def parse(cls, raw: Any, where: str) -> Bands:
        bands = raw.get("bands") if isinstance(raw, dict) else None
        if not isinstance(bands, list) or not bands:
            raise ValueError(f"{where}: give `bands`, a list of {{min, points}}")
        try:
            mins = np.array([float(band["min"]) for band in bands])
            points = np.array([float(band["points"]) for band in bands])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: every band needs a numeric `min` and `points`") from None
        if np.any(np.diff(mins) <= 0):
            raise ValueError(f"{where}: band mins must increase, got {mins.tolist()}")
        return cls(mins, points)

    def score(self, values: np.ndarray) -> np.ndarray:
        index = np.searchsorted(self.mins, values, side="right") - 1
        return np.where(index >= 0, self.points[np.clip(index, 0, None)], 0.0)


@dataclass(frozen=True)
class Layer:
    name: str
    grades: tuple[int, ...]
    zh: str
    en: str


@dataclass(frozen=True)
class Grading:
    type_points: dict[str, float]
    highest_tier_points: dict[int, float]
    high_tier_share: Bands
    enterprise_count: Bands
    focus_group_share: dict[str, Bands]
    grade_mins: dict[int, float]
    layers: tuple[Layer, ...]
    sha256: str

    @classmethod
    def parse(cls, raw: dict[str, Any], *, sha256: str = "", where: str = "grading.yaml") -> Grading:
        types = union_types()
        type_points = _number_map(raw.get("union_type"), f"{where}: union_type")
        missing = sorted(set(types) - set(type_points))
        unknown = sorted(set(type_points) - set(types))
        if missing or unknown:
            raise ValueError(
                f"{where}: union_type must give points to exactly the schema's types {list(types)}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {unknown}" if unknown else "")
            )
        highest = {int(k): v for k, v in _number_map(raw.get("highest_tier"), f"{where}: highest_tier").items()}
        if sorted(highest) != list(GRADES):
            raise ValueError(f"{where}: highest_tier must give points to tiers 1-5, got {sorted(highest)}")
        focus = raw.get("focus_group_share") or {}
        if sorted(focus) != sorted(FOCUS_GROUPS):
            raise ValueError(f"{where}: focus_group_share must list {list(FOCUS_GROUPS)}, got {sorted(focus)}")
        grade_mins = {int(k): v for k, v in _number_map(raw.get("grades"), f"{where}: grades").items()}
        if sorted(grade_mins) != list(GRADES) or grade_mins[1] != 0:
            raise ValueError(f"{where}: grades must give min points for grades 1-5, grade 1 at 0")
        if any(grade_mins[g] >= grade_mins[g + 1] for g in GRADES[:-1]):
            raise ValueError(f"{where}: grade min points must increase from grade 1 to 5, got {grade_mins}")
        return cls(
            type_points=type_points,
            highest_tier_points=highest,
            high_tier_share=Bands.parse(raw.get("high_tier_share"), f"{where}: high_tier_share"),
            enterprise_count=Bands.parse(raw.get("enterprise_count"), f"{where}: enterprise_count"),
            focus_group_share={g: Bands.parse(focus[g], f"{where}: focus_group_share.{g}") for g in FOCUS_GROUPS},
            grade_mins=grade_mins,
            layers=_layers(raw.get("layers"), where),
            sha256=sha256,
        )

    @classmethod
    def load(cls, path: str | Path = GRADING_PATH) -> Grading:
        data = Path(path).read_bytes()
        return cls.parse(yaml.safe_load(data) or {}, sha256=hashlib.sha256(data).hexdigest(), where=str(path))

    def layer_of(self, grade: int) -> Layer:
        return next(layer for layer in self.layers if grade in layer.grades)

    def grade(self, unions: pd.DataFrame) -> pd.DataFrame:
        """union_id, grade, layer, points and factors of every union row (columns: union_id, union_type,
        members, <group>_members, and UNION_AGGREGATES; highest_tier is NaN where nothing is scored)."""
        factor_points, factor_values = self._factors(unions)
        points = sum(factor_points.values())
        mins = np.array([self.grade_mins[g] for g in GRADES])
        grades = np.searchsorted(mins, points, side="right")  # grade 1's min is 0: never below 1
        layer_by_grade = {g: self.layer_of(g).name for g in GRADES}
        return pd.DataFrame(
            {
                "union_id": unions["union_id"].to_numpy(),
                "grade": grades.astype(int),
                "layer": [layer_by_grade[g] for g in grades.tolist()],
                "points": points,
                "factors": _factor_lists(factor_points, factor_values),
            }
        )

    def _factors(self, unions: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        enterprises = unions["enterprises"].to_numpy(float)
        scored = unions["scored"].to_numpy(float)
        highest = unions["highest_tier"].to_numpy(float)
        share = np.divide(unions["high_tier"].to_numpy(float), scored, out=np.zeros(len(unions)), where=scored > 0)
        members = unions["members"].to_numpy(float)
        highest_points = np.array([self.highest_tier_points.get(t, 0.0) for t in range(6)])
        points = {
            "union_type": unions["union_type"].map(self.type_points).fillna(0.0).to_numpy(float),
            "highest_tier": highest_points[np.nan_to_num(highest, nan=0).astype(int)],
            "high_tier_share": self.high_tier_share.score(share),
            "enterprise_count": self.enterprise_count.score(enterprises),
        }
        values = {
            "union_type": unions["union_type"].to_numpy(object),
            "highest_tier": np.where(np.isnan(highest), None, highest).astype(object),
            "high_tier_share": np.round(share, 4),
            "enterprise_count": enterprises.astype(int),
        }
        for group in FOCUS_GROUPS:
            group_share = np.divide(
                unions[f"{group}_members"].to_numpy(float), members, out=np.zeros(len(unions)), where=members > 0
            )
            points[f"{group}_share"] = self.focus_group_share[group].score(group_share)
            values[f"{group}_share"] = np.round(group_share, 4)
        return points, values


def _factor_lists(points: dict[str, np.ndarray], values: dict[str, np.ndarray]) -> list[list[dict[str, Any]]]:
    """Per union, its factors strongest first (ties in the file's order); zero-point factors too, so a
    grade always shows what was looked at."""
    names = list(points)
    matrix = np.column_stack([points[name] for name in names])
    order = np.argsort(-matrix, axis=1, kind="stable")
    value_columns = [values[name].tolist() for name in names]
    point_rows = matrix.tolist()
    return [
        [
            {"factor": names[i], "value": _plain(value_columns[i][row]), "points": point_rows[row][i]}
            for i in order[row].tolist()
        ]
        for row in range(len(matrix))
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 10:
        return int(value)  # a tier
    return value


def _number_map(raw: Any, where: str) -> dict[str, float]:
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{where}: give a mapping of names to points")
    try:
        return {str(key): float(value) for key, value in raw.items()}
    except (TypeError, ValueError):
        raise ValueError(f"{where}: every value must be a number of points") from None


def _layers(raw: Any, where: str) -> tuple[Layer, ...]:
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{where}: layers must map layer names to their grades")
    layers = tuple(
        Layer(
            name=str(name),
            grades=tuple(int(grade) for grade in spec.get("grades", [])),
            zh=spec.get("zh", name),
            en=spec.get("en", name),
        )
        for name, spec in raw.items()
    )
    listed = sorted(g for layer in layers for g in layer.grades)
    if listed != list(GRADES):
        raise ValueError(f"{where}: layers must list each grade 1-5 exactly once, got {listed}")
    return layers


@lru_cache(maxsize=2)
def load_grading(path: Path = GRADING_PATH) -> Grading:
    return Grading.load(path)
