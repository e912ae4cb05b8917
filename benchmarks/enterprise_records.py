"""Scoring a 200,000-row file with and without keeping every score (serving/enterprises/records.py).

    .venv/bin/python benchmarks/enterprise_records.py [--rows 200000] [--repeats 3] [--database URL]

In process, the score-file path (`RiskScorer.score_table` on a CSV, one onnxruntime thread as the
service's default on this machine): once without recording (the path before enterprise scores were
kept), then with every score written in bulk to a fresh database: SQLite (WAL, under
benchmarks/var/) and, when --database names one, an empty PostgreSQL schema. Each recorded run
writes 200,000 score rows and upserts 200,000 latest tiers; the database keeps growing across runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ROOT, Measurement, save_results  # noqa: E402
from runtime.paths import MODELS_DIR  # noqa: E402
from serving.enterprises.records import ScoreRecords  # noqa: E402
from serving.review.store import create_engine, migrate  # noqa: E402
from serving.risk import RiskScorer  # noqa: E402
from training.risk.config import GeneratorConfig  # noqa: E402
from training.risk.generator import generate  # noqa: E402

VAR = ROOT / "benchmarks" / "var" / "enterprise_records"


def seconds(work, repeats: int) -> list[float]:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        runs.append(time.perf_counter() - start)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database", action="append", default=[], help="an empty PostgreSQL URL (repeatable)")
    args = parser.parse_args(argv)

    scorer = RiskScorer.load(MODELS_DIR / "labor_risk", threads=1)
    csv = generate(GeneratorConfig(rows=args.rows, seed=7)).drop(columns=["tier"]).to_csv(index=False).encode()
    extra = {"rows": args.rows, "csv_mb": round(len(csv) / 2**20, 1)}
    measurements = [
        Measurement(
            name=f"score-file {args.rows:,} rows, not kept (before)",
            unit="s",
            runs=seconds(lambda: scorer.score_table(csv, filename="file.csv"), args.repeats),
            extra=extra,
        )
    ]
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    for label, url in [("SQLite", f"sqlite:///{VAR / 'review.db'}"), *[("PostgreSQL", url) for url in args.database]]:
        engine = create_engine(url)
        migrate(engine)
        keep = ScoreRecords(engine).keeper(scorer, source="file")
        runs = seconds(lambda keep=keep: scorer.score_table(csv, filename="file.csv", on_scored=keep), args.repeats)
        name = f"score-file {args.rows:,} rows, every score kept ({label})"
        measurements.append(Measurement(name=name, unit="s", runs=runs, extra=extra))
        engine.dispose()
    save_results("enterprise_records", measurements)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
