"""Batch scoring on Ray Data (`ankang batch photos|enterprises`): photos/s and enterprises/s for 1 and
2 actors on a local Ray, and the throughput projected for one cluster node.

    nice -n 19 .venv/bin/python benchmarks/batch_ray.py                     # 256 photos, 200,000 enterprises
    nice -n 19 .venv/bin/python benchmarks/batch_ray.py --photos 64 --enterprises 20000 --repeats 1

Each run is a whole job into a fresh output folder: listing, the actors' start (each loads and warms
its model), scoring, and the Parquet parts written by the driver; Ray itself is started once before
(`num_cpus` = 3 logical CPUs, so 2 actors leave one for the read tasks). Each actor runs onnxruntime
with 1 thread. The projection per node multiplies the 1-actor rate by the actors a node runs (its
cores less one for reading and the driver), i.e. it assumes the linear scaling Ray's actors give
on separate cores; the 2-actor row here says how close this shared 2-core machine comes to it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PHOTO_DATA, ROOT, Measurement, save_results  # noqa: E402
from runtime.paths import MODELS_DIR  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=256, help="photos per job (test split, default 256)")
    parser.add_argument("--enterprises", type=int, default=200_000, help="enterprises per job (default 200000)")
    parser.add_argument("--repeats", type=int, default=2, help="jobs per configuration (median reported)")
    parser.add_argument("--node-cores", type=int, default=16, help="cores of the cluster node to project for")
    parser.add_argument("--name", default="batch_ray", help="results file name")
    return parser


def photo_manifest(folder: Path, count: int) -> Path:
    import pandas as pd

    manifest = pd.read_csv(PHOTO_DATA / "manifest.csv")
    rows = manifest[manifest["split"] == "test"]
    images = [str(PHOTO_DATA / image) for image in rows["image"].iloc[:: max(1, len(rows) // count)][:count]]
    path = folder / "manifest.csv"
    pd.DataFrame({"image": images}).to_csv(path, index=False)
    return path


def enterprise_file(folder: Path, count: int) -> Path:
    from training.risk.config import GeneratorConfig
    from training.risk.generator import generate

    path = folder / "enterprises.parquet"
    generate(GeneratorConfig(rows=count, seed=77, missing_rate=0.02)).drop(columns=["tier"]).to_parquet(
        path, index=False
    )
    return path


def time_jobs(
    job,
    source: Path,
    *,
    workers: int,
    repeats: int,
    model_dir: Path,
    batch_size: int,
    items: int,
    name: str,
    unit: str,
    folder: Path,
) -> Measurement:
    from serving.batch.jobs import BatchOptions

    options = BatchOptions(workers=workers, batch_size=batch_size, part_rows=batch_size * 32, progress=False)
    runs = []
    for repeat in range(repeats):
        start = time.perf_counter()
        summary = job(str(source), str(folder / f"{name}-{workers}-{repeat}"), model_dir=model_dir, options=options)
        runs.append(summary.scored / (time.perf_counter() - start))
        assert summary.scored == items, summary
    return Measurement(
        name=f"{name}, {workers} actor{'s' * (workers > 1)}",
        unit=unit,
        runs=runs,
        extra={"workers": workers, "items": items, "batch_size": batch_size},
    )


def projection(measurements: list[Measurement], node_cores: int) -> dict[str, float]:
    actors = node_cores - 1
    return {
        f"{m.name.split(',')[0]} per {node_cores}-core node ({actors} actors x 1-actor rate)": round(
            m.median * actors, 1
        )
        for m in measurements
        if m.extra["workers"] == 1
    }


def main() -> None:
    args = get_args_parser().parse_args()
    import ray

    from serving.batch.jobs import score_enterprises, score_photos

    ray.init(num_cpus=3, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    measurements = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photos, enterprises = photo_manifest(folder, args.photos), enterprise_file(folder, args.enterprises)
        for workers in (1, 2):
            measurements.append(
                time_jobs(
                    score_photos,
                    photos,
                    workers=workers,
                    repeats=args.repeats,
                    model_dir=MODELS_DIR / "hazard_photo",
                    batch_size=32,
                    items=args.photos,
                    name="batch photos",
                    unit="photos/s",
                    folder=folder,
                )
            )
            measurements.append(
                time_jobs(
                    score_enterprises,
                    enterprises,
                    workers=workers,
                    repeats=args.repeats,
                    model_dir=MODELS_DIR / "labor_risk",
                    batch_size=10_000,
                    items=args.enterprises,
                    name="batch enterprises",
                    unit="enterprises/s",
                    folder=folder,
                )
            )
    ray.shutdown()
    notes = {
        "projection": projection(measurements, args.node_cores),
        "machine_shared": "2 cores shared with five engineers' tests and a photo-training run; run at nice 19",
    }
    save_results(args.name, measurements, notes=notes)
    for line, value in notes["projection"].items():
        print(f"projected {line}: {value:,.0f}")


if __name__ == "__main__":
    main()
