"""GBC: the Gaussian Bhattacharyya coefficient, the overlap of per-class Gaussians of the features.

Pándy, Agostinelli, Uijlings, Ferrari & Mensink, "Transferability Estimation
using Bhattacharyya Class Separability", CVPR 2022.
"""

from __future__ import annotations

import numbers

import numpy as np

from transferlab._validation import check_features_labels, check_scalar
from transferlab.scores._linalg import _centre, _class_sums, _pca
from transferlab.scores._registry import register_score

#: Floor on a class variance along one dimension, relative to the variance of
#: all samples along that dimension (a class that is constant along it would
#: otherwise give log 0). Relative, so GBC stays invariant to the scale of
#: each dimension; the reference code uses an absolute floor of 1e-4.
_VARIANCE_FLOOR = 1e-4

_COVARIANCES = ("diagonal", "spherical")


def _class_moments(Z: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class means (C, d) and floored population variances (C, d) of clean ``Z``."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)[:, None]
    means = _class_sums(Z, y, n_classes) / counts
    variances = _class_sums((Z - means[y]) ** 2, y, n_classes) / counts
    floor = _VARIANCE_FLOOR * np.mean(Z**2, axis=0)  # Z is centred: this is the total variance
    return means, np.maximum(variances, floor)


def _bhattacharyya_distances(means: np.ndarray, variances: np.ndarray, spherical: bool) -> np.ndarray:
    """Bhattacharyya distances (C, C) between Gaussians with diagonal covariances ``variances`` (C, d).

    With ``spherical`` the covariance of class ``c`` is ``s_c I``, ``s_c`` the
    mean of its ``d`` variances, and the log-determinant term counts ``d`` times.
    """
    n_classes, d = means.shape
    if spherical:
        variances = np.repeat(variances.mean(axis=1, keepdims=True), d, axis=1)
    log_var = np.log(variances)
    out = np.empty((n_classes, n_classes))
    for c in range(n_classes):  # one row at a time: memory C x d, not C x C x d
        avg = 0.5 * (variances + variances[c])
        mahalanobis = np.sum((means - means[c]) ** 2 / avg, axis=1) / 8.0
        log_det = 0.5 * np.sum(np.log(avg) - 0.5 * (log_var + log_var[c]), axis=1)
        out[c] = mahalanobis + log_det
    # both terms are >= 0 (AM-GM for the second); clip round-off so that BC <= 1
    return np.maximum(out, 0.0)


def _check_options(covariance, n_components) -> tuple[str, int | None]:
    if covariance not in _COVARIANCES:
        raise ValueError(f"covariance must be one of {list(_COVARIANCES)}; got {covariance!r}")
    return covariance, check_scalar(n_components, "n_components", (numbers.Integral, type(None)), min_val=1)


def _reduce(X: np.ndarray, n_components: int | None) -> np.ndarray:
    """Centred features without constant dimensions, PCA-reduced to ``n_components`` if given."""
    if n_components is not None:
        return _pca(X)[0][:, :n_components]
    Xc = _centre(X)[:, np.ptp(X, axis=0) > 0]
    scale = np.max(np.abs(Xc)) if Xc.size else 0.0
    return Xc / scale if scale > 0 else Xc


@register_score(
    "gbc",
    needs={"features"},
    reference='Pándy, Agostinelli, Uijlings, Ferrari & Mensink, "Transferability Estimation '
    'using Bhattacharyya Class Separability", CVPR 2022',
    # Per-class diagonal Gaussians need a variance per class; constant features give
    # -C(C-1) (all classes coincide); centred, and invariant to per-dimension scaling.
    min_per_class=2,
    scale_invariant=True,
    translation_invariant=True,
)
def gbc(features, labels, *, covariance: str = "diagonal", n_components: int | None = 64) -> float:
    """GBC: minus the summed Bhattacharyya coefficients between Gaussians fitted to each pair of classes.

    The features are centred and reduced by PCA to ``n_components`` dimensions
    (64, the setting of the authors' reference configuration; ``None`` keeps
    every dimension). Each class ``c`` is modelled as ``N(mu_c, Sigma_c)`` with
    the class mean and population variances along each dimension, ``Sigma_c =
    diag(sigma_c^2)`` (``"diagonal"``) or ``Sigma_c = s_c I`` with ``s_c`` the
    mean of those variances (``"spherical"``). For two classes, with
    ``Sigma = (Sigma_i + Sigma_j) / 2``, the Bhattacharyya distance and
    coefficient are

    .. math::

        D_B(i, j) = \\frac{1}{8} (\\mu_i - \\mu_j)^\\top \\Sigma^{-1} (\\mu_i - \\mu_j)
            + \\frac{1}{2} \\log \\frac{\\det \\Sigma}{\\sqrt{\\det \\Sigma_i \\det \\Sigma_j}},
        \\qquad BC(i, j) = e^{-D_B(i, j)},

    which for diagonal covariances is a sum over dimensions, and for spherical
    ones is ``|mu_i - mu_j|^2 / (8 s) + (d / 2) log(s / sqrt(s_i s_j))`` with
    ``s = (s_i + s_j) / 2``. The score is

    .. math::

        \\mathrm{GBC} = -\\sum_{i \\ne j} BC(i, j) \\in [-C(C-1), 0].

    Higher (closer to 0) is better: the classes overlap less. Identical classes
    give ``BC = 1`` per ordered pair, classes far apart give ``BC -> 0``.

    Differences from the reference code: its spherical distance adds the
    log-determinant term once instead of ``d`` times (we use the formula
    above); its variance floor is an absolute ``1e-4``, ours is ``1e-4`` times
    the variance of all samples along the dimension, which keeps GBC invariant
    to rescaling each dimension; and dimensions that are constant over all
    samples (and PCA components beyond the rank of the centred features) are
    dropped, as they separate nothing. If no dimension is left (every feature
    constant) all classes coincide and ``GBC = -C(C-1)``. GBC is invariant to
    translating and scaling the features, and with PCA (``n_components`` at
    least the number of features) to rotating them.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate model.
    labels : array-like of shape (n_samples,)
        Target labels (integers or strings, at least 2 classes, at least 2
        samples per class).
    covariance : {"diagonal", "spherical"}, default="diagonal"
        The form of the per-class covariance.
    n_components : int or None, default=64
        PCA dimension (capped at the rank of the centred features); ``None``
        uses the features as they are.

    Returns
    -------
    float
        The GBC score, in ``[-C(C-1), 0]``.

    Raises
    ------
    ValueError
        On invalid input (see :func:`~transferlab.scores._validation.check_features_labels`)
        or options.

    References
    ----------
    M. Pándy, A. Agostinelli, J. Uijlings, V. Ferrari, T. Mensink.
    Transferability Estimation using Bhattacharyya Class Separability. CVPR 2022.

    Examples
    --------
    Two 1-D classes with means -1, 1 and variances 1, 1:
    ``D_B = 2^2 / (4 (1 + 1)) = 1/2``, so ``GBC = -2 exp(-1/2)``:

    >>> x = [[-2.0], [0.0], [0.0], [2.0]]
    >>> round(gbc(x, [0, 0, 1, 1]), 12) == round(float(-2 * np.exp(-0.5)), 12)
    True
    """
    covariance, n_components = _check_options(covariance, n_components)
    X, y, classes = check_features_labels(features, labels, min_per_class=2)
    n_classes = classes.shape[0]
    Z = _reduce(X, n_components)
    if Z.shape[1] == 0:
        return -float(n_classes * (n_classes - 1))
    means, variances = _class_moments(Z, y, n_classes)
    coefficients = np.exp(-_bhattacharyya_distances(means, variances, covariance == "spherical"))
    np.fill_diagonal(coefficients, 0.0)
    return -float(np.sum(coefficients)) + 0.0
