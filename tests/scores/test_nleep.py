"""Tests for NLEEP and the shared PCA helper: an independent sklearn pipeline, properties, edge cases."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from transferlab.scores._leep import leep
from transferlab.scores import _nleep
from transferlab.scores._nleep import (
    _fit_mixture,
    _n_components_for,
    _pca,
    _precision_cholesky,
    _same_m_step,
    nleep,
)


def _mixture(seed, n_per_class=20, n_classes=3, dim=5, sep=1.0, spread=1.0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = sep * rng.normal(size=(n_classes, dim))[y] + spread * rng.normal(size=(y.shape[0], dim))
    return X, y


def _nleep_independent(X, y, seed, variance=0.8, per_class=5):
    """The recipe of the paper with scikit-learn's PCA, then LEEP on the mixture posterior."""
    pca = PCA(svd_solver="full").fit(X)
    k = int(np.argmax(np.cumsum(pca.explained_variance_ratio_) >= variance - 1e-10)) + 1
    Z = pca.transform(X)[:, :k]
    Z = Z / np.sqrt(np.mean(Z**2))  # one common scale: mean per-dimension (population) variance 1
    gmm = GaussianMixture(
        n_components=per_class * len(np.unique(y)), covariance_type="full", reg_covar=1e-6, random_state=seed
    ).fit(Z)
    return leep(gmm.predict_proba(Z), y)


# ----------------------------------------------------------------------------- the PCA helper


@pytest.mark.parametrize("shape", [(30, 6), (8, 20)])
def test_pca_matches_sklearn_up_to_sign_and_scale(shape):
    rng = np.random.default_rng(0)
    X = rng.normal(size=shape) * rng.uniform(0.5, 3.0, size=shape[1]) + 5.0
    scores, variances = _pca(X)
    rank = min(shape[0] - 1, shape[1])  # centring removes one dimension when N <= D
    assert scores.shape == (shape[0], rank)
    reference = PCA(n_components=rank, svd_solver="full").fit(X)
    # ratios of variances and scores up to one common scale (ours are in units of max |X - mean|)
    np.testing.assert_allclose(variances / variances.sum(), reference.explained_variance_ratio_, rtol=1e-10)
    ref_scores = reference.transform(X)
    scale = np.max(np.abs(X - X.mean(axis=0)))
    np.testing.assert_allclose(np.abs(scores * scale), np.abs(ref_scores), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(variances, np.var(scores, axis=0), rtol=1e-12)


def test_pca_signs_are_fixed_by_the_largest_loading():
    # scores = Xc @ V, so V = pinv(Xc) @ scores; the largest |loading| of each axis must be positive
    rng = np.random.default_rng(1)
    X = rng.normal(size=(25, 4))
    scores, _ = _pca(X)
    Xc = (X - X.mean(axis=0)) / np.max(np.abs(X - X.mean(axis=0)))
    V = np.linalg.lstsq(Xc, scores, rcond=None)[0]
    assert np.all(V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])] > 0)
    flipped, _ = _pca(-X)  # negating the data keeps the axes, so the scores flip
    np.testing.assert_allclose(flipped, -scores, rtol=1e-10, atol=1e-12)


def test_pca_drops_constant_and_null_directions():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(10, 2))
    X = np.column_stack([base, base @ [1.0, -2.0], np.full(10, 1e12 + 0.1)])  # rank 2
    scores, variances = _pca(X)
    assert scores.shape == (10, 2) and np.all(variances > 0)
    assert _pca(np.full((5, 3), 2.5))[0].shape == (5, 0)


def test_components_for_explained_variance():
    # cumulative ratios 0.2, 0.4, 0.6, 0.8 (0.8000000000000002 in floats), 1.0: 4 components reach 0.8
    assert _n_components_for(np.full(5, 0.2), 0.8) == 4
    assert _n_components_for(np.array([5.0, 3.0, 2.0]), 0.5) == 1
    assert _n_components_for(np.array([5.0, 3.0, 2.0]), 0.51) == 2
    assert _n_components_for(np.array([5.0, 3.0, 2.0]), 1.0) == 3


# ----------------------------------------------------------------------------- NLEEP


@pytest.mark.parametrize("seed", [0, 3])
def test_equals_leep_of_an_independently_fitted_mixture(seed):
    # overlapping classes and few components, so that the value is far from its maximum 0
    X, y = _mixture(seed)
    value = nleep(X, y, seed=seed, components_per_class=1)
    assert value < -0.05
    np.testing.assert_allclose(value, _nleep_independent(X, y, seed, per_class=1), rtol=1e-6)
    np.testing.assert_allclose(
        nleep(X, y, seed=seed, variance=0.95, components_per_class=2),
        _nleep_independent(X, y, seed, variance=0.95, per_class=2),
        rtol=1e-6,
    )


def test_deterministic_by_seed():
    X, y = _mixture(1)
    assert nleep(X, y, seed=4, components_per_class=2) == nleep(X, y, seed=4, components_per_class=2)
    assert nleep(X, y, seed=5, components_per_class=2) <= 0.0


def test_well_separated_mixture_beats_shuffled_labels():
    X, y = _mixture(2, sep=3.0, spread=0.3)
    shuffled = np.random.default_rng(0).permutation(y)
    good, bad = nleep(X, y), nleep(X, shuffled)
    assert good > -0.05  # clusters follow the classes: close to the maximum 0
    assert good > bad + 0.5


def test_invariant_to_class_names_translation_and_scale():
    X, y = _mixture(3)
    base = nleep(X, y, components_per_class=1)
    assert base < -0.05
    renamed = np.array(["z", "x", "y"])[y]
    np.testing.assert_allclose(nleep(X, renamed, components_per_class=1), base, rtol=1e-12)
    # the reduced features are rescaled to unit mean variance, so reg_covar is relative
    np.testing.assert_allclose(nleep(1e6 * X - 7.0, y, components_per_class=1), base, rtol=1e-6)
    np.testing.assert_allclose(nleep(1e12 * X, y, components_per_class=1), base, rtol=1e-6)


def test_degenerate_inputs():
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    # constant features: -H(Y), the LEEP of any predictor that ignores its input
    freq = np.array([3, 2, 3]) / 8
    np.testing.assert_allclose(nleep(np.full((8, 4), -2.0), y), np.sum(freq * np.log(freq)), rtol=1e-14)
    # N < D, and fewer samples than 5 C = 15 components: capped at the 8 distinct samples
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 30))
    value = nleep(X, y)
    assert np.isfinite(value) and value <= 0.0
    # duplicated samples: only 4 distinct rows, so at most 4 components
    dup = np.repeat(rng.normal(size=(4, 3)), 2, axis=0)
    value = nleep(dup, np.array([0, 0, 1, 1, 0, 0, 1, 1]))
    assert np.isfinite(value) and value <= 0.0
    # float32 input is computed in float64
    Xm, ym = _mixture(4)
    x32 = Xm.astype(np.float32)
    np.testing.assert_allclose(nleep(x32, ym), nleep(x32.astype(np.float64), ym), rtol=1e-12)


def test_returns_python_float_and_leaves_inputs_alone():
    X, y = _mixture(5)
    X0, y0 = X.copy(), y.copy()
    assert type(nleep(X, y)) is float
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_errors():
    X, y = _mixture(0, n_per_class=4)
    for bad in (0.0, 1.5, True):
        with pytest.raises(ValueError, match=r"variance must be a finite number in \(0, 1\]; got "):
            nleep(X, y, variance=bad)
    with pytest.raises(ValueError, match="components_per_class must be an integer >= 1"):
        nleep(X, y, components_per_class=0)
    for bad in (-1, 2**32, 1.5):
        with pytest.raises(ValueError, match="seed must be an integer in"):
            nleep(X, y, seed=bad)
    with pytest.raises(ValueError, match="features must be 2-D"):
        nleep(X[:, 0], y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        nleep(X, np.zeros(len(y), dtype=int))


# ----------------------------------------------------------------------------- the mixture's EM


def _clusters(seed, n, dim, k, sep):
    rng = np.random.default_rng(seed)
    return sep * rng.normal(size=(k, dim))[rng.integers(0, k, size=n)] + rng.normal(size=(n, dim))


@pytest.mark.parametrize(
    ("seed", "n", "dim", "k", "sep", "soft"),
    [
        (0, 400, 3, 6, 1.0, True),  # overlapping clusters: soft posteriors, 11 EM iterations in sklearn
        (1, 400, 3, 6, 0.7, True),  # 20 iterations
        (2, 300, 40, 10, 1.0, False),  # 40 dims: most responsibilities underflow to exactly 0
        (3, 300, 40, 10, 0.3, False),
    ],
)
def test_mixture_posterior_equals_scikit_learns_gaussian_mixture(seed, n, dim, k, sep, soft, monkeypatch):
    # The EM is scikit-learn's GaussianMixture (full covariances, reg_covar 1e-6, tol 1e-3,
    # k-means start), reorganised: the posteriors must agree to rounding, soft or hard.
    Z = _clusters(seed, n, dim, k, sep)
    reference = GaussianMixture(k, covariance_type="full", reg_covar=1e-6, random_state=seed).fit(Z)
    expected = reference.predict_proba(Z)
    assert soft == (reference.n_iter_ > 5 and np.all(expected > 0))
    assert soft or np.mean(expected == 0) > 0.5  # the sparse M step has rows to skip
    evaluations = []
    densities = _nleep._log_densities
    monkeypatch.setattr(_nleep, "_log_densities", lambda *args: evaluations.append(1) or densities(*args))
    np.testing.assert_allclose(_fit_mixture(Z, k, seed), expected, rtol=0, atol=1e-12)
    # sklearn evaluates the densities n_iter_ + 1 times; hard posteriors let the fit skip M steps
    assert len(evaluations) == reference.n_iter_ + 1 if soft else len(evaluations) < reference.n_iter_ + 1


def test_m_step_is_skipped_only_below_its_resolution():
    rng = np.random.default_rng(0)
    old = rng.dirichlet(np.ones(4), size=50)
    old[0] = [1.0, 0.0, 0.0, 0.0]
    nk = old.sum(axis=0)  # n_1 = 11.0
    means = np.tile([2.0, 0.0, 0.0], (4, 1))  # with |z| <= 2: R = 4
    assert _same_m_step(old, old, nk, means, 2.0)
    # N delta (1 + 2 R^2 / reg_covar) / n_1 = 50 * 3.2e7 / 11.0 delta = 1.5e8 delta against eps = 2.2e-16
    for delta, same in ((1e-200, True), (1e-25, True), (1e-23, False), (1e-3, False)):
        moved = old.copy()
        moved[0, 1] = delta
        assert _same_m_step(moved, old, nk, means, 2.0) == same


def test_mixture_does_not_depend_on_the_number_of_threads(monkeypatch):
    # every component is computed the same way in whichever thread runs it
    Z = _clusters(4, 300, 8, 6, 1.0)
    monkeypatch.setattr(_nleep, "_workers", lambda: 1)
    one = _fit_mixture(Z, 6, 0)
    monkeypatch.setattr(_nleep, "_workers", lambda: 3)
    np.testing.assert_array_equal(_fit_mixture(Z, 6, 0), one)


def test_precision_factor_inverts_the_covariance_and_rejects_indefinite_ones():
    covariance = np.array([[4.0, 2.0], [2.0, 3.0]])
    factor = _precision_cholesky(covariance)
    assert factor[1, 0] == 0.0  # upper triangular
    np.testing.assert_allclose(factor @ factor.T, np.linalg.inv(covariance), rtol=1e-14)
    with pytest.raises(ValueError, match="ill-defined covariance"):
        _precision_cholesky(np.array([[1.0, 2.0], [2.0, 1.0]]))


def _two_optima_case():
    # A draw of tests/scores/test_properties.py (problem (536, (6, 5, 6, 6), 4, 1000.0)) whose
    # EM has two optima close enough that the rounding of F -> cF decides between them.
    from tests.scores.test_properties import random_inputs

    inputs = random_inputs("nleep", 536, (6, 5, 6, 6), 4, 1000.0)
    return inputs["features"], inputs["labels"]


@pytest.mark.parametrize("exponent", [-60, -7, 1, 9, 60])
def test_power_of_two_scaling_is_exact(exponent):
    # Multiplying by 2^k is exact in float64, and every step after it (centring, PCA, the
    # rescale to unit variance) is then exactly scaled too: the value is identical.
    F, y = _two_optima_case()
    assert nleep(np.ldexp(F, exponent), y) == nleep(F, y)


@pytest.mark.xfail(
    strict=True,
    reason="known defect: the mixture's EM is sensitive to rounding; F -> 1.1 F (not exact in float64) "
    "lands in another EM optimum on this draw (KNOWN_DEFECTS in test_properties.py)",
)
def test_scale_by_a_non_power_of_two_on_a_two_optima_draw():
    F, y = _two_optima_case()
    np.testing.assert_allclose(nleep(1.1 * F, y), nleep(F, y), rtol=1e-7)
