"""NLEEP: LEEP with a Gaussian mixture fitted to the features as the "source classifier".

Li, Jia, Sang, Zhu, Green, Wang & Gong, "Ranking Neural Checkpoints", CVPR 2021.

The Gaussian mixture is fitted by :func:`_fit_mixture`, scikit-learn's EM for
``GaussianMixture`` reorganised for speed (issue 20); PACTran's Dirichlet and
Gamma variants share it through :func:`_gmm_posterior`. The PCA is
:func:`transferlab.scores._linalg._pca`.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.linalg
import scipy.special

from transferlab._cpus import usable_cpus
from transferlab._linalg import one_blas_thread, weighted_gram
from transferlab._validation import check_features_labels, check_int, check_scalar
from transferlab.scores._leep import _leep
from transferlab.scores._linalg import _pca
from transferlab.scores._registry import register_score

#: ``reg_covar`` of the mixture, added to the diagonal of every component
#: covariance (scikit-learn's default). The reduced features are rescaled to a
#: mean per-dimension variance of 1 first, so it is relative to the data scale.
_GMM_REG_COVAR = 1e-6
#: At most this many EM iterations, from one k-means start (scikit-learn's
#: ``max_iter`` and ``n_init=1``, the defaults both public implementations of
#: NLEEP use: ``GaussianMixture(n_components=5 * C)`` in SFDA's ``metrics.py``).
_GMM_MAX_ITER = 100
#: EM's convergence tolerance: it stops once the mean log-likelihood per sample
#: changes by less than this between two iterations (scikit-learn's default
#: ``tol``, so again that of the public implementations; not loosened for speed).
_GMM_TOL = 1e-3
#: Width of the column blocks of the E step's triangular products (see :func:`_e_step`).
_E_BLOCK = 64
#: Slack on the explained-variance threshold, so that ``0.2 + 0.2 + 0.2 + 0.2``
#: counts as reaching 0.8 despite rounding.
_VARIANCE_SLACK = 1e-10


def _n_components_for(variances: np.ndarray, fraction: float) -> int:
    """The smallest ``k`` whose top ``k`` variances explain at least ``fraction`` of the total."""
    ratio = np.cumsum(variances) / np.sum(variances)
    k = int(np.searchsorted(ratio, fraction - _VARIANCE_SLACK, side="left")) + 1
    return min(k, variances.shape[0])


def _check_options(variance, components_per_class, seed) -> tuple[float, int, int]:
    variance = check_scalar(variance, "variance", numbers.Real, min_val=0, max_val=1, include_boundaries="right")
    components_per_class = check_int(components_per_class, "components_per_class")
    seed = check_scalar(seed, "seed", numbers.Integral, min_val=0, max_val=2**32, include_boundaries="left")
    return variance, components_per_class, seed


def _reduced_features(X: np.ndarray, variance: float) -> np.ndarray:
    """The top principal components explaining ``variance``, rescaled to mean variance 1; (N, 0) if constant."""
    scores, variances = _pca(X)
    if scores.shape[1] == 0:
        return scores
    k = _n_components_for(variances, variance)
    return scores[:, :k] / np.sqrt(np.mean(variances[:k]))


def _workers() -> int:
    """Threads for the per-component loops: the usable cores, at most 8."""
    return min(8, usable_cpus())


def _precision_cholesky(covariance: np.ndarray) -> np.ndarray:
    """``U = L^{-T}`` (upper triangular) for ``covariance = L L^T``, so that ``U U^T`` is its inverse."""
    try:
        chol = scipy.linalg.cholesky(covariance, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise ValueError(
            "the Gaussian mixture has a component with an ill-defined covariance (collapsed samples)"
        ) from None
    eye = np.eye(covariance.shape[0])
    return scipy.linalg.solve_triangular(chol, eye, lower=True, check_finite=False).T


def _m_step(Z: np.ndarray, resp: np.ndarray, pool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights ``n_k`` (unnormalised), means and precision factors ``U_k`` from the responsibilities.

    ``n_k = sum_i r_ik + 10 eps``, ``mu_k = sum_i r_ik z_i / n_k``,
    ``Sigma_k = sum_i r_ik (z_i - mu_k)(z_i - mu_k)^T / n_k + reg_covar I``
    (scikit-learn's M step). The covariance sums run over the rows with
    ``r_ik > 0`` only: terms with ``r_ik = 0`` are exactly 0, and once the
    mixture has separated the data most responsibilities underflow to 0.
    """
    nk = resp.sum(axis=0) + 10 * np.finfo(np.float64).eps
    means = (resp.T @ Z) / nk[:, None]
    dim = Z.shape[1]

    def factor(k: int) -> np.ndarray:
        rows = np.flatnonzero(resp[:, k])
        covariance = weighted_gram(Z[rows] - means[k], resp[rows, k]) / nk[k]
        covariance.flat[:: dim + 1] += _GMM_REG_COVAR
        return _precision_cholesky(covariance)

    return nk, means, np.stack(list(pool.map(factor, range(resp.shape[1]))))


def _log_densities(Z: np.ndarray, means: np.ndarray, factors: np.ndarray, pool) -> np.ndarray:
    """``log N(z_i | mu_k, Sigma_k)`` (N, K): the E step's whole cost, ``O(N K d^2)``.

    ``log N(z | mu_k, Sigma_k) = -(d log 2 pi + ||(z - mu_k) U_k||^2) / 2 + sum_j log U_k,jj``
    (``U_k U_k^T = Sigma_k^{-1}``). ``U_k`` is upper triangular, so column block
    ``[a, b)`` of ``z U_k`` only needs ``z[:b] U_k[:b, a:b]``: blocked, the product
    costs about 0.6 of a full one.
    """
    n, dim = Z.shape

    def mahalanobis(k: int) -> np.ndarray:
        factor = factors[k]
        shift = means[k] @ factor
        out = np.zeros(n)
        for lo in range(0, dim, _E_BLOCK):
            hi = min(lo + _E_BLOCK, dim)
            proj = Z[:, :hi] @ factor[:hi, lo:hi]
            proj -= shift[lo:hi]
            out += np.einsum("ij,ij->i", proj, proj)
        return out

    squared = np.stack(list(pool.map(mahalanobis, range(means.shape[0]))), axis=1)
    log_det = np.sum(np.log(np.diagonal(factors, axis1=1, axis2=2)), axis=1)
    return -0.5 * (dim * np.log(2 * np.pi) + squared) + log_det


def _e_step(log_densities: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """``(mean_i log p(z_i), log r)``: the mean log-likelihood and the log responsibilities.

    ``log r_ik = log w_k + log N(z_i | mu_k, Sigma_k) - log p(z_i)``,
    ``log p(z_i) = logsumexp_k (log w_k + log N(z_i | mu_k, Sigma_k))``.
    """
    weighted = log_densities + np.log(weights)
    log_norm = scipy.special.logsumexp(weighted, axis=1)
    return float(np.mean(log_norm)), weighted - log_norm[:, None]


def _same_m_step(new: np.ndarray, old: np.ndarray, nk: np.ndarray, means: np.ndarray, z_max: float) -> bool:
    """Whether the M step on responsibilities ``new`` returns its result on ``old`` to rounding.

    With ``delta_k = max_i |new_ik - old_ik|`` and ``R_k = max_i |z_i| + |mu_k|``
    (a bound on ``|z_i - mu_k|``), the change moves ``n_k`` by at most ``N
    delta_k``, the mean by at most ``N delta_k R_k / n_k`` and the scatter by at
    most ``N delta_k R_k^2 / n_k`` (to first order), against a covariance whose
    eigenvalues are at least ``reg_covar``. So when ``N delta_k (1 + 2 R_k^2 /
    reg_covar) / n_k <= eps`` for every ``k``, the weights, means, covariances and
    every Mahalanobis distance move by less than one rounding error: the M step
    would return the same parameters up to rounding.
    """
    delta = np.max(np.abs(new - old), axis=0)
    reach = (z_max + np.linalg.norm(means, axis=1)) ** 2
    drift = new.shape[0] * delta * (1.0 + 2.0 * reach / _GMM_REG_COVAR) / nk
    return bool(np.all(drift <= np.finfo(np.float64).eps))


def _fit_mixture(Z: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """Posterior (N, K) of a full-covariance Gaussian mixture fitted to ``Z`` by EM.

    The algorithm of scikit-learn's ``GaussianMixture(covariance_type="full",
    reg_covar=1e-6, tol=1e-3, max_iter=100, n_init=1, random_state=seed)``, the
    defaults of the public NLEEP implementations, step for step: responsibilities
    initialised one-hot from ``KMeans(n_clusters=K, n_init=1, random_state=seed)``
    (scikit-learn's own, so the same labels), then EM until the mean
    log-likelihood per sample changes by less than ``_GMM_TOL`` (at most
    ``_GMM_MAX_ITER`` iterations), then one more E step for the posterior.

    Only the arithmetic is reorganised, not the result:

    - the M step sums each covariance over the rows with a nonzero
      responsibility only (:func:`_m_step`); the E step multiplies by the
      triangular precision factors in column blocks (:func:`_log_densities`);
    - an M step whose responsibilities differ from those of the previous one
      by less than it can resolve (:func:`_same_m_step`: its means and
      covariances would move by less than one rounding error) is skipped, and
      so are the component densities of the next E step; only the weights'
      normalisation is redone. Once the mixture has separated the samples (many
      dimensions, few samples per component: responsibilities of 0 or 1 up to
      ``1e-170``), this turns the later E steps into a ``logsumexp``;
    - the per-component loops run in threads with one BLAS thread each (many
      small factorisations are far slower on a multi-threaded BLAS).
    """
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.cluster import KMeans  # deferred: importing sklearn.cluster takes ~0.3 s

    n = Z.shape[0]
    z_max = float(np.max(np.linalg.norm(Z, axis=1)))
    with one_blas_thread(), ThreadPoolExecutor(max_workers=_workers()) as pool:
        labels = KMeans(n_clusters=n_components, n_init=1, random_state=seed).fit(Z).labels_
        resp = np.zeros((n, n_components))
        resp[np.arange(n), labels] = 1.0
        nk, means, factors = _m_step(Z, resp, pool)
        weights = nk / n  # scikit-learn's initialisation; its M step divides by sum(nk)
        log_densities = None  # of the current means and factors, once computed
        lower_bound = -np.inf
        for _ in range(_GMM_MAX_ITER):
            previous = lower_bound
            if log_densities is None:
                log_densities = _log_densities(Z, means, factors, pool)
            lower_bound, log_resp = _e_step(log_densities, weights)
            new_resp = np.exp(log_resp)
            if not _same_m_step(new_resp, resp, nk, means, z_max):
                resp = new_resp
                nk, means, factors = _m_step(Z, resp, pool)
                log_densities = None
            weights = nk / np.sum(nk)
            if abs(lower_bound - previous) < _GMM_TOL:
                break
        if log_densities is None:
            log_densities = _log_densities(Z, means, factors, pool)
        return np.exp(_e_step(log_densities, weights)[1])


def _gmm_posterior(X: np.ndarray, n_classes: int, variance: float, components_per_class: int, seed: int) -> np.ndarray:
    """Posterior ``s_i(z)`` (N, K) of a Gaussian mixture on the top principal components of ``X``.

    The mixture of :func:`nleep` and of PACTran's Dirichlet and Gamma variants (PCA to
    ``variance`` of the variance, rescaled; full covariances; ``K =
    components_per_class * C`` capped at the distinct rows), fitted by
    :func:`_fit_mixture`. Constant features give one component, ``s_i = [1]``.
    The PCA runs on one BLAS thread: on a busy machine a multi-threaded BLAS
    loses far more to waiting threads than it gains (seconds, not tenths, at
    N = 10,000, D = 512).
    """
    with one_blas_thread():
        Z = _reduced_features(X, variance)
    if Z.shape[1] == 0:
        return np.ones((X.shape[0], 1))
    n_components = min(components_per_class * n_classes, np.unique(Z, axis=0).shape[0])
    return _fit_mixture(Z, n_components, seed)


@register_score(
    "nleep",
    needs={"features"},
    reference='Li, Jia, Sang, Zhu, Green, Wang & Gong, "Ranking Neural Checkpoints", CVPR 2021',
    # PCA of the centred features, rescaled to unit mean variance (reg_covar relative to
    # the data); the Gaussian mixture's k-means initialisation is seeded, so the value
    # depends on the order of the samples.
    min_per_class=1,
    scale_invariant=True,
    translation_invariant=True,
    stochastic=True,
    resample=False,  # a Gaussian mixture fit per bootstrap resample: too costly
)
def nleep(features, labels, *, variance: float = 0.8, components_per_class: int = 5, seed: int = 0) -> float:
    """NLEEP: LEEP with the posterior of a Gaussian mixture on the features in place of a source classifier.

    1. PCA of the centred features, keeping the smallest number ``k`` of
       components that explain at least ``variance`` of the total variance
       (80% in the paper); the ``k`` components are rescaled by one common
       factor to a mean variance of 1 (the mixture is invariant to it, and it
       makes ``reg_covar`` relative to the data scale).
    2. A Gaussian mixture with ``K = components_per_class * C`` components
       (``C`` target classes; 5 C in the paper) and full covariances, fitted
       by EM exactly as scikit-learn's ``GaussianMixture`` fits it with the
       defaults of both public implementations: one start from scikit-learn's
       k-means (seeded by ``seed``), ``reg_covar = 1e-6``, EM until the mean
       log-likelihood per sample changes by less than ``tol = 1e-3``, at most
       100 iterations (:func:`_fit_mixture`).
    3. LEEP (:func:`~transferlab.scores._leep.leep`) with the mixture's posterior
       ``pi_z(x_i) = P(component z | x_i)`` as the source probabilities:

    .. math::

        \\mathrm{NLEEP} = \\frac{1}{N}\\sum_{i=1}^{N} \\log \\sum_{z=1}^{K}
            \\hat P(y_i \\mid z)\\, \\pi_z(x_i), \\qquad
        \\hat P(y \\mid z) = \\frac{\\sum_{i: y_i = y} \\pi_z(x_i)}{\\sum_i \\pi_z(x_i)}.

    ``NLEEP <= 0`` (a round-off excess of ``1e-17`` is clipped); higher is
    better (the mixture's clusters predict the target classes well). The
    mixture's k-means initialisation depends on ``seed`` and, through the
    indices it draws, on the order of the samples: reordering them can move the
    result as much as changing the seed.

    Degenerate inputs: ``K`` is capped at the number of distinct (reduced)
    samples, the most a mixture can separate (scikit-learn refuses more
    components than samples, and k-means cannot seed more than the distinct
    ones). With
    few samples per component the mixture overfits and NLEEP drifts towards 0,
    so use it with many samples per class. When every feature is constant the
    mixture sees no structure: the posterior is the same for every sample and
    the score is LEEP's value for any input-independent predictor,
    ``sum_c p_c log p_c = -H(Y)`` (``p_c`` the class frequencies).

    Speed (issue 20): up to this version step 2 called scikit-learn's
    ``GaussianMixture`` itself, about 143 s at N = 10,000, D = 512, C = 10
    (``bench/scores.py``'s inputs: 344 principal components, 50 mixture
    components). :func:`_fit_mixture` runs the same EM (the same k-means
    start, formulas, ``tol``, iteration cap, single start, full covariances,
    float64) reorganised: each covariance sum skips the rows whose
    responsibility is exactly 0; the E step multiplies by the triangular
    precision factors in column blocks; an M step whose responsibilities
    differ from the previous ones by less than it can resolve (its parameters
    would move by under one rounding error) is skipped, together with the
    component densities of the next E step; the PCA and the mixture run on one
    BLAS thread, with the per-component work spread over threads. Against the
    old code, same seeds: equal values (to 1e-13) and posteriors (to 1e-10) at
    N = 2,000 (D = 512, 64, 16) and N = 10,000: the bench inputs, seeds 0 and 1
    (0 both times, posteriors equal to 1e-181), class strength 0.1
    (-2.15832686618 both), D = 32 with soft posteriors over dozens of EM
    iterations (-0.806301639884 and -0.781301247677 both, 7e-14 apart). At
    N = 10,000, D = 512: 117-163 s before, 6.5-15 s after on a 2-core machine
    running 3-4 other jobs (``bench/scale_nleep.py``: 6.9 s).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate model.
    labels : array-like of shape (n_samples,)
        Target labels (integers or strings, at least 2 classes).
    variance : float, default=0.8
        Fraction of the variance, in ``(0, 1]``, that the kept principal
        components must explain.
    components_per_class : int, default=5
        Mixture components per target class.
    seed : int, default=0
        Seed of the mixture's initialisation (an integer in ``[0, 2**32)``).

    Returns
    -------
    float
        The NLEEP score, at most 0.

    Raises
    ------
    ValueError
        On invalid input (see :func:`~transferlab.scores._validation.check_features_labels`)
        or options.

    References
    ----------
    Y. Li, X. Jia, R. Sang, Y. Zhu, B. Green, L. Wang, B. Gong. Ranking Neural
    Checkpoints. CVPR 2021.

    Examples
    --------
    Constant features carry no information: the score is ``-H(Y)``, here
    ``-log 2`` for two balanced classes:

    >>> labels = [0, 0, 1, 1]
    >>> round(nleep(np.ones((4, 3)), labels), 12) == round(float(-np.log(2)), 12)
    True
    """
    variance, components_per_class, seed = _check_options(variance, components_per_class, seed)
    X, y, classes = check_features_labels(features, labels, min_per_class=1)
    n_classes = classes.shape[0]
    # LEEP <= 0 exactly; a near-perfect posterior can round to +1e-17, clip that. Constant
    # features give one component: LEEP is then sum_c p_c log p_c, the class prior's.
    return min(_leep(_gmm_posterior(X, n_classes, variance, components_per_class, seed), y, n_classes), 0.0)
