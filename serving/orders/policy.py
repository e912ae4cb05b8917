"""Due times and escalation delays from `datasets/rectification/policy.yaml` (data, not code)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from runtime.paths import DATASETS_DIR
from runtime.taxonomy import SUSPECTED_MAJOR, load_taxonomy

POLICY_PATH = DATASETS_DIR / "rectification" / "policy.yaml"
GENERAL = "一般"


@dataclass(frozen=True)
class EscalationLevel:
    level: int
    id: str
    name_zh: str
    name_en: str
    after_overdue: dt.timedelta

    def describe(self) -> dict[str, object]:
        return {"level": self.level, "id": self.id, "name_zh": self.name_zh, "name_en": self.name_en}


def escalation_levels(raw: list[dict], path: str | Path) -> tuple[EscalationLevel, ...]:
    """The `escalation` list of a policy file (orders' and claims'), checked: levels 1, 2, 3 ... with
    delays that never decrease."""
    levels = tuple(
        EscalationLevel(
            int(item["level"]),
            item["id"],
            item["name_zh"],
            item["name_en"],
            dt.timedelta(hours=float(item["after_overdue_hours"])),
        )
        for item in raw
    )
    if [level.level for level in levels] != list(range(1, len(levels) + 1)):
        raise ValueError(f"{path}: escalation levels must be numbered 1, 2, 3, ... in order")
    if any(later.after_overdue < earlier.after_overdue for earlier, later in zip(levels, levels[1:])):
        raise ValueError(f"{path}: escalation delays must not decrease from one level to the next")
    return levels


def escalation_level_at(levels: tuple[EscalationLevel, ...], *, due_at: dt.datetime, now: dt.datetime) -> int:
    """The highest level whose delay past `due_at` has run out at `now` (0: not overdue)."""
    if now <= due_at:
        return 0
    return max((level.level for level in levels if now - due_at >= level.after_overdue), default=0)


@dataclass(frozen=True)
class RectificationPolicy:
    due_by_severity: dict[str, dt.timedelta]
    supervision_min_tier: int
    supervision_due: dt.timedelta
    escalation: tuple[EscalationLevel, ...]

    @classmethod
    def load(cls, path: str | Path = POLICY_PATH) -> RectificationPolicy:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        severities = {hazard.severity for hazard in load_taxonomy().values()}
        missing = sorted(severities - set(raw["due_hours_by_severity"]))
        if missing:
            raise ValueError(f"{path}: due_hours_by_severity lacks the severities {missing}")
        levels = escalation_levels(raw["escalation"], path)
        return cls(
            due_by_severity={
                name: dt.timedelta(hours=float(hours)) for name, hours in raw["due_hours_by_severity"].items()
            },
            supervision_min_tier=int(raw["supervision_min_tier"]),
            supervision_due=dt.timedelta(hours=float(raw["supervision_due_hours"])),
            escalation=levels,
        )

    def severity_of(self, hazards: list[str]) -> str:
        """The most severe severity among the hazard types (suspected major wins)."""
        taxonomy = load_taxonomy()
        return SUSPECTED_MAJOR if any(taxonomy[h].is_suspected_major for h in hazards if h in taxonomy) else GENERAL

    def due_time(self, severity: str, *, created_at: dt.datetime) -> dt.datetime:
        return created_at + self.due_by_severity[severity]

    def level_at(self, *, due_at: dt.datetime, now: dt.datetime) -> int:
        """The escalation level an unrectified order due at `due_at` has reached at `now` (0: not overdue)."""
        return escalation_level_at(self.escalation, due_at=due_at, now=now)


@lru_cache(maxsize=4)
def load_policy(path: Path = POLICY_PATH) -> RectificationPolicy:
    return RectificationPolicy.load(path)
