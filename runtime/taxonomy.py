"""The hazard taxonomy (`datasets/hazard_types.yaml`): names, GB 6441 category, severity."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from runtime.paths import DATASETS_DIR

TAXONOMY_PATH = DATASETS_DIR / "hazard_types.yaml"
SUSPECTED_MAJOR = "疑似重大"


@dataclass(frozen=True)
class HazardType:
    id: str
    name_zh: str
    name_en: str
    definition: str
    gb6441: str
    osha_focus_four: str | None
    severity: str

    @property
    def is_suspected_major(self) -> bool:
        return self.severity == SUSPECTED_MAJOR

    def describe(self) -> dict[str, str | None]:
        return {
            "type": self.id,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "gb6441": self.gb6441,
            "osha_focus_four": self.osha_focus_four,
            "severity": self.severity,
        }


@lru_cache(maxsize=4)
def load_taxonomy(path: Path = TAXONOMY_PATH) -> dict[str, HazardType]:
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))["types"]
    fields = HazardType.__dataclass_fields__
    return {entry["id"]: HazardType(**{k: v for k, v in entry.items() if k in fields}) for entry in entries}
