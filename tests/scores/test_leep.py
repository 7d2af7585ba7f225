"""Tests for LEEP: closed forms with hard predictions, a loop reference, invariances."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferlab.scores._leep import leep


def _leep_loops(P, y):
    """Slow reference written from the paper's definitions with explicit loops."""
    n, n_source = P.shape
    classes = sorted(set(y))
    joint = {(c, z): sum(P[i, z] for i in range(n) if y[i] == c) / n for c in classes for z in range(n_source)}
    marginal = {z: sum(joint[c, z] for c in classes) for z in range(n_source)}
    total = 0.0
    for i in range(n):
        eep = sum(
            joint[y[i], z] / marginal[z] * P[i, z] for z in range(n_source) if marginal[z] > 0
        )
        total += np.log(eep)
    return total / n


def _random_problem(seed, n=12, n_source=4, n_classes=3):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(n_source, 0.7), size=n)
    y = rng.integers(0, n_classes, n)
    y[:n_classes] = np.arange(n_classes)
    return P, y


def test_one_hot_predictions_give_minus_conditional_entropy():
    # Hard source predictions z and target labels y:
    #   z = 0 0 0 1 1 1
    #   y = 0 0 1 1 1 1
    # P(y | z=0) = (2/3, 1/3), P(y | z=1) = (0, 1), so with one-hot theta the expected
    # empirical predictor of sample i is P(y_i | z_i) and
    #   LEEP = (2 log(2/3) + log(1/3) + 3 log 1) / 6 = -H(Y | Z)
    #        = -(1/2) * H(2/3, 1/3) = -0.31825708414740640 (nats).
    z = np.array([0, 0, 0, 1, 1, 1])
    y = np.array([0, 0, 1, 1, 1, 1])
    P = np.eye(2)[z]
    expected = (2 * np.log(2 / 3) + np.log(1 / 3)) / 6
    np.testing.assert_allclose(expected, -0.3182570841474064, rtol=1e-14)
    np.testing.assert_allclose(leep(P, y), expected, rtol=1e-12)


def test_source_class_without_mass_is_finite_and_ignored():
    # A third source column that no sample puts mass on: P(z=2) = 0. It must not produce
    # NaN (0/0) and the value equals the same formula without that column.
    z = np.array([0, 0, 0, 1, 1, 1])
    y = np.array([0, 0, 1, 1, 1, 1])
    P = np.eye(3)[z]
    assert P[:, 2].sum() == 0
    value = leep(P, y)
    assert np.isfinite(value)
    np.testing.assert_allclose(value, leep(P[:, :2], y), rtol=1e-14)
    np.testing.assert_allclose(value, -0.3182570841474064, rtol=1e-12)
    # soft predictions with an empty column too
    Ps, ys = _random_problem(0)
    Ps = np.insert(Ps, 2, 0.0, axis=1)
    np.testing.assert_allclose(leep(Ps, ys), leep(np.delete(Ps, 2, axis=1), ys), rtol=1e-13)


def test_perfect_deterministic_mapping_gives_zero():
    # Source classes 0,1 -> target 'a', 2 -> 'b', 3 -> 'c' (many-to-one is still perfect).
    z = np.array([0, 1, 2, 3, 0, 2, 3, 1])
    y = np.array(["a", "a", "b", "c", "a", "b", "c", "a"])
    assert leep(np.eye(4)[z], y) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_matches_loop_reference(seed):
    P, y = _random_problem(seed)
    np.testing.assert_allclose(leep(P, y), _leep_loops(P, y), rtol=1e-12)


@pytest.mark.parametrize("block", [1, 4, 12, 10**6])
def test_blocks_of_rows_do_not_change_the_value(monkeypatch, block):
    # 4 source classes, 23 rows: blocks of 1 row (1 and 4 entries), of 3 rows (a ragged last block
    # of 2), or every row at once: the same value as the loop reference.
    from transferlab.scores import _leep

    P, y = _random_problem(11, n=23)
    monkeypatch.setattr(_leep, "_BLOCK_ELEMENTS", block)
    np.testing.assert_allclose(leep(P, y), _leep_loops(P, y), rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_at_most_zero(seed):
    P, y = _random_problem(seed)
    assert leep(P, y) <= 0.0


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_invariant_to_label_values_and_source_class_order(seed):
    P, y = _random_problem(seed)
    rng = np.random.default_rng(seed)
    base = leep(P, y)
    renamed = np.array(["x", "y", "z"])[rng.permutation(3)][y]
    np.testing.assert_allclose(leep(P, renamed), base, rtol=1e-12)
    np.testing.assert_allclose(leep(P[:, rng.permutation(P.shape[1])], y), base, rtol=1e-12)
    order = rng.permutation(P.shape[0])
    np.testing.assert_allclose(leep(P[order], y[order]), base, rtol=1e-12)


def test_informative_source_beats_uninformative():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 10)
    informative = 0.8 * np.eye(3)[y] + 0.2 * rng.dirichlet(np.ones(3), size=30)
    uniform = np.full((30, 3), 1 / 3)
    # a uniform source gives P(y | z) = class prior: LEEP = -H(Y) = -log 3
    np.testing.assert_allclose(leep(uniform, y), -np.log(3), rtol=1e-12)
    assert leep(informative, y) > leep(uniform, y)


def test_returns_python_float_and_leaves_inputs_alone():
    P, y = _random_problem(1)
    P0, y0 = P.copy(), y.copy()
    assert type(leep(P, y)) is float
    np.testing.assert_array_equal(P, P0)
    np.testing.assert_array_equal(y, y0)


def test_errors():
    P, y = _random_problem(1)
    bad = P.copy()
    bad[3] *= 0.5
    with pytest.raises(ValueError, match="row 3 sums to"):
        leep(bad, y)
    with pytest.raises(ValueError, match="source_probs must be finite"):
        leep(np.where(P > 0.5, np.nan, P), y)
    with pytest.raises(ValueError, match="labels must have one entry per sample"):
        leep(P, y[:-1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        leep(P, np.zeros(P.shape[0], dtype=int))
