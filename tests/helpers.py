"""Tiny models and tasks shared by the tests: fast on two CPU cores, deterministic.

They depend only on :class:`~transferlab.models._base.StagedModel` and
:class:`~transferlab.data._task.Task`, never on the real architectures.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from transferlab.data._task import Task
from transferlab.models._base import StagedModel

#: Side of the square images made by :func:`tiny_task`.
TINY_SIZE = 12


class TinyConvNet(StagedModel):
    """Two conv stages (conv 3x3, batch norm, ReLU), the first max-pooled; ``feature_dim = 2 * width``."""

    arch = "tiny_convnet"

    def __init__(self, num_classes: int = 3, *, in_channels: int = 1, width: int = 4, seed: int | None = 0):
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            stages = nn.ModuleDict(
                {
                    "conv1": nn.Sequential(
                        nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                        nn.BatchNorm2d(width),
                        nn.ReLU(),
                        nn.MaxPool2d(2),
                    ),
                    "conv2": nn.Sequential(
                        nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
                        nn.BatchNorm2d(2 * width),
                        nn.ReLU(),
                    ),
                }
            )
            super().__init__({"in_channels": in_channels, "width": width}, stages, 2 * width, num_classes)


class TinyMLP(StagedModel):
    """Flatten, then two hidden layers with ReLU as stages ``fc1`` and ``fc2``."""

    arch = "tiny_mlp"

    def __init__(
        self, num_classes: int = 3, *, in_features: int = TINY_SIZE * TINY_SIZE, hidden: int = 16, seed: int | None = 0
    ):
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            stages = nn.ModuleDict(
                {
                    "fc1": nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU()),
                    "fc2": nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU()),
                }
            )
            super().__init__({"in_features": in_features, "hidden": hidden}, stages, hidden, num_classes)


#: Class patterns of :func:`tiny_task`: a function of (row, col) inside the patch.
_PATTERNS = (
    lambda i, j: np.ones_like(i, dtype=bool),  # solid
    lambda i, j: i % 2 == 0,  # horizontal stripes
    lambda i, j: j % 2 == 0,  # vertical stripes
    lambda i, j: (i + j) % 2 == 0,  # checkerboard
    lambda i, j: (i + j) % 3 == 0,  # diagonal stripes
    lambda i, j: (i - j) % 3 == 0,  # anti-diagonal stripes
)
_PATCH = 8


def _tiny_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = labels.shape[0]
    images = rng.integers(0, 60, size=(n, 1, TINY_SIZE, TINY_SIZE), dtype=np.uint8)
    brightness = rng.integers(180, 256, size=n, dtype=np.uint8)
    i, j = np.indices((_PATCH, _PATCH))
    lo = (TINY_SIZE - _PATCH) // 2
    for k, pattern in enumerate(_PATTERNS):
        rows = np.flatnonzero(labels == k)
        patch = images[rows, 0, lo : lo + _PATCH, lo : lo + _PATCH]
        patch[:, pattern(i, j)] = brightness[rows, None]
        images[rows, 0, lo : lo + _PATCH, lo : lo + _PATCH] = patch
    return images


def tiny_task(
    n_classes: int = 3, n_per_class: int = 20, *, n_test_per_class: int | None = None, seed: int = 0
) -> Task:
    """A synthetic, easily separable ``1x12x12`` uint8 task.

    Each image is uniform noise in ``0..59`` with a centred ``8x8`` patch whose
    bright pixels (value ``180..255``) draw the class pattern: solid, horizontal
    stripes, vertical stripes, checkerboard, diagonal, anti-diagonal stripes
    (so that both a pixel-wise MLP and a globally pooled ConvNet separate the
    classes). At most 6 classes. Train and test are
    drawn independently from the same distribution; labels are sorted by class
    in train and test (the trainers shuffle).
    """
    if n_test_per_class is None:
        n_test_per_class = n_per_class
    if not 2 <= n_classes <= len(_PATTERNS):
        raise ValueError(f"n_classes must be in 2..{len(_PATTERNS)}; got {n_classes}")
    rng = np.random.default_rng(seed)
    y_train = np.repeat(np.arange(n_classes), n_per_class)
    y_test = np.repeat(np.arange(n_classes), n_test_per_class)
    return Task(
        name=f"tiny{n_classes}",
        x_train=_tiny_images(y_train, rng),
        y_train=y_train,
        x_test=_tiny_images(y_test, rng),
        y_test=y_test,
        class_names=tuple(f"c{k}" for k in range(n_classes)),
        recipe={
            "source": "tests.tiny",
            "n_classes": n_classes,
            "n_per_class": n_per_class,
            "n_test_per_class": n_test_per_class,
            "seed": seed,
        },
    )


class TinyNetwork(nn.Module):
    """A plain ``nn.Module`` (not a StagedModel), 1-channel images to 7 logits: the "module" architecture's network.

    conv 3x3 (1 -> 4, 36 + 4 = 40) and batch norm (8) feed a global average pool and
    ``fc`` (4 -> 7), whose input is the features (``fc`` becomes Identity there).
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 7)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def registry_archs() -> list:
    """Every registered architecture as a pytest param; ``"hub"`` skipped when timm (an extra) is missing."""
    import importlib.util

    from transferlab.models._registry import available_archs

    missing = importlib.util.find_spec("timm") is None
    return [pytest.param(a, marks=pytest.mark.skip(reason="the timm extra is not installed (make test-extras)"))
            if a == "hub" and missing else a for a in available_archs()]


@pytest.fixture
def provided_network():
    """While the test runs, a ``"module"`` architecture built without a network copies a :class:`TinyNetwork`."""
    from transferlab.models._network_arch import provided_module

    torch.manual_seed(0)
    with provided_module(TinyNetwork()):
        yield
