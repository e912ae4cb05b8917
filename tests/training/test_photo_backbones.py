"""The photo model's other backbones: the SSDLite person detector's MobileNetV2 read from its TensorFlow graph
(checked against the graph itself, evaluated here in numpy), EfficientNet-Lite0, and ONNX export of each."""

import json

import numpy as np
import pytest
import torch
from torchvision.models import mobilenet_v2

from tests.training.toy import toy_config
from training.photo.backbones import (
    BACKBONE_SPECS,
    SSDLITE_SCOPE,
    TFSamePadConv2d,
    backbone_features,
    efficientnet_lite0_features,
    efficientnet_lite0_path,
    efficientnet_lite0_state,
    read_graph,
    ssdlite_graph_path,
    ssdlite_person_mobilenet_v2_state,
)
from training.photo.config import BACKBONES, PhotoTrainConfig
from training.photo.data import FLAGS
from training.photo.evaluate import onnx_session
from training.photo.export import export_onnx
from training.photo.model import ExportedHazardPhoto, HazardPhotoNet

GRAPH_INPUT = "Preprocessor/map/TensorArrayStack/TensorArrayGatherV3"  # the resized image, RGB 0..255, NHWC


@pytest.fixture(scope="module")
def graph():
    return read_graph(ssdlite_graph_path())


def _same_conv(x: np.ndarray, weight: np.ndarray, stride: int, *, depthwise: bool) -> np.ndarray:
    """TensorFlow's Conv2D / DepthwiseConv2dNative with padding 'SAME', NHWC, written from its definition:
    output side ceil(n / stride), the padding total split with the smaller half before."""
    _, height, width, _ = x.shape
    kh, kw = weight.shape[:2]
    out_h, out_w = -(-height // stride), -(-width // stride)
    pad_h = max((out_h - 1) * stride + kh - height, 0)
    pad_w = max((out_w - 1) * stride + kw - width, 0)
    x = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = 0.0
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i : i + stride * (out_h - 1) + 1 : stride, j : j + stride * (out_w - 1) + 1 : stride, :]
            out = out + (patch * weight[i, j, :, 0] if depthwise else patch @ weight[i, j])
    return out


def _evaluate(graph, name: str, feed: dict, cache: dict | None = None) -> np.ndarray:
    """A node's output, computed in float64 numpy from the graph's own ops, tensors and attributes."""
    cache = {} if cache is None else cache
    name = name.split(":")[0]
    if name in feed:
        return feed[name]
    if name in cache:
        return cache[name]
    node = graph.node(name)
    if node.op == "Const":
        return graph.constant(name).astype(np.float64)
    inputs = [_evaluate(graph, item, feed, cache) for item in node.input if not item.startswith("^")]
    attrs = {entry.key: entry.value for entry in node.attr}
    if "data_format" in attrs:
        assert attrs["data_format"].s == b"NHWC"
    if node.op in ("Conv2D", "DepthwiseConv2dNative"):
        strides = list(attrs["strides"].list.i)
        assert attrs["padding"].s == b"SAME" and strides[1] == strides[2] and set(attrs["dilations"].list.i) == {1}
        out = _same_conv(*inputs, strides[1], depthwise=node.op == "DepthwiseConv2dNative")
    elif node.op == "FusedBatchNorm":
        x, gamma, beta, mean, variance = inputs
        assert not attrs["is_training"].b
        out = (x - mean) / np.sqrt(variance + attrs["epsilon"].f) * gamma + beta
    elif node.op == "Relu6":
        out = np.clip(inputs[0], 0, 6)
    elif node.op == "Identity":
        out = inputs[0]
    elif node.op in ("Add", "AddV2"):
        out = inputs[0] + inputs[1]
    elif node.op == "Sub":
        out = inputs[0] - inputs[1]
    elif node.op == "Mul":
        out = inputs[0] * inputs[1]
    else:
        raise NotImplementedError(f"{name}: op {node.op}")
    cache[name] = out
    return out


def _nchw(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 3, 1, 2)


def test_the_ssdlite_graph_maps_onto_every_torchvision_mobilenet_v2_tensor(graph):
    state = ssdlite_person_mobilenet_v2_state(graph)
    features = mobilenet_v2().features
    assert set(state) == set(features.state_dict())
    features.load_state_dict(state)  # strict: every shape matches
    depthwise = graph.constant(f"{SSDLITE_SCOPE}/expanded_conv_1/depthwise/depthwise_weights")  # 3x3x96x1
    np.testing.assert_array_equal(state["2.conv.1.0.weight"][5, 0].numpy(), depthwise[:, :, 5, 0])
    pointwise = graph.constant(f"{SSDLITE_SCOPE}/expanded_conv_1/project/weights")  # 1x1x96x24
    np.testing.assert_array_equal(state["2.conv.2.weight"][:, :, 0, 0].numpy(), pointwise[0, 0].T)


def test_first_block_and_inverted_residuals_compute_what_the_graph_computes(graph):
    """From the same random image: the first conv block (conv + BN + ReLU6) and the features through the
    stride-4 tap (expanded_conv: t=1; expanded_conv_1: a stride-2 depthwise, padded as the graph pads;
    expanded_conv_2: a residual) of the converted net equal the graph's nodes, normalisation included."""
    rng = np.random.default_rng(20261206)
    image = rng.integers(0, 256, (1, 64, 96, 3)).astype(np.float64)
    cache: dict = {}
    feed = {GRAPH_INPUT: image}
    first = _evaluate(graph, f"{SSDLITE_SCOPE}/Conv/Relu6", feed, cache)
    stride4 = _evaluate(graph, f"{SSDLITE_SCOPE}/expanded_conv_2/output", feed, cache)
    assert first.shape == (1, 32, 48, 32) and stride4.shape == (1, 16, 24, 24)
    assert 0 < (first == 6).mean() < 0.5 and (first == 0).mean() < 0.9  # a real range, not all clipped

    net = HazardPhotoNet(num_classes=len(FLAGS), backbone="mobilenet_v2_ssdlite_person").eval()
    pixels = torch.from_numpy(_nchw(image).astype(np.float32))
    with torch.no_grad():
        normalised = (pixels - net.mean) / net.std
        torch_first = net.features[0](normalised).numpy()
        torch_stride4 = net.feature_maps(pixels)[0].numpy()
    assert np.abs(torch_first - _nchw(first)).max() < 1e-4
    assert np.abs(torch_stride4 - _nchw(stride4)).max() < 1e-4

    plain = mobilenet_v2().features.eval()  # torch's symmetric padding, same weights: not the graph
    plain.load_state_dict(ssdlite_person_mobilenet_v2_state(graph))
    with torch.no_grad():
        assert np.abs(plain[0](normalised).numpy() - _nchw(first)).max() > 0.1


@pytest.mark.parametrize("kernel", [3, 5])
def test_stride2_convolutions_pad_as_tensorflow_same(kernel, rng):
    conv = TFSamePadConv2d(4, 6, kernel, stride=2, bias=False)
    x = rng.standard_normal((1, 10, 14, 4))
    with torch.no_grad():
        out = conv(torch.from_numpy(_nchw(x)).float()).numpy()
    weight = conv.weight.detach().numpy().transpose(2, 3, 1, 0)  # OIHW -> HWIO
    np.testing.assert_allclose(out, _nchw(_same_conv(x, weight, 2, depthwise=False)), atol=1e-5)


def test_tf_same_pad_conv_refuses_other_strides():
    with pytest.raises(ValueError, match=r"TFSamePadConv2d is for stride 2 without padding, got \(1, 1\), \(0, 0\)"):
        TFSamePadConv2d(4, 4, 3, stride=1)


def test_efficientnet_lite0_takes_every_tensor_of_the_package_but_its_classifier():
    package = torch.load(efficientnet_lite0_path(), map_location="cpu", weights_only=True)
    state = efficientnet_lite0_state()
    features = efficientnet_lite0_features()
    assert set(state) == set(features.state_dict())
    assert len(state) == len([name for name in package if not name.startswith("_fc.")])
    features.load_state_dict(state)
    torch.testing.assert_close(features[0][0].weight, package["_conv_stem.weight"], rtol=0, atol=0)
    torch.testing.assert_close(features[12].depthwise[0].weight, package["_blocks.11._depthwise_conv.weight"])
    assert features[12].depthwise[0].kernel_size == (5, 5) and isinstance(features[12].depthwise[0], TFSamePadConv2d)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_each_backbone_taps_strides_4_8_16_and_32(backbone):
    net = HazardPhotoNet(num_classes=len(FLAGS), backbone=backbone, pretrained=False).eval()
    with torch.no_grad():
        maps = net.feature_maps(torch.zeros(1, 3, 96, 128, dtype=torch.uint8))
    spec = BACKBONE_SPECS[backbone]
    assert [tuple(x.shape) for x in maps] == [
        (1, channels, 96 // stride, 128 // stride)
        for channels, stride in zip([*spec.channels, spec.last_channel], [4, 8, 16, 32], strict=True)
    ]


def test_backbone_names_are_the_configs():
    assert tuple(BACKBONE_SPECS) == BACKBONES


def test_the_default_backbone_is_torchvisions_imagenet_mobilenet_v2():
    net = HazardPhotoNet(num_classes=len(FLAGS))
    assert not any(isinstance(module, TFSamePadConv2d) for module in net.modules())
    assert net.mean.flatten().tolist() == pytest.approx([0.485 * 255, 0.456 * 255, 0.406 * 255])
    assert net.taps == (3, 6, 13)


def test_a_backbone_that_does_not_exist_is_refused():
    with pytest.raises(ValueError, match=r"backbone must be one of \['mobilenet_v2_imagenet', "):
        PhotoTrainConfig(backbone="resnet50")
    with pytest.raises(ValueError, match=r"backbone must be one of .*, got 'resnet50'"):
        backbone_features("resnet50", pretrained=False)


def test_init_from_is_only_for_the_default_backbone(tmp_path):
    with pytest.raises(ValueError, match="init_from starts from a released mobilenet_v2_imagenet graph; backbone "):
        PhotoTrainConfig(init_from=tmp_path, backbone="efficientnet_lite0")


@pytest.mark.parametrize("backbone", BACKBONES[1:])
def test_each_backbone_exports_and_onnxruntime_matches_torch(backbone, tmp_path, rng):
    torch.manual_seed(20261206)
    net = HazardPhotoNet(num_classes=len(FLAGS), backbone=backbone).eval()
    torch.nn.init.normal_(net.classifier.weight, std=0.05)
    torch.nn.init.normal_(net.detection.heat.weight, std=0.5)
    path = export_onnx(net, tmp_path / "model.onnx", size=96, tta_flip=True)
    images = rng.integers(0, 256, (2, 3, 96, 96), dtype=np.uint8)
    outputs = onnx_session(path).run(None, {"image": images})
    with torch.no_grad():
        expected = ExportedHazardPhoto(net, tta_flip=True)(torch.from_numpy(images))
    for got, want in zip(outputs, expected, strict=True):
        assert np.abs(got - want.numpy()).max() < 1e-4
    assert outputs[0].std() > 0.01


@pytest.mark.slow
@pytest.mark.parametrize("backbone", BACKBONES)
def test_a_toy_run_of_each_backbone_exports_what_torch_computes(backbone, photo_set, tmp_path_factory, rng):
    """One epoch on 48 real photos at 64 px with each backbone, released; the exported graph's outputs
    equal the trained torch net's (its best.pt) on random images."""
    from training.photo.train import train_photo

    work = tmp_path_factory.mktemp(f"toy-{backbone}")
    config = toy_config(
        photo_set, out=work / "model", cache_dir=tmp_path_factory.getbasetemp() / "toy-cache", backbone=backbone
    )
    result = train_photo(config)
    card = json.loads((result.model_dir / "card.json").read_text())
    assert card["training_config"]["backbone"] == backbone
    net = HazardPhotoNet(num_classes=len(FLAGS), pretrained=False, backbone=backbone)
    net.load_state_dict(torch.load(config.checkpoint_dir / "best.pt", weights_only=False)["state"])
    graph = ExportedHazardPhoto(net.eval(), tta_flip=False, ppe_modes=card["detection"]["ppe_probability"])
    images = rng.integers(0, 256, (2, 3, 64, 64), dtype=np.uint8)
    outputs = onnx_session(result.model_dir / "model.onnx").run(None, {"image": images})
    with torch.no_grad():
        expected = graph(torch.from_numpy(images))
    for got, want in zip(outputs, expected, strict=True):
        assert np.abs(got - want.numpy()).max() < 1e-4
