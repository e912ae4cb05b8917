"""Handlers, deadlines, urgency and escalation of workers' claims from `datasets/claims/policy.yaml`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from runtime.paths import DATASETS_DIR
from serving.orders.policy import EscalationLevel, escalation_level_at, escalation_levels

POLICY_PATH = DATASETS_DIR / "claims" / "policy.yaml"
TYPES = ("wage_arrears", "work_injury", "contract", "social_insurance", "dismissal", "safety", "other")
CHANNELS = ("hotline_12351", "city_platform", "petition_window", "provincial_petition", "walk_in", "informant")


@dataclass(frozen=True)
class Named:
    id: str
    name_zh: str
    name_en: str

    def describe(self) -> dict[str, str]:
        return {"id": self.id, "name_zh": self.name_zh, "name_en": self.name_en}


@dataclass(frozen=True)
class ClaimType(Named):
    due: dt.timedelta
    urgency: int


def _named(raw: dict[str, Any], path: Path, what: str, expected: tuple[str, ...] | None = None) -> dict[str, Any]:
    if expected is not None and sorted(raw) != sorted(expected):
        raise ValueError(f"{path}: {what} must be exactly {list(expected)}, not {sorted(raw)}")
    return {key: Named(key, value["name_zh"], value["name_en"]) for key, value in raw.items()}


@dataclass(frozen=True)
class ClaimsPolicy:
    group_window: dt.timedelta
    mass_workers: int
    reopen_limit: int
    handlers: dict[str, Named]
    types: dict[str, ClaimType]
    channels: dict[str, Named]
    outcomes: dict[str, Named]
    escalation: tuple[EscalationLevel, ...]

    @classmethod
    def load(cls, path: str | Path = POLICY_PATH) -> ClaimsPolicy:
        path = Path(path)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if sorted(raw["types"]) != sorted(TYPES):
            raise ValueError(f"{path}: types must be exactly {list(TYPES)}")
        return cls(
            group_window=dt.timedelta(days=float(raw["group_window_days"])),
            mass_workers=int(raw["mass_workers"]),
            reopen_limit=int(raw["reopen_limit"]),
            handlers={item["id"]: Named(item["id"], item["name_zh"], item["name_en"]) for item in raw["handlers"]},
            types={
                key: ClaimType(
                    key,
                    value["name_zh"],
                    value["name_en"],
                    dt.timedelta(days=float(value["due_days"])),
                    int(value["urgency"]),
                )
                for key, value in raw["types"].items()
            },
            channels=_named(raw["channels"], path, "channels", CHANNELS),
            outcomes=_named(raw["outcomes"], path, "outcomes"),
            escalation=escalation_levels(raw["escalation"], path),
        )

    def urgency(self, claim_type: str, workers: int) -> int:
        """Queue rank of a case: its type's urgency, one more when it is mass (>= mass_workers)."""
        return self.types[claim_type].urgency + (1 if workers >= self.mass_workers else 0)

    def due_time(self, claim_type: str, *, accepted_at: dt.datetime) -> dt.datetime:
        return accepted_at + self.types[claim_type].due

    def level_at(self, *, due_at: dt.datetime, now: dt.datetime) -> int:
        """The escalation level an open case due at `due_at` has reached at `now` (0: not overdue)."""
        return escalation_level_at(self.escalation, due_at=due_at, now=now)


@lru_cache(maxsize=4)
def load_policy(path: Path = POLICY_PATH) -> ClaimsPolicy:
    return ClaimsPolicy.load(path)
