"""Risk scoring in-process (serving.risk on onnxruntime, 2 intra-op threads) and training time.

    .venv/bin/python benchmarks/risk_inprocess.py              # scoring rows
    .venv/bin/python benchmarks/risk_inprocess.py --train      # + training on 100,000 generated rows

Scoring paths, each on a generated population held in memory:
  score_frame      validation + ONNX + expected-cost decision + policy floors (with / without reasons)
  score_table      CSV or Parquet bytes in, CSV bytes out (the file endpoint's work)
  score_profiles   JSON-like dicts in, result dicts out (the JSON endpoint's work; 10,000 and 1)
Every row records wall-clock throughput and the process CPU seconds of the median run, because
the machine is shared: with a load average above the core count, wall time mostly measures the
neighbours (CPU seconds / cores is the uncontended lower bound on wall time).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Measurement, save_results  # noqa: E402
from runtime.paths import MODELS_DIR  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR / "labor_risk", help="risk model directory")
    parser.add_argument("--rows", type=int, default=100_000, help="enterprises per batch run (default: 100000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (default: 2)")
    parser.add_argument("--train", action="store_true", help="also time `train_risk` on --rows generated enterprises")
    parser.add_argument("--name", default="risk_inprocess", help="results file name")
    return parser


def measure(work, *, repeats: int, name: str, unit: str, items: int, per_item_ms: bool = False) -> Measurement:
    """Median of `repeats` runs of `work()`: items/s (or ms per call), with CPU seconds beside wall seconds."""
    work()
    runs, cpu = [], []
    for _ in range(repeats):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        work()
        wall, used = time.perf_counter() - wall_start, time.process_time() - cpu_start
        runs.append(wall * 1000 / items if per_item_ms else items / wall)
        cpu.append(used)
    return Measurement(
        name=name, unit=unit, runs=runs, extra={"items": items, "cpu_seconds_median": round(statistics.median(cpu), 4)}
    )


def scoring_measurements(args: argparse.Namespace) -> list[Measurement]:

    from serving.risk import RiskScorer
    from training.risk.config import GeneratorConfig
    from training.risk.generator import generate

    scorer = RiskScorer.load(args.model_dir, threads=args.threads)
    # infer_objects: blanked cells leave object columns; a real Parquet file has float64 with NaN
    frame = generate(GeneratorConfig(rows=args.rows, seed=77, missing_rate=0.02)).drop(columns=["tier"]).infer_objects()
    csv = frame.to_csv(index=False).encode()
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    records = frame.iloc[:10_000].astype(object).where(frame.iloc[:10_000].notna(), None).to_dict("records")
    n, r = len(frame), args.repeats
    return [
        measure(
            lambda: scorer.score_frame(frame, text_cells=False, reasons=False),
            repeats=r,
            items=n,
            name=f"score_frame {n:,} (no reasons)",
            unit="enterprises/s",
        ),
        measure(
            lambda: scorer.score_frame(frame, text_cells=False, reasons=True),
            repeats=r,
            items=n,
            name=f"score_frame {n:,} (with reasons)",
            unit="enterprises/s",
        ),
        measure(
            lambda: scorer.score_table(csv, filename="in.csv"),
            repeats=r,
            items=n,
            name=f"score_table CSV {n:,} -> CSV (with reasons)",
            unit="enterprises/s",
        ),
        measure(
            lambda: scorer.score_table(parquet.getvalue(), filename="in.parquet", reasons=False),
            repeats=r,
            items=n,
            name=f"score_table Parquet {n:,} -> CSV (no reasons)",
            unit="enterprises/s",
        ),
        measure(
            lambda: scorer.score_profiles(records),
            repeats=r,
            items=len(records),
            name="score_profiles 10,000 dicts (JSON path)",
            unit="enterprises/s",
        ),
        measure(
            lambda: [scorer.score_profiles([records[i]]) for i in range(200)],
            repeats=r,
            items=200,
            name="score_profiles 1 enterprise",
            unit="ms per call",
            per_item_ms=True,
        ),
    ]


def training_measurement(args: argparse.Namespace) -> Measurement:
    import tempfile

    from training.risk.config import GeneratorConfig, RiskModelConfig
    from training.risk.data import generated_data
    from training.risk.train import train_risk

    data = generated_data(GeneratorConfig(rows=int(args.rows / 0.8)))  # 80 % train split = --rows training rows
    with tempfile.TemporaryDirectory() as folder:
        cpu_start = time.process_time()
        result = train_risk(RiskModelConfig(out=Path(folder)), data=data)
        cpu = time.process_time() - cpu_start
    return Measurement(
        name=f"train_risk on {args.rows:,} rows (fit only)",
        unit="s",
        runs=[result.fit_seconds],
        extra={
            "total_seconds": round(result.seconds, 2),
            "cpu_seconds": round(cpu, 2),
            "qwk_vs_oracle": result.metrics["qwk_vs_oracle"],
        },
    )


def main(args: argparse.Namespace) -> int:
    measurements = scoring_measurements(args)
    if args.train:
        measurements.append(training_measurement(args))
    save_results(args.name, measurements, notes={"threads": args.threads, "model": str(args.model_dir)})
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
