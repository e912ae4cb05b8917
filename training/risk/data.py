"""Labelled risk data: a user's CSV/Parquet (with an optional oracle sidecar) or a generated population."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runtime.risk.schema import RiskSchema
from training.risk.config import GeneratorConfig, recorded_path
from training.risk.generator import generate_with_oracle


@dataclass
class LabeledData:
    frame: pd.DataFrame  # schema columns (features may be missing) + tier
    oracle: np.ndarray | None  # Bayes-optimal P(tier) when the data is generated
    source: dict[str, Any]
    text_cells: bool = False  # CSV cells are text: "true", "12", "" (missing)


def oracle_path(path: Path) -> Path:
    """Sidecar with the generator's Bayes-optimal probabilities: `<file stem>.oracle.parquet`."""
    return path.with_name(path.name.split(".")[0] + ".oracle.parquet")


def read_frame(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; pass a CSV or Parquet file")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def load_labeled(path: str | Path, schema: RiskSchema) -> LabeledData:
    """A user's CSV/Parquet: the schema's columns plus an integer tier column (+ optional oracle sidecar)."""
    path = Path(path)
    frame = read_frame(path)
    target, tier_range = schema.target, f"an integer {schema.tiers[0]}-{schema.tiers[-1]}"
    if target not in frame.columns:
        raise ValueError(f"{path} has no `{target}` column; add the historical tier ({tier_range}) per enterprise")
    tiers = pd.to_numeric(frame[target], errors="coerce")
    bad = ~tiers.isin(schema.tiers)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{path}: `{target}` must be {tier_range} in every row; data row {row + 1} (from 1, "
            f"below the header) has "
            f"{frame[target].iloc[row]!r} ({int(bad.sum())} bad rows)"
        )
    frame = frame.assign(**{target: tiers.astype("int64")})
    oracle = None
    if oracle_path(path).is_file():
        sidecar = pd.read_parquet(oracle_path(path)).set_index("enterprise_id")
        oracle = sidecar.loc[frame["enterprise_id"].astype(str), [f"p_tier_{t}" for t in schema.tiers]].to_numpy()
    source = {"kind": "file", "path": recorded_path(path), "rows": len(frame), "oracle": oracle is not None}
    return LabeledData(frame=frame, oracle=oracle, source=source, text_cells=True)


def generated_data(generator: GeneratorConfig) -> LabeledData:
    frame, oracle = generate_with_oracle(generator)
    return LabeledData(frame=frame, oracle=oracle, source={"kind": "generated", **generator.__dict__})


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the data's content (order-sensitive), independent of file format."""
    hashed = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def split_holdout(data: LabeledData, *, fraction: float, seed: int) -> tuple[LabeledData, LabeledData]:
    order = np.random.default_rng(seed).permutation(len(data.frame))
    cut = int(len(order) * (1 - fraction))

    def pick(rows: np.ndarray) -> LabeledData:
        return LabeledData(
            frame=data.frame.iloc[rows].reset_index(drop=True),
            oracle=None if data.oracle is None else data.oracle[rows],
            source=data.source,
            text_cells=data.text_cells,
        )

    return pick(order[:cut]), pick(order[cut:])
