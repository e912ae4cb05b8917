"""The two batch jobs on Ray Data: list or read the inputs, skip those already in the output,
score them in an actor pool, and write the results part by part with a progress bar."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from runtime.errors import InputError
from runtime.modeldir import ModelDir
from runtime.paths import PROJECT_ROOT
from runtime.risk.schema import RiskSchema
from serving.batch.output import PartWriter
from serving.batch.scorers import EnterpriseScorer, PhotoScorer, RowError
from serving.batch.sources import photo_uris
from serving.enterprises.records import ScoreRecords


@dataclass(frozen=True)
class BatchOptions:
    """How a job runs: actors (one model session and `threads` onnxruntime threads each), rows per
    model call, rows per output part, the Ray cluster (None: start a local one, or use the one
    this process already joined)."""

    workers: int = 1
    batch_size: int = 32
    part_rows: int = 1024
    threads: int = 1
    ray_address: str | None = None
    progress: bool = True


@dataclass(frozen=True)
class JobSummary:
    scored: int
    skipped: int
    parts: int
    output: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def connect_ray(options: BatchOptions):
    """Ray, joined or started once: a local Ray gets this checkout on its workers' path."""
    import ray

    if not ray.is_initialized():
        if options.ray_address:
            ray.init(address=options.ray_address)
        else:  # one logical CPU beyond the actors, so the read tasks never wait behind them
            ray.init(
                num_cpus=options.workers + 1,
                include_dashboard=False,
                runtime_env={"env_vars": {"PYTHONPATH": str(PROJECT_ROOT)}},
            )
    context = ray.data.DataContext.get_current()  # datasets copy it when created: set it before
    context.enable_progress_bars = False  # ours counts rows written, theirs operators
    context.raise_original_map_exception = True  # an actor's RowError, not "UDF failed to process a data block"
    return ray


def score_photos(source: str, output: str, *, model_dir: Path, options: BatchOptions = BatchOptions()) -> JobSummary:
    """Score every photo of `source` not yet in `output` (a folder of Parquet parts)."""
    ModelDir.load(model_dir)  # a bad model fails here, not in every actor
    writer = PartWriter(output)
    uris = photo_uris(source)
    done = writer.done_keys("image") if writer.parts() else set()
    pending = [uri for uri in uris if uri not in done]
    if pending:
        ray = connect_ray(options)
        dataset = ray.data.from_items([{"image": uri} for uri in pending])
        scorer_args = {"model_dir": str(model_dir), "threads": options.threads}
        scored = dataset.map_batches(
            PhotoScorer,
            fn_constructor_kwargs=scorer_args,
            batch_size=options.batch_size,
            batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=options.workers),
            num_cpus=1,
        )
        _write_all(scored, writer, total=len(pending), label="photos", options=options)
    return JobSummary(scored=len(pending), skipped=len(uris) - len(pending), parts=len(writer.parts()), output=output)


def score_enterprises(
    path: str,
    output: str,
    *,
    model_dir: Path,
    options: BatchOptions = BatchOptions(),
    records: ScoreRecords | None = None,
) -> JobSummary:
    """Score every enterprise of a CSV or Parquet file whose id is not yet in `output`; with `records`,
    each part written is also kept as the enterprises' scores (source "batch")."""
    model = ModelDir.load(model_dir)
    schema = RiskSchema.from_dict(model.card["schema"])
    writer = PartWriter(output)
    done = writer.done_keys(schema.id_field) if writer.parts() else set()
    ray = connect_ray(options)
    _leave_a_cpu_for_reading(ray, options.workers)
    # One file is one block, which Ray would hand to a single actor: stream it into batch-sized blocks.
    dataset = _read_enterprises(ray, path, schema).repartition(target_num_rows_per_block=options.batch_size)
    scorer_args = {"model_dir": str(model_dir), "done": frozenset(done), "threads": options.threads}
    scored = dataset.map_batches(
        EnterpriseScorer,
        fn_constructor_kwargs=scorer_args,
        batch_size=options.batch_size,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=options.workers),
        num_cpus=1,
    )
    total = _parquet_rows(path)
    keep = None if records is None else _part_keeper(records, model_name=model.name)
    count = _write_all(
        scored,
        writer,
        total=None if total is None else total - len(done),
        label="enterprises",
        options=options,
        on_part=keep,
    )
    return JobSummary(scored=count, skipped=len(done), parts=len(writer.parts()), output=output)


def _leave_a_cpu_for_reading(ray, workers: int) -> None:
    """Actors hold their CPU for the whole job: with every CPU taken the read tasks would wait forever."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if workers >= cpus:
        raise InputError(
            "--workers",
            f"the Ray cluster has {cpus} CPUs and the file's read tasks need one beside "
            f"the actors; use at most {max(cpus - 1, 1)} workers or a larger cluster",
        )


def _read_enterprises(ray, path: str, schema: RiskSchema):
    """CSV cells as text, like the API's score-file (an empty cell is "", not null); Parquet as typed."""
    if path.lower().endswith((".parquet", ".pq")):
        return ray.data.read_parquet(path)
    if not path.lower().endswith(".csv"):
        raise InputError("file", f"{path!r}: give a .csv or .parquet file with one enterprise per row")
    import pyarrow.csv as pacsv

    names = [*schema.fields, schema.raw.get("target", "tier")]
    convert = pacsv.ConvertOptions(column_types={name: pa.string() for name in names}, strings_can_be_null=False)
    return ray.data.read_csv(path, convert_options=convert)


def _parquet_rows(path: str) -> int | None:
    if not path.lower().endswith((".parquet", ".pq")):
        return None
    with fsspec.open(path, "rb") as handle:
        return pq.ParquetFile(handle).metadata.num_rows


def _part_keeper(records: ScoreRecords, *, model_name: str):
    """Keeps a written part's scores: after the part is on disk, so a kept score always has its output row."""

    def keep(table: pa.Table) -> None:
        frame = table.to_pandas()
        records.record_table(
            frame.rename(columns={frame.columns[0]: "enterprise_id"}),
            fingerprints=frame["profile_fingerprint"].to_numpy(),
            model={"name": model_name, "version": str(frame["model_version"].iloc[0])},
            source="batch",
        )

    return keep


def _write_all(
    scored, writer: PartWriter, *, total: int | None, label: str, options: BatchOptions, on_part=None
) -> int:
    """Pull the results in parts of `part_rows` and write each atomically; returns the rows written."""
    written = 0
    columns = (TextColumn(f"scoring {label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not options.progress) as progress:
        task = progress.add_task(label, total=total)
        try:
            for table in scored.iter_batches(batch_size=options.part_rows, batch_format="pyarrow"):
                if table.num_rows:
                    writer.write(table)
                    if on_part is not None:
                        on_part(table)
                    written += table.num_rows
                    progress.advance(task, table.num_rows)
        except Exception as error:
            row_error = _row_error(error)
            if row_error is None:
                raise
            raise InputError(*row_error.args) from None
    return written


def _row_error(error: BaseException | None) -> RowError | None:
    """The RowError an actor raised, from inside Ray's wrapping exceptions (whose own args are a traceback)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if type(error) is RowError:
            return error
        seen.add(id(error))
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__
    return None
