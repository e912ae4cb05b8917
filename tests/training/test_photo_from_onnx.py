"""A released model.onnx (BatchNorm folded by the exporter) read back into torch weights computes the
same outputs; a stride-4 head built from it starts as the upsampled stride-8 map."""

import numpy as np
import pytest
import torch

from training.photo.config import PhotoTrainConfig
from training.photo.data import FLAGS
from training.photo.export import export_onnx
from training.photo.from_onnx import net_from_onnx
from training.photo.model import ExportedHazardPhoto, HazardPhotoNet
from training.photo.train import _build_model


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    torch.manual_seed(20261206)
    net = HazardPhotoNet(num_classes=len(FLAGS), pretrained=False)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them changes the weights
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        torch.nn.init.normal_(net.detection.heat.weight, std=0.5)
        torch.nn.init.normal_(net.classifier.weight, std=0.05)
    path = export_onnx(net.eval(), tmp_path_factory.mktemp("released") / "model.onnx", size=64, tta_flip=False)
    return net, path


def assert_same_exported_outputs(net, rebuilt, rng) -> tuple:
    """The exported graph's outputs of both nets on two random 64 px images are equal (1e-4); returns net's."""
    images = torch.from_numpy(rng.integers(0, 256, (2, 3, 64, 64), dtype=np.uint8))
    with torch.no_grad():
        expected = ExportedHazardPhoto(net, tta_flip=False)(images)
        got = ExportedHazardPhoto(rebuilt, tta_flip=False)(images)
    for want, have in zip(expected, got):
        assert torch.allclose(want, have, atol=1e-4)
    return expected


def test_weights_read_back_compute_the_released_outputs(released, rng):
    net, path = released
    rebuilt = net_from_onnx(path).eval()
    expected = assert_same_exported_outputs(net, rebuilt, rng)
    assert expected[0].std() > 0.01  # a real output, not a constant
    with torch.no_grad():  # a larger input than exported: fully convolutional
        assert rebuilt.forward_all(torch.zeros(1, 3, 96, 96, dtype=torch.uint8))[2].shape[-1] == 12


def test_stride4_head_starts_as_the_upsampled_stride8_map(released, rng):
    net, path = released
    rebuilt4 = net_from_onnx(path, detection_stride=4).eval()
    images = torch.from_numpy(rng.integers(0, 256, (1, 3, 64, 64), dtype=np.uint8))
    with torch.no_grad():
        _, _, heat8, regression8 = net.forward_all(images)
        _, _, heat4, regression4 = rebuilt4.forward_all(images)
    assert heat4.shape[-1] == 2 * heat8.shape[-1] == 16
    upsampled = torch.nn.functional.interpolate(heat8, scale_factor=2, mode="nearest")
    assert torch.allclose(heat4, upsampled, atol=1e-4)
    # sizes are regressed in log cells: a stride-4 cell is half a stride-8 cell
    size8 = torch.nn.functional.interpolate(regression8[:, :2], scale_factor=2, mode="nearest")
    assert torch.allclose(regression4[:, :2], size8 + np.log(2.0), atol=1e-4)


def test_a_stride4_export_reads_back_as_itself(tmp_path, rng):
    torch.manual_seed(1)
    net = HazardPhotoNet(num_classes=len(FLAGS), pretrained=False, detection_stride=4).eval()
    with torch.no_grad():
        torch.nn.init.normal_(net.detection.refine4[-1].weight, std=0.5)  # not the zero start: a trained map
    path = export_onnx(net, tmp_path / "model.onnx", size=64, tta_flip=False)
    assert_same_exported_outputs(net, net_from_onnx(path, detection_stride=4).eval(), rng)
    with pytest.raises(ValueError, match="has a stride-4 detection head; read it with detection_stride=4"):
        net_from_onnx(path, detection_stride=8)


def test_a_fine_tune_from_a_release_keeps_every_batchnorm_in_eval_mode(released, tmp_path):
    _, path = released
    config = PhotoTrainConfig(init_from=path.parent, out=tmp_path / "out", det_stride=4, freeze_blocks=2)
    net = _build_model(config).train()
    norms = [module for module in net.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    assert norms and not any(module.training for module in norms)
    assert net.classifier.training  # the rest trains
    assert any(parameter.requires_grad for parameter in net.features[3].parameters())


def test_a_release_with_fewer_detection_classes_reads_back_as_itself_or_grows(tmp_path, rng):
    """Releases before `machinery` detect two classes: read back as they are, or grown for a fine-tune
    whose added class starts at the prior (its heat map constant) and leaves the released boxes as they were."""
    from training.photo.data import DETECTION_CLASSES
    from training.photo.detection import HEAT_PRIOR

    torch.manual_seed(2)
    two = HazardPhotoNet(num_classes=len(FLAGS), pretrained=False, num_detection_classes=2).eval()
    with torch.no_grad():
        torch.nn.init.normal_(two.detection.heat.weight, std=0.5)
    path = export_onnx(two, tmp_path / "model.onnx", size=64, tta_flip=False)
    assert net_from_onnx(path).num_detection_classes == 2
    assert_same_exported_outputs(two, net_from_onnx(path).eval(), rng)

    grown = net_from_onnx(path, num_detection_classes=len(DETECTION_CLASSES)).eval()
    assert grown.num_detection_classes == len(DETECTION_CLASSES) == 3
    images = torch.from_numpy(rng.integers(0, 256, (2, 3, 64, 64), dtype=np.uint8))
    with torch.no_grad():
        _, _, heat_two, regression_two = two.forward_all(images)
        _, _, heat_grown, regression_grown = grown.forward_all(images)
    assert torch.allclose(heat_grown[:, :2], heat_two, atol=1e-4)
    assert torch.allclose(regression_grown, regression_two, atol=1e-4)
    assert torch.allclose(torch.sigmoid(heat_grown[:, 2]), torch.tensor(HEAT_PRIOR), atol=1e-6)
    with pytest.raises(ValueError, match="the file detects 3 classes; a net of 2 would drop some"):
        export = export_onnx(grown, tmp_path / "grown.onnx", size=64, tta_flip=False)
        net_from_onnx(export, num_detection_classes=2)
