"""H-score and its shrinkage-regularised variant.

- :func:`hscore`: Bao, Li, Huang, Zheng, Zhang, Kong & Zhao, "An
  Information-Theoretic Approach to Transferability in Task Transfer Learning",
  ICIP 2019.
- :func:`regularized_hscore`: Ibrahim, Ponomareva & Mazumder, "Newer is not
  always better: Rethinking transferability metrics, their peculiarities,
  stability and performance", ECML-PKDD 2022.

Both reduce to one private worker, :func:`_hscore_from_spectrum`, on the
eigendecomposition of the smaller Gram matrix of the centred features
(``D x D``, or ``N x N`` when ``N < D``); no ``D x D`` inverse is formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, sparse

from transferlab._linalg import gram
from transferlab._validation import check_features_labels
from transferlab.scores._registry import register_score


@dataclass(frozen=True)
class _Spectrum:
    """The centred features in the eigenbasis of their scatter matrix.

    Attributes
    ----------
    eigenvalues : ndarray of shape (r,)
        The non-zero eigenvalues ``lambda_k`` of ``C^T C`` (the scatter matrix,
        ``N`` times the covariance), numerical rank ``r``.
    class_coords : ndarray of shape (n_classes, r)
        ``(V^T S_k)_k / sqrt(lambda_k)`` where ``S_k`` is the sum of the centred
        rows of class ``k`` and ``V`` the matching unit eigenvectors; equivalently
        ``U^T 1_k`` with ``U`` the left singular vectors of ``C``.
    counts : ndarray of shape (n_classes,)
        Class sizes ``n_k``.
    fourth_moment : float
        ``sum_i ||c_i||^4`` over the centred rows (for the Ledoit-Wolf estimate).
    n_samples, n_features : int
    """

    eigenvalues: np.ndarray
    class_coords: np.ndarray
    counts: np.ndarray
    fourth_moment: float
    n_samples: int
    n_features: int


def _spectrum(X: np.ndarray, y: np.ndarray, n_classes: int) -> _Spectrum:
    """Centre ``X`` and decompose it (clean float64 input).

    The features are divided by their largest centred magnitude first (both
    scores are scale-invariant), and a constant column is set exactly to 0.
    Eigenvalues at most ``lambda_max * max(N, D) * eps`` are numerical zeros of
    the Gram matrix and are dropped (the pseudo-inverse of a rank-deficient
    covariance), the rule of :func:`scipy.linalg.pinvh` with ``N`` included
    because rounding in ``C^T C`` grows with the number of summed rows.
    """
    n, d = X.shape
    C = X - X.mean(axis=0)
    C[:, np.ptp(X, axis=0) == 0] = 0.0
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    scale = np.max(np.abs(C))
    if scale == 0.0:  # every feature is constant
        return _Spectrum(np.zeros(0), np.zeros((n_classes, 0)), counts, 0.0, n, d)
    C /= scale
    fourth_moment = float(np.sum(np.einsum("ij,ij->i", C, C) ** 2))
    indicators = sparse.csr_matrix((np.ones(n), (y, np.arange(n))), shape=(n_classes, n))
    if d <= n:
        lam, V = linalg.eigh(gram(C.T))
    else:
        lam, U = linalg.eigh(gram(C))
    keep = lam > lam[-1] * max(n, d) * np.finfo(np.float64).eps
    lam = lam[keep]
    if d <= n:
        S = np.asarray(indicators @ C)  # per-class sums of the centred rows
        coords = (S @ V[:, keep]) / np.sqrt(lam)
    else:
        coords = np.asarray(indicators @ U[:, keep])
    return _Spectrum(lam, coords, counts, fourth_moment, n, d)


def _hscore_from_spectrum(spec: _Spectrum, *, shrinkage: float = 0.0, target: float = 0.0) -> float:
    """``tr(pinv(Sigma) (1 - alpha) Sigma_B)`` with ``Sigma = (1 - alpha) Sigma_f + alpha mu I``.

    ``Sigma_f = C^T C / N`` and ``Sigma_B = sum_k n_k d_k d_k^T / N`` (``d_k`` the
    centred class mean) both live in the row space of ``C``, where ``Sigma`` has
    eigenvalues ``w_k = (1 - alpha) lambda_k / N + alpha mu``. With
    ``d_k = S_k / n_k``,

    ``tr(Sigma^+ Sigma_B) = sum_k (n_k / N) sum_j (V^T d_k)_j^2 / w_j
    = sum_k sum_j lambda_j z_kj^2 / (n_k N w_j)``

    where ``z_kj = (V^T S_k)_j / sqrt(lambda_j)``. With ``alpha = 0`` this is
    ``sum_k ||z_k||^2 / n_k``: the squared norms of the class indicators
    projected on the column space of ``C``, each divided by the class size.
    """
    if spec.eigenvalues.size == 0:
        return 0.0
    n = spec.n_samples
    w = (1.0 - shrinkage) * spec.eigenvalues / n + shrinkage * target  # > 0: lambda_k kept by _spectrum
    per_class = (spec.class_coords**2) @ (spec.eigenvalues / (n * w))
    return float((1.0 - shrinkage) * np.sum(per_class / spec.counts))


def _ledoit_wolf(spec: _Spectrum) -> tuple[float, float]:
    """Ledoit-Wolf shrinkage ``alpha`` and target ``mu = tr(Sigma_f) / D`` of the centred features.

    The closed form of Ledoit & Wolf (2004) as in scikit-learn's
    ``ledoit_wolf_shrinkage`` (empirical covariance ``Sigma_f = C^T C / N``)::

        mu    = tr(Sigma_f) / D
        delta = ||Sigma_f - mu I||_F^2 / D
        beta  = (sum_i ||c_i||^4 / N - ||Sigma_f||_F^2) / (D N)    (clipped to [0, delta])
        alpha = beta / delta   (0 when beta = 0)

    ``delta`` is computed from the eigenvalues, ``sum_k (lambda_k / N - mu)^2 +
    (D - r) mu^2``, rather than as ``||Sigma_f||^2 - 2 mu tr + D mu^2`` (which
    cancels when ``Sigma_f`` is close to ``mu I``). Values are on the scale of
    ``spec`` (the features divided by their largest centred magnitude).
    """
    n, d = spec.n_samples, spec.n_features
    if spec.eigenvalues.size == 0:
        return 0.0, 0.0
    ev = spec.eigenvalues / n  # non-zero eigenvalues of Sigma_f
    mu = float(np.sum(ev) / d)
    delta = (float(np.sum((ev - mu) ** 2)) + (d - ev.size) * mu**2) / d
    beta = (spec.fourth_moment / n - float(np.sum(ev**2))) / (d * n)
    beta = min(max(beta, 0.0), delta)
    alpha = 0.0 if beta == 0.0 else beta / delta
    return float(alpha), mu


@register_score(
    "hscore",
    needs={"features"},
    reference='Bao, Li, Huang, Zheng, Zhang, Kong & Zhao, "An Information-Theoretic Approach '
    'to Transferability in Task Transfer Learning", ICIP 2019',
    # tr(pinv(cov f) cov(E[f|y])): covariances of centred features, affine-invariant;
    # a class of one sample is a class mean too; constant features give 0.
    min_per_class=1,
    scale_invariant=True,
    translation_invariant=True,
)
def hscore(features, labels) -> float:
    """H-score: the between-class covariance measured in the metric of the inverse feature covariance.

    .. math::

        H(f) = \\operatorname{tr}\\!\\left(\\operatorname{cov}(f)^{+}\\,
            \\operatorname{cov}\\big(\\mathbb{E}[f \\mid y]\\big)\\right),
        \\qquad
        \\operatorname{cov}\\big(\\mathbb{E}[f \\mid y]\\big) = \\sum_k p_k (\\mu_k - \\mu)(\\mu_k - \\mu)^\\top,

    a matrix product (``+`` the Moore-Penrose pseudo-inverse, ``p_k = n_k / N``,
    ``mu_k`` the class means). It is the asymptotic error exponent of a
    maximum-likelihood test of ``y`` from ``f``: higher is better. Both
    covariances use ``1/N``; the ratio is the same with ``1/(N - 1)``. ``H`` is
    invariant to any invertible affine map of the features (in particular
    rotations, scaling and translation), and ``0 <= H <= min(C - 1, rank)``.

    Computation. The centred features ``C`` are decomposed once (``eigh`` of the
    ``D x D`` scatter matrix ``C^T C``, or of ``C C^T`` when ``N < D``);
    eigenvalues below ``lambda_max * max(N, D) * eps`` are treated as zero (the
    pseudo-inverse of a rank-deficient covariance: duplicated or constant
    features, ``N < D``). Then ``H = sum_k ||U^T 1_k||^2 / n_k`` with ``U`` an
    orthonormal basis of the column space of ``C`` and ``1_k`` the indicator of
    class ``k``. When ``N <= D`` generic features span every centred direction and
    ``H = C - 1``, its maximum: the score cannot rank models then (a property of
    the method, not of the computation); subsample ``D`` or use
    :func:`regularized_hscore`.

    Differences from public code: the reference implementation uses
    ``np.linalg.pinv(cov, rcond=1e-15)``, which inverts rounding noise of a
    rank-deficient covariance into arbitrarily large values; one public copy
    (``google-research/stable_transfer/transferability/hscore.py``) multiplies
    ``pinv(cov f) * cov(E[f|y])`` elementwise before the trace, which is a
    different quantity (the sum of products of the diagonals), not invariant to
    rotations. Here the product is a matrix product.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target-task features from the candidate model.
    labels : array-like of shape (n_samples,)
        Class labels (integers or strings, at least 2 classes).

    Returns
    -------
    float
        The H-score, in ``[0, C - 1]``; constant features give 0.

    Raises
    ------
    ValueError
        On invalid input (see :func:`~transferlab.scores._validation.check_features_labels`).

    References
    ----------
    Y. Bao, Y. Li, S.-L. Huang, L. Zhang, L. Zheng, A. Zamir, L. Guibas. An
    Information-Theoretic Approach to Transferability in Task Transfer Learning.
    ICIP 2019.

    Examples
    --------
    One feature ``0, 2 | 4, 6`` in two classes: class means 1 and 5, overall
    mean 3, between-class variance ``(4 + 4) / 2 = 4``, total variance
    ``(9 + 1 + 1 + 9) / 4 = 5``, so ``H = 4 / 5``:

    >>> round(hscore([[0.0], [2.0], [4.0], [6.0]], [0, 0, 1, 1]), 12)
    0.8
    """
    X, y, classes = check_features_labels(features, labels, min_per_class=1)
    return _hscore_from_spectrum(_spectrum(X, y, classes.shape[0]))


@register_score(
    "regularized_hscore",
    needs={"features"},
    reference='Ibrahim, Ponomareva & Mazumder, "Newer is not always better: Rethinking '
    'transferability metrics, their peculiarities, stability and performance", ECML-PKDD 2022',
    # As hscore, with a Ledoit-Wolf covariance whose shrinkage is scale-free: centred,
    # scale-invariant; constant features give 0.
    min_per_class=1,
    scale_invariant=True,
    translation_invariant=True,
)
def regularized_hscore(features, labels) -> float:
    """Shrinkage H-score: the H-score with a Ledoit-Wolf estimate of the feature covariance.

    .. math::

        H_\\alpha(f) = \\operatorname{tr}\\!\\left(\\Sigma_\\alpha^{-1}\\,(1 - \\alpha)\\,
            \\operatorname{cov}\\big(\\mathbb{E}[f \\mid y]\\big)\\right),
        \\qquad \\Sigma_\\alpha = (1 - \\alpha)\\operatorname{cov}(f) + \\alpha\\,\\mu I,
        \\quad \\mu = \\operatorname{tr}\\operatorname{cov}(f) / D,

    with ``alpha`` the Ledoit-Wolf (2004) shrinkage intensity estimated from the
    centred features (the closed form of :class:`sklearn.covariance.LedoitWolf`).
    The ``(1 - alpha)`` factor is the paper's: the between-class covariance is
    shrunk like the within-class part of ``cov(f)``. Higher is better. With
    ``alpha > 0`` the shrunk covariance is invertible and this is its inverse;
    when ``alpha = 0`` (or all features are constant) the pseudo-inverse is used,
    as in :func:`hscore`. The estimate stays informative when ``N < D``, where
    the plain H-score saturates at ``C - 1``. Invariant to rotations, scaling
    and translation of the features (not to general linear maps: the target
    ``mu I`` is isotropic).

    Both covariances use ``1/N``. A common public copy combines scikit-learn's
    ``LedoitWolf`` covariance (``1/N``) with ``np.cov`` of the class means
    (``1/(N - 1)``), which multiplies the score by ``N / (N - 1)``; ours does not.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target-task features from the candidate model.
    labels : array-like of shape (n_samples,)
        Class labels (integers or strings, at least 2 classes).

    Returns
    -------
    float
        The shrinkage H-score, at least 0 and at most :func:`hscore`'s ``C - 1``
        bound; constant features give 0.

    Raises
    ------
    ValueError
        On invalid input (see :func:`~transferlab.scores._validation.check_features_labels`).

    References
    ----------
    S. Ibrahim, N. Ponomareva, R. Mazumder. Newer is not always better:
    Rethinking transferability metrics, their peculiarities, stability and
    performance. ECML-PKDD 2022. O. Ledoit, M. Wolf. A well-conditioned estimator
    for large-dimensional covariance matrices. J. Multivariate Analysis, 2004.

    Examples
    --------
    With one feature the Ledoit-Wolf target ``mu`` equals the variance, so
    ``alpha = 0`` and the score equals the H-score (4/5 as in :func:`hscore`):

    >>> round(regularized_hscore([[0.0], [2.0], [4.0], [6.0]], [0, 0, 1, 1]), 12)
    0.8
    """
    X, y, classes = check_features_labels(features, labels, min_per_class=1)
    spec = _spectrum(X, y, classes.shape[0])
    alpha, mu = _ledoit_wolf(spec)
    return _hscore_from_spectrum(spec, shrinkage=alpha, target=mu)
