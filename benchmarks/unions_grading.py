"""Grading a province's unions: `ankang batch unions` on Ray and the same grading in one process.

    .venv/bin/python benchmarks/unions_grading.py [--unions 100000] [--enterprises 5000000] [--workers 1]

Generates a seeded province (training/unions/population.py: unions covering enterprises drawn from the
risk generator; the generator's tiers stand in for the kept latest tiers), writes the unions and
tiers as Parquet under benchmarks/var/unions/, then times (1) the Ray job (`grade_unions`, a local
Ray, one actor per worker, 5,000 unions per batch, Parquet parts out) and (2) the same lookup,
aggregation and grading in this process without Ray. Generation is timed apart and not counted.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ROOT, Measurement, save_results  # noqa: E402
from serving.batch.jobs import BatchOptions  # noqa: E402
from serving.unions.batch import UnionGrader, grade_unions  # noqa: E402
from training.unions.population import generate_province  # noqa: E402

VAR = ROOT / "benchmarks" / "var" / "unions"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unions", type=int, default=100_000)
    parser.add_argument("--enterprises", type=int, default=5_000_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=5_000)
    args = parser.parse_args(argv)

    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    start = time.perf_counter()
    province = generate_province(unions=args.unions, enterprises=args.enterprises)
    province.unions.to_parquet(VAR / "unions.parquet", index=False)
    province.enterprises[["enterprise_id", "tier"]].to_parquet(VAR / "tiers.parquet", index=False)
    generated = time.perf_counter() - start
    unions = len(province.unions)
    del province
    extra = {"unions": unions, "enterprises": args.enterprises, "generation_s": round(generated, 1)}

    options = BatchOptions(workers=args.workers, batch_size=args.batch_size, part_rows=50_000, progress=False)
    start = time.perf_counter()
    summary = grade_unions(str(VAR / "unions.parquet"), str(VAR / "tiers.parquet"), str(VAR / "out"), options=options)
    on_ray = time.perf_counter() - start
    assert summary.unions == unions, summary

    import pandas as pd

    start = time.perf_counter()
    grader = UnionGrader(str(VAR / "tiers.parquet"))
    frame = pd.read_parquet(VAR / "unions.parquet")
    for begin in range(0, len(frame), args.batch_size):
        grader(frame.iloc[begin : begin + args.batch_size])
    in_process = time.perf_counter() - start

    label = f"{unions:,} unions / {args.enterprises:,} enterprises"
    measurements = [
        Measurement(
            name=f"ankang batch unions, {label}, {args.workers} actor(s) (Ray start included)",
            unit="s",
            runs=[on_ray],
            extra={**extra, "grades": summary.grades},
        ),
        Measurement(name=f"the same grading in one process, {label}", unit="s", runs=[in_process], extra=extra),
    ]
    save_results(f"unions_grading_{unions}", measurements)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
