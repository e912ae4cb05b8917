"""LightGBM threads for `ankang train risk`: fit time with 1 and 2 threads, on a quiet core and next to a busy one.

    .venv/bin/python benchmarks/risk_threads.py                  # 20,000 training rows, 3 runs each
    .venv/bin/python benchmarks/risk_threads.py --rows 80000     # the released model's training size

Fits the released pipeline (the card's config, `n_jobs` varied) on the same generated rows. "busy
core" runs one extra process spinning on a core for the whole fit, as a photo training or a served
model does on this 2-core machine. LightGBM's OpenMP threads wait for each other at every split,
so one slow thread stalls them all. RiskModelConfig.n_jobs is chosen from this table
(benchmarks/README.md). Each row records the load average: the machine is shared.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Measurement, save_results  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000, help="training rows (default: 20000)")
    parser.add_argument("--repeats", type=int, default=3, help="fits per setting (median reported)")
    parser.add_argument("--name", default="risk_threads", help="results file name")
    return parser


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def busy_core(busy: bool) -> Iterator[None]:
    """One process spinning on a core while the block runs (nothing when `busy` is false)."""
    if not busy:
        yield
        return
    spinner = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
    spinner.start()
    try:
        time.sleep(0.5)  # let it start spinning before the fit
        yield
    finally:
        spinner.terminate()
        spinner.join()


def fit_seconds(features, tiers, config) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one pipeline fit."""
    from runtime.risk.schema import load_schema
    from training.risk.pipeline import build_pipeline

    wall, cpu = time.perf_counter(), time.process_time()
    build_pipeline(load_schema(), config).fit(features, tiers)
    return time.perf_counter() - wall, time.process_time() - cpu


def main(args: argparse.Namespace) -> int:
    from runtime.risk.schema import load_schema
    from training.risk.config import GeneratorConfig, RiskModelConfig
    from training.risk.generator import generate
    from training.risk.pipeline import feature_frame

    schema = load_schema()
    frame = generate(GeneratorConfig(rows=args.rows))
    features, tiers = feature_frame(schema, frame.drop(columns=[schema.target])), frame[schema.target].to_numpy()
    measurements = []
    for busy in (False, True):
        for threads in (1, 2):
            config = replace(RiskModelConfig(), n_jobs=threads)
            with busy_core(busy):
                runs = [fit_seconds(features, tiers, config) for _ in range(args.repeats)]
            measurements.append(
                Measurement(
                    name=f"fit {args.rows:,} rows, n_jobs={threads}, "
                    f"{'next to a busy core' if busy else 'no extra load'}",
                    unit="s",
                    runs=[wall for wall, _ in runs],
                    extra={"cpu_seconds": [round(cpu, 2) for _, cpu in runs]},
                )
            )
    save_results(
        args.name, measurements, notes={"rows": args.rows, "config": "RiskModelConfig defaults, n_jobs varied"}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
