"""Rebuild a released photo model's torch weights from its model.onnx (initialisation for fine-tuning).

Releases keep only the ONNX file (checkpoints are not committed), and the exporter folds every
BatchNorm into the convolution before it. The graph's convolutions run in the order of the torch
module's forward pass, so the n-th Conv node's (weight, bias) is the n-th Conv2d of `HazardPhotoNet`
with its BatchNorm turned into the identity plus the folded bias. Fine-tuning such a net keeps its
BatchNorms in eval mode (`freeze_batchnorm`): batch statistics would undo the folding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.photo.data import FLAGS
from training.photo.model import HazardPhotoNet


def _initializers(model) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    for node in model.graph.node:  # the exporter shares equal tensors (zero biases) through Identity nodes
        if node.op_type == "Identity" and node.input[0] in weights:
            weights[node.output[0]] = weights[node.input[0]]
    return weights


def _conv_order(net: HazardPhotoNet, size: int) -> list[nn.Conv2d]:
    """The net's Conv2d modules in the order one forward_all pass calls them."""
    order: list[nn.Conv2d] = []
    hooks = [
        module.register_forward_hook(lambda module, *_: order.append(module))
        for module in net.modules()
        if isinstance(module, nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            net.eval().forward_all(torch.zeros(1, 3, size, size, dtype=torch.uint8))
    finally:
        for hook in hooks:
            hook.remove()
    return order


def _following_batchnorm(net: HazardPhotoNet) -> dict[nn.Conv2d, nn.BatchNorm2d]:
    """Each Conv2d followed directly by a BatchNorm2d inside an nn.Sequential (or MobileNetV2 block)."""
    pairs = {}
    for module in net.modules():
        children = list(module.children())
        for first, second in zip(children, children[1:]):
            if isinstance(first, nn.Conv2d) and isinstance(second, nn.BatchNorm2d):
                pairs[first] = second
    return pairs


def net_from_onnx(
    path: str | Path, *, detection_stride: int = 8, num_detection_classes: int | None = None
) -> HazardPhotoNet:
    """A HazardPhotoNet (stride-8 head as released, or a stride-4 head whose new layers start as a pass
    through of the upsampled stride-8 map) computing what the ONNX file at `path` computes.

    `num_detection_classes`: None keeps the file's; more (a fine-tune that adds classes, see
    training.photo.data.DETECTION_LABELS) adds heat-map channels that start at the prior, so the
    released classes' boxes are unchanged and the new ones find nothing until trained."""
    import onnx

    model = onnx.load(str(path))
    weights = _initializers(model)
    size = int(model.graph.input[0].type.tensor_type.shape.dim[2].dim_value) or 320
    nodes = [node for node in model.graph.node if node.op_type == "Conv"]
    released, convs = _released_net(path, [weights[node.input[1]].shape for node in nodes], size)
    if released.detection_stride == 4 and detection_stride == 8:
        raise ValueError(f"{path}: the file has a stride-4 detection head; read it with detection_stride=4")
    classes = num_detection_classes or released.num_detection_classes
    if classes < released.num_detection_classes:
        raise ValueError(
            f"{path}: the file detects {released.num_detection_classes} classes; a net of {classes} would drop some"
        )
    net = HazardPhotoNet(
        num_classes=len(FLAGS), pretrained=False, detection_stride=detection_stride, num_detection_classes=classes
    )
    batchnorm_after = _following_batchnorm(released)
    with torch.no_grad():
        for node, conv in zip(nodes, convs):
            weight = torch.from_numpy(weights[node.input[1]].copy())
            if weight.shape != conv.weight.shape:
                raise ValueError(
                    f"{path}: Conv {node.name} has weight {tuple(weight.shape)}, expected {tuple(conv.weight.shape)}"
                )
            conv.weight.copy_(weight)
            bias = torch.from_numpy(weights[node.input[2]].copy()) if len(node.input) > 2 else None
            norm = batchnorm_after.get(conv)
            if norm is not None:  # identity BatchNorm carrying the folded bias
                norm.running_mean.zero_()
                norm.running_var.fill_(1.0 - norm.eps)
                norm.weight.fill_(1.0)
                norm.bias.copy_(bias if bias is not None else torch.zeros_like(norm.bias))
            elif bias is not None:
                conv.bias.copy_(bias)
        released.classifier.weight.copy_(torch.from_numpy(weights["net.classifier.weight"].copy()))
        released.classifier.bias.copy_(torch.from_numpy(weights["net.classifier.bias"].copy()))
    state = released.state_dict()
    if detection_stride == 4 and released.detection_stride == 8:
        _start_as_upsampled_stride8(net, state)
    if classes > released.num_detection_classes:
        _add_detection_classes(net, state)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or any(not name.startswith("detection.") for name in missing):
        raise ValueError(f"{path}: weights do not fit the net (missing {missing}, unexpected {unexpected})")
    return net


def _released_net(path, conv_shapes: list[tuple], size: int) -> tuple[HazardPhotoNet, list[nn.Conv2d]]:
    """The HazardPhotoNet whose convolutions the file's Conv nodes are (their weight shapes in graph
    order): stride-8 or stride-4 head, with as many detection classes as the heat-map Conv has outputs."""
    counts = {}
    for stride in (8, 4):
        released = HazardPhotoNet(num_classes=len(FLAGS), pretrained=False, detection_stride=stride)
        convs = _conv_order(released, size)
        if len(convs) == len(conv_shapes):
            classes = conv_shapes[convs.index(released.detection.heat)][0]
            if classes != released.num_detection_classes:
                released = HazardPhotoNet(
                    num_classes=len(FLAGS), pretrained=False, detection_stride=stride, num_detection_classes=classes
                )
                convs = _conv_order(released, size)
            return released, convs
        counts[stride] = len(convs)
    raise ValueError(
        f"{path}: {len(conv_shapes)} Conv nodes, a HazardPhotoNet has {counts[8]} (stride-8 head) "
        f"or {counts[4]} (stride 4)"
    )


def _add_detection_classes(net: HazardPhotoNet, state: dict) -> None:
    """The released heat-map rows first; each added class starts with zero weights at the prior bias
    (the heat map's initial bias in a new net)."""
    new = net.detection.heat
    weight, bias = state["detection.heat.weight"], state["detection.heat.bias"]
    grown_weight = torch.zeros_like(new.weight)
    grown_weight[: len(weight)] = weight
    grown_bias = new.bias.detach().clone()
    grown_bias[: len(bias)] = bias
    state["detection.heat.weight"], state["detection.heat.bias"] = grown_weight, grown_bias


def _start_as_upsampled_stride8(net: HazardPhotoNet, state: dict) -> None:
    """The stride-4 refinement's last BatchNorm starts at zero scale and bias, so the refined map is
    the stride-8 tower's output upsampled; box sizes are regressed in log cells, which are half as
    large at stride 4: the regression's size biases grow by log 2."""
    with torch.no_grad():
        refine = net.detection.refine4
        refine[-1].weight.zero_()
        refine[-1].bias.zero_()
        state["detection.regression.bias"] = state["detection.regression.bias"].clone()
        state["detection.regression.bias"][:2] += float(np.log(2.0))
