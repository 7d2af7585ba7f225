"""The :class:`Task` type: an immutable labelled image task with a fixed split."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Bumped when the way sources turn recipes into pixels changes, so that old
#: cache entries keyed by a fingerprint are never mistaken for new ones.
DATA_VERSION = "1"

#: Bytes a generated 28 x 28 sample takes while it is rendered (float64 pixels, the uint8 copy, its label).
_BYTES_PER_GENERATED_SAMPLE = 28 * 28 * (8 + 1) + 8


def _memory_limit() -> int:
    """Bytes a task may take: the machine's physical memory (64 GiB where it cannot be read)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 64 * 2**30


def _check_generated_size(source: str, n_classes: int, n_train: int, n_test: int) -> None:
    """Refuse, before anything is allocated, sizes whose rendered images would not fit in memory."""
    needed = n_classes * (n_train + n_test) * _BYTES_PER_GENERATED_SAMPLE  # Python ints: no overflow
    if needed > _memory_limit():
        raise ValueError(
            f"{source} with n_train_per_class={n_train} and n_test_per_class={n_test} ({n_classes} classes) "
            f"needs about {needed:,} bytes to render, more than this machine's memory ({_memory_limit():,} "
            "bytes); ask for fewer images per class (--per-class)"
        )


def _frozen_images(images: Any, name: str) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[:, None, :, :]
    if arr.ndim != 4:
        raise ValueError(
            f"{name} must be (n_samples, height, width) or (n_samples, channels, height, width); "
            f"got shape {arr.shape}"
        )
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"{name} must be uint8 or float in [0, 1]; got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or Inf")
        arr = arr.astype(np.float32)
    arr = np.ascontiguousarray(arr).view()  # a view: freezing it leaves the caller's array writable
    arr.setflags(write=False)
    return arr


def _frozen_labels(labels: Any, n: int, n_classes: int, name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be 1-D with {n} entries (one per image); got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integers in 0..{n_classes - 1}; got dtype {arr.dtype}")
    if n and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(
            f"{name} must lie in 0..{n_classes - 1} (one per class name); "
            f"got range {arr.min()}..{arr.max()}"
        )
    arr = np.ascontiguousarray(arr, dtype=np.int64).view()
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Task:
    """A labelled image classification task with a fixed train/test split.

    Images are ``(n_samples, channels, height, width)`` arrays, ``uint8`` in
    ``0..255`` (procedural sources may give ``float32`` in ``[0, 1]``); labels
    are ``int64`` in ``0..n_classes-1``. Arrays are read-only: operations such
    as :func:`~transferlab.data.k_shot` return new tasks.

    Parameters
    ----------
    name : str
        Human-readable name, e.g. ``"glyphs:greek"``.
    x_train, y_train, x_test, y_test : ndarray
        The split. 3-D image arrays get a channel axis.
    class_names : tuple of str
        One name per class; ``len(class_names)`` is the number of classes.
    recipe : dict
        JSON-serialisable description of how the task was made from its
        sources. Its digest is the :attr:`fingerprint`.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    recipe: dict = field(repr=False)

    def __post_init__(self) -> None:
        names = tuple(str(c) for c in self.class_names)
        if len(names) < 2:
            raise ValueError(f"class_names must name at least 2 classes; got {names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"class_names must be unique; got {names!r}")
        object.__setattr__(self, "class_names", names)
        for split in ("train", "test"):
            x = _frozen_images(getattr(self, f"x_{split}"), f"x_{split}")
            y = _frozen_labels(getattr(self, f"y_{split}"), x.shape[0], len(names), f"y_{split}")
            object.__setattr__(self, f"x_{split}", x)
            object.__setattr__(self, f"y_{split}", y)
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"x_train and x_test must have the same image shape; got "
                f"{self.x_train.shape[1:]} and {self.x_test.shape[1:]}"
            )
        try:
            canonical = json.dumps(self.recipe, sort_keys=True, separators=(",", ":"))
        except TypeError as exc:
            raise ValueError(f"recipe must be JSON-serialisable: {exc}") from None
        object.__setattr__(self, "recipe", json.loads(canonical))

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one image."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def fingerprint(self) -> str:
        """Stable 16-hex-digit digest of the recipe (and the data version)."""
        canonical = json.dumps(
            {"recipe": self.recipe, "data_version": DATA_VERSION},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(images, labels)`` of ``"train"`` or ``"test"``."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
        return getattr(self, f"x_{split}"), getattr(self, f"y_{split}")

    def derive(self, name: str, op: dict, **arrays: Any) -> "Task":
        """A new task made from this one by ``op``; its recipe records the chain."""
        fields = {
            "x_train": self.x_train,
            "y_train": self.y_train,
            "x_test": self.x_test,
            "y_test": self.y_test,
            "class_names": self.class_names,
        }
        fields.update(arrays)
        return Task(name=name, recipe={"from": self.recipe, "op": op}, **fields)

    def __repr__(self) -> str:
        return (
            f"Task({self.name!r}, classes={self.n_classes}, train={len(self.y_train)}, "
            f"test={len(self.y_test)}, image_shape={self.image_shape}, "
            f"fingerprint={self.fingerprint!r})"
        )
