"""PACTran (Dirichlet, Gamma, Gaussian): values against independently derived references.

- Dirichlet: with hard latent assignments the bound is exact, the log
  Dirichlet-multinomial marginal likelihood, computed here by the sequential
  Polya-urn predictive; with soft ones it lies below the exact log-likelihood
  (a sum over all K^N assignments) and equals the maximum over ``q`` of the
  closed-form bound, found here by a generic optimiser on softmax logits.
- Gamma: the evidence lower bound written in its general form (``E[log w]`` by
  numerical quadrature, the Gamma KL divergence from the log density ratio) at a fixed point solved here
  with ``scipy.optimize.root``; below the exact log-likelihood with hard
  assignments (a product of Dirichlet-multinomials, since normalised Gammas are
  Dirichlet).
- Gaussian: the regularised risk minimised by BFGS on a loop-based loss with
  finite-difference gradients, and the Hessian trace by central second
  differences.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from transferlab.scores import spec
from transferlab.scores._pactran import (
    _pactran_dirichlet,
    _pactran_gamma,
    _pactran_gaussian,
    pactran_dirichlet,
    pactran_gamma,
    pactran_gaussian,
)

NAMES = ("pactran_dirichlet", "pactran_gamma", "pactran_gaussian")


def _polya_log_marginal(labels, a0):
    """log p(y_1..y_n) under y ~ Cat(w), w ~ Dir(a0), by the sequential predictive (a0_y + n_y) / (sum a0 + t)."""
    counts = np.zeros(len(a0))
    total = 0.0
    for t, label in enumerate(labels):
        total += math.log((a0[label] + counts[label]) / (sum(a0) + t))
        counts[label] += 1
    return total


def _prior(y, n_classes, alpha=1.0):
    return [alpha * np.sum(y == c) / len(y) for c in range(n_classes)]


def _exact_log_likelihood_dirichlet(s, y, a0):
    """log of sum over all assignments z of prod_i s_i(z_i) prod_k DirMult(labels in component k)."""
    n, k = s.shape
    total = 0.0
    for z in itertools.product(range(k), repeat=n):
        weight = math.prod(s[i, z[i]] for i in range(n))
        log_p = sum(_polya_log_marginal([y[i] for i in range(n) if z[i] == comp], a0) for comp in range(k))
        total += weight * math.exp(log_p)
    return math.log(total)


# --------------------------------------------------------------------------------------
# Dirichlet
# --------------------------------------------------------------------------------------


def test_dirichlet_hard_assignments_equal_the_dirichlet_multinomial_marginal():
    y = np.array([0, 1, 1, 0, 2, 2, 2, 0, 1])
    z = np.array([0, 0, 1, 1, 1, 2, 2, 2, 0])
    s = np.eye(3)[z]
    a0 = _prior(y, 3, alpha=1.0)
    expected = sum(_polya_log_marginal(list(y[z == k]), a0) for k in range(3))
    np.testing.assert_allclose(_pactran_dirichlet(s, y, 3), -expected / (9 * 3), rtol=1e-12)
    # alpha scales the prior's concentration
    a0 = _prior(y, 3, alpha=4.0)
    expected = sum(_polya_log_marginal(list(y[z == k]), a0) for k in range(3))
    np.testing.assert_allclose(_pactran_dirichlet(s, y, 3, alpha=4.0), -expected / (9 * 3), rtol=1e-12)


def _dirichlet_bound(q, s, y, a0):
    """The closed-form bound sum_k [log B(a0 + counts_k) - log B(a0)] - sum_i KL(q_i || s_i), by loops."""
    n, k = s.shape

    def log_beta(a):
        return sum(math.lgamma(v) for v in a) - math.lgamma(sum(a))

    total = 0.0
    for comp in range(k):
        a = [a0[c] + sum(q[i, comp] for i in range(n) if y[i] == c) for c in range(len(a0))]
        total += log_beta(a) - log_beta(a0)
    for i in range(n):
        for comp in range(k):
            if q[i, comp] > 0:
                total -= q[i, comp] * math.log(q[i, comp] / s[i, comp])
    return total


def test_dirichlet_soft_assignments_maximise_the_bound_below_the_exact_likelihood():
    rng = np.random.default_rng(3)
    y = np.array([0, 1, 0, 1, 1, 0])
    s = rng.dirichlet([1.0, 1.0], size=6)
    a0 = _prior(y, 2)
    value = _pactran_dirichlet(s, y, 2, max_iter=10_000)

    def negative_bound(logits):
        q = special.softmax(logits.reshape(6, 2), axis=1)
        return -_dirichlet_bound(q, s, y, a0)

    best = optimize.minimize(negative_bound, np.zeros(12), method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(value, best.fun / 12, rtol=1e-7)
    exact = _exact_log_likelihood_dirichlet(s, y, a0)
    assert value >= -exact / 12 - 1e-12
    # the reference's 10 sweeps give a (slightly looser) valid bound
    assert value - 1e-12 <= _pactran_dirichlet(s, y, 2) <= -exact / 12 + 0.5


# --------------------------------------------------------------------------------------
# Gamma
# --------------------------------------------------------------------------------------


def _gamma_expect_log(a):
    return integrate.quad(lambda w: math.log(w) * stats.gamma.pdf(w, a), 0, np.inf, limit=200)[0]


def _gamma_kl(a, a0):
    """KL(Gamma(a, 1) || Gamma(a0, 1)) = E[log of the density ratio (a - a0) log w - lgamma(a) + lgamma(a0)]."""
    return (a - a0) * _gamma_expect_log(a) - math.lgamma(a) + math.lgamma(a0)


def _gamma_elbo(q, s, y, a0):
    """The general ELBO of the Gamma model at q(z), q(w) = Gamma(a0 + counts, 1), tangent point lambda = E[...].

    E_q[log p(y_i | ...)] >= sum_z q_i(z) (log s_i(z) + E log w_{z y_i} - log q_i(z))
    - E[sum_z s_i(z) W_z] / lambda_i - log lambda_i + 1, minus KL(q(w) || p(w)).
    """
    n, k = s.shape
    n_classes = len(a0)
    a = np.array([[a0[c] + sum(q[i, z] for i in range(n) if y[i] == c) for z in range(k)] for c in range(n_classes)])
    total = 0.0
    for i in range(n):
        for z in range(k):
            if q[i, z] > 0:
                total += q[i, z] * (math.log(s[i, z]) + _gamma_expect_log(a[y[i], z]) - math.log(q[i, z]))
        expected_norm = sum(s[i, z] * a[:, z].sum() for z in range(k))  # E[W_z] = sum_c a_cz (rate 1)
        lam = expected_norm
        total += -expected_norm / lam - math.log(lam) + 1.0
    for c in range(n_classes):
        for z in range(k):
            total -= _gamma_kl(a[c, z], a0[c])
    return total


def _gamma_fixed_point(s, y, a0):
    """q_i(z) ∝ s_i(z) exp(psi(a0_{y_i} + sum_{j: y_j = y_i} q_j(z))), by scipy.optimize.root from uniform q."""
    n, k = s.shape

    def residual(flat):
        q = flat.reshape(n, k)
        a = np.array([[a0[c] + q[y == c, z].sum() for z in range(k)] for c in range(len(a0))])
        target = s * np.exp(special.digamma(a[y]))
        return (q - target / target.sum(axis=1, keepdims=True)).ravel()

    sol = optimize.root(residual, np.full(n * k, 1.0 / k), tol=1e-14)
    assert sol.success
    return sol.x.reshape(n, k)


def test_gamma_equals_its_general_elbo_at_the_fixed_point():
    rng = np.random.default_rng(5)
    y = np.array([0, 1, 2, 0, 1, 2, 0])
    s = rng.dirichlet([2.0, 2.0], size=7)
    a0 = _prior(y, 3)
    q = _gamma_fixed_point(s, y, a0)
    expected = _gamma_elbo(q, s, y, a0)
    np.testing.assert_allclose(_pactran_gamma(s, y, 3, max_iter=10_000), -expected / (7 * 3), rtol=1e-8)


def test_gamma_hard_assignments_bound_the_exact_likelihood():
    # normalised independent Gammas of one rate are Dirichlet: with hard assignments the
    # exact likelihood is a product of Dirichlet-multinomials, which the bound cannot exceed
    y = np.array([0, 1, 1, 0, 2, 2, 2, 0, 1, 1])
    z = np.array([0, 0, 1, 1, 1, 0, 1, 0, 0, 1])
    s = np.eye(2)[z]
    a0 = _prior(y, 3)
    exact = sum(_polya_log_marginal(list(y[z == k]), a0) for k in range(2))
    value = _pactran_gamma(s, y, 3)
    assert value >= -exact / 30
    q = s
    np.testing.assert_allclose(value, -_gamma_elbo(q, s, y, a0) / 30, rtol=1e-8)


# --------------------------------------------------------------------------------------
# Gaussian
# --------------------------------------------------------------------------------------


def _loop_loss(theta, X, y, n_classes, lam_n):
    d = X.shape[1]
    W = theta[: d * n_classes].reshape(d, n_classes)
    b = theta[d * n_classes :]
    total = 0.0
    for i in range(X.shape[0]):
        logits = [sum(X[i, j] * W[j, c] for j in range(d)) + b[c] for c in range(n_classes)]
        top = max(logits)
        total += top + math.log(sum(math.exp(v - top) for v in logits)) - logits[y[i]]
    return total / X.shape[0] + 0.5 * float(np.sum(W**2)) / lam_n


def _bfgs_minimum(Xc, y, n_classes, lam_n):
    start = np.zeros((Xc.shape[1] + 1) * n_classes)
    return optimize.minimize(_loop_loss, start, args=(Xc, y, n_classes, lam_n), method="BFGS", options={"gtol": 1e-11})


def test_gaussian_matches_an_independent_optimum_and_a_finite_difference_hessian():
    rng = np.random.default_rng(11)
    n, d, n_classes = 12, 2, 3
    y = np.arange(n) % n_classes
    X = rng.normal(size=(n, d)) + 0.8 * rng.normal(size=(n_classes, d))[y] + 5.0  # offset: centring matters not
    Xc = X - X.mean(axis=0)
    lda_factor = 1.0
    lam_n = lda_factor * n
    best = _bfgs_minimum(Xc, y, n_classes, lam_n)
    theta = best.x

    def summed_ce(t):
        return (_loop_loss(t, Xc, y, n_classes, np.inf)) * n

    h = 1e-4
    trace = sum(
        (summed_ce(theta + h * e) - 2 * summed_ce(theta) + summed_ce(theta - h * e)) / h**2
        for e in np.eye(theta.size)
    )
    k = d * n_classes
    s2 = 100.0 * lda_factor / d
    expected = best.fun + 0.5 * k * s2 / lam_n * math.log(1.0 + lam_n * trace / k)
    np.testing.assert_allclose(_pactran_gaussian(X, y, n_classes), expected, rtol=1e-6)
    np.testing.assert_allclose(pactran_gaussian(X, y), -expected, rtol=1e-6)
    # an explicit prior variance and lambda
    s2, lda_factor = 3.0, 0.5
    lam_n = lda_factor * n
    best = _bfgs_minimum(Xc, y, n_classes, lam_n)
    theta = best.x
    trace = sum(
        (summed_ce(theta + h * e) - 2 * summed_ce(theta) + summed_ce(theta - h * e)) / h**2
        for e in np.eye(theta.size)
    )
    expected = best.fun + 0.5 * k * s2 / lam_n * math.log(1.0 + lam_n * trace / k)
    value = pactran_gaussian(X, y, lda_factor=lda_factor, prior_variance=s2)
    np.testing.assert_allclose(value, -expected, rtol=1e-6)


# --------------------------------------------------------------------------------------
# Behaviour of the registered scores
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_separated_features_score_higher_than_shuffled_labels(name):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    X = rng.normal(size=(60, 4)) + 4.0 * rng.normal(size=(3, 4))[y]
    score = spec(name).func
    assert score(X, y) > score(X, rng.permutation(y))


@pytest.mark.parametrize("name", NAMES)
def test_registered_traits(name):
    s = spec(name)
    assert s.needs == frozenset({"features"}) and s.direction == 1 and s.group == "score"
    assert not s.resample and s.min_per_class == 1 and s.translation_invariant
    assert s.scale_invariant == (name != "pactran_gaussian")


@pytest.mark.parametrize(
    "score, option",
    [
        (pactran_dirichlet, {"alpha": 0.0}),
        (pactran_gamma, {"alpha": -1.0}),
        (pactran_dirichlet, {"max_iter": 0}),
        (pactran_gamma, {"components_per_class": 0}),
        (pactran_gaussian, {"lda_factor": 0.0}),
        (pactran_gaussian, {"prior_variance": -1.0}),
        (pactran_gaussian, {"max_iter": 0}),
    ],
)
def test_bad_options_raise_naming_the_argument(score, option):
    (key,) = option
    with pytest.raises(ValueError, match=key):
        score(np.eye(4), [0, 0, 1, 1], **option)


@pytest.mark.parametrize("name", ["pactran_dirichlet", "pactran_gamma"])
@pytest.mark.xfail(
    strict=True,
    reason="known defect: the mixture's EM (shared with NLEEP) is sensitive to rounding; F -> 1.1 F lands in "
    "another EM optimum on this draw (KNOWN_DEFECTS in test_properties.py)",
)
def test_mixture_variants_share_nleeps_rounding_defect(name):
    from tests.scores.test_properties import random_inputs

    inputs = random_inputs("nleep", 536, (6, 5, 6, 6), 4, 1000.0)
    F, y = inputs["features"], inputs["labels"]
    np.testing.assert_allclose(spec(name).compute(y, features=1.1 * F, seed=0), spec(name).compute(y, features=F, seed=0),
                               rtol=1e-7)


@pytest.mark.parametrize("name", ["pactran_dirichlet", "pactran_gamma"])
def test_mixture_variants_are_exact_under_powers_of_two(name):
    from tests.scores.test_properties import random_inputs

    inputs = random_inputs("nleep", 536, (6, 5, 6, 6), 4, 1000.0)
    F, y = inputs["features"], inputs["labels"]
    assert spec(name).compute(y, features=np.ldexp(F, 7), seed=0) == spec(name).compute(y, features=F, seed=0)
