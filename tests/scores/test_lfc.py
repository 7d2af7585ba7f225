"""Tests for LFC / LGC against the brute-force N x N Pearson correlation.

The reference forms the full Gram matrix ``K = F F^T`` and the label matrix
``Y`` (``+1`` same class, ``-1`` otherwise) and calls ``np.corrcoef`` on their
flattened entries; it shares no code with the fast path.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

from transferlab.scores._lfc import lfc, lgc
from transferlab.scores._registry import spec


def _brute_force(F, y, center=True):
    F = np.asarray(F, dtype=np.float64)
    if center:
        F = F - F.mean(axis=0)
    K = F @ F.T
    Y = np.where(y[:, None] == y[None, :], 1.0, -1.0)
    return np.corrcoef(K.ravel(), Y.ravel())[0, 1]


def _problem(seed, n, d, n_classes=3, shift=0.0, unbalanced=False):
    rng = np.random.default_rng(seed)
    if unbalanced:
        y = rng.choice(n_classes, size=n, p=np.r_[0.7, np.full(n_classes - 1, 0.3 / (n_classes - 1))])
    else:
        y = rng.integers(0, n_classes, n)
    y[:n_classes] = np.arange(n_classes)
    means = rng.normal(size=(n_classes, d))
    F = means[y] + rng.normal(size=(n, d)) + shift
    return F, y


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    "n, d, unbalanced, shift",
    [(20, 4, False, 0.0), (12, 30, False, 0.0), (25, 6, True, 3.0), (9, 9, True, -2.0), (15, 40, True, 5.0)],
)
def test_equals_brute_force_corrcoef(seed, n, d, unbalanced, shift, center):
    # N > D, N < D (the N x N path of ||K||_F), N = D, unbalanced classes, non-zero means.
    F, y = _problem(seed, n, d, unbalanced=unbalanced, shift=shift)
    np.testing.assert_allclose(lfc(F, y, center=center), _brute_force(F, y, center), rtol=1e-10, atol=1e-12)


def test_lgc_is_the_same_function_of_the_gradients():
    F, y = _problem(3, 18, 7, unbalanced=True, shift=1.0)
    for center in (True, False):
        np.testing.assert_allclose(lgc(F, y, center=center), lfc(F, y, center=center), rtol=0, atol=0)
        np.testing.assert_allclose(lgc(F, y, center=center), _brute_force(F, y, center), rtol=1e-10)


def test_hand_computed_values():
    # Points 0, 0, 2, 2 in classes 0, 0, 1, 1.
    # Centred (-1, -1, 1, 1): K_ij = x_i x_j = Y_ij exactly -> correlation 1.
    # Uncentred: K = 4 on the 4 pairs of class 1, 0 elsewhere; mean(K) = 1, mean(Y) = 0;
    # cov = (4*(4-1)*1 + 4*(0-1)*1 + 8*(0-1)*(-1)) / 16 = 1, var K = (4*9 + 12*1)/16 = 3,
    # var Y = 1 -> correlation 1/sqrt(3).
    F = np.array([[0.0], [0.0], [2.0], [2.0]])
    y = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(lfc(F, y), 1.0, rtol=1e-14)
    np.testing.assert_allclose(lfc(F, y, center=False), 1 / np.sqrt(3), rtol=1e-14)


def test_perfectly_clustered_features_score_high_and_noise_scores_low():
    # One-hot class codes with tiny noise: centred K is nearly a scaled version of
    # the centred label matrix for balanced classes, so LFC is close to 1.
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    clustered = np.eye(4)[y] * 10 + 0.01 * rng.normal(size=(40, 4))
    noise = rng.normal(size=(40, 4))
    assert lfc(clustered, y) > 0.99
    assert lfc(noise, y) < 0.2


def test_centred_lfc_is_non_negative_uncentred_can_be_negative():
    # Nine samples at 1 (class 0), one at 11 (class 1), uncentred. With the
    # decomposition of the module: m = 2, centred class sums S_0 = -9, S_1 = 9,
    # numerator = 2 (81 + 81) + 4 (9 * (-9) * 2 + 1 * 9 * 2) = 324 - 576 < 0:
    # the large products with the outlier sit across classes.
    F = np.r_[np.ones(9), 11.0][:, None]
    y = np.r_[np.zeros(9, int), 1]
    value = lfc(F, y, center=False)
    np.testing.assert_allclose(value, _brute_force(F, y, center=False), rtol=1e-12)
    assert value < 0
    # Centred, the numerator is 2 sum_k ||S_k||^2 >= 0.
    assert lfc(F, y) > 0
    np.testing.assert_allclose(lfc(F, y), _brute_force(F, y), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(4, 25),
    d=st.integers(1, 12),
    center=st.booleans(),
)
def test_bounded_and_invariant(seed, n, d, center):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    y[:2] = [0, 1]
    F = rng.normal(size=(n, d)) * rng.exponential(size=d) + rng.normal(size=d)
    value = lfc(F, y, center=center)
    assert -1.0 <= value <= 1.0
    # orthogonal rotation of the feature space
    Q = ortho_group.rvs(d, random_state=seed % 2**31) if d > 1 else np.array([[-1.0]])
    np.testing.assert_allclose(lfc(F @ Q, y, center=center), value, rtol=1e-9, atol=1e-12)
    # sample permutation
    p = rng.permutation(n)
    np.testing.assert_allclose(lfc(F[p], y[p], center=center), value, rtol=1e-9, atol=1e-12)
    # class renaming (to strings, in another order) and positive scaling
    names = np.array(["z", "b", "m"])[y]
    np.testing.assert_allclose(lfc(3.7 * F, names, center=center), value, rtol=1e-9, atol=1e-12)


def test_centred_lfc_is_translation_invariant():
    F, y = _problem(1, 20, 5)
    np.testing.assert_allclose(lfc(F + 100.0, y), lfc(F, y), rtol=1e-9)


def test_constant_features_give_zero_and_huge_or_float32_features_are_fine():
    y = np.array([0, 0, 1, 1, 2])
    assert lfc(np.full((5, 3), 2.5), y) == 0.0
    assert lfc(np.full((5, 3), 2.5), y, center=False) == 0.0
    assert lfc(np.zeros((5, 3)), y) == 0.0
    F, y = _problem(2, 30, 6)
    expected = _brute_force(F, y)
    np.testing.assert_allclose(lfc(F * 1e12, y), expected, rtol=1e-9)
    np.testing.assert_allclose(lfc(F * 1e150, y), expected, rtol=1e-9)  # K would overflow unscaled
    F32 = F.astype(np.float32)
    np.testing.assert_allclose(lfc(F32, y), _brute_force(F32.astype(np.float64), y), rtol=1e-10)
    # a constant column next to informative ones changes nothing
    np.testing.assert_allclose(lfc(np.c_[F, np.full(30, 0.1)], y), expected, rtol=1e-10)


def test_singleton_class_is_allowed():
    F, y = _problem(4, 10, 3)
    y = y.copy()
    y[-1] = 7  # a class with one sample
    np.testing.assert_allclose(lfc(F, y), _brute_force(F, y), rtol=1e-10)


def test_bad_inputs():
    with pytest.raises(ValueError, match="features must be 2-D"):
        lfc(np.ones(4), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="gradients must be 2-D"):
        lgc(np.ones(4), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="gradients must be finite"):
        lgc([[1.0], [np.nan], [0.0], [2.0]], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        lfc(np.ones((4, 2)), [1, 1, 1, 1])
    with pytest.raises(ValueError, match="center must be a bool; got 'yes'"):
        lfc(np.ones((4, 2)), [0, 0, 1, 1], center="yes")


def test_registry_entries():
    assert spec("lfc").needs == frozenset({"features"})
    assert spec("lgc").needs == frozenset({"gradients"})
    F, y = _problem(5, 12, 4)
    np.testing.assert_allclose(spec("lgc").compute(y, gradients=F), lfc(F, y), rtol=0)
    np.testing.assert_allclose(spec("lfc").compute(y, features=F), lfc(F, y), rtol=0)


def test_does_not_modify_input():
    F, y = _problem(6, 10, 3, shift=2.0)
    F_copy, y_copy = F.copy(), y.copy()
    lfc(F, y, center=False)
    np.testing.assert_array_equal(F, F_copy)
    np.testing.assert_array_equal(y, y_copy)
