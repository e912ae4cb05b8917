"""Score an exported photo model at other input sizes than it was trained at (no retraining).

    .venv/bin/python benchmarks/photo_input_size.py --model-dir models/hazard_photo --sizes 224 288 352 448

The ONNX graph is size-agnostic (convolutions, mean-pooled CAM); only its declared input shape is
fixed, so the height and width are made symbolic in memory and val and test are scored at each size
(photos stretched to it by the card's preprocessing). A network trained on random crops sees people
larger than in the whole photo at its own size, so a somewhat larger test size can help
(Touvron et al., "Fixing the train-test resolution discrepancy", 2019). Prints ROC AUC of the PPE
flags pooled and of fire_smoke / poor_housekeeping within the one source that annotates both
classes, and writes benchmarks/results/photo_input_size-<model dir name>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PHOTO_DATA, RESULTS_DIR, git_commit, machine  # noqa: E402

WITHIN_SOURCE = {"fire_smoke": "cair-fire-normal", "poor_housekeeping": "messy-room"}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="folder with model.onnx + card.json")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 288, 352, 448], help="square input sides")
    parser.add_argument("--data", type=Path, default=PHOTO_DATA, help="photo set with manifest.csv")
    parser.add_argument("--cache-dir", type=Path, default=Path("var/cache/photo"), help="decoded-photo cache")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    return parser


def any_size_session(model_path: Path, *, threads: int):
    import onnx

    from training.photo.evaluate import onnx_session

    model = onnx.load(str(model_path))
    for value in [*model.graph.input, *model.graph.output]:
        for dim in value.type.tensor_type.shape.dim[2:]:
            dim.dim_param = "side"  # drops the fixed value; onnxruntime infers shapes per call
    return onnx_session(model.SerializeToString(), threads=threads)


def split_scores(session, frame, images, split: str) -> dict:
    from training.photo.data import FLAGS
    from training.photo.evaluate import flag_metrics, onnx_probabilities

    rows = np.flatnonzero(frame["split"].to_numpy() == split)
    probabilities = onnx_probabilities(session, images[rows], progress=False)
    metrics = flag_metrics(frame.iloc[rows].reset_index(drop=True), probabilities, dict.fromkeys(FLAGS, 0.5))
    scores = {flag: metrics[flag]["roc_auc"] for flag in ("missing_helmet", "missing_hi_vis")}
    for flag, source in WITHIN_SOURCE.items():
        scores[f"{flag} within {source}"] = metrics[flag]["per_source"].get(source, {}).get("roc_auc")
    return scores


def main(args: argparse.Namespace) -> int:
    from training.photo.data import cached_images, load_photos

    session = any_size_session(args.model_dir / "model.onnx", threads=args.threads)
    frame = load_photos([args.data])
    rows = []
    for size in args.sizes:
        images = cached_images(list(frame["path"]), size=size, cache_dir=args.cache_dir, workers=2)
        rows.append({"size": size, **{split: split_scores(session, frame, images, split) for split in ("val", "test")}})
    columns = list(rows[0]["val"])
    print("| size | " + " | ".join(f"val / test {name}" for name in columns) + " |")
    print("|--:|" + "--|" * len(columns))
    for row in rows:
        cells = [f"{row['val'][name]} / {row['test'][name]}" for name in columns]
        print(f"| {row['size']} | " + " | ".join(cells) + " |")
    card = json.loads((args.model_dir / "card.json").read_text(encoding="utf-8"))
    payload = {
        "benchmark": "photo_input_size",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": str(args.model_dir),
        "version": card.get("version"),
        "card_input_size": card["input"]["height"],
        "training_crop_size": card["training_config"].get("image_size"),
        "commit": git_commit(),
        "machine": machine(),
        "rows": rows,
    }
    path = RESULTS_DIR / f"photo_input_size-{args.model_dir.name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
