"""The staged-model contract shared by every architecture.

A :class:`StagedModel` is an ordered list of named stages, a feature output
(global average pooled when the last stage is spatial) and a replaceable linear
head. Transfer analyses address parts of a network by stage name: features are
extracted after a stage, fine-tuning freezes the first ``l`` stages, module
criticality perturbs one stage.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from torch import nn

from transferlab._validation import check_int, check_scalar

#: Input scaling every built-in model expects: ``uint8`` pixels divided by 255.
PREPROCESSING = {"scale": 1.0 / 255.0, "dtype": "float32"}


def to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Turn ``(N, C, H, W)`` images (``uint8`` 0..255 or float in [0, 1]) into a float tensor."""
    if isinstance(images, torch.Tensor):
        tensor = images
    else:
        arr = np.asarray(images)
        # Tasks hold read-only arrays; torch wants writable memory (a uint8 copy is cheap).
        tensor = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
    if tensor.dtype == torch.uint8:
        return tensor.to(torch.float32).mul_(PREPROCESSING["scale"])
    return tensor.to(torch.float32)


class StagedModel(nn.Module):
    """Base class: ``stages`` (an ordered :class:`~torch.nn.ModuleDict`) then ``head``.

    Subclasses build ``self.stages`` and set ``self.feature_dim``; the base class
    adds the head. ``self.config`` holds the constructor arguments so that
    :func:`~transferlab.models.build` can rebuild the architecture from a
    checkpoint's metadata.
    """

    arch: str = ""

    def __init__(self, config: dict[str, Any], stages: nn.ModuleDict, feature_dim: int, num_classes: int):
        super().__init__()
        num_classes = check_int(num_classes, "num_classes")
        self.config = dict(config, num_classes=num_classes)
        self.stages = stages
        self.feature_dim = int(feature_dim)
        self.head = nn.Linear(self.feature_dim, num_classes)
        self._frozen = 0

    @classmethod
    def input_config(cls, image_shape: tuple[int, int, int]) -> dict[str, Any]:
        """Constructor arguments that fit the model to ``(channels, height, width)`` inputs."""
        return {"in_channels": int(image_shape[0])}

    # -- structure -----------------------------------------------------------------
    @property
    def stage_names(self) -> list[str]:
        """Names of the stages, input to output."""
        return list(self.stages.keys())

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def _stage_index(self, stage: str | int | None) -> int:
        names = self.stage_names
        if stage is None:
            return len(names) - 1
        if isinstance(stage, (int, np.integer)) and not isinstance(stage, bool):
            name = f"stage (an index into the stages {names})"
            return check_scalar(stage, name, numbers.Integral, min_val=-len(names), max_val=len(names) - 1) % len(names)
        if stage not in names:
            raise ValueError(f"unknown stage {stage!r}; stages are {names}")
        return names.index(stage)

    # -- forward -------------------------------------------------------------------
    def forward_stages(self, x: torch.Tensor, stage: str | int | None = None) -> torch.Tensor:
        """Run the stages up to and including ``stage``; return the raw activation."""
        last = self._stage_index(stage)
        for i, module in enumerate(self.stages.values()):
            x = module(x)
            if i == last:
                break
        return x

    @staticmethod
    def pool(activation: torch.Tensor) -> torch.Tensor:
        """Global average pool a spatial activation, flatten anything else to ``(N, D)``."""
        if activation.ndim == 4:
            return activation.mean(dim=(2, 3))
        return activation.flatten(1)

    def forward_features(self, x: torch.Tensor, stage: str | int | None = None) -> torch.Tensor:
        """Features after ``stage`` (default: the last stage), shape ``(N, D)``."""
        return self.pool(self.forward_stages(x, stage))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    # -- transfer operations ---------------------------------------------------------
    def replace_head(self, num_classes: int, *, seed: int | None = None) -> nn.Linear:
        """Put a freshly initialised linear head with ``num_classes`` outputs in place."""
        num_classes = check_int(num_classes, "num_classes")
        device, dtype = self.head.weight.device, self.head.weight.dtype
        if seed is None:
            head = nn.Linear(self.feature_dim, num_classes)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                head = nn.Linear(self.feature_dim, num_classes)
        self.head = head.to(device=device, dtype=dtype)
        self.config["num_classes"] = int(num_classes)
        return self.head

    def freeze_stages(self, n: int) -> None:
        """Freeze the first ``n`` stages: no gradients, and batch norm kept in eval mode.

        ``n = 0`` unfreezes everything; ``n = len(stage_names)`` leaves only the head
        trainable (a linear probe).
        """
        n = check_scalar(n, "n", numbers.Integral, min_val=0, max_val=len(self.stage_names))  # 0..the number of stages
        for i, module in enumerate(self.stages.values()):
            for p in module.parameters():
                p.requires_grad_(i >= n)
        self._frozen = n
        self.train(self.training)

    @property
    def frozen_stages(self) -> int:
        return self._frozen

    def train(self, mode: bool = True) -> "StagedModel":
        super().train(mode)
        # Frozen stages keep their batch-norm statistics: they are part of the frozen function.
        for i, module in enumerate(self.stages.values()):
            if i < self._frozen:
                module.train(False)
        return self
