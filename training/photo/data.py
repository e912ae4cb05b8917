"""Photo manifests (load, merge, split by group), the preprocessing contract and the image cache."""

from __future__ import annotations

import hashlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from runtime.preprocess import PREPROCESS_VERSION, preprocess_photo, preprocess_spec  # noqa: F401  (the contract)

FLAGS: tuple[str, ...] = (
    "missing_helmet",
    "missing_hi_vis",
    "fire_smoke",
    "wet_floor",
    "heavy_machinery",
    "poor_housekeeping",
)
PPE_FLAGS: tuple[str, ...] = ("missing_helmet", "missing_hi_vis")
# boxes.csv label -> the hazard type its boxes show (the position here is the detection `class_index`).
# Classes are only ever appended, so a model with C detection classes detects the first C of these
# (models released before `machinery` have two).
DETECTION_LABELS: dict[str, str] = {
    "no_helmet": "missing_helmet",
    "no_wear": "missing_hi_vis",
    "machinery": "heavy_machinery",
}
DETECTION_CLASSES: tuple[str, ...] = tuple(DETECTION_LABELS.values())
SPLITS: tuple[str, ...] = ("train", "val", "test")
MANIFEST_COLUMNS: tuple[str, ...] = ("image", "source", "group", "split", *FLAGS)


def read_manifest(folder: Path) -> pd.DataFrame:
    """One dataset folder's manifest with absolute image paths; blank flag cells stay NaN."""
    path = Path(folder) / "manifest.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; --data must name a folder holding manifest.csv")
    frame = pd.read_csv(path, dtype={"image": str, "source": str, "group": str, "split": str})
    missing = [column for column in MANIFEST_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; expected {list(MANIFEST_COLUMNS)}")
    bad_splits = sorted(set(frame["split"]) - set(SPLITS))
    if bad_splits:
        raise ValueError(f"{path} has unknown split values {bad_splits}; use {list(SPLITS)}")
    frame = frame.copy()
    frame["path"] = [str((Path(folder) / name).resolve()) for name in frame["image"]]
    frame[list(FLAGS)] = frame[list(FLAGS)].astype("float32")
    return fill_inferred_negatives(frame, Path(folder) / INFERRED_FILE)


INFERRED_FILE = "inferred_negatives.csv"
BOXES_FILE = "boxes.csv"
AUDIT_FILE = "audit_labels.csv"


def fill_inferred_negatives(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Fill blank flag cells from `path` (image, flag, value, rule) when it exists; cells the
    source annotated keep their label. Filled cells count as annotated from then on."""
    if not path.is_file():
        return frame
    inferred = pd.read_csv(path, dtype={"image": str, "flag": str})
    unknown = sorted(set(inferred["flag"]) - set(FLAGS))
    if unknown:
        raise ValueError(f"{path} names unknown flags {unknown}; expected some of {list(FLAGS)}")
    frame = frame.copy()
    row_of = pd.Series(np.arange(len(frame)), index=frame["image"])
    inferred = inferred[inferred["image"].isin(row_of.index)]
    for flag, cells in inferred.groupby("flag"):
        rows = row_of[cells["image"]].to_numpy()
        column = frame.columns.get_loc(flag)
        blank = np.isnan(frame.iloc[rows, column].to_numpy(dtype="float32"))
        frame.iloc[rows[blank], column] = cells["value"].to_numpy(dtype="float32")[blank]
    return frame


def read_boxes(folder: Path) -> pd.DataFrame:
    """The folder's boxes.csv with absolute image paths (an empty frame when the folder has none)."""
    path = Path(folder) / BOXES_FILE
    columns = ["path", "label", "x_min", "y_min", "x_max", "y_max"]
    if not path.is_file():
        return pd.DataFrame(columns=columns)
    boxes = pd.read_csv(path, dtype={"image": str, "label": str})
    boxes["path"] = [str((Path(folder) / name).resolve()) for name in boxes["image"]]
    return boxes[columns]


def read_audit(folder: Path) -> pd.DataFrame:
    """audit_labels.csv (every flag of each photo known; blank = the eye could not tell) with paths."""
    path = Path(folder) / AUDIT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; the audit needs a folder holding {AUDIT_FILE}")
    frame = pd.read_csv(path, dtype={"image": str, "source": str})
    frame["path"] = [str((Path(folder) / name).resolve()) for name in frame["image"]]
    frame[list(FLAGS)] = frame[list(FLAGS)].astype("float32")
    return frame


def merge_manifests(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate manifests, drop repeated photos (same file name = same SHA-1 prefix), and put
    every group wholly in the split where it first appears so no group straddles splits."""
    merged = pd.concat(frames, ignore_index=True)
    merged = merged[~merged["path"].map(lambda p: Path(p).name).duplicated(keep="first")]
    first_split = merged.groupby("group", sort=False)["split"].first()
    merged = merged.assign(split=merged["group"].map(first_split))
    return merged.reset_index(drop=True)


def load_photos(folders: list[Path], *, limit: int = 0) -> pd.DataFrame:
    """The merged manifest of `folders`; `limit` keeps an every-k-th subset across all sources."""
    frame = merge_manifests([read_manifest(Path(folder)) for folder in folders])
    if limit and limit < len(frame):
        picks = np.linspace(0, len(frame) - 1, num=limit).round().astype(int)
        frame = frame.iloc[np.unique(picks)].reset_index(drop=True)
    return frame


def targets_and_mask(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Targets (blank cells set to 0) and the mask of annotated cells, both N×K float32."""
    values = frame[list(FLAGS)].to_numpy(dtype="float32")
    mask = ~np.isnan(values)
    return np.where(mask, values, 0.0).astype("float32"), mask.astype("float32")


def data_fingerprint(folders: list[Path], frame: pd.DataFrame) -> dict:
    digest = hashlib.sha256()
    for folder in folders:
        digest.update((Path(folder) / "manifest.csv").read_bytes())
    splits = {split: int((frame["split"] == split).sum()) for split in SPLITS}
    return {"fingerprint": digest.hexdigest(), "images": int(len(frame)), "splits": splits}  # the card's `data`


@dataclass(frozen=True)
class _DecodeJob:
    path: str
    size: int


def _decode(job: _DecodeJob) -> np.ndarray:
    return preprocess_photo(job.path, size=job.size)


def cached_images(
    paths: list[str], *, size: int, cache_dir: Path, workers: int = 1, progress: bool = True
) -> np.ndarray:
    """N×3×size×size uint8 array of `preprocess_photo` outputs, memory-mapped from an .npy cache
    keyed by the paths, size and preprocessing version (decoded once, reused by every epoch)."""
    key = hashlib.sha256("\n".join([PREPROCESS_VERSION, str(size), *paths]).encode()).hexdigest()[:16]
    target = Path(cache_dir) / f"photos-{size}px-{len(paths)}-{key}.npy"
    if not target.is_file():
        _write_cache(paths, size=size, target=target, workers=workers, progress=progress)
    return np.load(target, mmap_mode="r")


def _write_cache(paths: list[str], *, size: int, target: Path, workers: int, progress: bool) -> None:
    from tqdm.auto import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{np.random.randint(1 << 30)}.npy")
    array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(paths), 3, size, size))
    jobs = [_DecodeJob(path, size) for path in paths]
    bar = tqdm(total=len(jobs), desc=f"caching photos at {size}px", unit="img", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for index, chw in enumerate(pool.map(_decode, jobs, chunksize=16)):
                array[index] = chw
                bar.update()
    else:
        for index, job in enumerate(jobs):
            array[index] = _decode(job)
            bar.update()
    bar.close()
    array.flush()
    del array
    partial.replace(target)  # atomic: a crash never leaves a half-written cache behind


MACHINERY_BOX_LABEL = "machinery"
SMALL_HEAD_PX = 24  # a bare head under this height (at the served input) is "small" (issue 22)


def machinery_from_boxes(frame: pd.DataFrame, boxes: pd.DataFrame) -> pd.DataFrame:
    """heavy_machinery filled from `machinery` boxes on the blank cells of every source that draws them
    (construction-site-safety): 1 where the photo has such a box, 0 where it has none: a construction
    photo without machinery is exactly the hard negative the other sources lack. Cells a source
    labelled itself keep their label."""
    boxed = boxes.loc[boxes["label"] == MACHINERY_BOX_LABEL, "path"]
    if boxed.empty:
        return frame
    sources = set(frame.loc[frame["path"].isin(set(boxed)), "source"])
    rows = frame["source"].isin(sources) & frame["heavy_machinery"].isna()
    frame = frame.copy()
    frame.loc[rows, "heavy_machinery"] = frame.loc[rows, "path"].isin(set(boxed)).astype("float32")
    return frame


def small_head_photos(per_photo_boxes: list, *, size: int, class_index: int = 0) -> np.ndarray:
    """Boolean per photo: it has a box of `class_index` under SMALL_HEAD_PX high at `size` px input."""
    return np.array(
        [
            bool(((xyxy[:, 3] - xyxy[:, 1]) * size < SMALL_HEAD_PX)[classes == class_index].any())
            for xyxy, classes in per_photo_boxes
        ],
        dtype=bool,
    )


def hi_vis_photos(frame: pd.DataFrame, per_photo_boxes: list) -> np.ndarray:
    """Boolean per photo: it shows a person without hi-vis (a `no_wear` box, or missing_hi_vis labelled 1)."""
    cls = DETECTION_CLASSES.index("missing_hi_vis")
    boxed = np.array([bool((classes == cls).any()) for _, classes in per_photo_boxes], dtype=bool)
    return boxed | (frame["missing_hi_vis"].to_numpy(dtype="float32") == 1)


def box_supervision(frame: pd.DataFrame, boxes: pd.DataFrame) -> tuple[list, np.ndarray, np.ndarray]:
    """Per photo its detection boxes (xyxy normalised to the photo, class indices) and two N×C masks.

    A source that boxes a class anywhere boxes every such person, so on its photos with that flag
    annotated the flag follows from the boxes and a photo without such boxes is a negative heat
    map; on other sources' photos the heat map is a negative only where the flag is 0 (annotated
    or inferred) and is ignored otherwise."""
    wanted = boxes[boxes["label"].isin(list(DETECTION_LABELS))]
    wanted = wanted.assign(cls=wanted["label"].map({label: i for i, label in enumerate(DETECTION_LABELS)}))
    size = frame.set_index("path")[["width", "height"]] if len(wanted) else None
    by_path = {path: group for path, group in wanted.groupby("path")}
    per_photo = []
    for path in frame["path"]:
        group = by_path.get(path)
        if group is None:
            per_photo.append((np.zeros((0, 4), np.float32), np.zeros(0, np.int64)))
            continue
        width, height = size.loc[path, "width"], size.loc[path, "height"]
        xyxy = group[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float32) / [width, height, width, height]
        per_photo.append((np.clip(xyxy, 0, 1).astype(np.float32), group["cls"].to_numpy(np.int64)))
    source_of = dict(zip(frame["path"], frame["source"]))
    box_sources = [
        set(wanted.loc[wanted["cls"] == c, "path"].map(source_of).dropna()) for c in range(len(DETECTION_LABELS))
    ]
    flags = frame[list(DETECTION_CLASSES)].to_numpy(dtype="float32")
    from_boxes = np.stack(
        [
            frame["source"].isin(box_sources[c]).to_numpy() & ~np.isnan(flags[:, c])
            for c in range(len(DETECTION_CLASSES))
        ],
        axis=1,
    )
    return per_photo, from_boxes, from_boxes | (flags == 0)
