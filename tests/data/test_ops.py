"""Tests of the label and sample-count operations: subset_classes, relabel, k_shot, subsample."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from transferlab.data._ops import k_shot, relabel, subsample, subset_classes
from transferlab.data._task import Task

NAMES = ("ant", "bee", "cat", "dog", "eel")


def _id_task(train_counts, test_counts, seed=0, names=NAMES):
    """A task whose images encode their own sample id (pixels 0, 1) and split (pixel 2).

    ``train_counts[c]`` samples of class ``c`` in train, likewise for test; the
    labels are in a random order so that no operation can rely on sorted labels.
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    for split_id, (split, counts) in enumerate((("train", train_counts), ("test", test_counts))):
        y = rng.permutation(np.repeat(np.arange(len(counts)), counts))
        n = len(y)
        x = rng.integers(0, 256, size=(n, 1, 4, 4), dtype=np.uint8)
        ids = np.arange(n)
        x[:, 0, 0, 0] = ids % 256
        x[:, 0, 0, 1] = ids // 256
        x[:, 0, 0, 2] = split_id
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    return Task(name="toy", class_names=names[: len(train_counts)], recipe={"source": "toy", "seed": seed}, **arrays)


def _ids(x):
    return x[:, 0, 0, 0].astype(np.int64) + 256 * x[:, 0, 0, 1].astype(np.int64)


def _snapshot(task):
    return {k: getattr(task, k).copy() for k in ("x_train", "y_train", "x_test", "y_test")}


def _assert_unchanged(task, snap):
    for key, value in snap.items():
        np.testing.assert_array_equal(getattr(task, key), value)


def _assert_rows_from(derived_x, derived_y, source_x, source_y, label_map):
    """Every derived row is the source row with its id, and its label maps from the source label."""
    ids = _ids(derived_x)
    np.testing.assert_array_equal(derived_x, source_x[ids])
    np.testing.assert_array_equal(derived_y, label_map[source_y[ids]])
    return ids


# -- subset_classes -------------------------------------------------------------------
def test_subset_classes_keeps_listed_classes_in_given_order():
    task = _id_task([6, 7, 8, 9, 10], [3, 3, 4, 4, 5])
    snap = _snapshot(task)
    sub = subset_classes(task, [3, "ant", 2])
    assert sub.class_names == ("dog", "ant", "cat")
    label_map = np.array([1, -1, 2, 0, -1])  # old class -> new label, written out by hand
    for split in ("train", "test"):
        x, y = sub.split(split)
        src_x, src_y = task.split(split)
        ids = _assert_rows_from(x, y, src_x, src_y, label_map)
        # exactly the samples of the kept classes, in their original order
        np.testing.assert_array_equal(ids, np.flatnonzero(np.isin(src_y, [0, 2, 3])))
    np.testing.assert_array_equal(np.bincount(sub.y_train), [9, 6, 8])
    np.testing.assert_array_equal(np.bincount(sub.y_test), [4, 3, 4])
    _assert_unchanged(task, snap)


def test_subset_classes_by_name_or_index_is_the_same_task():
    task = _id_task([3, 3, 3, 3, 3], [2, 2, 2, 2, 2])
    by_index = subset_classes(task, [4, 1])
    by_name = subset_classes(task, ["eel", "bee"])
    mixed = subset_classes(task, [np.int64(4), "bee"])
    for other in (by_name, mixed):
        np.testing.assert_array_equal(other.x_train, by_index.x_train)
        np.testing.assert_array_equal(other.y_test, by_index.y_test)
        assert other.fingerprint == by_index.fingerprint
    assert by_index.fingerprint != task.fingerprint
    assert subset_classes(task, [1, 4]).fingerprint != by_index.fingerprint  # order matters
    assert by_index.recipe == {"from": task.recipe, "op": {"op": "subset_classes", "classes": ["eel", "bee"]}}


@pytest.mark.parametrize(
    ("classes", "match"),
    [
        (["ant", "bea"], "unknown class 'bea'.*did you mean 'bee'"),
        ([0, 5], r"every class in classes \(task .* has 5 classes\) must be an integer in \[0, 4\] or a string; got 5"),
        ([0, -1], r"every class in classes .* must be an integer in \[0, 4\] or a string; got -1"),
        ([1, "bee"], "must not repeat a class; 'bee'"),
        (["cat"], "at least 2 classes"),
        ([], "at least 2 classes"),
        ("ant", "sequence of class indices or names"),
        ([0, 1.0], r"every class in classes .* must be an integer in \[0, 4\] or a string; got 1\.0"),
        ([True, 2], r"every class in classes .* must be an integer in \[0, 4\] or a string; got True"),
    ],
)
def test_subset_classes_errors(classes, match):
    task = _id_task([2] * 5, [2] * 5)
    with pytest.raises(ValueError, match=match):
        subset_classes(task, classes)


# -- relabel --------------------------------------------------------------------------
def test_relabel_merges_groups_and_drops_the_rest():
    task = _id_task([4, 5, 6, 7, 8], [2, 3, 2, 3, 2])
    snap = _snapshot(task)
    out = relabel(task, {"small": ["bee", 0], "big": [3], "fish": ["eel"]})
    assert out.class_names == ("small", "big", "fish")
    label_map = np.array([0, 0, -1, 1, 2])  # cat is in no group: dropped
    for split in ("train", "test"):
        x, y = out.split(split)
        src_x, src_y = task.split(split)
        ids = _assert_rows_from(x, y, src_x, src_y, label_map)
        np.testing.assert_array_equal(ids, np.flatnonzero(src_y != 2))
    np.testing.assert_array_equal(np.bincount(out.y_train), [9, 7, 8])
    np.testing.assert_array_equal(np.bincount(out.y_test), [5, 3, 2])
    _assert_unchanged(task, snap)


def test_relabel_group_order_defines_labels_and_fingerprint():
    task = _id_task([3] * 5, [2] * 5)
    a = relabel(task, {"x": [0, 1], "y": [2, 3, 4]})
    b = relabel(task, {"y": [2, 3, 4], "x": [0, 1]})
    np.testing.assert_array_equal(a.y_train, 1 - b.y_train)
    assert a.fingerprint != b.fingerprint
    same = relabel(task, {"x": ["ant", "bee"], "y": ["cat", "dog", "eel"]})
    assert same.fingerprint == a.fingerprint
    assert a.recipe["op"] == {"op": "relabel", "groups": [["x", ["ant", "bee"]], ["y", ["cat", "dog", "eel"]]]}


@pytest.mark.parametrize(
    ("groups", "match"),
    [
        ({"a": [0, 1], "b": [1, 2]}, "class 'bee' .index 1. appears in groups 'a' and 'b'"),
        ({"a": [0, "ant"], "b": [2]}, "appears twice in that group"),
        ({"a": [0], "b": []}, r"groups\['b'\] must list at least one class"),
        ({"a": [0, 1]}, "at least 2 groups"),
        ({"a": [0], "b": ["cow"]}, "unknown class 'cow'"),
        ({"a": [0], "b": [9]}, r"every class in groups\['b'\] .* must be an integer in \[0, 4\] or a string; got 9"),
        ({"a": [0], 3: [1]}, "keys must be non-empty strings"),
        ([("a", [0]), ("b", [1])], "must be a mapping"),
        ({"a": "ant", "b": [1]}, "sequence of class indices or names"),
    ],
)
def test_relabel_errors(groups, match):
    task = _id_task([2] * 5, [2] * 5)
    with pytest.raises(ValueError, match=match):
        relabel(task, groups)


# -- k_shot ---------------------------------------------------------------------------
def test_k_shot_is_stratified_without_replacement_and_keeps_test():
    task = _id_task([9, 12, 10, 15, 11], [4, 4, 4, 4, 4])
    snap = _snapshot(task)
    out = k_shot(task, 5, seed=3)
    np.testing.assert_array_equal(np.bincount(out.y_train, minlength=5), [5] * 5)
    ids = _assert_rows_from(out.x_train, out.y_train, task.x_train, task.y_train, np.arange(5))
    assert len(np.unique(ids)) == len(ids)  # without replacement
    assert np.all(np.diff(ids) > 0)  # sorted by original index
    np.testing.assert_array_equal(out.x_test, task.x_test)
    np.testing.assert_array_equal(out.y_test, task.y_test)
    assert out.class_names == task.class_names
    assert out.recipe == {"from": task.recipe, "op": {"op": "k_shot", "k": 5, "seed": 3}}
    _assert_unchanged(task, snap)


def test_k_shot_follows_the_documented_draw():
    # Reference: the draw spelled out in the docstring, one class at a time.
    task = _id_task([9, 12, 10, 15, 11], [1] * 5, seed=4)
    rng = np.random.default_rng(11)
    expected = np.sort(
        np.concatenate([rng.choice(np.flatnonzero(task.y_train == c), 4, replace=False) for c in range(5)])
    )
    np.testing.assert_array_equal(_ids(k_shot(task, 4, seed=11).x_train), expected)


def test_k_shot_seed_determinism():
    task = _id_task([20] * 5, [1] * 5)
    first, again, other = k_shot(task, 3, seed=7), k_shot(task, 3, seed=7), k_shot(task, 3, seed=8)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert first.fingerprint == again.fingerprint
    assert not np.array_equal(_ids(first.x_train), _ids(other.x_train))
    assert first.fingerprint != other.fingerprint


def test_k_shot_is_uniform_within_each_class():
    # Over many seeds each sample of a class of n is picked with probability k/n:
    # counts are Binomial(n_seeds, k/n); check each against its 99.9% interval
    # (Bonferroni over the 10 samples of class 0: 0.9999 each).
    task = _id_task([10, 4], [1, 1], names=("a", "b"))
    n_seeds, k = 300, 3
    counts = np.zeros(len(task.y_train), dtype=np.int64)
    for seed in range(n_seeds):
        counts[_ids(k_shot(task, k, seed=seed).x_train)] += 1
    lo, hi = stats.binom.interval(0.9999, n_seeds, k / 10)
    class0 = counts[task.y_train == 0]
    assert np.all((class0 >= lo) & (class0 <= hi)), class0
    assert counts.sum() == n_seeds * 2 * k


def test_k_shot_all_samples_when_k_is_the_class_size():
    task = _id_task([4, 4, 4], [1, 1, 1], names=("a", "b", "c"))
    out = k_shot(task, 4, seed=5)
    np.testing.assert_array_equal(out.x_train, task.x_train)
    np.testing.assert_array_equal(out.y_train, task.y_train)


def test_k_shot_too_few_samples_names_the_class_and_count():
    task = _id_task([6, 2, 6, 3, 6], [1] * 5)
    with pytest.raises(ValueError, match=r"k=4 needs 4 train.*'bee' \(index 1\) has 2, 'dog' \(index 3\) has 3"):
        k_shot(task, 4)


@pytest.mark.parametrize(("k", "seed"), [(1, 0), (3, 7), (4, 11)])
def test_k_shot_of_a_task_and_of_image_data_keep_the_same_samples(k, seed):
    # One k-shot draw for both kinds of data: the same labels and seed keep the same samples.
    from transferlab.data._external import ImageData

    task = _id_task([9, 12, 10, 15, 11], [1] * 5, seed=4)
    ids = _ids(task.x_train)
    data = ImageData("mine", [np.full((2, 2, 1), i, np.uint8) for i in ids], task.y_train,
                     [], np.zeros(0, np.int64), task.class_names, fingerprint="f")
    from_task = _ids(k_shot(task, k, seed=seed).x_train)
    few = data.k_shot(k, seed=seed)
    from_data = np.array([int(image[0, 0, 0]) for image in few.x_train])
    rng = np.random.default_rng(seed)  # the documented draw (see test_k_shot_follows_the_documented_draw)
    expected = np.sort(np.concatenate([rng.choice(np.flatnonzero(task.y_train == c), k, replace=False)
                                       for c in range(5)]))
    np.testing.assert_array_equal(from_task, expected)
    np.testing.assert_array_equal(from_data, expected)
    np.testing.assert_array_equal(few.y_train, task.y_train[expected])
    with pytest.raises(ValueError, match=r"shots=16 needs 16 train"):  # the option's name in the message
        data.k_shot(16, seed=seed)


@pytest.mark.parametrize(("k", "seed", "match"), [(0, 0, "k must be an integer >= 1"), (2.0, 0, "k must be"),
                                                  (2, -1, "seed must be a non-negative integer"),
                                                  (2, 1.5, "seed must be")])
def test_k_shot_bad_arguments(k, seed, match):
    with pytest.raises(ValueError, match=match):
        k_shot(_id_task([3, 3], [1, 1], names=("a", "b")), k, seed=seed)


def test_operations_reject_a_non_task():
    with pytest.raises(ValueError, match="task must be a transferlab Task; got dict"):
        k_shot({"x": 1}, 2)


# -- subsample ------------------------------------------------------------------------
def test_subsample_train_matches_k_shot():
    task = _id_task([8, 9, 10], [5, 6, 7], names=("a", "b", "c"))
    a = subsample(task, train_per_class=3, seed=2)
    b = k_shot(task, 3, seed=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.x_test, task.x_test)


def test_subsample_test_split_only_and_both():
    task = _id_task([8, 9, 10], [5, 6, 7], names=("a", "b", "c"))
    snap = _snapshot(task)
    only_test = subsample(task, test_per_class=4, seed=1)
    np.testing.assert_array_equal(only_test.x_train, task.x_train)
    np.testing.assert_array_equal(np.bincount(only_test.y_test), [4, 4, 4])
    ids = _assert_rows_from(only_test.x_test, only_test.y_test, task.x_test, task.y_test, np.arange(3))
    assert np.all(np.diff(ids) > 0)
    assert np.all(only_test.x_test[:, 0, 0, 2] == 1)  # drawn from the test split

    both = subsample(task, train_per_class=2, test_per_class=4, seed=1)
    np.testing.assert_array_equal(np.bincount(both.y_train), [2, 2, 2])
    # the test selection does not depend on whether train is subsampled
    np.testing.assert_array_equal(both.x_test, only_test.x_test)
    assert both.recipe["op"] == {"op": "subsample", "train_per_class": 2, "test_per_class": 4, "seed": 1}
    _assert_unchanged(task, snap)


def test_subsample_none_keeps_everything():
    task = _id_task([3, 3], [2, 2], names=("a", "b"))
    out = subsample(task)
    np.testing.assert_array_equal(out.x_train, task.x_train)
    np.testing.assert_array_equal(out.x_test, task.x_test)


def test_subsample_is_strict():
    task = _id_task([8, 8, 8], [5, 2, 5], names=("a", "b", "c"))
    with pytest.raises(ValueError, match=r"test_per_class=3 needs 3 test samples.*'b' \(index 1\) has 2"):
        subsample(task, test_per_class=3)
    with pytest.raises(ValueError, match="train_per_class must be an integer >= 1; got 0"):
        subsample(task, train_per_class=0)


def test_subsample_test_split_follows_the_documented_draw():
    # Documented: the test split draws with default_rng([seed, 1]), class by class.
    task = _id_task([2, 2, 2], [6, 7, 8], names=("a", "b", "c"), seed=9)
    rng = np.random.default_rng([4, 1])
    expected = np.sort(
        np.concatenate([rng.choice(np.flatnonzero(task.y_test == c), 3, replace=False) for c in range(3)])
    )
    np.testing.assert_array_equal(_ids(subsample(task, test_per_class=3, seed=4).x_test), expected)
