"""Tests of concatenated image pairs for the correlation study."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from transferlab.data._pairs import PairedTasks, concat_pairs
from transferlab.data._task import Task

C = 4


def _task(name, counts_train, counts_test, width, seed, channels=1, height=5, float_images=False):
    """Random distinct images; labels in random order; ``counts_*[c]`` samples of class c."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, counts in (("train", counts_train), ("test", counts_test)):
        y = rng.permutation(np.repeat(np.arange(len(counts)), counts))
        shape = (len(y), channels, height, width)
        x = rng.random(shape).astype(np.float32) if float_images else rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    names = tuple(f"{name}{c}" for c in range(len(counts_train)))
    return Task(name=name, class_names=names, recipe={"source": name, "seed": seed}, **arrays)


@pytest.fixture(scope="module")
def left():
    return _task("L", [12, 6, 6, 6], [5, 4, 4, 4], width=3, seed=1)  # class 0 over-represented


@pytest.fixture(scope="module")
def right():
    return _task("R", [5, 7, 6, 8], [3, 4, 5, 3], width=4, seed=2)


def _lookup(images):
    """Map the bytes of each image to its index (images are distinct by construction)."""
    table = {img.tobytes(): i for i, img in enumerate(images)}
    assert len(table) == len(images)
    return table


@pytest.mark.parametrize("beta", [0.0, 0.2, 0.5, 0.8, 1.0])
def test_agreement_rate_matches_closed_form(left, right, beta):
    n = 4000
    pairs = concat_pairs(left, right, beta, n_train=n, n_test=n, seed=7)
    p = beta + (1 - beta) / C
    for split in ("train", "test"):
        agree = int(np.sum(pairs.bob.split(split)[1] == pairs.alice.split(split)[1]))
        lo, hi = stats.binom.interval(0.999, n, p)
        assert lo <= agree <= hi, (split, agree, lo, hi)


def test_beta_one_is_exact_with_a_user_bijection(left, right):
    bij = [2, 0, 3, 1]
    pairs = concat_pairs(left, right, 1.0, n_train=500, n_test=200, bijection=bij, seed=3)
    for split in ("train", "test"):
        np.testing.assert_array_equal(pairs.bob.split(split)[1], np.array(bij)[pairs.alice.split(split)[1]])
    assert pairs.bijection == (2, 0, 3, 1)


def test_joint_law_of_the_two_labels(left, right):
    # P(y_A = a, y_B = b) = (beta 1[b = pi(a)] + (1 - beta)/C) / C; Pearson chi-square
    # goodness of fit over the C*C cells (15 degrees of freedom), at level 0.001.
    beta, n, bij = 0.4, 8000, np.array([1, 2, 3, 0])
    pairs = concat_pairs(left, right, beta, n_train=n, n_test=1, bijection=bij, seed=11)
    observed = np.zeros((C, C))
    np.add.at(observed, (pairs.alice.y_train, pairs.bob.y_train), 1)
    expected = np.full((C, C), (1 - beta) / C / C)
    expected[np.arange(C), bij] += beta / C
    assert stats.chisquare(observed.ravel(), n * expected.ravel()).pvalue > 1e-3


def test_left_class_draw_is_balanced_despite_imbalanced_source(left, right):
    # left has class 0 twice as often; the class is drawn first, uniformly.
    n = 6000
    pairs = concat_pairs(left, right, 0.0, n_train=n, n_test=1, seed=5)
    counts = np.bincount(pairs.alice.y_train, minlength=C)
    assert stats.chisquare(counts).pvalue > 1e-3
    # a uniform sample draw would give class 0 a share of 12/30 = 0.4
    assert counts[0] / n < 0.3


def test_images_are_concatenations_of_source_images_of_the_labelled_classes(left, right):
    pairs = concat_pairs(left, right, 0.5, n_train=300, n_test=120, seed=9)
    for split in ("train", "test"):
        x, y_a = pairs.alice.split(split)
        _, y_b = pairs.bob.split(split)
        lx, ly = left.split(split)
        rx, ry = right.split(split)
        assert x.shape == (len(y_a), 1, 5, 3 + 4)
        left_index, right_index = _lookup(lx), _lookup(rx)
        for img, a, b in zip(x, y_a, y_b):
            i = left_index[np.ascontiguousarray(img[..., :3]).tobytes()]  # KeyError if not a source image
            j = right_index[np.ascontiguousarray(img[..., 3:]).tobytes()]
            np.testing.assert_array_equal(img[..., :3], lx[i])
            np.testing.assert_array_equal(img[..., 3:], rx[j])
            assert ly[i] == a
            assert ry[j] == b


def test_shared_images_names_and_recipes(left, right):
    pairs = concat_pairs(left, right, 0.3, n_train=50, n_test=20, seed=1)
    assert isinstance(pairs, PairedTasks)
    np.testing.assert_array_equal(pairs.alice.x_train, pairs.bob.x_train)
    np.testing.assert_array_equal(pairs.alice.x_test, pairs.bob.x_test)
    assert pairs.alice.class_names == left.class_names
    assert pairs.bob.class_names == right.class_names
    assert pairs.beta == 0.3
    assert pairs.alice.fingerprint != pairs.bob.fingerprint
    op = pairs.alice.recipe["op"]
    assert pairs.alice.recipe["from"] == left.recipe
    assert op["right"] == right.recipe
    assert (op["beta"], op["seed"], op["n_train"], op["n_test"], op["label"]) == (0.3, 1, 50, 20, "left")
    assert pairs.bob.recipe["op"]["label"] == "right"
    with pytest.raises(dataclasses.FrozenInstanceError):
        pairs.beta = 0.5  # type: ignore[misc]


def test_default_sizes_follow_the_left_splits(left, right):
    pairs = concat_pairs(left, right, 0.5)
    assert len(pairs.alice.y_train) == len(left.y_train) == 30
    assert len(pairs.alice.y_test) == len(left.y_test) == 17


def test_determinism_by_seed(left, right):
    a = concat_pairs(left, right, 0.5, n_train=100, n_test=40, seed=4)
    b = concat_pairs(left, right, 0.5, n_train=100, n_test=40, seed=4)
    c = concat_pairs(left, right, 0.5, n_train=100, n_test=40, seed=5)
    d = concat_pairs(left, right, 0.5, n_train=100, n_test=77, seed=4)
    np.testing.assert_array_equal(a.alice.x_train, b.alice.x_train)
    np.testing.assert_array_equal(a.bob.y_test, b.bob.y_test)
    assert a.alice.fingerprint == b.alice.fingerprint != c.alice.fingerprint
    assert not np.array_equal(a.alice.x_train, c.alice.x_train)
    # the train pairs do not depend on the number of test pairs
    np.testing.assert_array_equal(a.alice.x_train, d.alice.x_train)


def test_same_task_on_both_sides_and_inputs_untouched(left):
    before = left.x_train.copy()
    pairs = concat_pairs(left, left, 1.0, n_train=40, n_test=10, seed=2)
    np.testing.assert_array_equal(pairs.alice.y_train, pairs.bob.y_train)
    np.testing.assert_array_equal(left.x_train, before)


def test_mixed_dtypes_become_float_in_unit_range(right):
    floats = _task("F", [3, 3, 3, 3], [2, 2, 2, 2], width=2, seed=8, float_images=True)
    pairs = concat_pairs(floats, right, 0.0, n_train=30, n_test=10, seed=0)
    x = pairs.alice.x_train
    assert x.dtype == np.float32
    table = {img.tobytes() for img in right.x_train}  # uint8 source images
    for img in x:
        assert np.round(img[..., 2:] * 255).astype(np.uint8).tobytes() in table
    assert np.all((x >= 0) & (x <= 1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"beta": -0.1}, r"beta must be a finite number in \[0, 1\]; got -0.1"),
        ({"beta": 1.5}, r"beta must be a finite number in \[0, 1\]; got 1.5"),
        ({"beta": float("nan")}, r"beta must be a finite number in \[0, 1\]; got nan"),
        ({"beta": True}, r"beta must be a finite number in \[0, 1\]; got True"),
        ({"beta": "0.5"}, r"beta must be a finite number in \[0, 1\]; got '0.5'"),
        ({"beta": 0.5, "bijection": [0, 1, 2]}, r"permutation of 0\.\.3"),
        ({"beta": 0.5, "bijection": [0, 1, 1, 3]}, "bijection must hold each of 0..3 exactly once"),
        ({"beta": 0.5, "bijection": [0.0, 1.0, 2.0, 3.0]}, r"permutation of 0\.\.3"),
        ({"beta": 0.5, "n_train": 0}, "n_train must be an integer >= 1"),
        ({"beta": 0.5, "n_test": 2.5}, "n_test must be an integer >= 1"),
        ({"beta": 0.5, "seed": -3}, "seed must be a non-negative integer"),
    ],
)
def test_bad_arguments(left, right, kwargs, match):
    with pytest.raises(ValueError, match=match):
        concat_pairs(left, right, **kwargs)


def test_mismatched_tasks(left):
    three = _task("T", [3, 3, 3], [2, 2, 2], width=3, seed=4)
    with pytest.raises(ValueError, match="same number of classes; got 4 .'L'. and 3 .'T'."):
        concat_pairs(left, three, 0.5)
    tall = _task("H", [3] * 4, [2] * 4, width=3, seed=4, height=6)
    with pytest.raises(ValueError, match=r"same image channels and height.*\(1, 5\).*\(1, 6\)"):
        concat_pairs(left, tall, 0.5)
    rgb = _task("RGB", [3] * 4, [2] * 4, width=3, seed=4, channels=3)
    with pytest.raises(ValueError, match=r"same image channels and height.*\(3, 5\)"):
        concat_pairs(left, rgb, 0.5)
    with pytest.raises(ValueError, match="right must be a transferlab Task"):
        concat_pairs(left, left.x_train, 0.5)


def test_class_without_samples_raises(left):
    gap = _task("G", [3, 3, 3, 3], [2, 0, 2, 2], width=3, seed=6)
    with pytest.raises(ValueError, match=r"right task 'G' has no test samples of class\(es\) \['G1'\]"):
        concat_pairs(left, gap, 0.5)
