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
from serving.db import create_engine, migrate  # noqa: E402
from serving.enterprises.records import ScoreRecords, profile_fingerprints  # noqa: E402
from serving.risk import RiskScorer  # noqa: E402
from training.risk.config import GeneratorConfig  # noqa: E402
from training.risk.generator import generate  # noqa: E402

VAR = ROOT / "benchmarks" / "var" / "enterprise_records"


def seconds(work, repeats: int, clock=time.perf_counter) -> list[float]:
    runs = []
    for _ in range(repeats):
        start = clock()
        work()
        runs.append(clock() - start)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database", default=None, help="an empty PostgreSQL schema's URL")
    args = parser.parse_args(argv)

    scorer = RiskScorer.load(MODELS_DIR / "labor_risk", threads=1)
    csv = generate(GeneratorConfig(rows=args.rows, seed=7)).drop(columns=["tier"]).to_csv(index=False).encode()
    extra = {"rows": args.rows, "csv_mb": round(len(csv) / 2**20, 1)}
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    targets = {"SQLite": f"sqlite:///{VAR / 'review.db'}"}
    if args.database:
        targets["PostgreSQL"] = args.database
    records = {}
    for label, url in targets.items():
        engine = create_engine(url)
        migrate(engine)
        records[label] = ScoreRecords(engine)
    # The runs interleave (before, then each database, per repeat) so a change in the shared machine's load
    # hits every configuration alike; the write alone is timed too (the table and fingerprints in hand).
    runs: dict[str, list[float]] = {"before": [], **{f"kept {label}": [] for label in targets}}
    runs.update({f"write {label}": [] for label in targets})
    runs.update({f"write cpu {label}": [] for label in targets})
    captured = {}

    def capture(batch_scores, table):
        captured["table"], captured["scores"] = table, batch_scores

    scorer.score_table(csv, filename="file.csv", on_scored=capture)
    fingerprints = profile_fingerprints(captured["scores"].batch)
    for _ in range(args.repeats):
        runs["before"] += seconds(lambda: scorer.score_table(csv, filename="file.csv"), 1)
        for label, kept in records.items():
            keep = kept.keeper(scorer, source="file")
            work = lambda keep=keep: scorer.score_table(csv, filename="file.csv", on_scored=keep)  # noqa: E731
            runs[f"kept {label}"] += seconds(work, 1)
            write = lambda kept=kept: kept.record_table(  # noqa: E731
                captured["table"], fingerprints=fingerprints, model=scorer.info, source="file"
            )
            runs[f"write {label}"] += seconds(write, 1)
            runs[f"write cpu {label}"] += seconds(write, 1, clock=time.process_time)
    measurements = [
        Measurement(
            name=f"score-file {args.rows:,} rows, not kept (before)", unit="s", runs=runs["before"], extra=extra
        )
    ]
    for label in targets:
        measurements.append(
            Measurement(
                name=f"score-file {args.rows:,} rows, every score kept ({label})",
                unit="s",
                runs=runs[f"kept {label}"],
                extra=extra,
            )
        )
        measurements.append(
            Measurement(
                name=f"… the write alone: {args.rows:,} scores + latest tiers ({label})",
                unit="s",
                runs=runs[f"write {label}"],
                extra=extra,
            )
        )
        measurements.append(
            Measurement(
                name=f"… the write alone, this process's CPU ({label}; PostgreSQL's server work not counted)",
                unit="CPU s",
                runs=runs[f"write cpu {label}"],
                extra=extra,
            )
        )
    save_results("enterprise_records", measurements)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
