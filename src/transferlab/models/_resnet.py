"""A small CIFAR-style residual network (He et al. 2016) with named stages."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from transferlab._validation import check_int, check_int_sequence
from transferlab.models._base import StagedModel
from transferlab.models._convnet import _init_conv_bn
from transferlab.models._registry import register_arch


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Residual block ``y = ReLU(BN(conv(ReLU(BN(conv(x))))) + shortcut(x))``.

    Both convolutions are 3x3; the first carries the stride. The shortcut is the
    identity when shape is preserved, otherwise a strided 1x1 convolution with
    batch norm (projection shortcut, option B of He et al. 2016, "Deep residual
    learning for image recognition", CVPR).

    Parameters
    ----------
    in_channels, out_channels : int
    stride : int, default 1
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                    bn=nn.BatchNorm2d(out_channels),
                )
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


@register_arch("resnet")
class ResNet(StagedModel):
    """CIFAR-style ResNet: a stem, then one stage of :class:`BasicBlock` per entry of ``blocks``.

    Stages, input to output:

    - ``stem``: ``Conv3x3(width) -> BatchNorm -> ReLU`` at full resolution;
    - ``layer1, layer2, ...``: ``blocks[i]`` basic blocks with ``width * 2**i``
      channels; the first block of every stage after ``layer1`` has stride 2
      (and a projection shortcut).

    Features are the global average pool of the last stage,
    ``feature_dim = width * 2**(len(blocks) - 1)``. With ``blocks=(n, n, n)`` and
    ``width=16`` this is the ``6n+2``-layer CIFAR ResNet of He, Zhang, Ren, Sun
    (2016), "Deep residual learning for image recognition", CVPR, section 4.2
    (``n=1`` gives ResNet-8, ``n=3`` ResNet-20).

    Parameters
    ----------
    in_channels : int, default 1
    width : int, default 16
        Channels of the stem and of ``layer1``.
    blocks : sequence of int, default (1, 1, 1)
        Number of basic blocks in each stage ``layer1, layer2, ...``.
    num_classes : int, default 10

    Notes
    -----
    Convolutions are initialised He-normal (fan-out), batch norm with weight 1
    and bias 0. An ``H x W`` input gives the last stage a spatial size of
    ``ceil(H / 2**(S-1)) x ceil(W / 2**(S-1))`` for ``S = len(blocks)``.

    Examples
    --------
    >>> model = ResNet(width=4, blocks=(1, 1), num_classes=3)
    >>> model.stage_names, model.feature_dim
    (['stem', 'layer1', 'layer2'], 8)
    >>> tuple(model.forward_stages(torch.zeros(2, 1, 28, 28), "layer2").shape)
    (2, 8, 14, 14)
    """

    arch = "resnet"
    #: The residual block of every stage (a subclass may swap it, e.g. for adapters).
    block: type[nn.Module] = BasicBlock

    def __init__(
        self,
        in_channels: int = 1,
        width: int = 16,
        blocks: Sequence[int] = (1, 1, 1),
        num_classes: int = 10,
    ):
        in_channels = check_int(in_channels, "in_channels")
        width = check_int(width, "width")
        blocks = check_int_sequence(blocks, "blocks")
        num_classes = check_int(num_classes, "num_classes")
        stages = nn.ModuleDict()
        stages["stem"] = nn.Sequential(
            OrderedDict(conv=_conv3x3(in_channels, width), bn=nn.BatchNorm2d(width), relu=nn.ReLU())
        )
        channels = width
        for i, n_blocks in enumerate(blocks):
            out_channels = width * 2**i
            layer = []
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                layer.append(self.block(channels, out_channels, stride))
                channels = out_channels
            stages[f"layer{i + 1}"] = nn.Sequential(*layer)
        _init_conv_bn(stages)
        super().__init__(
            {"in_channels": in_channels, "width": width, "blocks": blocks}, stages, channels, num_classes
        )
