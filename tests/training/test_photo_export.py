"""ONNX export: parity with PyTorch, the CAM identity, and a toy train -> export -> predict round trip."""

import json

import numpy as np
import pytest
import torch

from serving.modelcard import ModelDir
from training.photo.config import PhotoTrainConfig
from training.photo.data import FLAGS, preprocess_photo
from training.photo.evaluate import onnx_session
from training.photo.export import export_onnx
from training.photo.model import ExportedHazardPhoto, HazardPhotoNet


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(20261126)
    net = HazardPhotoNet(num_classes=len(FLAGS), pretrained=True)
    torch.nn.init.normal_(net.classifier.weight, std=0.05)
    torch.nn.init.normal_(net.classifier.bias, std=0.5)
    path = export_onnx(net.eval(), tmp_path_factory.mktemp("onnx") / "model.onnx", size=96, tta_flip=True)
    return net, onnx_session(path)


def test_onnxruntime_matches_pytorch_probabilities(exported, rng):
    net, session = exported
    images = rng.integers(0, 256, (3, 3, 96, 96), dtype=np.uint8)
    probabilities, cam = session.run(None, {"image": images})
    with torch.no_grad():
        expected, expected_cam = ExportedHazardPhoto(net, tta_flip=True)(torch.from_numpy(images))
    assert probabilities.dtype == np.float32 and probabilities.shape == (3, len(FLAGS))
    assert np.abs(probabilities - expected.numpy()).max() < 1e-4
    assert np.abs(cam - expected_cam.numpy()).max() < 1e-3
    assert probabilities.std() > 0.01  # a real, non-constant output


def test_cam_mean_plus_bias_is_the_logit(exported, rng):
    net, session = exported
    images = rng.integers(0, 256, (2, 3, 96, 96), dtype=np.uint8)
    probabilities, cam = session.run(None, {"image": images})
    assert cam.shape == (2, len(FLAGS), 3, 3)
    logits = cam.mean(axis=(2, 3)) + net.classifier.bias.detach().numpy()
    assert np.abs(1 / (1 + np.exp(-logits)) - probabilities).max() < 1e-5
    with torch.no_grad():  # and for a single un-flipped pass too
        plain_logits, plain_cam = net.logits_and_cam(torch.from_numpy(images))
        torch.testing.assert_close(plain_cam.mean(dim=(2, 3)) + net.classifier.bias, net(torch.from_numpy(images)),
                                   rtol=1e-5, atol=1e-5)


def test_batch_axis_is_dynamic(exported, rng):
    _, session = exported
    one = rng.integers(0, 256, (1, 3, 96, 96), dtype=np.uint8)
    five = np.concatenate([one] * 5)
    single, = session.run(["probabilities"], {"image": one})
    batch, = session.run(["probabilities"], {"image": five})
    assert np.abs(batch - single).max() < 1e-5


@pytest.mark.slow
def test_toy_train_export_predict_round_trip(photo_set, tmp_path, seed):
    from training.photo.train import train_photo

    seen = []
    config = PhotoTrainConfig(data=[photo_set], out=tmp_path / "model", image_size=64, epochs=1, batch_size=16,
                              limit=48, seed=seed, workers=1, cache_dir=tmp_path / "cache")
    result = train_photo(config, on_epoch_end=lambda epoch, metrics: seen.append((epoch, metrics)))
    assert [epoch for epoch, _ in seen] == [1] and 0 <= seen[0][1]["val_mean_roc_auc"] <= 1
    model = ModelDir.load(result.model_dir)  # sha256 in the card matches the file
    assert model.card["labels"] == list(FLAGS) and model.card["input"]["height"] == 64
    assert set(model.card["metrics"]) == {"val", "test"} and result.epochs_run == 1
    assert json.loads((result.model_dir / "card.json").read_text())["training"]["limit"] == 48
    frame_path = sorted((photo_set / "images").glob("*/*.jpg"))[0]
    image = preprocess_photo(frame_path, size=64)[None]
    probabilities, cam = onnx_session(model.onnx_path).run(None, {"image": image})
    assert probabilities.shape == (1, len(FLAGS)) and ((probabilities > 0) & (probabilities < 1)).all()
    assert cam.shape == (1, len(FLAGS), 2, 2)
