"""Photo model in-process: decode + resize + onnxruntime at batch 1, 8, 32 against PyTorch eager.

    .venv/bin/python benchmarks/photo_inprocess.py                 # the table rows
    .venv/bin/python benchmarks/photo_inprocess.py --session-variants   # onnxruntime options study

The serving path is reproduced exactly: `serving.images.decode_photo` -> `PhotoCard.preprocess`
-> `PhotoModel.predict` (both outputs, as the service runs it). PyTorch runs the same network
(training/photo's HazardPhotoNet + the exported wrapper, with flip TTA when the card says so) with
random weights: the released directory keeps no PyTorch weights, and the compute is identical.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.common import Measurement, photo_bytes, save_results, timed_rate  # noqa: E402
from runtime.modeldir import ModelDir  # noqa: E402
from runtime.paths import MODELS_DIR  # noqa: E402
from serving.images import decode_photo  # noqa: E402
from serving.photo import PhotoCard, PhotoModel  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model-dir",
        type=Path,
        action="append",
        default=None,
        help="model directory to measure (repeat for float and INT8; default models/hazard_photo)",
    )
    parser.add_argument("--photos", type=int, default=64, help="test photos held in memory as uploaded bytes")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32], help="batch sizes")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per configuration (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for onnxruntime and torch")
    parser.add_argument(
        "--torch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure PyTorch eager inference of the same network",
    )
    parser.add_argument("--torch-photos", type=int, default=32, help="photos per PyTorch run (it is slow)")
    parser.add_argument("--torch-repeats", type=int, default=2, help="timed PyTorch runs per configuration")
    parser.add_argument(
        "--session-variants",
        action="store_true",
        help="instead: model-only throughput under onnxruntime session options",
    )
    parser.add_argument("--name", default=None, help="results file name (default: photo_inprocess[_variants])")
    return parser


def preprocess_all(card: PhotoCard, photos: list[bytes]) -> np.ndarray:
    return np.stack([card.preprocess(decode_photo(data)) for data in photos])


def chunks(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def pipeline_work(model: PhotoModel, photos: list[bytes], batch: int):
    def work() -> int:
        for chunk in chunks(photos, batch):
            model.predict(preprocess_all(model.card, chunk))
        return len(photos)

    return work


def overlapped_work(model: PhotoModel, photos: list[bytes], batch: int):
    """Decode batch k+1 in a worker thread (PIL releases the GIL) while onnxruntime runs batch k."""
    from concurrent.futures import ThreadPoolExecutor

    def work() -> int:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            for chunk in chunks(photos, batch):
                decoded = pool.submit(preprocess_all, model.card, chunk)
                if pending is not None:
                    model.predict(pending)
                pending = decoded.result()
            model.predict(pending)
        return len(photos)

    return work


def handler_work(model: PhotoModel, photos: list[bytes], store_dir: Path):
    """What `POST /v1/photos/assess` does per photo, in-process: decode, preprocess, batch-1
    inference, assessment, and recording the case in a fresh SQLite review store."""
    import uuid

    from serving.review.store import ReviewStore

    store = ReviewStore(database_url=f"sqlite:///{store_dir / 'review.db'}", photo_dir=store_dir / "photos")

    def work() -> int:
        for data in photos:
            image = decode_photo(data)
            outputs = model.run_batch(model.card.preprocess(image)[np.newaxis])[0]
            assessment = model.assessment(outputs, width=image.width, height=image.height)
            store.record_assessment(photo_id=uuid.uuid4().hex, data=data, image=image, assessment=assessment)
        return len(photos)

    return work


def model_only_work(run, images: np.ndarray, batch: int):
    def work() -> int:
        for start in range(0, len(images), batch):
            run(np.ascontiguousarray(images[start : start + batch]))
        return len(images)

    return work


def decode_work(card: PhotoCard, photos: list[bytes]):
    def work() -> int:
        preprocess_all(card, photos)
        return len(photos)

    return work


def onnx_rows(model_dir: Path, photos: list[bytes], args) -> list[Measurement]:
    model = PhotoModel(model_dir)
    label = f"{model_dir.name} ({model.card.size[0]} px)"
    images = preprocess_all(model.card, photos)
    rows = (
        [
            timed_rate(
                decode_work(model.card, photos),
                repeats=args.repeats,
                name="decode + resize only (PIL)",
                unit="photos/s",
            )
        ]
        if model_dir == args.model_dir[0]
        else []
    )
    if model_dir == args.model_dir[0]:
        with tempfile.TemporaryDirectory() as scratch:
            rows.append(
                timed_rate(
                    handler_work(model, photos, Path(scratch)),
                    repeats=args.repeats,
                    unit="photos/s",
                    name=f"{label}: API handler work in-process (+ assessment + review store), batch 1",
                    batch=1,
                )
            )
    for batch in args.batches:
        rows.append(
            timed_rate(
                pipeline_work(model, photos, batch),
                repeats=args.repeats,
                unit="photos/s",
                name=f"{label}: decode + resize + onnxruntime, batch {batch}",
                batch=batch,
            )
        )
        rows.append(
            timed_rate(
                overlapped_work(model, photos, batch),
                repeats=args.repeats,
                unit="photos/s",
                batch=batch,
                name=f"{label}: same, decoding overlapped with inference, batch {batch}",
            )
        )
        rows.append(
            timed_rate(
                model_only_work(model.predict, images, batch),
                repeats=args.repeats,
                unit="photos/s",
                name=f"{label}: onnxruntime only, batch {batch}",
                batch=batch,
            )
        )
    return rows


def torch_network(card: dict):

    from training.photo.model import ExportedHazardPhoto, HazardPhotoNet

    net = HazardPhotoNet(num_classes=len(card["labels"]), pretrained=False)
    tta = bool(card["training_config"].get("tta_flip", False))
    return ExportedHazardPhoto(net, tta_flip=tta).eval(), tta


def torch_rows(model_dir: Path, photos: list[bytes], args) -> list[Measurement]:
    import torch

    torch.set_num_threads(args.threads)
    card = ModelDir.load(model_dir).card
    photo_card = PhotoCard.from_model_dir(ModelDir.load(model_dir))
    network, tta = torch_network(card)
    photos = photos[: args.torch_photos]

    def run(batch: np.ndarray) -> None:
        with torch.inference_mode():
            network(torch.from_numpy(batch))

    def pipeline(batch: int):
        def work() -> int:
            for chunk in chunks(photos, batch):
                run(preprocess_all(photo_card, chunk))
            return len(photos)

        return work

    rows = []
    label = f"PyTorch eager {torch.__version__} ({photo_card.size[0]} px{', flip TTA' if tta else ''})"
    for batch in args.batches:
        rows.append(
            timed_rate(
                pipeline(batch),
                repeats=args.torch_repeats,
                unit="photos/s",
                batch=batch,
                name=f"{label}: decode + resize + torch, batch {batch}",
            )
        )
    return rows


SESSION_VARIANTS = {
    "2 threads, ORT_ENABLE_ALL, arena on, spinning on (service before)": {},
    "1 intra-op thread": {"threads": 1},
    "graph optimisation BASIC": {"level": "ORT_ENABLE_BASIC"},
    "graph optimisation EXTENDED": {"level": "ORT_ENABLE_EXTENDED"},
    "memory arena off": {"arena": False},
    "memory pattern off": {"pattern": False},
    "thread spinning off (service now)": {"spinning": False},
}


def variant_session(
    model_path: Path,
    *,
    threads: int = 2,
    level: str = "ORT_ENABLE_ALL",
    arena: bool = True,
    pattern: bool = True,
    spinning: bool = True,
):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.enable_cpu_mem_arena = arena
    options.enable_mem_pattern = pattern
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])


def variant_rows(model_dir: Path, photos: list[bytes], args) -> list[Measurement]:
    model = ModelDir.load(model_dir)
    images = preprocess_all(PhotoCard.from_model_dir(model), photos)
    rows = []
    for label, options in SESSION_VARIANTS.items():
        session = variant_session(model.onnx_path, **{"threads": args.threads, **options})

        def run(batch: np.ndarray, session=session) -> None:
            session.run(["probabilities", "cam"], {"image": batch})

        for batch in args.batches:
            rows.append(
                timed_rate(
                    model_only_work(run, images, batch),
                    repeats=args.repeats,
                    unit="photos/s",
                    name=f"{label}, batch {batch}",
                    batch=batch,
                    variant=label,
                )
            )
    return rows


def main(args: argparse.Namespace) -> int:
    args.model_dir = args.model_dir or [MODELS_DIR / "hazard_photo"]
    photos = photo_bytes(split="test", count=args.photos)
    if args.session_variants:
        rows = variant_rows(args.model_dir[0], photos, args)
        save_results(args.name or "photo_inprocess_variants", rows, notes={"photos": len(photos)})
        return 0
    rows = [row for model_dir in args.model_dir for row in onnx_rows(model_dir, photos, args)]
    if args.torch:
        rows += torch_rows(args.model_dir[0], photos, args)
    versions = {str(d): ModelDir.load(d).version for d in args.model_dir}
    save_results(
        args.name or "photo_inprocess",
        rows,
        notes={
            "photos": len(photos),
            "models": versions,
            "torch_weights": "random (same network and compute; released models keep only ONNX)",
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
