"""CKA: golden values of the reference notebook, invariances, the minibatch estimator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferlab.analysis import MinibatchCKA, cka, minibatch_cka
from transferlab.analysis._cka import _centre_gram, _gram_cka


@pytest.fixture(scope="module")
def notebook_pair():
    # The setting of the public reference notebook (Kornblith et al. 2019).
    np.random.seed(1337)
    X = np.random.randn(100, 10)
    Y = np.random.randn(100, 10) + X
    return X, Y


@pytest.mark.parametrize(
    "kwargs, golden",
    [({}, 0.55761), ({"kernel": "rbf", "threshold": 0.5}, 0.65483), ({"debiased": True}, 0.51346)],
)
def test_golden_values(notebook_pair, kwargs, golden):
    assert round(cka(*notebook_pair, **kwargs), 5) == golden


def test_large_offset_in_float32_changes_nothing(notebook_pair):
    X, Y = notebook_pair
    shifted = cka(X.astype(np.float32) + 1e3, Y.astype(np.float32) + 1e3)
    assert shifted == pytest.approx(cka(X, Y), abs=1e-5)


@pytest.mark.parametrize("debiased", [False, True])
def test_feature_space_equals_gram_space(notebook_pair, debiased):
    X, Y = notebook_pair
    assert cka(X, Y, debiased=debiased) == pytest.approx(_gram_cka(X @ X.T, Y @ Y.T, debiased), rel=1e-10)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), scale=st.floats(0.01, 100.0), kernel=st.sampled_from(["linear", "rbf"]))
def test_invariances(seed, scale, kernel):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 6))
    Y = X @ rng.normal(size=(6, 5)) + rng.normal(size=(40, 5))
    base = cka(X, Y, kernel=kernel)
    Q = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    perm = rng.permutation(40)
    assert cka(X, Y @ Q, kernel=kernel) == pytest.approx(base, rel=1e-9, abs=1e-12)  # orthogonal
    assert cka(X, scale * Y, kernel=kernel) == pytest.approx(base, rel=1e-9, abs=1e-12)  # isotropic scaling
    assert cka(X[perm], Y[perm], kernel=kernel) == pytest.approx(base, rel=1e-9, abs=1e-12)  # same permutation
    assert cka(X, X, kernel=kernel) == pytest.approx(1.0)


def test_minibatch_is_close_to_full_debiased():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4000, 20))
    B = A @ rng.normal(size=(20, 30)) + 2.0 * rng.normal(size=(4000, 30))
    full = cka(A, B, debiased=True)
    assert minibatch_cka(A, B, batch_size=500) == pytest.approx(full, abs=0.01)
    acc = MinibatchCKA()
    for lo in range(0, 4000, 1000):
        acc.update(A[lo : lo + 1000], B[lo : lo + 1000])
    assert acc.n_batches == 4 and acc.value == pytest.approx(full, abs=0.01)


def test_unbiased_centring_has_zero_diagonal_and_zero_row_sums():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 3))
    g = _centre_gram(X @ X.T, unbiased=True)
    np.testing.assert_allclose(np.diag(g), 0.0)
    np.testing.assert_allclose(g.sum(axis=0), 0.0, atol=1e-10)


@pytest.mark.parametrize(
    "X, Y, kwargs, match",
    [
        (np.zeros((5, 2)), np.ones((4, 2)), {}, "same samples"),
        (np.ones(5), np.ones((5, 2)), {}, "N, D"),
        (np.full((5, 2), np.nan), np.ones((5, 2)), {}, "NaN"),
        (np.ones((5, 2)), np.random.default_rng(0).normal(size=(5, 2)), {}, "constant"),
        (np.eye(5), np.eye(5), {"kernel": "cosine"}, "kernel"),
        (np.eye(3), np.eye(3), {"debiased": True}, "at least 4"),
        (np.eye(5), np.eye(5), {"kernel": "rbf", "threshold": 0}, "threshold"),
    ],
)
def test_bad_input(X, Y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cka(X, Y, **kwargs)


def test_minibatch_bad_input():
    X = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match="batch_size"):
        minibatch_cka(X, X, batch_size=2)
    with pytest.raises(ValueError, match="at least one batch"):
        minibatch_cka(X, X, batch_size=11)
    acc = MinibatchCKA().update(X[:5], X[:5])
    with pytest.raises(ValueError, match="equal sizes"):
        acc.update(X[:6], X[:6])
    with pytest.raises(ValueError, match="no batch"):
        MinibatchCKA().value
