"""Manifests: merge, de-duplication, split by group, blank cells, and the preprocessing contract."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.photo.data import FLAGS, load_photos, preprocess_photo, read_manifest, targets_and_mask
from training.photo.presets import PhotoPreset

HEADER = "image,source,group,split,width,height," + ",".join(FLAGS) + "\n"


def write_dataset(folder: Path, rows: list[str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "manifest.csv").write_text(HEADER + "".join(row + "\n" for row in rows), encoding="utf-8")
    return folder


def test_merge_drops_repeated_photos_and_keeps_each_group_in_one_split(tmp_path):
    first = write_dataset(
        tmp_path / "a",
        [
            "images/s/aaaa.jpg,s,g1,train,10,10,1,,,,,",
            "images/s/bbbb.jpg,s,g2,val,10,10,0,0,,,,",
        ],
    )
    second = write_dataset(
        tmp_path / "b",
        [
            "images/t/aaaa.jpg,t,g9,test,10,10,0,,,,,",  # same file name: the same photo, dropped
            "images/t/cccc.jpg,t,g1,test,10,10,,1,,,,",  # group g1 already lives in train
            "images/t/dddd.jpg,t,g3,test,10,10,,0,,,,",
        ],
    )
    merged = load_photos([first, second])
    assert [Path(p).name for p in merged["path"]] == ["aaaa.jpg", "bbbb.jpg", "cccc.jpg", "dddd.jpg"]
    assert merged["source"].tolist() == ["s", "s", "t", "t"]
    assert merged["split"].tolist() == ["train", "val", "train", "test"]
    assert merged.groupby("group")["split"].nunique().max() == 1


def test_blank_cells_are_masked_not_negative(tmp_path):
    folder = write_dataset(tmp_path / "a", ["images/s/aaaa.jpg,s,g1,train,10,10,1,,0,,,1"])
    targets, mask = targets_and_mask(read_manifest(folder))
    assert targets.tolist() == [[1, 0, 0, 0, 0, 1]]
    assert mask.tolist() == [[1, 0, 1, 0, 0, 1]]


def test_manifest_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.csv not found; --data must name a folder"):
        read_manifest(tmp_path)
    folder = write_dataset(tmp_path / "a", ["images/s/aaaa.jpg,s,g1,holdout,10,10,1,,,,,"])
    with pytest.raises(ValueError, match=r"unknown split values \['holdout'\]"):
        read_manifest(folder)


def test_preprocess_applies_exif_orientation_and_stretches(tmp_path):
    wide = np.zeros((20, 40, 3), dtype=np.uint8)
    wide[:, :20] = (255, 0, 0)  # left half red, right half black
    image = Image.fromarray(wide)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the upright photo is 20 wide, 40 high
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    chw = preprocess_photo(path, size=16)
    assert chw.shape == (3, 16, 16) and chw.dtype == np.uint8
    assert chw[0, 1, 8] > 200 and chw[0, 14, 8] < 60  # red moved from the left to the top


def test_eval_preset_is_exactly_the_pillow_contract(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).convert("P").save(path)
    with Image.open(path) as opened:
        expected = np.asarray(opened.convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)).transpose(2, 0, 1)
    preset = PhotoPreset(size=32, train=False)
    assert np.array_equal(preset(preset.load(path)).numpy(), expected)


def test_train_preset_augments_but_keeps_shape_and_dtype():
    import torch

    torch.manual_seed(0)
    photo = np.random.default_rng(1).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    out = PhotoPreset(size=32, train=True).batch(np.stack([photo, photo]))
    assert out.shape == (2, 3, 32, 32) and out.dtype == torch.uint8
    assert not torch.equal(out[0], torch.from_numpy(photo))


def test_train_preset_cuts_crops_from_a_larger_source():
    source = np.random.default_rng(3).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    preset = PhotoPreset(size=32, train=True, source_size=64)
    assert preset.batch(np.stack([source] * 3)).shape == (3, 3, 32, 32)
    with pytest.raises(ValueError, match=r"^expected a 3×64×64 photo, got shape \(3, 32, 32\)$"):
        preset(source[:, :32, :32])
    assert PhotoPreset(size=32, train=False, source_size=64).source_size == 32  # evaluation never crops
