"""A multi-layer perceptron with one named stage per hidden layer."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from transferlab._validation import check_int, check_int_sequence
from transferlab.models._base import StagedModel
from transferlab.models._registry import register_arch


class _FlattenInput(nn.Module):
    """Flatten ``(N, *in_shape)`` to ``(N, prod(in_shape))``, refusing any other input shape."""

    def __init__(self, in_shape: Sequence[int]):
        super().__init__()
        self.in_shape = tuple(in_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(
                f"MLP input must have shape (N, {', '.join(map(str, self.in_shape))}) "
                f"(the model's in_shape); got {tuple(x.shape)}"
            )
        return x.flatten(1)

    def extra_repr(self) -> str:
        return f"in_shape={self.in_shape}"


@register_arch("mlp")
class MLP(StagedModel):
    """Fully connected network: stages ``fc1, fc2, ...`` of ``Linear + ReLU``, then a linear head.

    Stage ``i`` computes :math:`h_i = \\max(0, W_i h_{i-1} + b_i)` with
    :math:`h_0 = \\operatorname{vec}(x)`; the first stage flattens the image.
    The features are the last hidden layer, ``feature_dim = hidden[-1]``. This
    is the MLP of the correlation study (Mohamud & Brink), whose layers are
    frozen one by one.

    Parameters
    ----------
    in_shape : sequence of 3 int, default (1, 28, 28)
        ``(channels, height, width)`` of the inputs; the MLP accepts only this shape.
    hidden : sequence of int, default (256, 128)
        Widths of the hidden layers, one stage each.
    num_classes : int, default 10
        Outputs of the linear head.

    Notes
    -----
    Weights use PyTorch's default ``nn.Linear`` initialisation (uniform,
    He et al. 2015 with ``a = sqrt(5)``).

    Examples
    --------
    >>> model = MLP(in_shape=(1, 8, 8), hidden=(16, 4), num_classes=3)
    >>> model.stage_names, model.feature_dim
    (['fc1', 'fc2'], 4)
    >>> tuple(model(torch.zeros(2, 1, 8, 8)).shape)
    (2, 3)
    """

    arch = "mlp"

    @classmethod
    def input_config(cls, image_shape: tuple[int, int, int]) -> dict[str, Any]:
        """An MLP needs the whole input shape: its first layer is ``C*H*W`` wide."""
        return {"in_shape": [int(v) for v in image_shape]}

    def __init__(
        self,
        in_shape: Sequence[int] = (1, 28, 28),
        hidden: Sequence[int] = (256, 128),
        num_classes: int = 10,
    ):
        in_shape = check_int_sequence(in_shape, "in_shape", length=3)
        hidden = check_int_sequence(hidden, "hidden")
        num_classes = check_int(num_classes, "num_classes")
        stages = nn.ModuleDict()
        fan_in = in_shape[0] * in_shape[1] * in_shape[2]
        for i, width in enumerate(hidden):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            if i == 0:
                layers["flatten"] = _FlattenInput(in_shape)
            layers["linear"] = nn.Linear(fan_in, width)
            layers["relu"] = nn.ReLU()
            stages[f"fc{i + 1}"] = nn.Sequential(layers)
            fan_in = width
        super().__init__({"in_shape": in_shape, "hidden": hidden}, stages, hidden[-1], num_classes)
