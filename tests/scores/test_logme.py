"""Tests for LogME against the Gaussian marginal likelihood written out directly.

The reference below never uses the eigendecomposition of the code under test:
the evidence of ``y`` under ``y = F w + eps``, ``w ~ N(0, alpha^-1 I)``,
``eps ~ N(0, beta^-1 I)`` is the density of ``y ~ N(0, beta^-1 I + alpha^-1 F F^T)``
(scipy.stats.multivariate_normal), maximised over ``(log alpha, log beta)`` with
scipy.optimize.minimize.
"""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from transferlab.scores._logme import _evidence, _logme_fit, _spectrum, logme


def _problem(seed, n, d, n_classes=3, noise=0.7):
    """Gaussian features and labels from a noisy linear teacher (every class present)."""
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(n, d))
    W = rng.normal(size=(d, n_classes))
    y = np.argmax(F @ W + noise * rng.normal(size=(n, n_classes)), axis=1)
    y[:n_classes] = np.arange(n_classes)
    return F, y


def _one_hot(y):
    return np.eye(y.max() + 1)[y]


def _direct_log_evidence(F, y, log_alpha, log_beta):
    n = F.shape[0]
    cov = np.exp(-log_beta) * np.eye(n) + np.exp(-log_alpha) * F @ F.T
    return stats.multivariate_normal(np.zeros(n), cov, allow_singular=False).logpdf(y)


def _max_direct_log_evidence(F, y):
    """Max over (log alpha, log beta) by Nelder-Mead from two starts."""
    best = -np.inf
    for start in ([0.0, 0.0], [5.0, 2.0]):
        res = optimize.minimize(
            lambda p: -_direct_log_evidence(F, y, *p),
            start,
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 800},
        )
        best = max(best, -res.fun)
    return best


def _paper_log_evidence(F, y, alpha, beta):
    """The paper's formula with explicit D x D matrices (slow reference)."""
    n, d = F.shape
    A = alpha * np.eye(d) + beta * F.T @ F
    m = beta * np.linalg.solve(A, F.T @ y)
    return (
        d / 2 * np.log(alpha)
        + n / 2 * np.log(beta)
        - n / 2 * np.log(2 * np.pi)
        - beta / 2 * np.sum((F @ m - y) ** 2)
        - alpha / 2 * m @ m
        - 0.5 * np.linalg.slogdet(A)[1]
    )


# (seed, n, d): N > D, N < D, N = D, and a case whose fixed point needs the polish.
CASES = [(0, 12, 4), (4, 20, 8), (1, 7, 10), (3, 6, 15), (5, 9, 9)]


@functools.cache
def _expected(seed, n, d):
    """Per-class maximised direct log evidence of ``_problem(seed, n, d)``."""
    F, y = _problem(seed, n, d)
    Y = _one_hot(y)
    return np.array([_max_direct_log_evidence(F, Y[:, k]) for k in range(Y.shape[1])])


@pytest.mark.parametrize("seed, n, d", CASES)
def test_evidence_per_class_equals_maximised_direct_likelihood(seed, n, d):
    F, y = _problem(seed, n, d)
    Y = _one_hot(y)
    fit = _logme_fit(F, Y, tol=1e-9)
    expected = _expected(seed, n, d)
    np.testing.assert_allclose(fit.evidence, expected, rtol=1e-6)
    # and the public score is their mean per sample
    np.testing.assert_allclose(logme(F, y, tol=1e-9), np.mean(expected) / n, rtol=1e-6)


@pytest.mark.parametrize("seed, n, d", CASES)
def test_default_tolerance_is_within_tol_per_sample(seed, n, d):
    # The stopping rule guarantees the evidence to about tol per sample (absolute).
    F, y = _problem(seed, n, d)
    expected = np.mean(_expected(seed, n, d)) / n
    np.testing.assert_allclose(logme(F, y), expected, rtol=0, atol=2e-6)


def test_some_case_exercises_the_polish():
    # seed 4 (20 x 8): a class crawls towards alpha = inf and is not converged after
    # 100 fixed-point iterations; the profile search must reach the same maximum as the
    # fixed point run for much longer, and as the direct maximisation.
    F, y = _problem(4, 20, 8)
    Y = _one_hot(y)
    fit = _logme_fit(F, Y, max_iter=100)
    assert fit.polished.any()
    long = _logme_fit(F, Y, max_iter=200_000, tol=1e-12)
    assert not long.polished.any()
    p = fit.polished
    np.testing.assert_allclose(fit.evidence[p], long.evidence[p], rtol=1e-9)
    np.testing.assert_allclose(fit.evidence[p], _expected(4, 20, 8)[p], rtol=1e-9)


@pytest.mark.parametrize("seed, n, d", CASES)
@pytest.mark.parametrize("log_alpha, log_beta", [(0.0, 0.0), (3.0, -1.0), (-2.0, 5.0)])
def test_evidence_formula_matches_paper_and_direct(seed, n, d, log_alpha, log_beta):
    # At any (alpha, beta), the projected-coordinate evidence equals both the paper's
    # D x D expression and the Gaussian density, also for N < D.
    F, y = _problem(seed, n, d)
    Y = _one_hot(y)
    s, Z, perp = _spectrum(F, Y)
    a, b = np.exp(log_alpha), np.exp(log_beta)
    got = _evidence(np.full(Y.shape[1], a), np.full(Y.shape[1], b), s, Z**2, perp, n)
    paper = [_paper_log_evidence(F, Y[:, k], a, b) for k in range(Y.shape[1])]
    direct = [_direct_log_evidence(F, Y[:, k], log_alpha, log_beta) for k in range(Y.shape[1])]
    np.testing.assert_allclose(got, paper, rtol=1e-9)
    np.testing.assert_allclose(got, direct, rtol=1e-9)


def test_n_smaller_than_d_is_finite_and_exact():
    F, y = _problem(1, 7, 40)
    score = logme(F, y, tol=1e-9)
    assert np.isfinite(score)
    expected = np.mean(_expected(1, 7, 40)) / 7
    np.testing.assert_allclose(score, expected, rtol=1e-6)


def test_rank_deficient_features():
    # A duplicated column and a zero column: zero eigenvalues of F^T F.
    F, y = _problem(2, 10, 3)
    F = np.c_[F, F[:, :1], np.zeros(10)]
    Y = _one_hot(y)
    fit = _logme_fit(F, Y, tol=1e-9)
    expected = [_max_direct_log_evidence(F, Y[:, k]) for k in range(3)]
    np.testing.assert_allclose(fit.evidence, expected, rtol=1e-6)


def test_zero_features_closed_form():
    # F = 0: the evidence is maximised at alpha = inf, beta = N / n_k for the one-hot
    # column of a class with n_k samples, L_k / N = 1/2 log(N / n_k) - 1/2 log(2 pi) - 1/2.
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    counts = np.bincount(y)
    expected = np.mean(0.5 * np.log(10 / counts) - 0.5 * np.log(2 * np.pi) - 0.5)
    np.testing.assert_allclose(logme(np.zeros((10, 4)), y), expected, rtol=1e-12)


@pytest.mark.parametrize("seed, n, d", CASES)
@pytest.mark.parametrize("factor", [1e-300, 1e-150, 1e-6, 1e-4, 0.37, 1e3, 1e60, 1e150, 1e300])
def test_scale_invariance_far_from_unit_scale(seed, n, d, factor):
    # F -> cF is absorbed by alpha -> c^2 alpha: the maximised evidence is unchanged, so the
    # value equals the direct maximum of the unscaled problem (to the default tol per sample).
    F, y = _problem(seed, n, d)
    expected = np.mean(_expected(seed, n, d)) / n
    np.testing.assert_allclose(logme(factor * F, y), expected, rtol=0, atol=2e-6)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), shape=st.sampled_from([(15, 4), (8, 12)]))
def test_invariant_to_orthogonal_rotation(seed, shape):
    n, d = shape
    F, y = _problem(seed, n, d)
    Q, _ = np.linalg.qr(np.random.default_rng(seed + 1).normal(size=(d, d)))
    np.testing.assert_allclose(logme(F @ Q, y), logme(F, y), rtol=0, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_invariant_to_label_values_and_sample_order(seed):
    F, y = _problem(seed, 16, 5)
    rng = np.random.default_rng(seed)
    names = np.array(["zebra", "ant", "moth"])[rng.permutation(3)]
    base = logme(F, y)
    np.testing.assert_allclose(logme(F, names[y]), base, rtol=1e-12)
    np.testing.assert_allclose(logme(F, 10 * y - 7), base, rtol=1e-12)
    order = rng.permutation(16)
    np.testing.assert_allclose(logme(F[order], y[order]), base, rtol=0, atol=1e-6)


def test_separable_beats_shuffled_labels():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 15)
    F = np.eye(4)[y] @ rng.normal(size=(4, 6)) + 0.3 * rng.normal(size=(60, 6))
    assert logme(F, y) > logme(F, rng.permutation(y)) + 0.1


def test_float32_equals_float64_of_the_same_numbers():
    F, y = _problem(0, 12, 4)
    F32 = F.astype(np.float32)
    assert logme(F32, y) == logme(F32.astype(np.float64), y)


def test_does_not_modify_inputs():
    F, y = _problem(0, 12, 4)
    F0, y0 = F.copy(), y.copy()
    logme(F, y)
    np.testing.assert_array_equal(F, F0)
    np.testing.assert_array_equal(y, y0)


def test_returns_python_float():
    F, y = _problem(0, 12, 4)
    assert type(logme(F, y)) is float


# --------------------------------------------------------------------------- regression


def test_regression_1d_equals_one_column_and_matches_direct():
    rng = np.random.default_rng(3)
    F = rng.normal(size=(14, 3))
    t = F @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=14)
    got = logme(F, t, regression=True, tol=1e-9)
    np.testing.assert_allclose(got, logme(F, t[:, None], regression=True, tol=1e-9), rtol=1e-12)
    np.testing.assert_allclose(got, _max_direct_log_evidence(F, t) / 14, rtol=1e-6)


def test_regression_on_one_hot_equals_classification():
    F, y = _problem(0, 12, 4)
    np.testing.assert_allclose(logme(F, _one_hot(y), regression=True), logme(F, y), rtol=1e-12)


def test_regression_multilabel_averages_columns():
    rng = np.random.default_rng(5)
    F = rng.normal(size=(12, 3))
    T = (F @ rng.normal(size=(3, 2)) > 0).astype(float)
    both = logme(F, T, regression=True)
    single = [logme(F, T[:, k], regression=True) for k in range(2)]
    np.testing.assert_allclose(both, np.mean(single), rtol=1e-12)


# --------------------------------------------------------------------------- errors


def test_errors():
    F, y = _problem(0, 12, 4)
    F_nan = F.copy()
    F_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="features must be finite"):
        logme(F_nan, y)
    with pytest.raises(ValueError, match="features must be 2-D"):
        logme(F[:, 0], y)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1; got 0"):
        logme(F, y, max_iter=0)
    with pytest.raises(ValueError, match="tol must be a positive finite number"):
        logme(F, y, tol=-1.0)
    with pytest.raises(ValueError, match="at least 2 classes"):
        logme(F, np.zeros(12, dtype=int))
    with pytest.raises(ValueError, match="column 1 is all zeros"):
        logme(F, np.c_[np.ones(12), np.zeros(12)], regression=True)
    with pytest.raises(ValueError, match="non-integral float"):
        logme(F, np.linspace(0, 1, 12))


# ----------------------------------------------------------------- stacked weightings (issue 16)


def _weight_stack(rng, n, b, *, zeros=True):
    """``b`` Bayesian-bootstrap weightings (positive, summing to ``n``); with ``zeros``, row 1 drops a quarter."""
    W = rng.dirichlet(np.ones(n), size=b) * n
    if zeros and b > 1:
        W[1, rng.choice(n, size=n // 4, replace=False)] = 0.0  # fewer rows: a different rank and spectrum
        W[1] *= np.count_nonzero(W[1]) / W[1].sum()  # summing to the rows kept: bounded when interpolated
    return W


def _rank_deficient(rng, n, d, rank):
    return rng.normal(size=(n, rank)) @ rng.normal(size=(rank, d))


# (n, d, feature rank or None): N > D, N < D (interpolated), N = D, rank-deficient with N > D and N < D
STACK_CASES = [(40, 8, None), (12, 30, None), (10, 10, None), (30, 8, 3), (9, 20, 4)]


@pytest.mark.parametrize("n, d, rank", STACK_CASES)
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), b=st.integers(1, 7))
def test_stacked_weights_equal_each_row_alone(n, d, rank, seed, b):
    # Reference: the 1-D call per row (itself checked against repeated rows and the direct likelihood).
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(n, d)) if rank is None else _rank_deficient(rng, n, d, rank)
    y = np.arange(n) % 3
    F = F + y[:, None]
    W = _weight_stack(rng, n, b)
    got = logme(F, y, sample_weight=W)
    assert isinstance(got, np.ndarray) and got.shape == (b,)
    expected = np.array([logme(F, y, sample_weight=w) for w in W])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_stacked_weights_with_different_scales_and_regression_targets():
    # Row 0 of F is 1e6 times larger: the weightings that drop it divide F by another power of two.
    rng = np.random.default_rng(3)
    F = rng.normal(size=(30, 5))
    F[0] *= 1e6
    targets = F[:, :2] @ rng.normal(size=(2, 2)) + 0.1 * rng.normal(size=(30, 2))
    W = rng.dirichlet(np.ones(30), size=4) * 30
    W[[1, 3], 0] = 0.0
    got = logme(F, targets, regression=True, sample_weight=W)
    expected = [logme(F, targets, regression=True, sample_weight=w) for w in W]
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_stacked_fit_has_one_row_per_weighting():
    F, y = _problem(0, 12, 4)
    Y = _one_hot(y)
    W = np.random.default_rng(0).dirichlet(np.ones(12), size=3) * 12
    fit = _logme_fit(F, Y, weights=W)
    assert fit.evidence.shape == fit.alpha.shape == fit.n_iter.shape == (3, Y.shape[1])
    for b in range(3):
        one = _logme_fit(F, Y, weights=W[b])
        np.testing.assert_allclose(fit.evidence[b], one.evidence, rtol=1e-10)
        np.testing.assert_allclose(fit.alpha[b], one.alpha, rtol=1e-6)  # alpha is flat at the maximum


def test_stacked_integer_weights_that_repeat_interpolated_rows_are_refused():
    # N = 6 rows in D = 10: repeating a row makes that weighting's evidence unbounded.
    rng = np.random.default_rng(0)
    F, y = rng.normal(size=(6, 10)), np.array([0, 0, 1, 1, 2, 2])
    W = np.vstack([rng.dirichlet(np.ones(6)) * 6, [2, 1, 1, 1, 1, 1]])
    with pytest.raises(ValueError, match=r"sample weights \(weighting 1\) sum to 7 .*unbounded"):
        logme(F, y, sample_weight=W)
    assert np.isfinite(logme(F, y, sample_weight=W[:1])).all()


@pytest.mark.parametrize("n, d", [(40, 6), (30, 30), (12, 40), (25, 90)])
def test_small_stacks_decompose_in_one_batch_as_one_by_one(monkeypatch, n, d):
    # Small stacks of positive weightings go through one batched eigendecomposition; the
    # value of each weighting is the one the per-weighting path (and the 1-D call) gives.
    rng = np.random.default_rng(n + d)
    labels = np.arange(n) % 3
    features = rng.normal(size=(n, d)) + labels[:, None]
    weights = rng.exponential(size=(5, n))
    weights *= n / weights.sum(axis=1, keepdims=True)
    batched = logme(features, labels, sample_weight=weights)
    single = np.array([logme(features, labels, sample_weight=w) for w in weights])
    monkeypatch.setattr("transferlab.scores._logme._STACKED_ELEMENTS", 0)
    one_by_one = logme(features, labels, sample_weight=weights)
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-10)
    np.testing.assert_allclose(batched, single, rtol=1e-10)


def test_small_stack_that_interpolates_with_weights_above_the_row_count_is_refused():
    rng = np.random.default_rng(0)
    labels = np.arange(10) % 2
    weights = np.ones((3, 10))
    weights[1] *= 2.0  # sums to 20 over 10 rows that 30 features interpolate
    with pytest.raises(ValueError, match=r"weighting 1\) sum to 20 over 10 rows"):
        logme(rng.normal(size=(10, 30)), labels, sample_weight=weights)
