"""NLEEP: LEEP with a Gaussian mixture fitted to the features as the "source classifier".

Li, Jia, Sang, Zhu, Green, Wang & Gong, "Ranking Neural Checkpoints", CVPR 2021.

This module also holds two helpers shared by the feature scores that start
with a principal component analysis (:mod:`._gbc`, :mod:`._parc`, :mod:`._sfda`):
:func:`_centre` and :func:`_pca`.
"""

from __future__ import annotations

import numbers

import numpy as np

from transferlab._validation import check_features_labels, check_int, check_scalar
from transferlab.scores._leep import _leep
from transferlab.scores._linalg import _pca
from transferlab.scores._registry import register_score

#: ``reg_covar`` of the mixture, added to the diagonal of every component
#: covariance (scikit-learn's default). The reduced features are rescaled to a
#: mean per-dimension variance of 1 first, so it is relative to the data scale.
_GMM_REG_COVAR = 1e-6
#: EM iterations and restarts (scikit-learn's defaults, as in both public
#: implementations of NLEEP).
_GMM_MAX_ITER = 100
_GMM_N_INIT = 1
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


def _gmm_posterior(X: np.ndarray, n_classes: int, variance: float, components_per_class: int, seed: int) -> np.ndarray:
    """Posterior ``s_i(z)`` (N, K) of a Gaussian mixture on the top principal components of ``X``.

    The mixture of :func:`nleep` and of PACTran's Dirichlet and Gamma variants (PCA to
    ``variance`` of the variance, rescaled; full covariances; ``K =
    components_per_class * C`` capped at the distinct rows). Constant features
    give one component, ``s_i = [1]``.
    """
    Z = _reduced_features(X, variance)
    if Z.shape[1] == 0:
        return np.ones((X.shape[0], 1))
    n_components = min(components_per_class * n_classes, np.unique(Z, axis=0).shape[0])
    from sklearn.mixture import GaussianMixture  # deferred: sklearn.mixture takes ~0.4 s to import

    gmm = GaussianMixture(
        n_components=n_components,
        covariance_type="full",
        reg_covar=_GMM_REG_COVAR,
        max_iter=_GMM_MAX_ITER,
        n_init=_GMM_N_INIT,
        random_state=seed,
    ).fit(Z)
    return gmm.predict_proba(Z)


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
       (``C`` target classes; 5 C in the paper) and full covariances,
       scikit-learn's ``GaussianMixture`` (k-means initialisation seeded by
       ``seed``, ``reg_covar = 1e-6``, at most 100 EM iterations, one start;
       the defaults of both public implementations).
    3. LEEP (:func:`~transferlab.scores._leep.leep`) with the mixture's posterior
       ``pi_z(x_i) = P(component z | x_i)`` as the source probabilities:

    .. math::

        \\mathrm{NLEEP} = \\frac{1}{N}\\sum_{i=1}^{N} \\log \\sum_{z=1}^{K}
            \\hat P(y_i \\mid z)\\, \\pi_z(x_i), \\qquad
        \\hat P(y \\mid z) = \\frac{\\sum_{i: y_i = y} \\pi_z(x_i)}{\\sum_i \\pi_z(x_i)}.

    ``NLEEP <= 0`` (a round-off excess of ``1e-17`` is clipped); higher is better (the mixture's clusters predict the target
    classes well). The mixture's k-means initialisation depends on ``seed`` and,
    through the indices it draws, on the order of the samples: reordering them
    can move the result as much as changing the seed.

    Degenerate inputs: ``K`` is capped at the number of distinct (reduced)
    samples, the most a mixture can separate (scikit-learn refuses more
    components than samples, and k-means cannot seed more than the distinct
    ones). With
    few samples per component the mixture overfits and NLEEP drifts towards 0,
    so use it with many samples per class. When every feature is constant the
    mixture sees no structure: the posterior is the same for every sample and
    the score is LEEP's value for any input-independent predictor,
    ``sum_c p_c log p_c = -H(Y)`` (``p_c`` the class frequencies).

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
