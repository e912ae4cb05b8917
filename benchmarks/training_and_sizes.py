"""Training time for both models, model file sizes, and the service's resident memory.

    .venv/bin/python benchmarks/training_and_sizes.py            # sizes, card times, risk retrain, memory
    .venv/bin/python benchmarks/training_and_sizes.py --no-serve # without starting the service

Photo training time comes from the released card (`training.seconds`: one full run takes many
minutes on the shared 2 cores, so it is not repeated here); the risk model is retrained
`--risk-repeats` times into a scratch folder (median). Memory: `bentoml serve` is started like
`make run`, resident set size of every process it runs is summed, idle and after a short load.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Measurement, photo_bytes, save_results, served  # noqa: E402
from runtime.paths import MODELS_DIR  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--risk-repeats", type=int, default=3, help="risk trainings timed (0 = card figure only)")
    parser.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start the service and measure its resident memory",
    )
    parser.add_argument("--name", default="training_and_sizes", help="results file name in benchmarks/results/")
    return parser


def size_rows() -> list[Measurement]:
    rows = []
    for model_dir in sorted(path for path in MODELS_DIR.iterdir() if (path / "model.onnx").is_file()):
        card = json.loads((model_dir / "card.json").read_text())
        megabytes = (model_dir / "model.onnx").stat().st_size / 2**20
        rows.append(
            Measurement(
                name=f"models/{model_dir.name}/model.onnx ({card.get('version')})",
                unit="MB",
                runs=[megabytes],
                extra={"version": card.get("version")},
            )
        )
    return rows


def card_training_rows() -> list[Measurement]:
    rows = []
    photo = json.loads((MODELS_DIR / "hazard_photo" / "card.json").read_text())
    training = photo["training_config"]
    if "seconds" in training:
        rows.append(
            Measurement(
                name=f"photo training (card: {training.get('epochs_run')} epochs at {training.get('image_size')} px, "
                f"{training.get('threads')} threads)",
                unit="s",
                runs=[float(training["seconds"])],
                extra={"source": "models/hazard_photo/card.json", "version": photo["version"]},
            )
        )
    risk = json.loads((MODELS_DIR / "labor_risk" / "card.json").read_text())
    if "fit_seconds" in risk:
        rows.append(
            Measurement(
                name="risk LightGBM fit (card)",
                unit="s",
                runs=[float(risk["fit_seconds"])],
                extra={"source": "models/labor_risk/card.json", "version": risk["version"]},
            )
        )
    return rows


def risk_training_row(repeats: int) -> Measurement:
    from training.risk.config import RiskModelConfig
    from training.risk.train import train_risk

    total, fit = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as scratch:
            result = train_risk(RiskModelConfig(out=Path(scratch)))
        total.append(result.seconds)
        fit.append(result.fit_seconds)
    return Measurement(
        name="risk training end to end (generate 100k, fit, ONNX export, parity, card)",
        unit="s",
        runs=total,
        extra={"fit_seconds": [round(value, 2) for value in fit]},
    )


def memory_rows() -> list[Measurement]:
    import httpx

    photos = photo_bytes(split="test", count=32)
    with served() as server:
        idle = server.resident_mb()
        with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=120) as http:
            for data in photos:
                http.post("/v1/photos/assess", files={"photo": ("p.jpg", data, "image/jpeg")}).raise_for_status()
        loaded = server.resident_mb()
    return [
        Measurement(name="service resident memory (all bentoml processes), idle", unit="MB", runs=[idle]),
        Measurement(name="service resident memory after 32 photo assessments", unit="MB", runs=[loaded]),
    ]


def main(args: argparse.Namespace) -> int:
    rows = size_rows() + card_training_rows()
    if args.risk_repeats:
        rows.append(risk_training_row(args.risk_repeats))
    if args.serve:
        rows += memory_rows()
    save_results(args.name, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
