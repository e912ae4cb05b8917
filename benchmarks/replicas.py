"""Replicas behind HAProxy (PostgreSQL, Redis, one photo store): mixed-load throughput for 1, 2 and 3
replicas, and the 3-replica run with one replica SIGKILLed mid-way (lost acknowledged writes, failed
attempts, the shared receipt-lookup limit).

    .venv/bin/python benchmarks/replicas.py --seconds 60 --clients 32

The replicas serve the toy photo model (tests/toy_models.py): the run measures the shared-state path
(HTTP, HAProxy, PostgreSQL, Redis, photo store), not the CNN, which benchmarks/photo_http.py measures.
On this 2-core machine the replicas, HAProxy, PostgreSQL and the load generator share two cores, so
the rows show what the state costs, not how replicas scale on separate machines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from benchmarks.common import Measurement, percentile, save_results  # noqa: E402
from tests.replica_cluster import MixedLoad, clear_throttle, cluster, seed_cases, stored  # noqa: E402
from tests.toy_models import write_toy_photo_model  # noqa: E402

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each load run")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3], help="replica counts to measure")
    parser.add_argument("--database-url", default=ADMIN_URL, help="PostgreSQL (a schema per run is created in it)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    return parser


def one_run(args, *, replicas: int, kill: bool) -> Measurement:
    schema = f"bench_replicas_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.database_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    database_url = f"{args.database_url}?options=-csearch_path%3D{schema}"
    clear_throttle(args.redis_url)
    work = Path(tempfile.mkdtemp(prefix="ankang-replicas-"))
    model = write_toy_photo_model(work / "models" / "hazard_photo")
    try:
        with cluster(
            work, replicas=replicas, database_url=database_url, redis_url=args.redis_url, photo_model_dir=model
        ) as running:
            load = MixedLoad(
                running.url, clients=args.clients, seconds=args.seconds, seed_cases=seed_cases(running.url)
            )
            action = (lambda: running.kill(0)) if kill else None
            result = load.run(at=args.seconds / 3, action=action)
        photo_ids, comments = stored(database_url)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    answered = len(result.latencies)
    return Measurement(
        name=f"{replicas} replica{'s' * (replicas > 1)}{', one SIGKILLed at 1/3' if kill else ''}",
        unit="answered requests/s",
        runs=[answered / args.seconds],
        extra={
            "clients": args.clients,
            "seconds": args.seconds,
            "p50_ms": round(statistics.median(result.latencies) * 1000, 1),
            "p99_ms": round(percentile(result.latencies, 99) * 1000, 1),
            "acknowledged_assessments": len(result.acknowledged_assessments),
            "acknowledged_decisions": len(result.acknowledged_decisions),
            "lost_acknowledged_writes": len(result.acknowledged_assessments - photo_ids)
            + len(result.acknowledged_decisions - comments),
            "failed_attempts": result.failed_attempts,
            "given_up": result.given_up,
            "receipt_lookups_admitted": result.lookups_admitted,
            "receipt_lookups_refused": result.lookups_refused,
        },
    )


def main(args: argparse.Namespace) -> None:
    rows = [one_run(args, replicas=count, kill=False) for count in args.replicas]
    rows.append(one_run(args, replicas=max(args.replicas), kill=True))
    for row in rows:
        print(row.name, row.extra)
    save_results("replicas", rows, notes={"model": "toy photo model (tests/toy_models.py)", "haproxy": "roundrobin"})


if __name__ == "__main__":
    main(get_args_parser().parse_args())
