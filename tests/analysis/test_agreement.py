"""Mistake agreement and weight distances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferlab.analysis import mistake_agreement, weight_distance


def test_mistake_agreement_golden():
    r = mistake_agreement([0, 1, 2, 2, 1], [0, 2, 1, 2, 1], [0, 1, 1, 0, 0])
    assert (r["both_right"], r["common_mistakes"], r["same_wrong_label"]) == (1, 2, 2)
    assert (r["only_a_wrong"], r["only_b_wrong"], r["disagreement"]) == (1, 1, 2)
    assert r["common_mistakes_fraction"] == pytest.approx(0.4)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_mistake_agreement_partitions_and_ignores_label_names(seed):
    rng = np.random.default_rng(seed)
    y, a, b = (rng.integers(0, 4, size=30) for _ in range(3))
    r = mistake_agreement(a, b, y)
    assert r["both_right"] + r["common_mistakes"] + r["only_a_wrong"] + r["only_b_wrong"] == 30
    perm = rng.permutation(4)  # renaming the classes changes nothing
    assert mistake_agreement(perm[a], perm[b], perm[y]) == r
    swapped = mistake_agreement(b, a, y)
    assert (swapped["only_a_wrong"], swapped["only_b_wrong"]) == (r["only_b_wrong"], r["only_a_wrong"])


def test_weight_distance_closed_form():
    a = {"stages.conv1.w": np.zeros((2, 2)), "stages.conv2.w": np.zeros(3), "head.w": np.zeros(1)}
    b = {"stages.conv1.w": np.full((2, 2), 1.5), "stages.conv2.w": np.array([0.0, 4.0, 0.0]), "head.w": np.ones(1)}
    d = weight_distance(a, b, groups=["stages.conv1.", "stages.conv2."])
    assert d["stages.conv1."] == pytest.approx(3.0)  # sqrt(4 * 1.5^2)
    assert d["stages.conv2."] == pytest.approx(4.0)
    assert d["total"] == pytest.approx(np.sqrt(9 + 16 + 1))
    assert weight_distance(a, a)["total"] == 0.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mistake_agreement([0, 1], [0], [0, 1]), "same length"),
        (lambda: mistake_agreement([0.5, 1], [0, 1], [0, 1]), "integer"),
        (lambda: weight_distance({"a": np.zeros(2)}, {"b": np.zeros(2)}), "same tensors"),
        (lambda: weight_distance({"a": np.zeros(2)}, {"a": np.zeros(3)}), "shape"),
        (lambda: weight_distance({"a": np.zeros(2)}, {"a": np.array([np.nan, 0])}), "NaN"),
        (lambda: weight_distance({"a": np.zeros(2)}, {"a": np.zeros(2)}, groups=["x."]), "no tensor"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
