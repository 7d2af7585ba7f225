"""SFDA: self-challenging Fisher discriminant analysis.

Shao, Zhao, Ge, Zhang, Yang, Wang, Shan & Luo, "Not All Models Are Equal:
Predicting Model Transferability in a Self-challenging Fisher Space", ECCV 2022.

The constants and the order of the steps follow the authors' reference code
(``metrics.py`` of TencentARC/SFDA); each constant below says where it comes
from, and :func:`sfda` lists where ours differs.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.special import logsumexp

from transferlab._linalg import gram
from transferlab._validation import check_features_labels
from transferlab.scores._linalg import _centre, _class_sums
from transferlab.scores._registry import register_score

#: ``a`` in the automatic shrinkage ``lambda = exp(-a * sigma_max(S_W))``
#: (reference code: ``np.exp(-5 * largest_evals_w)``).
_SHRINKAGE_RATE = 5.0
#: Lower bound on ``lambda`` (reference code: ``max(..., 1e-10)``).
_SHRINKAGE_MIN = 1e-10


def _scatter_eig(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-pairs ``(s, V)`` of ``R^T R / N`` for the rows ``R`` (N, D); ``V`` is (D, r), r = min(N, D)."""
    n, d = R.shape
    if d <= n:
        s, V = scipy.linalg.eigh(gram(R.T) / n, check_finite=False)
        return np.maximum(s, 0.0), V
    try:
        _, sv, Vt = scipy.linalg.svd(R, full_matrices=False, check_finite=False)
    except np.linalg.LinAlgError:  # gesdd can fail to converge; gesvd is slower but robust
        _, sv, Vt = scipy.linalg.svd(R, full_matrices=False, check_finite=False, lapack_driver="gesvd")
    return sv**2 / n, Vt.T


def _fit_within(X: np.ndarray, y: np.ndarray, counts: np.ndarray):
    """Class means (C, D) and the eigen-pairs of the within-class covariance ``S_W = R^T R / N``.

    ``R`` holds the rows minus their class means, so ``S_W = sum_c p_c Cov_c``
    with the biased class covariances and the class frequencies ``p_c``.
    """
    means = _class_sums(X, y, counts.shape[0]) / counts[:, None]
    s, V = _scatter_eig(X - means[y])
    return means, s, V


def _log_posterior(X, y, means, s, V, lam, log_priors):
    """Log posterior (N, C) of the Bayes classifier in the regularised Fisher space.

    ``S_W(lam) = (1 - lam) S_W + lam (tr S_W / D) I`` and the discriminant of
    class ``c`` is ``x^T S_W(lam)^-1 mu_c - mu_c^T S_W(lam)^-1 mu_c / 2 + log
    p_c``. When ``N < D``, ``V`` spans only the rows of ``R`` and the inverse
    is ``1 / (lam tr S_W / D)`` on the orthogonal complement.

    If ``S_W = 0`` (every sample equals its class mean) the classifier is taken
    in its limit of infinite confidence: a sample goes to the classes whose mean
    it equals, in proportion to their priors (to all classes, as the prior,
    when every mean is the same).
    """
    d = X.shape[1]
    floor = lam * np.sum(s) / d  # the eigenvalue of S_W(lam) where S_W has none
    if floor <= 0.0:  # S_W = 0
        # here every row of X is its class mean: compare means (C x C), not rows with means
        tied = np.all(means[:, None, :] == means[None, :, :], axis=2)
        scores = np.where(tied[y], log_priors, -np.inf)
    else:
        proj = V.T @ means.T  # (r, C)
        A = V @ (proj / ((1.0 - lam) * s + floor)[:, None])  # S_W(lam)^-1 mu_c, the part in span(V)
        if V.shape[1] < d:  # N < D: the rest of mu_c lies where S_W is 0
            A += (means.T - V @ proj) / floor
        scores = X @ A - 0.5 * np.sum(means.T * A, axis=0) + log_priors
    return scores - logsumexp(scores, axis=1, keepdims=True)


def _shrinkage(s_max: float, scale: float) -> float:
    """``max(exp(-a sigma), lambda_min)`` with ``sigma = s_max * scale^2`` (inf-safe)."""
    if s_max <= 0.0:
        return 1.0
    with np.errstate(over="ignore", under="ignore"):
        sigma = np.float64(s_max) * np.float64(scale) ** 2  # inf beyond float64: lambda = its floor
    return max(float(np.exp(-_SHRINKAGE_RATE * sigma)), _SHRINKAGE_MIN)


def _sfda(X: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    """SFDA on clean float64 input (see :func:`sfda`)."""
    n = X.shape[0]
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    log_priors = np.log(counts / n)
    Xs = _centre(X)
    # The classifier is invariant to a common scale of the features, lambda is not:
    # work in units of the largest magnitude and compute lambda in the original units.
    scale = float(np.max(np.abs(Xs)))
    if scale > 0.0:
        Xs /= scale
    means, s, V = _fit_within(Xs, y, counts)
    lam = _shrinkage(float(np.max(s)), scale)
    p = np.exp(_log_posterior(Xs, y, means, s, V, lam, log_priors))
    # ConfMix (self-challenging): soften the true-class probability with a softmax over the
    # class probabilities, then pull each sample towards the mean of the other classes' means.
    weight = np.exp(p[np.arange(n), y] - logsumexp(p, axis=1))[:, None]
    others = (means.sum(axis=0) - means) / (n_classes - 1)
    mixed = weight * Xs + (1.0 - weight) * others[y]
    means, s, V = _fit_within(mixed, y, counts)
    log_p = _log_posterior(mixed, y, means, s, V, lam, log_priors)
    return float(np.mean(log_p[np.arange(n), y])) + 0.0


@register_score(
    "sfda",
    needs={"features"},
    reference='Shao, Zhao, Ge, Zhang, Yang, Wang, Shan & Luo, "Not All Models Are Equal: '
    'Predicting Model Transferability in a Self-challenging Fisher Space", ECCV 2022',
    # Regularised FDA on centred features: the shrinkage exp(-a sigma) depends on the
    # feature scale (documented); constant features give -H(Y).
    min_per_class=2,
    scale_invariant=False,
    translation_invariant=True,
)
def sfda(features, labels) -> float:
    """SFDA: mean log-probability of the true class after a self-challenging regularised Fisher discriminant.

    With class priors ``p_c``, class means ``mu_c`` and the (biased) within-class
    covariance ``S_W = sum_c p_c Cov_c``, regularised Fisher discriminant
    analysis shrinks ``S_W`` towards a multiple of the identity with a strength
    chosen from its largest eigenvalue ``sigma_max``:

    .. math::

        \\lambda = \\max\\big(e^{-a\\,\\sigma_{\\max}(S_W)}, 10^{-10}\\big), \\qquad
        S_W(\\lambda) = (1 - \\lambda) S_W + \\lambda \\frac{\\operatorname{tr} S_W}{D} I,

    ``a = 5`` (features with large within-class spread get little shrinkage).
    The samples are projected onto the Fisher directions (the generalised
    eigenvectors of the between-class scatter and ``S_W(lambda)``), where a
    Bayes classifier with shared covariance gives

    .. math::

        \\delta_c(x) = x^\\top S_W(\\lambda)^{-1} \\mu_c
            - \\tfrac12 \\mu_c^\\top S_W(\\lambda)^{-1} \\mu_c + \\log p_c, \\qquad
        P(c \\mid x) = \\operatorname{softmax}_c \\delta_c(x).

    (Keeping every Fisher direction, as the reference code does, the
    discriminant depends on them only through ``S_W(lambda)^-1``; we compute it
    directly, without the generalised eigenproblem.) Self-challenging
    ConfMix: each sample of class ``c`` is pulled towards the mean of the
    other classes' means, the harder the less confidently it is classified,

    .. math::

        \\hat x_i = w_i x_i + (1 - w_i)\\,\\frac{1}{C - 1}\\sum_{c \\ne y_i} \\mu_c,
        \\qquad w_i = \\operatorname{softmax}_c\\big(P(c \\mid x_i)\\big)_{y_i},

    and the discriminant is fitted again on the mixed samples with the same
    ``lambda``. The score is

    .. math::

        \\mathrm{SFDA} = \\frac{1}{N} \\sum_{i=1}^{N} \\log \\hat P(y_i \\mid \\hat x_i) \\le 0.

    Higher is better. The algorithm is deterministic (no seed).

    Differences from the reference code: ``sigma_max`` is the exact largest
    eigenvalue (the reference estimates it with three power iterations started
    from the row sums of ``S_W``, which fails when they vanish); the score keeps
    the logarithm of the paper's formula, computed stably with log-sum-exp (the
    reference averages the probabilities, dropping the log "in case of
    instability"); and the caller's array is not modified (the reference
    overwrites it with the mixed samples). Constant features give ``-H(Y)``
    (every class has the same mean: the posterior is the prior); if every
    sample equals its class mean (``S_W = 0``) the classifier is taken in its
    limit of infinite confidence. The score is invariant to translating and
    rotating the features, not to scaling them (through ``lambda``).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate model.
    labels : array-like of shape (n_samples,)
        Target labels (integers or strings, at least 2 classes, at least 2
        samples per class).

    Returns
    -------
    float
        The SFDA score, at most 0.

    Raises
    ------
    ValueError
        On invalid input (see :func:`~transferlab.scores._validation.check_features_labels`).

    References
    ----------
    W. Shao, X. Zhao, Y. Ge, Z. Zhang, L. Yang, X. Wang, Y. Shan, P. Luo. Not
    All Models Are Equal: Predicting Model Transferability in a
    Self-challenging Fisher Space. ECCV 2022. Reference code:
    https://github.com/TencentARC/SFDA (``metrics.py``).

    Examples
    --------
    A 1-D case worked by hand (``tests/scores/test_sfda.py`` writes it out):
    classes at ``{-2, 0}`` and ``{0, 2}``, so ``S_W = 1`` and ``P(1 | x) =
    sigmoid(2 x)``; ConfMix moves them to ``{1 - 3 w, 1/2}`` and ``{-1/2, 3 w - 1}``
    with ``w = sigmoid(2 sigmoid(4) - 1)``, and the second discriminant gives
    about ``-0.6214``:

    >>> round(sfda([[-2.0], [0.0], [0.0], [2.0]], [0, 0, 1, 1]), 4)
    -0.6214
    """
    X, y, classes = check_features_labels(features, labels, min_per_class=2)
    return _sfda(X, y, classes.shape[0])
