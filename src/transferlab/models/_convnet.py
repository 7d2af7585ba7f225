"""A plain convolutional network: conv-BN-ReLU stages with max pooling in between."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from transferlab._validation import check_int, check_int_sequence
from transferlab.models._base import StagedModel
from transferlab.models._registry import register_arch


def _init_conv_bn(module: nn.Module) -> None:
    """He-normal (fan-out, ReLU) convolutions, unit-scale zero-shift batch norm.

    He, Zhang, Ren, Sun (2015), "Delving deep into rectifiers": ``W ~ N(0, 2 / fan_out)``
    with ``fan_out = out_channels * k_h * k_w``; the same scheme as torchvision's ResNets.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@register_arch("convnet")
class ConvNet(StagedModel):
    """VGG-style ConvNet: stages ``conv1, conv2, ...``, global average pooling, linear head.

    Stage ``i`` is ``Conv3x3(widths[i], padding=1, no bias) -> BatchNorm -> ReLU``,
    followed by a 2x2 max pool (stride 2) in every stage but the last. The
    features are the global average pool of the last stage,
    ``feature_dim = widths[-1]``. An ``H x W`` input gives the last stage a
    spatial size of ``ceil(H / 2**(L-1)) x ceil(W / 2**(L-1))`` for ``L`` stages.

    Parameters
    ----------
    in_channels : int, default 1
    widths : sequence of int, default (32, 64, 128)
        Output channels of each stage.
    num_classes : int, default 10

    Notes
    -----
    Pools use ``ceil_mode=True`` so that deep configurations never shrink a small
    image to zero pixels; for the default 3 stages and 28x28 or 28x56 inputs
    this is identical to floor pooling (28 -> 14 -> 7). Convolutions are
    initialised He-normal (fan-out), batch norm with weight 1 and bias 0.

    Examples
    --------
    >>> import torch
    >>> model = ConvNet(widths=(4, 8), num_classes=3)
    >>> tuple(model.forward_stages(torch.zeros(2, 1, 28, 56), "conv1").shape)
    (2, 4, 14, 28)
    >>> tuple(model.forward_features(torch.zeros(2, 1, 28, 56)).shape)
    (2, 8)
    """

    arch = "convnet"

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (32, 64, 128),
        num_classes: int = 10,
    ):
        in_channels = check_int(in_channels, "in_channels")
        widths = check_int_sequence(widths, "widths")
        num_classes = check_int(num_classes, "num_classes")
        stages = nn.ModuleDict()
        channels = in_channels
        for i, width in enumerate(widths):
            layers: OrderedDict[str, nn.Module] = OrderedDict(
                conv=nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
                bn=nn.BatchNorm2d(width),
                relu=nn.ReLU(),
            )
            if i < len(widths) - 1:
                layers["pool"] = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
            stages[f"conv{i + 1}"] = nn.Sequential(layers)
            channels = width
        _init_conv_bn(stages)
        super().__init__({"in_channels": in_channels, "widths": widths}, stages, widths[-1], num_classes)
