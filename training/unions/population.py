"""A seeded province of unions covering enterprises drawn from the risk generator (training/risk/generator.py).

Each enterprise is covered by one union of its own `union_type` (an enterprise without a union,
`none`, by a joint or community union, which is how small employers are organised). The unions of a
type share its enterprises in random sizes. A union's members and focus-group members come from its
enterprises: members are the covered headcount times a membership rate; industrial workers are the
members in manufacturing, construction, mining and hazardous chemicals; new-employment-form workers
the platform share; migrant workers the migrant share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.risk.config import GeneratorConfig
from training.risk.generator import generate

DISTRICTS = ("福田", "罗湖", "南山", "盐田", "宝安", "龙岗", "龙华", "坪山", "光明", "大鹏")
INDUSTRIAL = ("manufacturing", "construction", "mining", "hazardous_chemicals")
TYPE_NAMES = {
    "enterprise": "企业工会",
    "group": "集团工会",
    "community": "社区工会联合会",
    "industrial_park": "园区工会",
    "industry": "行业工会",
    "building": "楼宇工会",
    "market": "市场工会",
    "platform": "平台工会",
    "joint": "联合工会",
    "other": "工会",
}


@dataclass(frozen=True)
class Province:
    enterprises: pd.DataFrame  # the generator's profiles and tier
    unions: pd.DataFrame  # one row per union, the import file's columns (enterprise_ids ';'-joined)
    coverage: pd.DataFrame  # union_id, enterprise_id


def generate_province(*, unions: int, enterprises: int, seed: int = 20261206) -> Province:
    profiles = generate(GeneratorConfig(rows=enterprises, seed=seed))
    rng = np.random.default_rng(seed)
    kind = profiles["union_type"].to_numpy(object).copy()
    none = kind == "none"
    kind[none] = np.where(rng.random(int(none.sum())) < 0.5, "joint", "community")
    coverage = _split_by_type(rng, kind, unions)
    coverage["enterprise_id"] = profiles["enterprise_id"].to_numpy()[coverage.pop("row").to_numpy()]
    table = _union_rows(rng, coverage, profiles)
    return Province(enterprises=profiles, unions=table, coverage=coverage[["union_id", "enterprise_id"]])


def _split_by_type(rng: np.random.Generator, kind: np.ndarray, unions: int) -> pd.DataFrame:
    """Enterprise rows to union numbers: each type gets unions in proportion to its enterprises."""
    types, counts = np.unique(kind, return_counts=True)
    shares = counts / counts.sum() * unions
    per_type = np.maximum(np.floor(shares).astype(int), 1)
    for index in np.argsort(-(shares - np.floor(shares))):  # largest remainders get the rest
        if per_type.sum() >= unions:
            break
        per_type[index] += 1
    while per_type.sum() > unions:  # more types than unions: drop from the largest
        per_type[np.argmax(per_type)] -= 1
    parts, first = [], 0
    for name, k in zip(types, per_type):
        if k == 0:
            continue
        rows = rng.permutation(np.flatnonzero(kind == name))
        cuts = np.sort(rng.choice(np.arange(1, len(rows)), size=min(k - 1, len(rows) - 1), replace=False))
        union_numbers = first + np.searchsorted(cuts, np.arange(len(rows)), side="right")
        parts.append(pd.DataFrame({"row": rows, "number": union_numbers, "union_type": name}))
        first += k
    frame = pd.concat(parts, ignore_index=True)
    frame["union_id"] = np.char.mod("U%06d", frame.pop("number").to_numpy())
    return frame


def _union_rows(rng: np.random.Generator, coverage: pd.DataFrame, profiles: pd.DataFrame) -> pd.DataFrame:
    by_id = profiles.set_index("enterprise_id")
    wanted = ["headcount", "industry", "share_platform_workers", "share_migrant_workers"]
    joined = coverage.join(by_id[wanted], on="enterprise_id")
    rate = 0.85
    headcount = joined["headcount"].fillna(1).to_numpy(float)
    joined["members"] = headcount * rate
    joined["industrial_members"] = np.where(joined["industry"].isin(INDUSTRIAL), headcount * rate, 0.0)
    joined["new_employment_members"] = joined["share_platform_workers"].fillna(0).to_numpy(float) * headcount * rate
    joined["migrant_members"] = joined["share_migrant_workers"].fillna(0).to_numpy(float) * headcount * rate
    grouped = joined.groupby("union_id", sort=True)
    table = grouped[["members", "industrial_members", "new_employment_members", "migrant_members"]].sum().round()
    table = table.astype(int).clip(lower=0)
    table["members"] = table["members"].clip(lower=1)
    table["union_type"] = grouped["union_type"].first()
    table["enterprise_ids"] = grouped["enterprise_id"].agg(";".join)
    table = table.reset_index()
    table["district"] = rng.choice(DISTRICTS, size=len(table))
    numbered = zip(table["district"], range(1, len(table) + 1), table["union_type"])
    table["name"] = [f"{district}区第{number}{TYPE_NAMES[kind]}" for district, number, kind in numbered]
    table["parent_id"] = ""
    columns = [
        "union_id",
        "name",
        "union_type",
        "district",
        "parent_id",
        "members",
        "industrial_members",
        "new_employment_members",
        "migrant_members",
        "enterprise_ids",
    ]
    return table[columns]
