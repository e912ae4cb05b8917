"""`ankang import unions FILE` and `ankang batch unions FILE --out DIR` (service commands)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtime.errors import InputError
from serving.settings import ServingSettings

IMPORT_DESCRIPTION = """\
Import unions from a CSV or Parquet file into the service's database, one union per row:
union_id, name, union_type (the union_type categories of datasets/labor_risk/schema.yaml, not
none), district, parent_id (optional), members, industrial_members, new_employment_members,
migrant_members (optional, at most members), enterprise_ids (the enterprises it covers,
';'-separated). Every row is checked first: a file with errors imports nothing and lists every
error with its row (counting from 1, the header not counted). A union already there is updated and
its enterprises replaced. Grade them with POST /v1/unions/grade or `ankang batch unions`."""

BATCH_DESCRIPTION = """\
Grade a province's unions on Ray (datasets/unions/grading.yaml) from their enterprises' latest
tiers. FILE is an import file of unions (as for `ankang import unions`); --tiers a Parquet file or
folder with enterprise_id and tier columns (the output of `ankang batch enterprises`), or, without
it, the latest tiers kept in the service's database. The output is a folder of Parquet parts, one
row per union: union_id, grade, layer, points, factors (JSON), enterprises, scored. With --record
the grades are also written to the service's database as one grading run (the unions must have
been imported)."""


def register(verb) -> None:
    importer = verb("import").add_parser(
        "unions",
        help="import unions and the enterprises they cover from CSV/Parquet",
        description=IMPORT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    importer.add_argument("file", type=Path, metavar="FILE", help="CSV or Parquet file, one union per row")
    importer.set_defaults(func=run_import)

    batch = verb("batch").add_parser(
        "unions",
        help="grade a province's unions on Ray",
        description=BATCH_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("file", metavar="FILE", help="CSV or Parquet file of unions")
    batch.add_argument("--tiers", default=None, help="Parquet file or folder with enterprise_id and tier")
    batch.add_argument("--out", required=True, help="output folder of Parquet parts")
    batch.add_argument("--record", action="store_true", help="write the grades to the service's database as a run")
    batch.add_argument("--workers", type=int, default=1, help="actors (default 1)")
    batch.add_argument("--batch-size", type=int, default=5_000, help="unions per batch (default 5000)")
    batch.add_argument("--part-rows", type=int, default=50_000, help="unions per output part (default 50000)")
    batch.add_argument("--ray-address", default=None, help="Ray cluster to join (default: start a local Ray)")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    batch.set_defaults(func=run_batch)


def _service_engine(settings: ServingSettings):
    from serving.db import create_engine, migrate

    engine = create_engine(settings.resolved_database_url)
    migrate(engine)
    return engine


def run_import(args: argparse.Namespace) -> int:
    from runtime.risk.tables import read_table
    from serving.unions.rows import check_union_table
    from serving.unions.store import UnionStore

    try:
        data = args.file.read_bytes()
    except OSError as error:
        print(f"ankang import unions: cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return 2
    try:
        frame = read_table(data, max_bytes=1 << 40, max_rows=10_000_000, filename=args.file.name)
        rows = check_union_table(frame)
    except InputError as error:
        print(f"ankang import unions: {args.file}: {error}", file=sys.stderr)
        for item in error.context.get("errors", [])[1:]:
            where = f"row {item['row']}: " if item.get("row") is not None else ""
            print(f"  {where}{item['field']}: {item['message']}", file=sys.stderr)
        return 2
    store = UnionStore(_service_engine(ServingSettings.from_env()))
    print(json.dumps(store.import_rows(rows)))
    return 0


def run_batch(args: argparse.Namespace) -> int:
    try:
        import ray  # noqa: F401  (the batch extra)
    except ModuleNotFoundError:
        print("ankang batch: Ray is not installed; install it with `pip install 'ankang[batch]'`", file=sys.stderr)
        return 2
    from serving.batch.jobs import BatchOptions
    from serving.unions.batch import grade_unions, tiers_from_database
    from serving.unions.store import UnionStore

    for name in ("workers", "batch_size", "part_rows"):
        if getattr(args, name) < 1:
            print(f"ankang batch: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    options = BatchOptions(
        workers=args.workers,
        batch_size=args.batch_size,
        part_rows=args.part_rows,
        ray_address=args.ray_address,
        progress=not args.no_progress,
    )
    settings = ServingSettings.from_env()
    engine = _service_engine(settings) if args.record or args.tiers is None else None
    tiers = args.tiers or tiers_from_database(engine, Path(args.out) / "_tiers")
    store = UnionStore(engine) if args.record else None
    try:
        summary = grade_unions(args.file, tiers, args.out, options=options, union_store=store)
    except InputError as error:
        print(f"ankang batch: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary.to_dict(), ensure_ascii=False))
    return 0
