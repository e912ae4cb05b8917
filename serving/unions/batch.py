"""`ankang batch unions`: grade a province's unions on Ray Data from their enterprises' latest tiers.

The unions come from an import file (CSV or Parquet, the columns of `ankang import unions`, with
`enterprise_ids`); the latest tiers from Parquet (the `enterprise_id` and `tier` columns of
`ankang batch enterprises`' output folder) or, without --tiers, from the service's database. Each
actor loads the tiers once as a hash index, so a batch of unions is one vectorised lookup of its
enterprises, their aggregates and `Grading.grade`: the same grading as `POST /v1/unions/grade`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from runtime.errors import InputError
from serving.unions.grading import HIGH_TIER, load_grading
from serving.unions.schema import FOCUS_GROUPS

GRADE_SCHEMA = pa.schema(
    [
        ("union_id", pa.string()),
        ("grade", pa.int64()),
        ("layer", pa.string()),
        ("points", pa.float64()),
        ("factors", pa.string()),  # JSON: [{factor, value, points}], strongest first
        ("enterprises", pa.int64()),
        ("scored", pa.int64()),
    ]
)
UNION_COLUMNS = ["union_id", "union_type", "members", *(f"{g}_members" for g in FOCUS_GROUPS), "enterprise_ids"]


@dataclass(frozen=True)
class UnionJobSummary:
    unions: int
    enterprises: int
    parts: int
    output: str
    grades: dict[str, int]
    run: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class TierIndex:
    """Enterprise id -> latest tier, as a pandas hash index (one lookup per batch, not per enterprise)."""

    def __init__(self, ids: np.ndarray, tiers: np.ndarray):
        self.index = pd.Index(ids.astype(object))
        if not self.index.is_unique:  # several scores of one enterprise: the file's last one is its latest
            keep = ~pd.Index(ids[::-1]).duplicated()[::-1]
            self.index, tiers = pd.Index(ids[keep].astype(object)), tiers[keep]
        self.tiers = np.append(tiers.astype(float), np.nan)  # position -1 (unknown id) reads NaN

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        return self.tiers[self.index.get_indexer(ids)]


def union_aggregates(batch: pd.DataFrame, tiers: TierIndex) -> pd.DataFrame:
    """The grading input of a batch of union rows: their enterprises' count, scored count, highest tier
    and count at tier >= 4."""
    ids = batch["enterprise_ids"].fillna("").astype(str)
    exploded = ids.str.split(";").explode()
    exploded = exploded[exploded.str.len() > 0]
    owner = batch["union_id"].to_numpy()[exploded.index.to_numpy()]
    found = tiers.lookup(exploded.to_numpy(object))
    frame = pd.DataFrame({"union_id": owner, "tier": found})
    grouped = frame.groupby("union_id", sort=False)["tier"]
    per_union = pd.DataFrame(
        {
            "enterprises": grouped.size(),
            "scored": grouped.count(),
            "highest_tier": grouped.max(),
            "high_tier": (frame["tier"] >= HIGH_TIER).groupby(frame["union_id"], sort=False).sum(),
        }
    )
    out = batch.drop(columns=["enterprise_ids"]).join(per_union, on="union_id")
    out[["enterprises", "scored", "high_tier"]] = out[["enterprises", "scored", "high_tier"]].fillna(0)
    for name in ("members", *(f"{g}_members" for g in FOCUS_GROUPS)):
        out[name] = pd.to_numeric(out[name], errors="coerce").fillna(0)
    return out


class UnionGrader:
    """A Ray actor: the tiers loaded once, then grades batches of union rows."""

    def __init__(self, tiers_path: str):
        import pyarrow.parquet as pq

        table = pq.read_table(tiers_path, columns=["enterprise_id", "tier"])
        self.tiers = TierIndex(
            table.column("enterprise_id").to_numpy(zero_copy_only=False), table.column("tier").to_numpy()
        )
        self.grading = load_grading()

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        if batch.empty:
            return GRADE_SCHEMA.empty_table()
        frame = union_aggregates(batch.reset_index(drop=True), self.tiers)
        graded = self.grading.grade(frame)
        graded["factors"] = [json.dumps(items, ensure_ascii=False) for items in graded["factors"]]
        graded["enterprises"] = frame["enterprises"].astype(int).to_numpy()
        graded["scored"] = frame["scored"].astype(int).to_numpy()
        return pa.Table.from_pandas(graded, schema=GRADE_SCHEMA, preserve_index=False)


def tiers_from_database(engine, folder: Path) -> str:
    """The database's latest tiers as one Parquet file for the actors (read in chunks: bounded memory)."""
    import pyarrow.parquet as pq

    from serving.enterprises.schema import latest

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "latest_tiers.parquet"
    schema = pa.schema([("enterprise_id", pa.string()), ("tier", pa.int64())])
    with engine.connect() as connection, pq.ParquetWriter(path, schema) as writer:
        result = connection.execution_options(stream_results=True, yield_per=100_000).execute(
            latest.select().with_only_columns(latest.c.enterprise_id, latest.c.tier)
        )
        for rows in result.partitions():
            ids, tiers = zip(*rows)
            writer.write_table(pa.table({"enterprise_id": list(ids), "tier": list(tiers)}, schema=schema))
    return str(path)


def grade_unions(
    unions_path: str, tiers_path: str, output: str, *, options, union_store=None, actor: str = "ankang batch unions"
) -> UnionJobSummary:
    """Grade every union of `unions_path` into Parquet parts under `output`; with `union_store`, the grades
    are also written there as one recorded run (source "batch")."""
    from serving.batch.jobs import _leave_a_cpu_for_reading, _write_all, connect_ray
    from serving.batch.output import PartWriter

    lower = unions_path.lower()
    if not lower.endswith((".parquet", ".pq", ".csv")):
        raise InputError("file", f"{unions_path!r}: give a .csv or .parquet file with one union per row")
    ray = connect_ray(options)
    _leave_a_cpu_for_reading(ray, options.workers)
    if lower.endswith(".csv"):
        import pyarrow.csv as pacsv

        convert = pacsv.ConvertOptions(column_types={"union_id": pa.string(), "enterprise_ids": pa.string()})
        dataset = ray.data.read_csv(unions_path, convert_options=convert)
    else:
        dataset = ray.data.read_parquet(unions_path, columns=UNION_COLUMNS)
    dataset = dataset.select_columns(UNION_COLUMNS).repartition(target_num_rows_per_block=options.batch_size)
    graded = dataset.map_batches(
        UnionGrader,
        fn_constructor_kwargs={"tiers_path": tiers_path},
        batch_size=options.batch_size,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=options.workers),
        num_cpus=1,
    )
    writer = PartWriter(output)
    collected: list[pa.Table] = []

    def keep(table: pa.Table) -> None:
        collected.append(table.select(["union_id", "grade", "layer", "points", "factors", "enterprises"]))

    count = _write_all(graded, writer, total=None, label="unions", options=options, on_part=keep)
    everything = pa.concat_tables(collected) if collected else GRADE_SCHEMA.empty_table()
    grades = pd.Series(everything.column("grade").to_numpy()).value_counts()
    run = None
    if union_store is not None and count:
        frame = everything.to_pandas()
        frame["factors"] = frame["factors"].map(json.loads)
        run = union_store.apply_grades(frame, actor=actor, source="batch")
    return UnionJobSummary(
        unions=count,
        enterprises=int(pc.sum(everything.column("enterprises")).as_py() or 0),
        parts=len(writer.parts()),
        output=output,
        grades={str(g): int(grades.get(g, 0)) for g in range(1, 6)},
        run=run,
    )
