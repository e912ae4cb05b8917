"""Measure the dHash Hamming threshold for "same scene" on the site-hazard photo set.

Against the manifest's `group` column: pairs in one group are "same", all other pairs "different"
(precision, recall, and the share of photos that would join a photo of another group). The photo
set was de-duplicated by dHash before release, so its few multi-photo groups are not look-alikes;
recall on fresh duplicates is therefore measured by re-reporting every photo through typical
transformations (recompression, downscaling, a small crop, brightness change, a 3° tilt).
The chosen threshold is the largest one at which at most `max_false_grouping` of the photos
would be grouped with a photo of another group.

    python -m training.reviews.threshold --photo-set datasets/site-hazard-photos --out reports/review
"""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageEnhance

from runtime.dhash import dhash64
from runtime.paths import DATASETS_DIR, PROJECT_ROOT

if TYPE_CHECKING:
    import pandas as pd


_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)


@dataclass
class ThresholdConfig:
    photo_set: Path = DATASETS_DIR / "site-hazard-photos"
    out: Path = PROJECT_ROOT / "reports" / "review"
    max_threshold: int = 20
    max_false_grouping: float = 0.02
    limit: int | None = None
    transforms: tuple[str, ...] = field(default=("jpeg_q40", "half_size", "crop_5pct", "brighter_15pct", "tilt_3deg"))


def transform(image: Image.Image, name: str) -> Image.Image:
    if name == "jpeg_q40":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=40)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    if name == "half_size":
        return image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.BILINEAR)
    if name == "crop_5pct":
        dx, dy = image.width // 20, image.height // 20
        return image.crop((dx, dy, image.width - dx, image.height - dy))
    if name == "brighter_15pct":
        return ImageEnhance.Brightness(image).enhance(1.15)
    if name == "tilt_3deg":
        return image.rotate(3, resample=Image.Resampling.BILINEAR, expand=False)
    raise ValueError(f"unknown transform {name!r}")


def pairwise_distances(hashes: np.ndarray) -> np.ndarray:
    """Hamming distances of all pairs i < j (condensed, like scipy's pdist)."""
    as_bytes = hashes.astype(">u8").view(np.uint8).reshape(-1, 8)
    rows = []
    for i in range(len(hashes) - 1):
        rows.append(_POPCOUNT[as_bytes[i] ^ as_bytes[i + 1 :]].sum(axis=1, dtype=np.uint8))
    return np.concatenate(rows)


def nearest_other_group(hashes: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """For each photo, the Hamming distance to the closest photo of another group."""
    as_bytes = hashes.astype(">u8").view(np.uint8).reshape(-1, 8)
    nearest = np.empty(len(hashes), dtype=np.int64)
    for i in range(len(hashes)):
        distances = _POPCOUNT[as_bytes[i] ^ as_bytes].sum(axis=1, dtype=np.int64)
        nearest[i] = distances[groups != groups[i]].min()
    return nearest


def hash_photos(manifest: pd.DataFrame, config: ThresholdConfig) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    from tqdm import tqdm

    originals, transformed = [], {name: [] for name in config.transforms}
    for relative in tqdm(manifest["image"], desc="dHash", unit="photo"):
        image = Image.open(config.photo_set / relative).convert("RGB")
        originals.append(dhash64(image))
        for name in config.transforms:
            transformed[name].append(dhash64(transform(image, name)))
    original = np.array(originals, dtype=np.uint64)
    return original, {name: np.array(values, dtype=np.uint64) for name, values in transformed.items()}


def study(
    manifest: pd.DataFrame, original: np.ndarray, transformed: dict[str, np.ndarray], config: ThresholdConfig
) -> pd.DataFrame:
    import pandas as pd

    distances = pairwise_distances(original)
    groups = manifest["group"].to_numpy()
    left, right = np.triu_indices(len(groups), k=1)
    same = groups[left] == groups[right]
    nearest = nearest_other_group(original, groups)
    rows = []
    for threshold in range(config.max_threshold + 1):
        hit = distances <= threshold
        true_pos, false_pos = int((hit & same).sum()), int((hit & ~same).sum())
        row = {
            "threshold": threshold,
            "true_pairs": true_pos,
            "false_pairs": false_pos,
            "recall_groups": true_pos / max(1, int(same.sum())),
            "precision_groups": true_pos / max(1, true_pos + false_pos),
            "photos_falsely_grouped": float((nearest <= threshold).mean()),
        }
        for name, hashes in transformed.items():
            moved = np.array([(int(a) ^ int(b)).bit_count() for a, b in zip(original, hashes)])
            row[f"recall_{name}"] = float((moved <= threshold).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame, *, max_false_grouping: float) -> int:
    """The largest threshold at which at most `max_false_grouping` of photos join another group's photo."""
    good = table[table["photos_falsely_grouped"] <= max_false_grouping]
    return int(good["threshold"].max()) if len(good) else 0


def plot(table: pd.DataFrame, chosen: int, path: Path) -> None:
    from training.reporting import figure, save_plot

    plot_figure, axis = figure(figsize=(8, 4.5))
    axis.plot(table["threshold"], table["precision_groups"], "o-", label="precision (manifest groups)")
    axis.plot(table["threshold"], table["recall_groups"], "s-", label="recall (manifest groups)")
    axis.plot(table["threshold"], table["photos_falsely_grouped"], "^-", label="photos joined to another group")
    for column in [c for c in table.columns if c.startswith("recall_") and c != "recall_groups"]:
        axis.plot(table["threshold"], table[column], ":", label=column.replace("recall_", "recall, "))
    axis.axvline(chosen, color="grey", linestyle="--", label=f"chosen threshold {chosen}")
    axis.set_xlabel("Hamming distance threshold (bits of 64)")
    axis.set_ylim(-0.02, 1.02)
    axis.set_title("dHash near-duplicate threshold on site-hazard-photos")
    axis.legend(fontsize=7, loc="center right")
    save_plot(plot_figure, path, dpi=120)


def get_args_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = ThresholdConfig()
    parser.add_argument(
        "--photo-set", type=Path, default=defaults.photo_set, help="folder with manifest.csv (default: %(default)s)"
    )
    parser.add_argument(
        "--out", type=Path, default=defaults.out, help="where the table, plot and summary go (default: %(default)s)"
    )
    parser.add_argument(
        "--max-threshold",
        type=int,
        default=defaults.max_threshold,
        help="largest threshold tried (default: %(default)s)",
    )
    parser.add_argument(
        "--max-false-grouping",
        type=float,
        default=defaults.max_false_grouping,
        help="choose the largest threshold that groups at most this share of photos with "
        "another group's photo (default: %(default)s)",
    )
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos (quick look)")
    return parser


def main(args: argparse.Namespace) -> int:
    import pandas as pd

    from runtime.safe_csv import frame_to_csv

    config = ThresholdConfig(
        photo_set=args.photo_set,
        out=args.out,
        max_threshold=args.max_threshold,
        max_false_grouping=args.max_false_grouping,
        limit=args.limit,
    )
    manifest = pd.read_csv(config.photo_set / "manifest.csv")
    manifest = manifest.head(config.limit) if config.limit else manifest
    original, transformed = hash_photos(manifest, config)
    table = study(manifest, original, transformed, config)
    chosen = choose(table, max_false_grouping=config.max_false_grouping)
    config.out.mkdir(parents=True, exist_ok=True)
    frame_to_csv(table, config.out / "dhash_threshold.csv", float_format="%.4f")
    plot(table, chosen, config.out / "dhash_threshold.png")
    summary = {
        "chosen_threshold": chosen,
        "photos": len(manifest),
        "same_group_pairs": int(sum(n * (n - 1) // 2 for n in manifest.groupby("group").size())),
        **table.iloc[chosen].to_dict(),
    }
    (config.out / "dhash_threshold.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"chosen threshold: {chosen}  (written to {config.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
