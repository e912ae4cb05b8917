"""Train -> export -> serve at toy size: serving's own PhotoModel runs what training exported, and scores
a photo exactly as training's evaluation does (the way Ultralytics tests its exports)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from runtime.cards import PhotoCard
from runtime.modeldir import ModelDir
from serving.images import decode_photo
from serving.photo import PhotoModel
from serving.settings import ServingSettings

pytestmark = pytest.mark.slow  # trains MobileNetV2 for one epoch on 48 tiny synthetic photos
SPLITS = ["train"] * 24 + ["val"] * 12 + ["test"] * 12


def synthetic_photo_set(folder, rng) -> None:
    """48 random 48x40 JPEGs; each flag present and absent in every split (so every ROC AUC exists)."""
    from training.photo.data import FLAGS

    (folder / "images" / "toy").mkdir(parents=True)
    rows = []
    for index, split in enumerate(SPLITS):
        name = f"images/toy/{index:03d}.jpg"
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / name, quality=90)
        flags = {flag: float((index + offset) % 2) for offset, flag in enumerate(FLAGS)}
        rows.append({"image": name, "source": "toy", "group": f"g{index}", "split": split, **flags})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from training.photo.config import PhotoTrainConfig
    from training.photo.train import train_photo

    work = tmp_path_factory.mktemp("round-trip")
    synthetic_photo_set(work / "photos", np.random.default_rng(3))
    config = PhotoTrainConfig(
        data=[work / "photos"],
        out=work / "model",
        image_size=32,
        crop_source_size=0,
        final_size=0,
        epochs=1,
        batch_size=8,
        seed=3,
        workers=1,
        threads=1,
        pretrained=False,
        ema_decay=0.0,
        cache_dir=work / "cache",
    )
    return train_photo(config), work


def test_serving_loads_the_exported_model_and_its_card(trained):
    result, _ = trained
    model = PhotoModel(result.model_dir, settings=ServingSettings(max_batch_size=4))
    assert model.card == PhotoCard.from_model_dir(ModelDir.load(result.model_dir))
    assert model.card.size == (32, 32) and model.card.version == result.card["version"]


def test_serving_scores_a_photo_as_training_evaluation_does(trained):
    from training.photo.data import preprocess_photo
    from training.photo.evaluate import onnx_probabilities, onnx_session

    result, work = trained
    path = work / "photos" / "images" / "toy" / "040.jpg"
    expected = onnx_probabilities(
        onnx_session(result.model_dir / "model.onnx", threads=1), preprocess_photo(path, size=32)[None], progress=False
    )[0]
    model = PhotoModel(result.model_dir, settings=ServingSettings(max_batch_size=4))
    served_input = model.card.preprocess(decode_photo(path.read_bytes()))
    probabilities, cam = model.predict(served_input[None])
    np.testing.assert_allclose(probabilities[0], expected, rtol=0, atol=1e-6)
    answer = model.assessment(model.run_batch(served_input[None])[0], width=64, height=64)
    assert (answer.model_name, answer.model_version) == ("hazard_photo", result.card["version"])
    assert set(answer.hazards) == set(result.card["labels"]) and cam.shape[:2] == (1, len(result.card["labels"]))


def test_the_written_card_carries_the_header_and_the_preprocess_contract(trained):
    result, _ = trained
    card = ModelDir.load(result.model_dir).card
    assert card["data"]["images"] == len(SPLITS) and len(card["data"]["fingerprint"]) == 64
    assert card["training_config"]["image_size"] == 32 and card["preprocess"]["size"] == [32, 32]
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 0, 0)).save(buffer, format="PNG")
    assert PhotoModel(result.model_dir).card.preprocess(decode_photo(buffer.getvalue())).shape == (3, 32, 32)
