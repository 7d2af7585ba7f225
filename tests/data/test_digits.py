"""scikit-learn digits at 28x28: shapes, the resize against a slow reference, the stratified split."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_load_digits

from transferlab.data._digits import _resize, load_digits


@pytest.fixture(scope="module")
def task():
    return load_digits()


def test_shapes_and_types(task):
    # train_test_split puts ceil(0.3 * 1797) = 540 images in the test split.
    assert task.x_train.shape == (1257, 1, 28, 28)
    assert task.x_test.shape == (540, 1, 28, 28)
    assert task.x_train.dtype == np.uint8 and task.y_train.dtype == np.int64
    assert task.class_names == tuple("0123456789")
    assert task.name == "digits"
    assert task.recipe == {"source": "digits", "test_fraction": 0.3, "seed": 0, "size": 28}


def test_range_is_rescaled_to_bytes(task):
    images = np.concatenate([task.x_train, task.x_test])
    assert images.min() == 0
    assert images.max() >= 240  # 16 -> 255 at the centre of a fully inked 8x8 pixel
    # Corners are background in the 8x8 originals (mean value ~0) and stay dark.
    assert images[:, 0, 0, 0].mean() < 5


def _bilinear_reference(image: np.ndarray, side: int) -> np.ndarray:
    """Slow bilinear resize, pixel areas aligned: output pixel o samples input (o + 0.5) * n / side - 0.5."""
    n = image.shape[0]
    padded = np.zeros((n + 2, n + 2))
    padded[1:-1, 1:-1] = image  # zero outside the image
    out = np.zeros((side, side))
    for i in range(side):
        for j in range(side):
            y, x = (i + 0.5) * n / side - 0.5 + 1, (j + 0.5) * n / side - 0.5 + 1
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            fy, fx = y - y0, x - x0
            out[i, j] = (
                (1 - fy) * (1 - fx) * padded[y0, x0]
                + (1 - fy) * fx * padded[y0, x0 + 1]
                + fy * (1 - fx) * padded[y0 + 1, x0]
                + fy * fx * padded[y0 + 1, x0 + 1]
            )
    return out


def test_resize_matches_slow_bilinear_reference():
    originals = sk_load_digits().images[:5]
    fast = _resize(originals)[:, 0].astype(np.float64)
    for img, got in zip(originals, fast, strict=True):
        expected = np.clip(np.rint(_bilinear_reference(img, 28) * 255 / 16), 0, 255)
        np.testing.assert_allclose(got, expected, atol=1.0)


def test_resize_of_constant_image_is_constant_inside():
    out = _resize(np.full((1, 8, 8), 16.0))[0, 0]
    np.testing.assert_array_equal(out[3:-3, 3:-3], 255)


def test_splits_partition_the_dataset(task):
    expected = _resize(sk_load_digits().images)[:, 0].reshape(1797, -1)
    got = np.concatenate([task.x_train, task.x_test])[:, 0].reshape(1797, -1)
    # Same multiset of images: sort rows lexicographically and compare.
    np.testing.assert_array_equal(got[np.lexsort(got.T[::-1])], expected[np.lexsort(expected.T[::-1])])
    labels = sk_load_digits().target
    np.testing.assert_array_equal(
        np.bincount(np.concatenate([task.y_train, task.y_test])), np.bincount(labels)
    )


@pytest.mark.parametrize("test_fraction", [0.3, 0.5, 0.1])
def test_split_is_stratified(test_fraction):
    task = load_digits(test_fraction=test_fraction, seed=3)
    per_class = np.bincount(sk_load_digits().target)
    n_test = np.bincount(task.y_test, minlength=10)
    # Stratification: every class gets its share of the test split, up to rounding.
    assert np.all(np.abs(n_test - test_fraction * per_class) <= 1.0)
    np.testing.assert_array_equal(np.bincount(task.y_train, minlength=10) + n_test, per_class)


def test_seed_determines_split():
    a, b, c = load_digits(seed=1), load_digits(seed=1), load_digits(seed=2)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_test, c.x_test)
    assert a.fingerprint == b.fingerprint != c.fingerprint


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"test_fraction": 0.0}, r"test_fraction must be a finite number in \(0, 1\); got 0.0"),
        ({"test_fraction": 1.0}, r"test_fraction must be a finite number in \(0, 1\); got 1.0"),
        ({"test_fraction": "0.3"}, r"test_fraction must be a finite number in \(0, 1\); got '0.3'"),
        ({"test_fraction": 0.001}, "at least 10"),
        ({"seed": -1}, "seed must be an integer"),
        ({"seed": True}, "seed must be an integer"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits(**kwargs)
