"""scikit-learn's handwritten digits, resized to 28x28, as a :class:`Task`.

The data are the 1,797 8x8 images of the UCI "Optical Recognition of
Handwritten Digits" set (E. Alpaydin, C. Kaynak, 1998) that ship with
scikit-learn (:func:`sklearn.datasets.load_digits`): 32x32 bitmaps of 43
writers, each 4x4 block counted, so a pixel holds 0..16.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from scipy import ndimage

from transferlab._validation import check_int, check_scalar
from transferlab.data._task import Task

__all__ = ["load_digits"]

_SIDE = 28
_MAX_VALUE = 16.0


def load_digits(*, test_fraction: float = 0.3, seed: int = 0) -> Task:
    """Load scikit-learn's 8x8 digits, upsampled to 28x28, with a stratified split.

    Each image is resized by bilinear interpolation with pixel-area
    alignment (``scipy.ndimage.zoom(order=1, grid_mode=True)``, zero outside
    the image), then ``0..16`` is rescaled to ``0..255``:
    ``round(255 * v / 16)``. The split is
    ``sklearn.model_selection.train_test_split(stratify=labels)``, so every
    class has (up to rounding) the same share in both splits.

    Parameters
    ----------
    test_fraction : float, default 0.3
        Share of the 1,797 images in the test split, in ``(0, 1)``; each split
        must receive at least one image per class.
    seed : int, default 0
        Seed of the split (``random_state``).

    Returns
    -------
    Task
        Images ``uint8`` of shape ``(N, 1, 28, 28)``, white digit on black;
        labels ``int64`` in ``0..9``; class names ``"0"`` .. ``"9"``.

    Examples
    --------
    >>> task = load_digits()
    >>> task.x_train.shape, task.x_test.shape
    ((1257, 1, 28, 28), (540, 1, 28, 28))
    """
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    seed = check_int(seed, "seed", 0)
    test_fraction = check_scalar(
        test_fraction, "test_fraction", numbers.Real, min_val=0, max_val=1, include_boundaries="neither"
    )
    bunch = _sk_load_digits()
    labels = bunch.target.astype(np.int64)
    n, n_classes = labels.size, int(labels.max()) + 1
    n_test = math.ceil(test_fraction * n)
    if n_test < n_classes or n - n_test < n_classes:
        raise ValueError(
            f"test_fraction={test_fraction} gives {n_test} test and {n - n_test} train images of {n}; "
            f"each split needs at least {n_classes} (one per class)"
        )
    images = _resize(bunch.images)
    train_idx, test_idx = train_test_split(
        np.arange(n), test_size=test_fraction, stratify=labels, random_state=seed, shuffle=True
    )
    recipe = {"source": "digits", "test_fraction": test_fraction, "seed": seed, "size": _SIDE}
    return Task(
        name="digits",
        x_train=images[train_idx],
        y_train=labels[train_idx],
        x_test=images[test_idx],
        y_test=labels[test_idx],
        class_names=tuple(str(d) for d in range(n_classes)),
        recipe=recipe,
    )


def _resize(images: np.ndarray) -> np.ndarray:
    """``(N, 8, 8)`` values 0..16 -> ``(N, 1, 28, 28)`` uint8 0..255."""
    src = np.asarray(images, dtype=np.float64)
    factor = _SIDE / src.shape[-1]
    big = ndimage.zoom(src, (1.0, factor, factor), order=1, grid_mode=True, mode="grid-constant", cval=0.0)
    scaled = np.clip(np.rint(big * (255.0 / _MAX_VALUE)), 0, 255).astype(np.uint8)
    return scaled[:, None, :, :]
