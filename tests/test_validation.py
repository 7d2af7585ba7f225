"""Tests for the shared argument checks (``transferlab._validation``)."""

import math
import numbers

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferlab._validation import (
    _check_labels,
    check_features,
    check_features_labels,
    check_int,
    check_int_sequence,
    check_nonnegative,
    check_rows,
    check_scalar,
    check_seed,
    check_source_features,
    check_source_probs,
    check_targets,
)


def _features(n=6, d=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


# --------------------------------------------------------------------------- features


def test_features_1d_message_is_exact():
    with pytest.raises(ValueError) as info:
        check_features_labels(np.zeros(128), np.zeros(128, dtype=int))
    assert str(info.value) == "features must be 2-D (n_samples, n_features); got shape (128,)"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_features_non_finite_names_features(bad):
    X = _features()
    X[2, 1] = bad
    with pytest.raises(ValueError, match=r"features must be finite.*\(2, 1\)"):
        check_features_labels(X, [0, 0, 0, 1, 1, 1])


def test_features_non_numeric():
    with pytest.raises(ValueError, match="features must be numeric"):
        check_features([["a", "b"], ["c", "d"]])


@pytest.mark.parametrize("shape", [(0, 3), (4, 0)])
def test_features_empty(shape):
    with pytest.raises(ValueError, match="features must be non-empty"):
        check_features(np.zeros(shape))


def test_features_float32_becomes_float64_and_c_contiguous_copy():
    X32 = np.asfortranarray(_features().astype(np.float32))
    X, _, _ = check_features_labels(X32, [0, 0, 0, 1, 1, 1])
    assert X.dtype == np.float64
    assert X.flags.c_contiguous
    np.testing.assert_array_equal(X, X32.astype(np.float64))


def test_features_never_aliases_the_caller():
    X0 = _features()
    before = X0.copy()
    X, _, _ = check_features_labels(X0, [0, 0, 0, 1, 1, 1])
    X[:] = 0.0
    np.testing.assert_array_equal(X0, before)


def test_features_bool_is_numeric():
    X = check_features(np.array([[True, False], [False, True]]))
    np.testing.assert_array_equal(X, [[1.0, 0.0], [0.0, 1.0]])


def test_check_features_uses_the_given_name():
    with pytest.raises(ValueError, match="source_features must be 2-D"):
        check_features(np.zeros(3), name="source_features")


# --------------------------------------------------------------------------- labels


def test_labels_negative_and_non_contiguous_are_mapped():
    _, y, classes = check_features_labels(_features(), [7, -3, 7, 100, -3, 100])
    np.testing.assert_array_equal(classes, [-3, 7, 100])
    np.testing.assert_array_equal(y, [1, 0, 1, 2, 0, 2])
    assert y.dtype == np.int64


def test_labels_strings_are_mapped():
    _, y, classes = check_features_labels(_features(), ["dog", "cat", "dog", "cat", "eel", "eel"])
    np.testing.assert_array_equal(classes, ["cat", "dog", "eel"])
    np.testing.assert_array_equal(y, [1, 0, 1, 0, 2, 2])


def test_labels_integral_floats_are_accepted():
    _, y, classes = check_features_labels(_features(), [1.0, 2.0, 1.0, 2.0, 1.0, 2.0])
    np.testing.assert_array_equal(classes, [1, 2])
    np.testing.assert_array_equal(y, [0, 1, 0, 1, 0, 1])


def test_labels_non_integral_floats_are_rejected():
    with pytest.raises(ValueError, match="non-integral float value 1.5"):
        check_features_labels(_features(), [1.0, 1.5, 1.0, 2.0, 1.0, 2.0])


def test_labels_nan_is_rejected():
    with pytest.raises(ValueError, match="labels must be finite"):
        check_features_labels(_features(), [1.0, np.nan, 1.0, 2.0, 1.0, 2.0])


def test_labels_object_integers_and_mixed():
    _, y, _ = check_features_labels(_features(), np.array([3, 4, 3, 4, 3, 4], dtype=object))
    np.testing.assert_array_equal(y, [0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="all integers or all strings"):
        check_features_labels(_features(), np.array([3, "a", 3, "a", 3, "a"], dtype=object))


def test_labels_must_be_1d():
    with pytest.raises(ValueError, match=r"labels must be 1-D \(n_samples,\); got shape \(6, 1\).*ravel"):
        check_features_labels(_features(), np.zeros((6, 1), dtype=int))


def test_labels_length_mismatch():
    with pytest.raises(ValueError, match=r"labels must have one entry per sample \(n_samples=6\); got 5"):
        check_features_labels(_features(), [0, 1, 0, 1, 0])


def test_labels_empty():
    with pytest.raises(ValueError, match="labels must be non-empty"):
        _check_labels(np.array([], dtype=int), 0, min_per_class=1)


def test_labels_single_class():
    with pytest.raises(ValueError, match=r"at least 2 classes; got 1 class \(4\)"):
        check_features_labels(_features(), [4] * 6)


def test_labels_min_per_class_names_class_and_count():
    with pytest.raises(ValueError, match=r"at least 2 samples; class 'b' has 1$"):
        check_features_labels(_features(), ["a", "a", "a", "b", "c", "c"])
    # min_per_class=1 accepts the singleton class
    _, y, _ = check_features_labels(_features(), ["a", "a", "a", "b", "c", "c"], min_per_class=1)
    np.testing.assert_array_equal(np.bincount(y), [3, 1, 2])


def test_labels_min_per_class_must_be_positive_int():
    with pytest.raises(ValueError, match="min_per_class must be an integer >= 1"):
        check_features_labels(_features(), [0, 0, 0, 1, 1, 1], min_per_class=0)


def test_labels_never_modified():
    labels = np.array([5, 2, 5, 2, 5, 2])
    before = labels.copy()
    _, y, _ = check_features_labels(_features(), labels)
    y[:] = 0
    np.testing.assert_array_equal(labels, before)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-1000, 1000), min_size=2, max_size=30).filter(lambda v: len(set(v)) >= 2))
def test_labels_mapping_roundtrip(values):
    labels = np.array(values)
    y, classes = _check_labels(labels, labels.size, min_per_class=1)
    np.testing.assert_array_equal(classes[y], labels)
    np.testing.assert_array_equal(np.unique(y), np.arange(classes.size))
    assert np.all(np.diff(classes) > 0)


# --------------------------------------------------------------------------- source_probs


def _probs():
    return np.array([[0.2, 0.8], [0.5, 0.5], [1.0, 0.0], [0.3, 0.7]])


def test_source_probs_ok_returns_float64_copy():
    P0 = _probs().astype(np.float32)
    P, y, _ = check_source_probs(P0, ["x", "y", "x", "y"])
    assert P.dtype == np.float64 and P.flags.c_contiguous
    np.testing.assert_array_equal(P, P0.astype(np.float64))
    np.testing.assert_array_equal(y, [0, 1, 0, 1])
    P[:] = 0
    assert P0.sum() > 0


def test_source_probs_row_sum_error_shows_worst_row():
    P = _probs()
    P[1] = [0.5, 0.4]  # sums to 0.9: the worst row
    P[3] = [0.3, 0.69999]  # off by 1e-5
    with pytest.raises(ValueError, match=r"within 1e-06\); row 1 sums to 0.9\b"):
        check_source_probs(P, [0, 1, 0, 1])


def test_source_probs_row_sum_within_tolerance_is_accepted():
    P = _probs()
    P[0] = [0.2, 0.8 + 5e-7]
    check_source_probs(P, [0, 1, 0, 1])


def test_source_probs_negative():
    P = _probs()
    P[2] = [1.1, -0.1]
    with pytest.raises(ValueError, match="source_probs must be non-negative.*row 2, column 1"):
        check_source_probs(P, [0, 1, 0, 1])


def test_source_probs_nan():
    P = _probs()
    P[0, 0] = np.nan
    with pytest.raises(ValueError, match="source_probs must be finite"):
        check_source_probs(P, [0, 1, 0, 1])


def test_source_probs_shape_and_length():
    with pytest.raises(ValueError, match=r"source_probs must be 2-D \(n_samples, n_source_classes\); got shape \(4,\)"):
        check_source_probs(np.full(4, 1.0), [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"labels must have one entry per sample \(n_samples=4\); got 3"):
        check_source_probs(_probs(), [0, 1, 0])


# --------------------------------------------------------------------------- targets


def test_targets_1d_becomes_column_and_2d_kept():
    assert check_targets(np.arange(5.0), 5).shape == (5, 1)
    assert check_targets(np.ones((5, 3), dtype=bool), 5).shape == (5, 3)


def test_targets_errors():
    with pytest.raises(ValueError, match=r"labels must have one row per sample \(n_samples=4\); got 5"):
        check_targets(np.arange(5.0), 4)
    with pytest.raises(ValueError, match="must be \\(n_samples,\\) or \\(n_samples, n_targets\\)"):
        check_targets(np.zeros((4, 2, 2)), 4)
    with pytest.raises(ValueError, match="labels must be finite"):
        check_targets([0.0, np.inf], 2)


# --------------------------------------------------------------------------- check_scalar


@pytest.mark.parametrize("value", [3, np.int64(3), np.uint8(3)])
def test_scalar_integral_returns_a_python_int(value):
    out = check_scalar(value, "n", numbers.Integral, min_val=1)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value", [0.25, np.float32(0.25), np.float64(0.25)])
def test_scalar_real_returns_a_python_float(value):
    out = check_scalar(value, "lr", numbers.Real)
    assert out == 0.25 and type(out) is float


def test_scalar_real_target_turns_an_int_into_a_float():
    out = check_scalar(2, "lr", numbers.Real, min_val=0)
    assert out == 2.0 and type(out) is float


def test_scalar_builtin_int_and_float_accept_numpy_scalars():
    assert type(check_scalar(np.int32(5), "n", int)) is int
    assert type(check_scalar(np.float32(0.5), "x", float)) is float


@pytest.mark.parametrize("value", [2.0, "2", None, [2]])
def test_scalar_integral_refuses_other_types(value):
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1; got "):
        check_scalar(value, "n", numbers.Integral, min_val=1)


@pytest.mark.parametrize("value", [True, False, np.True_])
@pytest.mark.parametrize("target", [numbers.Integral, numbers.Real, int, float])
def test_scalar_bools_are_refused_where_a_number_is_wanted(value, target):
    with pytest.raises(ValueError, match=f"got {value!r}$"):
        check_scalar(value, "x", target)


def test_scalar_bool_target_accepts_bools_only():
    assert check_scalar(True, "flag", bool) is True
    assert check_scalar(np.False_, "flag", bool) is False
    with pytest.raises(ValueError, match=r"^flag must be a bool; got 1$"):
        check_scalar(1, "flag", bool)


def test_scalar_str_target():
    assert check_scalar("cpu", "device", str) == "cpu"
    with pytest.raises(ValueError, match=r"^device must be a string; got 0$"):
        check_scalar(0, "device", str)


def test_scalar_tuple_of_types():
    assert type(check_scalar(3, "tol", (numbers.Integral, numbers.Real))) is int
    assert type(check_scalar(0.5, "tol", (numbers.Integral, numbers.Real))) is float
    assert check_scalar("auto", "size", (numbers.Integral, str)) == "auto"
    assert check_scalar(np.int64(4), "size", (numbers.Integral, str)) == 4
    with pytest.raises(ValueError, match=r"^size must be an integer or a string; got 1.5$"):
        check_scalar(1.5, "size", (numbers.Integral, str))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan")])
def test_scalar_non_finite_reals_are_refused(value):
    with pytest.raises(ValueError, match=r"^x must be a finite number; got "):
        check_scalar(value, "x", numbers.Real)


# expected acceptance of the boundaries 0 and 1 per mode, and the interval in the message
@pytest.mark.parametrize(
    "mode, accept_min, accept_max, text",
    [
        ("both", True, True, r"in \[0, 1\]"),
        ("left", True, False, r"in \[0, 1\)"),
        ("right", False, True, r"in \(0, 1\]"),
        ("neither", False, False, r"in \(0, 1\)"),
    ],
)
def test_scalar_include_boundaries(mode, accept_min, accept_max, text):
    def check(v):
        return check_scalar(v, "p", numbers.Real, min_val=0, max_val=1, include_boundaries=mode)

    assert check(0.5) == 0.5
    for value, accepted in ((0.0, accept_min), (1.0, accept_max)):
        if accepted:
            assert check(value) == value
        else:
            with pytest.raises(ValueError, match=f"^p must be a finite number {text}; got {value!r}$"):
                check(value)
    # outside the range is refused in every mode
    for value in (-0.1, 1.1):
        with pytest.raises(ValueError, match=f"^p must be a finite number {text}; got {value!r}$"):
            check(value)


def test_scalar_one_sided_bounds():
    assert check_scalar(10**9, "n", numbers.Integral, min_val=1) == 10**9
    assert check_scalar(10**400, "n", numbers.Integral, min_val=1) == 10**400  # beyond float, still an integer
    assert check_scalar(-5.0, "x", numbers.Real, max_val=0) == -5.0
    with pytest.raises(ValueError, match=r"^x must be a finite number <= 0; got 0.5$"):
        check_scalar(0.5, "x", numbers.Real, max_val=0)
    with pytest.raises(ValueError, match=r"^k must be an integer > 2; got 2$"):
        check_scalar(2, "k", numbers.Integral, min_val=2, include_boundaries="right")


def test_scalar_exclusive_zero_reads_positive():
    with pytest.raises(ValueError, match=r"^tol must be a positive finite number; got 0.0$"):
        check_scalar(0.0, "tol", numbers.Real, min_val=0, include_boundaries="neither")
    with pytest.raises(ValueError, match=r"^n_boot must be a positive integer; got 0$"):
        check_scalar(0, "n_boot", numbers.Integral, min_val=0, include_boundaries="right")
    assert check_scalar(1e-300, "tol", numbers.Real, min_val=0, include_boundaries="neither") == 1e-300


def test_scalar_optional_value():
    types = (numbers.Integral, type(None))
    assert check_scalar(None, "max_samples", types, min_val=2) is None
    assert check_scalar(np.int16(2), "max_samples", types, min_val=2) == 2
    for bad in (1, 2.5, "3", True):
        with pytest.raises(ValueError, match=f"^max_samples must be an integer >= 2 or None; got {bad!r}$"):
            check_scalar(bad, "max_samples", types, min_val=2)


def test_scalar_bad_include_boundaries_and_target_type():
    with pytest.raises(ValueError, match="include_boundaries must be one of"):
        check_scalar(1, "n", numbers.Integral, include_boundaries="closed")
    with pytest.raises(ValueError, match="target_type must be a type or a tuple of types"):
        check_scalar(1, "n", "int")


# --------------------------------------------------------------------------- int, seed, sequences


def test_check_int_message_and_value():
    assert check_int(np.int64(7), "n") == 7
    assert check_int(0, "n", minimum=0) == 0
    for bad in (0, 2.0, True, "3"):
        with pytest.raises(ValueError, match=f"^n must be an integer >= 1; got {bad!r}$"):
            check_int(bad, "n")


def test_check_nonnegative():
    assert check_nonnegative(0, "wd") == 0.0 and type(check_nonnegative(0, "wd")) is float
    for bad in (-1e-9, math.nan, math.inf, False):
        with pytest.raises(ValueError, match=r"^wd must be a finite number >= 0; got "):
            check_nonnegative(bad, "wd")


def test_check_seed():
    assert check_seed(np.int64(0)) == 0
    for bad in (-1, 1.0, True, None):
        with pytest.raises(ValueError, match=f"^seed must be a non-negative integer; got {bad!r}$"):
            check_seed(bad)


def test_check_int_sequence():
    assert check_int_sequence(np.array([2, 3]), "widths") == [2, 3]
    with pytest.raises(ValueError, match="widths must be a sequence of integers"):
        check_int_sequence("23", "widths")
    with pytest.raises(ValueError, match="widths must have at least one entry"):
        check_int_sequence([], "widths")
    with pytest.raises(ValueError, match="widths must have 3 entries; got 2"):
        check_int_sequence([1, 2], "widths", length=3)
    with pytest.raises(ValueError, match=r"^widths\[1\] must be an integer >= 1; got 0$"):
        check_int_sequence([1, 0], "widths")


# --------------------------------------------------------------------------- rows, source features


def test_check_rows():
    assert check_rows([[1.0, 2.0], [3.0, 4.0]], 2, name="probe_features").shape == (2, 2)
    with pytest.raises(ValueError, match=r"probe_features must have one row per sample of features \(n_samples=3\)"):
        check_rows([[1.0], [2.0]], 3, name="probe_features")


def test_check_source_features_one_class_and_width():
    S, ys, classes = check_source_features(np.ones((3, 2)), ["a", "a", "a"], n_features=2)
    assert S.shape == (3, 2) and ys.tolist() == [0, 0, 0] and classes.tolist() == ["a"]
    with pytest.raises(ValueError, match="source_features must have the same number of features as features"):
        check_source_features(np.ones((3, 2)), [0, 1, 0], n_features=4)
