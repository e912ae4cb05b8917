"""ONNX export: parity with PyTorch, the CAM identity, and a toy train -> export -> predict round trip."""

import json
import math

import numpy as np
import pytest
import torch

from runtime.modeldir import ModelDir
from tests.training.toy import toy_config
from training.photo.config import PhotoTrainConfig
from training.photo.data import FLAGS, preprocess_photo
from training.photo.detection import MAX_DETECTIONS
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
    probabilities, cam, detections = session.run(None, {"image": images})
    with torch.no_grad():
        expected, expected_cam, expected_detections = ExportedHazardPhoto(net, tta_flip=True)(torch.from_numpy(images))
    assert probabilities.dtype == np.float32 and probabilities.shape == (3, len(FLAGS))
    assert np.abs(probabilities - expected.numpy()).max() < 1e-4
    assert np.abs(cam - expected_cam.numpy()).max() < 1e-3
    assert probabilities.std() > 0.01  # a real, non-constant output
    assert detections.dtype == np.float32 and detections.shape == (3, MAX_DETECTIONS, 6)
    assert np.abs(detections - expected_detections.numpy()).max() < 1e-4


@pytest.fixture(scope="module")
def detecting(tmp_path_factory):
    """A toy network whose heat maps have real peaks, exported with the PPE probability taken from them."""
    torch.manual_seed(20261202)
    net = HazardPhotoNet(num_classes=len(FLAGS), pretrained=False).eval()
    torch.nn.init.normal_(net.detection.heat.weight, std=0.5)
    torch.nn.init.constant_(net.detection.heat.bias, -1.0)
    torch.nn.init.normal_(net.detection.regression.weight, std=0.2)
    with torch.no_grad():  # positive shifts before the head's ReLUs: no flat zero features, so no tied peaks
        for module in net.detection.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.bias.uniform_(0.1, 0.5)
    modes = {"missing_helmet": "peak", "missing_hi_vis": "mean"}
    path = export_onnx(net, tmp_path_factory.mktemp("det") / "model.onnx", size=64, tta_flip=False, ppe_modes=modes)
    return net, modes, onnx_session(path)


def test_detections_are_sorted_normalised_and_padded(detecting, rng):
    _, _, session = detecting
    images = rng.integers(0, 256, (2, 3, 64, 64), dtype=np.uint8)
    (detections,) = session.run(["detections"], {"image": images})
    scores = detections[:, :, 4]
    assert (np.diff(scores, axis=1) <= 0).all() and scores[:, 0].min() > 0.05
    real = scores > 0
    boxes = detections[..., :4][real]
    assert (
        ((boxes >= 0) & (boxes <= 1)).all()
        and (boxes[:, 2] >= boxes[:, 0]).all()
        and (boxes[:, 3] >= boxes[:, 1]).all()
    )
    assert set(np.unique(detections[..., 5][real])) <= {0.0, 1.0, 2.0}  # no_helmet, no_wear, machinery
    assert (detections[~real] == 0).all() and (~real).any()  # 2 classes × 8×8 cells < D: zero rows at the end


def test_ppe_probability_follows_the_detections_as_the_card_says(detecting, rng):
    net, modes, session = detecting
    images = rng.integers(0, 256, (2, 3, 64, 64), dtype=np.uint8)
    probabilities, detections = session.run(["probabilities", "detections"], {"image": images})
    with torch.no_grad():
        torch_probs, _, torch_dets = ExportedHazardPhoto(net, tta_flip=False, ppe_modes=modes)(torch.from_numpy(images))
        image_probs = torch.sigmoid(net(torch.from_numpy(images))).numpy()
    assert np.abs(probabilities - torch_probs.numpy()).max() < 1e-5
    assert np.abs(detections - torch_dets.numpy()).max() < 1e-4
    helmet_peak = np.where(detections[..., 5] == 0, detections[..., 4], 0).max(axis=1)
    hi_vis_peak = np.where(detections[..., 5] == 1, detections[..., 4], 0).max(axis=1)
    np.testing.assert_allclose(probabilities[:, 0], helmet_peak, atol=1e-6)
    np.testing.assert_allclose(probabilities[:, 1], (image_probs[:, 1] + hi_vis_peak) / 2, atol=1e-5)
    np.testing.assert_allclose(probabilities[:, 2:], image_probs[:, 2:], atol=1e-5)


def test_cam_mean_plus_bias_is_the_logit(exported, rng):
    net, session = exported
    images = rng.integers(0, 256, (2, 3, 96, 96), dtype=np.uint8)
    probabilities, cam = session.run(["probabilities", "cam"], {"image": images})
    assert cam.shape == (2, len(FLAGS), 3, 3)
    logits = cam.mean(axis=(2, 3)) + net.classifier.bias.detach().numpy()
    assert np.abs(1 / (1 + np.exp(-logits)) - probabilities).max() < 1e-5
    with torch.no_grad():  # and for a single un-flipped pass too
        plain_logits, plain_cam = net.logits_and_cam(torch.from_numpy(images))
        torch.testing.assert_close(
            plain_cam.mean(dim=(2, 3)) + net.classifier.bias, net(torch.from_numpy(images)), rtol=1e-5, atol=1e-5
        )


def test_batch_axis_is_dynamic(exported, rng):
    _, session = exported
    one = rng.integers(0, 256, (1, 3, 96, 96), dtype=np.uint8)
    five = np.concatenate([one] * 5)
    (single,) = session.run(["probabilities"], {"image": one})
    (batch,) = session.run(["probabilities"], {"image": five})
    assert np.abs(batch - single).max() < 1e-5


@pytest.fixture(scope="module")
def toy_model(photo_set, tmp_path_factory):
    """One epoch on 48 real photos at 64 px: the whole train -> export -> card path in seconds."""
    from training.photo.train import train_photo

    work = tmp_path_factory.mktemp("toy")
    seen = []
    config = toy_config(photo_set, out=work / "model", cache_dir=work / "cache")
    result = train_photo(config, on_epoch_end=lambda epoch, metrics: seen.append((epoch, metrics)))
    return result, seen, work


@pytest.mark.slow
def test_toy_train_export_predict_round_trip(toy_model, photo_set):
    result, seen, _ = toy_model
    assert [epoch for epoch, _ in seen] == [1] and 0 <= seen[0][1]["val_mean_roc_auc"] <= 1
    model = ModelDir.load(result.model_dir)  # sha256 in the card matches the file
    assert model.card["labels"] == list(FLAGS) and model.card["input"]["height"] == 64
    assert set(model.card["metrics"]) == {"val", "test", "audit", "boxes", "boxes_operating"}
    assert result.epochs_run == 1
    operating = model.card["metrics"]["boxes_operating"]["test"]
    assert all(
        entry["all"]["threshold"] == model.card["detection"]["score_thresholds"][name]
        for name, entry in operating.items()
    )
    assert set(model.card["urgent_thresholds"]) == {"fire_smoke"}
    recorded = json.loads((result.model_dir / "card.json").read_text())["training_config"]
    assert recorded["limit"] == 48
    paths = [*recorded["data"], recorded["out"], recorded["cache_dir"], recorded["checkpoint_dir"]]
    assert not [path for path in paths if path.startswith("/")]  # project-relative, else the name only
    photo = sorted((photo_set / "images").glob("*/*.jpg"))[0]
    probabilities, cam, detections = onnx_session(model.onnx_path).run(
        None, {"image": preprocess_photo(photo, size=64)[None]}
    )
    assert probabilities.shape == (1, len(FLAGS)) and ((probabilities > 0) & (probabilities < 1)).all()
    assert cam.shape == (1, len(FLAGS), 2, 2)


@pytest.mark.slow
def test_training_is_repeatable_with_the_same_seed(toy_model, photo_set):
    from training.photo.train import train_photo

    result, seen, work = toy_model
    config = toy_config(photo_set, out=work / "again", cache_dir=work / "cache")
    again = train_photo(config)
    assert again.history[0]["train_loss"] == seen[0][1]["train_loss"]
    assert again.metrics == result.metrics


@pytest.mark.slow
def test_training_returns_the_weight_average(photo_set, tmp_path):
    """With an average that barely moves after its first step, the returned weights stay nearer the
    start than the last step's weights do."""
    import dataclasses

    import torch

    from training.photo.train import _build_model, _fit, _Photos

    config = toy_config(photo_set, epochs=2, cache_dir=tmp_path, ema_decay=0.0)
    photos = _Photos(config)
    torch.manual_seed(config.seed)
    start = _build_model(config).state_dict()

    def distance_from_start(ema_decay: float) -> float:
        net, _, _ = _fit(dataclasses.replace(config, ema_decay=ema_decay), photos, None)
        return sum(
            (value.float() - start[name].float()).norm().item()
            for name, value in net.state_dict().items()
            if value.is_floating_point()
        )

    assert distance_from_start(1 - 1e-9) < 0.9 * distance_from_start(0.0)


@pytest.mark.slow
def test_final_stage_trains_and_exports_at_the_final_size(photo_set, tmp_path):
    """Progressive resizing: the main epochs on 48 px crops, then --final-epochs on 64 px crops from
    the main stage's best weights, both cut from 96 px photos; val, test, the card and the ONNX
    input are at the final size, and no 48 px copy of the photos is ever decoded."""
    from training.photo.train import train_photo

    config = PhotoTrainConfig(
        data=[photo_set],
        out=tmp_path / "model",
        image_size=48,
        crop_source_size=96,
        final_size=64,
        epochs=1,
        final_epochs=1,
        batch_size=16,
        limit=48,
        seed=7,
        workers=1,
        cache_dir=tmp_path / "cache",
        ema_decay=0.0,
    )
    result = train_photo(config)
    assert [(entry["epoch"], entry["image_size"]) for entry in result.history] == [(1, 48), (2, 64)]
    # 64 px: val, test and the audit photos; 96 px: the crop sources
    assert sorted({path.name.split("-")[1] for path in (tmp_path / "cache").glob("*.npy")}) == ["64px", "96px"]
    assert result.card["input"]["height"] == result.card["preprocess"]["size"][0] == 64
    assert result.card["training_config"]["final_epochs"] == 1 and result.epochs_run == 2
    session = onnx_session(ModelDir.load(result.model_dir).onnx_path)
    assert session.get_inputs()[0].shape[2:] == [64, 64]
    photo = sorted((photo_set / "images").glob("*/*.jpg"))[0]
    probabilities, cam, _ = session.run(None, {"image": preprocess_photo(photo, size=64)[None]})
    assert cam.shape == (1, len(FLAGS), 2, 2) and ((probabilities > 0) & (probabilities < 1)).all()


@pytest.mark.slow
def test_a_final_stage_that_does_not_beat_the_main_one_is_not_returned(photo_set, tmp_path, monkeypatch):
    """Val scores are scripted: the final stage's epoch scores lower, so the main stage's best
    weights come back, exactly as a run without the final stage returns them."""
    import dataclasses
    from itertools import chain, repeat

    from training.photo import train

    config = toy_config(photo_set, image_size=48, cache_dir=tmp_path, ema_decay=0.0)
    photos = train._Photos(config)

    def fit(final_epochs: int, scores: list[float]):
        scripted = chain(scores, repeat(math.nan))
        monkeypatch.setattr(train, "val_scores", lambda *args, **kwargs: {"mean": next(scripted)})
        return train._fit(dataclasses.replace(config, final_size=48, final_epochs=final_epochs), photos, None)

    main_only, _, main_best = fit(0, [0.8])
    with_final, history, best_epoch = fit(1, [0.8, 0.7])
    assert (main_best, best_epoch, len(history)) == (1, 1, 2)
    for name, value in main_only.state_dict().items():
        assert torch.equal(value, with_final.state_dict()[name]), name
    improved, _, best_epoch = fit(1, [0.8, 0.9])
    assert best_epoch == 2 and any(
        not torch.equal(value, improved.state_dict()[name]) for name, value in main_only.state_dict().items()
    )


@pytest.mark.slow
def test_patience_counts_from_the_end_of_the_warm_up(photo_set, tmp_path, monkeypatch):
    """Scripted val scores fall from the first epoch on. Six epochs warm up for ceil(0.2 × 6) = 2, so with
    patience 1 the run stops after epoch 3, not after epoch 2 (counting from the best, warm-up epoch 1)."""
    import dataclasses
    from itertools import chain, repeat

    from training.photo import train

    config = toy_config(photo_set, image_size=48, cache_dir=tmp_path, ema_decay=0.0)
    photos = train._Photos(config)
    scripted = chain([0.9, 0.8, 0.7, 0.6], repeat(0.5))
    monkeypatch.setattr(train, "val_scores", lambda *args, **kwargs: {"mean": next(scripted)})
    _, history, best_epoch = train._fit(dataclasses.replace(config, final_size=48, epochs=6, patience=1), photos, None)
    assert (best_epoch, len(history)) == (1, 3)


@pytest.mark.slow
def test_release_winner_copies_the_best_on_val_and_records_the_study(toy_model, tmp_path):
    import shutil

    from training.photo.study import read_row, release_winner

    result, _, _ = toy_model
    shutil.copytree(result.model_dir, tmp_path / "64px")
    row = read_row(tmp_path / "64px")
    assert (row["image_size"], row["epochs"], row["epochs_run"]) == (64, 1, 1)
    undefined = {**row, "model_dir": str(tmp_path / "missing"), "val_ppe_mean_roc_auc": None}
    rows = [
        {**row, "val_ppe_mean_roc_auc": 0.5},
        {**row, "model_dir": str(tmp_path / "missing"), "val_ppe_mean_roc_auc": 0.4},
        undefined,
    ]
    card = release_winner(rows, out=tmp_path / "released")
    assert ModelDir.load(tmp_path / "released").card["sha256"] == result.card["sha256"]
    assert [row["chosen"] for row in card["resolution_study"]] == [True, False, False]
    with pytest.raises(ValueError, match="no study row has a val ROC AUC for both PPE flags"):
        release_winner([undefined], out=tmp_path / "none")


@pytest.mark.slow
def test_evaluate_writes_report_with_plots(toy_model, photo_set, tmp_path):
    import pandas as pd

    from training.photo.report import evaluate_model

    result, _, work = toy_model
    manifest = pd.read_csv(photo_set / "manifest.csv", dtype=str)
    subset = manifest[manifest["split"] == "val"].groupby("source").head(5).copy()
    subset["image"] = [str(photo_set / name) for name in subset["image"]]
    (tmp_path / "data").mkdir()
    subset.to_csv(tmp_path / "data" / "manifest.csv", index=False)
    metrics = evaluate_model(
        result.model_dir,
        data=[tmp_path / "data"],
        split="val",
        report_dir=tmp_path / "report",
        cache_dir=work / "cache",
        workers=1,
    )
    assert set(metrics) == {"val"}  # the folder has no audit_labels.csv and no boxes.csv
    assert metrics["val"]["missing_helmet"]["n"] == int(subset["missing_helmet"].notna().sum())
    assert set(metrics["val"]["fire_smoke"]["per_source"]) == set(subset.loc[subset["fire_smoke"].notna(), "source"])
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| missing_helmet | all |" in report and "![fire_smoke](pr_fire_smoke.png)" in report
    assert (tmp_path / "report" / "pr_fire_smoke.png").read_bytes()[:4] == b"\x89PNG"
    assert 'src="pr_missing_helmet.png"' in (tmp_path / "report" / "report.html").read_text()
    with pytest.raises(ValueError, match="no photos in split 'test'"):
        evaluate_model(
            result.model_dir,
            data=[tmp_path / "data"],
            split="test",
            report_dir=tmp_path / "r2",
            cache_dir=work / "cache",
            workers=1,
        )
