"""Issue 22, item 1: which input should the released photo model be served? Same weights, no retraining.

    .venv/bin/python benchmarks/photo_served_input.py --model-dir models/hazard_photo
    .venv/bin/python benchmarks/photo_served_input.py --model-dir models/hazard_photo --limit 40   # smoke run

Input modes (the photo is EXIF-upright RGB in every one):
  stretch448    the release as served: the whole photo stretched to 448x448 (runtime/preprocess.py)
  letterbox448  aspect kept, long side 448, centred on a 448x448 canvas of gray PAD_VALUE (114); boxes
                are mapped back to the photo by removing the padding
  native        aspect kept, long side 448, short side rounded to a multiple of 32, no padding (the net
                is fully convolutional; photos are batched by input shape)
  tiles         stretch448 plus a 2x2 grid of tiles, each TILE_FRACTION (60 %) of the photo's width and
                height, each stretched to 448x448; every run's boxes mapped back to the photo and merged
                by per-class NMS at IoU 0.5 (torchvision.ops.batched_nms)
  tiles2        stretch448 plus a left and a right tile (60 % of the width, whole height), merged alike
  tiles_dropcut, tiles2_dropcut
                the same runs, but a tile's box touching a tile edge that lies inside the photo is dropped
                before the merge (the person is cut there; the full image or the other tile sees all of it)

For every mode the per-class box threshold is chosen on val's box-labelled photos with the release's rule
(training/photo/operating.py choose_box_threshold: the lowest score with >= 90 % of drawn boxes right),
then test is reported at that threshold: recall and precision per class and source, recall by head height
in stored-photo pixels, and box AP50 (training/photo/box_metrics.py). Cost is an arithmetic proxy (model
runs and input pixels per photo relative to stretch448), never a timing: this runs beside training.

The net runs on onnxruntime: the released model.onnx with its height and width made symbolic (its
decoding reads the heat map's shape, so detections stay normalised to whatever input it is given).
`--check-torch` photos of each run kind are also run through training/photo/from_onnx.py's torch net
and must agree to 1e-4. Raw graph outputs are cached under --cache-dir per (model, split, run kind), so
an interrupted run resumes. Writes benchmarks/results/photo_served_input-<version>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PHOTO_DATA, RESULTS_DIR, git_commit, machine  # noqa: E402

SIZE = 448
PAD_VALUE = 114  # letterbox gray: close to the net's ImageNet mean, i.e. what its own zero padding looks like
SHAPE_MULTIPLE = 32  # MobileNetV2's deepest stride
TILE_FRACTION = 0.6
NMS_IOU = 0.5
CUT_EDGE = 0.01  # a box within 1 % of a tile's inner edge (of the tile's side) counts as cut by it
HEIGHTS = ("under_16px", "16_to_24px", "24_to_64px", "over_64px")

# run kind -> the photo region it sees (x0, y0, x1, y1 normalised to the photo); "letterbox"/"native" see all
_LOW, _HIGH = 1.0 - TILE_FRACTION, TILE_FRACTION
TILE_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "tile_top_left": (0.0, 0.0, _HIGH, _HIGH),
    "tile_top_right": (_LOW, 0.0, 1.0, _HIGH),
    "tile_bottom_left": (0.0, _LOW, _HIGH, 1.0),
    "tile_bottom_right": (_LOW, _LOW, 1.0, 1.0),
    "half_left": (0.0, 0.0, _HIGH, 1.0),
    "half_right": (_LOW, 0.0, 1.0, 1.0),
}
RUN_KINDS = ("stretch", "letterbox", "native", *TILE_REGIONS)
QUADRANTS = ("tile_top_left", "tile_top_right", "tile_bottom_left", "tile_bottom_right")
# mode -> (run kinds, drop boxes cut by a tile's inner edge)
MODES: dict[str, tuple[tuple[str, ...], bool]] = {
    "stretch448": (("stretch",), False),
    "letterbox448": (("letterbox",), False),
    "native": (("native",), False),
    "tiles": (("stretch", *QUADRANTS), False),
    "tiles_dropcut": (("stretch", *QUADRANTS), True),
    "tiles2": (("stretch", "half_left", "half_right"), False),
    "tiles2_dropcut": (("stretch", "half_left", "half_right"), True),
}


@dataclass(frozen=True)
class RunPlan:
    """One model run on one photo: the photo region it sees (normalised to the photo), the input canvas
    (height, width) and where in the canvas the region lands (left, top, width, height in canvas px)."""

    region: tuple[float, float, float, float]
    canvas: tuple[int, int]
    content: tuple[int, int, int, int]


def native_shape(*, width: int, height: int, size: int = SIZE) -> tuple[int, int]:
    """(height, width): long side `size`, short side scaled alike and rounded to a multiple of 32."""
    scale = size / max(width, height)

    def side(length: int) -> int:
        return size if length == max(width, height) else max(SHAPE_MULTIPLE, _round_to(length * scale))

    return side(height), side(width)


def _round_to(value: float, multiple: int = SHAPE_MULTIPLE) -> int:
    return int(np.floor(value / multiple + 0.5)) * multiple


def plan_run(kind: str, *, width: int, height: int, size: int = SIZE) -> RunPlan:
    """How run `kind` turns a width x height photo into a model input."""
    whole = (0.0, 0.0, 1.0, 1.0)
    if kind == "stretch":
        return RunPlan(whole, (size, size), (0, 0, size, size))
    if kind == "native":
        rows, cols = native_shape(width=width, height=height, size=size)
        return RunPlan(whole, (rows, cols), (0, 0, cols, rows))
    if kind == "letterbox":
        scale = size / max(width, height)
        cols, rows = max(1, round(width * scale)), max(1, round(height * scale))
        return RunPlan(whole, (size, size), ((size - cols) // 2, (size - rows) // 2, cols, rows))
    if kind in TILE_REGIONS:
        return RunPlan(TILE_REGIONS[kind], (size, size), (0, 0, size, size))
    raise ValueError(f"unknown run kind {kind!r}; expected one of {RUN_KINDS}")


def model_input(image, plan: RunPlan) -> np.ndarray:
    """The CHW uint8 input of `plan` from an upright RGB Pillow image."""
    from PIL import Image

    from runtime.preprocess import to_model_input

    left, top, cols, rows = plan.content
    if plan.region == (0.0, 0.0, 1.0, 1.0) and (cols, rows) == plan.canvas[::-1]:
        return to_model_input(image, size=plan.canvas)  # exactly the served preprocessing
    x0, y0, x1, y1 = plan.region
    box = (x0 * image.width, y0 * image.height, x1 * image.width, y1 * image.height)
    resized = image.resize((cols, rows), Image.Resampling.BILINEAR, box=box)
    canvas = Image.new("RGB", plan.canvas[::-1], (PAD_VALUE,) * 3)
    canvas.paste(resized, (left, top))
    return np.ascontiguousarray(np.asarray(canvas, dtype=np.uint8).transpose(2, 0, 1))


def to_photo(rows: np.ndarray, plan: RunPlan, *, drop_cut: bool = False) -> np.ndarray:
    """Graph rows (x0, y0, x1, y1 normalised to the input, score, class) of one run -> rows normalised
    to the photo (padding removed, tile offset added), zero-score padding rows dropped. `drop_cut` drops
    boxes touching an edge of the region that lies inside the photo."""
    rows = rows[rows[:, 4] > 0].astype(np.float64)
    canvas_rows, canvas_cols = plan.canvas
    left, top, cols, rows_px = plan.content
    x0, y0, x1, y1 = plan.region
    # input-normalised -> content-normalised (0..1 over the region) -> photo-normalised
    xs = (rows[:, [0, 2]] * canvas_cols - left) / cols
    ys = (rows[:, [1, 3]] * canvas_rows - top) / rows_px
    if drop_cut:
        cut = np.zeros(len(rows), bool)
        if x0 > 0:
            cut |= xs[:, 0] <= CUT_EDGE
        if x1 < 1:
            cut |= xs[:, 1] >= 1 - CUT_EDGE
        if y0 > 0:
            cut |= ys[:, 0] <= CUT_EDGE
        if y1 < 1:
            cut |= ys[:, 1] >= 1 - CUT_EDGE
        rows, xs, ys = rows[~cut], xs[~cut], ys[~cut]
    mapped = rows.copy()
    mapped[:, [0, 2]] = np.clip(x0 + xs * (x1 - x0), 0, 1)
    mapped[:, [1, 3]] = np.clip(y0 + ys * (y1 - y0), 0, 1)
    return mapped


def merge_runs(per_run: list[np.ndarray]) -> np.ndarray:
    """Photo-normalised rows of several runs -> one set: per-class NMS at NMS_IOU, by descending score.
    A single run is returned as it is (the graph's 3x3 peak picking is its only suppression)."""
    if len(per_run) == 1:
        return per_run[0]
    import torch
    from torchvision.ops import batched_nms

    rows = np.concatenate(per_run)
    if not len(rows):
        return rows
    keep = batched_nms(
        torch.from_numpy(rows[:, :4]), torch.from_numpy(rows[:, 4]), torch.from_numpy(rows[:, 5]).long(), NMS_IOU
    ).numpy()
    return rows[keep]


def padded(per_photo: list[np.ndarray]) -> np.ndarray:
    """N x D x 6 float32, each photo's rows sorted by score then zero rows (what match_boxes reads)."""
    depth = max([len(rows) for rows in per_photo] + [1])
    out = np.zeros((len(per_photo), depth, 6), np.float32)
    for index, rows in enumerate(per_photo):
        out[index, : len(rows)] = rows[np.argsort(-rows[:, 4], kind="stable")]
    return out


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=Path("models/hazard_photo"), help="model.onnx + card.json")
    parser.add_argument("--data", type=Path, default=PHOTO_DATA, help="photo set with manifest.csv and boxes.csv")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES), help="input modes to score")
    parser.add_argument("--limit", type=int, default=0, help="every-k-th subset of each split's box photos (smoke)")
    parser.add_argument("--batch", type=int, default=16, help="inputs per onnxruntime call")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--check-torch", type=int, default=2, help="photos per run kind checked against torch")
    parser.add_argument("--cache-dir", type=Path, default=Path("var/cache/served_input"), help="raw output cache")
    parser.add_argument("--out", type=Path, default=None, help="results file (default results/...-<version>.json)")
    return parser


@dataclass
class Split:
    """One split's box-labelled photos: manifest rows, ground truth and from_boxes rows of box_supervision."""

    frame: object
    ground_truth: list
    from_boxes: np.ndarray


def box_splits(data: Path, limit: int) -> tuple[dict[str, Split], object]:
    """val and test photos whose missing_helmet or missing_hi_vis flag follows from boxes."""
    from training.photo.data import box_supervision, load_photos, read_boxes

    frame, boxes = load_photos([data]), read_boxes(data)
    splits = {}
    for name in ("val", "test"):
        split = frame[frame["split"] == name].reset_index(drop=True)
        ground_truth, from_boxes, _ = box_supervision(split, boxes)  # over the whole split, as the release
        rows = np.flatnonzero(from_boxes.any(axis=1))
        if limit and limit < len(rows):
            rows = rows[np.unique(np.linspace(0, len(rows) - 1, num=limit).round().astype(int))]
        splits[name] = Split(split.iloc[rows].reset_index(drop=True), [ground_truth[i] for i in rows], from_boxes[rows])
    return splits, boxes


def upright(path: str):
    from PIL import Image

    from runtime.preprocess import upright_rgb

    with Image.open(path) as opened:
        return upright_rgb(opened)


def raw_outputs(session, frame, kind: str, *, batch: int, cache: Path) -> np.ndarray:
    """N x 100 x 6 graph detections of run `kind` over the photos of `frame` (cached)."""
    from tqdm.auto import tqdm

    if cache.is_file():
        return np.load(cache)
    sizes = frame[["width", "height"]].to_numpy()
    plans = [plan_run(kind, width=int(w), height=int(h)) for w, h in sizes]
    out: list[np.ndarray | None] = [None] * len(plans)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for index, plan in enumerate(plans):
        by_shape.setdefault(plan.canvas, []).append(index)
    paths = frame["path"].tolist()
    with tqdm(total=len(plans), desc=kind, unit="photo") as bar:
        for indices in by_shape.values():
            for start in range(0, len(indices), batch):
                chunk = indices[start : start + batch]
                inputs = np.stack([model_input(upright(paths[i]), plans[i]) for i in chunk])
                detections = session.run(["detections"], {"image": inputs})[0]
                for i, rows in zip(chunk, detections):
                    out[i] = rows
                bar.update(len(chunk))
    result = np.stack(out).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, result)
    return result


def torch_check(model_path: Path, session, frame, kinds: list[str], photos: int) -> dict:
    """Max |torch - onnxruntime| over the detections of the first `photos` photos per run kind."""
    import torch

    from training.photo.detection import decode_detections
    from training.photo.from_onnx import net_from_onnx

    if photos <= 0:
        return {}
    net = net_from_onnx(model_path, detection_stride=4).eval()
    result = {}
    for kind in kinds:
        worst = 0.0
        for path, width, height in frame[["path", "width", "height"]].head(photos).itertuples(index=False):
            inputs = model_input(upright(path), plan_run(kind, width=int(width), height=int(height)))[None]
            with torch.inference_mode():
                _, _, heat, regression = net.forward_all(torch.from_numpy(inputs))
                rows = decode_detections(heat, regression).numpy()
            worst = max(worst, float(np.abs(rows - session.run(["detections"], {"image": inputs})[0]).max()))
        if worst > 1e-4:
            raise AssertionError(f"torch and onnxruntime differ by {worst} on run kind {kind}")
        result[kind] = worst
    return result


def mode_detections(mode: str, frame, raw: dict[str, np.ndarray]) -> np.ndarray:
    """N x D x 6 rows normalised to the photo: the mode's runs mapped back and merged."""
    kinds, drop_cut = MODES[mode]
    per_photo = []
    for index, (width, height) in enumerate(frame[["width", "height"]].to_numpy()):
        runs = [
            to_photo(raw[kind][index], plan_run(kind, width=int(width), height=int(height)), drop_cut=drop_cut)
            for kind in kinds
        ]
        per_photo.append(merge_runs(runs))
    return padded(per_photo)


def mode_cost(mode: str, frame) -> dict:
    """Model runs and input pixels per photo, relative to stretch448 (mean over the photos)."""
    kinds, _ = MODES[mode]
    pixels = [
        sum(np.prod(plan_run(kind, width=int(w), height=int(h)).canvas) for kind in kinds) / SIZE**2
        for w, h in frame[["width", "height"]].to_numpy()
    ]
    return {"runs_per_photo": len(kinds), "pixels_per_photo": round(float(np.mean(pixels)), 3)}


def score_mode(splits: dict[str, Split], detections: dict[str, np.ndarray], boxes) -> dict:
    """Thresholds chosen on val with the release's rule, then test's operating points and AP50."""
    from training.photo.heldout import box_metrics
    from training.photo.operating import operating_metrics
    from training.photo.release import operating_box_thresholds

    val = splits["val"]
    thresholds = operating_box_thresholds(val.frame, detections["val"], boxes)
    at_val = operating_metrics(val.frame, val.ground_truth, val.from_boxes, detections["val"], thresholds)
    test = splits["test"]
    return {
        "box_thresholds": thresholds,
        "val_at_threshold": {
            hazard: {key: entry["all"][key] for key in ("precision", "recall")} for hazard, entry in at_val.items()
        },
        "test": operating_metrics(test.frame, test.ground_truth, test.from_boxes, detections["test"], thresholds),
        "test_ap50": box_metrics(test.frame, detections["test"], boxes),
    }


def table_rows(result: dict) -> list[str]:
    """The README table: one Markdown row per mode."""
    lines = [
        "| input | runs / pixels per photo | val thresholds (helmet / hi-vis) | hardhat bare heads boxed / right "
        "| by head height < 16 / 16–24 / 24–64 / > 64 px | all sources bare heads boxed / right "
        "| no_wear boxed / right | AP50 bare heads / no_wear (test, all) |",
        "|:--|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for mode, entry in result["modes"].items():
        helmet, hi_vis = entry["test"]["missing_helmet"], entry["test"].get("missing_hi_vis", {})
        hardhat = helmet.get("hardhat-workers", {})
        heights = " / ".join(_pct(hardhat["by_height"][name]["recall"]) for name in HEIGHTS)
        ap = entry["test_ap50"]
        lines.append(
            f"| {mode} | {entry['cost']['runs_per_photo']} / {entry['cost']['pixels_per_photo']:.2f}× "
            f"| {entry['box_thresholds']['missing_helmet']:.3f} / {entry['box_thresholds']['missing_hi_vis']:.3f} "
            f"| {_pct(hardhat['recall'])} / {_pct(hardhat['precision'])} ({hardhat['found']}/{hardhat['boxes']}, "
            f"{hardhat['drawn']} drawn) | {heights} "
            f"| {_pct(helmet['all']['recall'])} / {_pct(helmet['all']['precision'])} "
            f"| {_pct(hi_vis.get('all', {}).get('recall'))} / {_pct(hi_vis.get('all', {}).get('precision'))} "
            f"| {_num(ap['missing_helmet']['all']['ap50_all'])} / "
            f"{_num(ap.get('missing_hi_vis', {}).get('all', {}).get('ap50_all'))} |"
        )
    return lines


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def main(args: argparse.Namespace) -> int:
    import torch

    from benchmarks.photo_input_size import any_size_session

    torch.set_num_threads(args.threads)
    model_path = args.model_dir / "model.onnx"
    card = json.loads((args.model_dir / "card.json").read_text(encoding="utf-8"))
    if card["input"]["height"] != SIZE or card["preprocess"]["resize"] != "stretch":
        raise SystemExit(f"{args.model_dir} is not a {SIZE} px stretched release; this script measures one")
    session = any_size_session(model_path, threads=args.threads)
    splits, boxes = box_splits(args.data, args.limit)
    kinds = sorted({kind for mode in args.modes for kind in MODES[mode][0]}, key=RUN_KINDS.index)
    checked = torch_check(model_path, session, splits["val"].frame, kinds, args.check_torch)
    model_key = hashlib.sha256(model_path.read_bytes()).hexdigest()[:12]
    raw = {name: {} for name in splits}
    for kind in kinds:
        for name, split in splits.items():
            key = hashlib.sha256("\n".join(split.frame["path"]).encode()).hexdigest()[:12]
            cache = args.cache_dir / f"{model_key}-{name}-{len(split.frame)}-{key}-{kind}.npy"
            raw[name][kind] = raw_outputs(session, split.frame, kind, batch=args.batch, cache=cache)
    result = {
        "benchmark": "photo_served_input",
        "model": str(args.model_dir),
        "version": card["version"],
        "card_box_thresholds": card["detection"]["score_thresholds"],
        "photos": {name: int(len(split.frame)) for name, split in splits.items()},
        "limit": args.limit,
        "pad_value": PAD_VALUE,
        "tile_fraction": TILE_FRACTION,
        "nms_iou": NMS_IOU,
        "torch_vs_onnxruntime_max_abs": checked,
        "modes": {},
    }
    for mode in args.modes:
        detections = {name: mode_detections(mode, split.frame, raw[name]) for name, split in splits.items()}
        result["modes"][mode] = {"cost": mode_cost(mode, splits["test"].frame), **score_mode(splits, detections, boxes)}
    measured = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result.update({"commit": git_commit(), "machine": machine(), "measured": measured})
    out = args.out or RESULTS_DIR / f"photo_served_input-{card['version']}{'-limit' if args.limit else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("\n".join(table_rows(result)))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
