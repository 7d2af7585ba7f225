"""LFC and LGC: the correlation between a feature (or gradient) Gram matrix and the labels.

Deshpande, Achille, Ravichandran, Li, Zancato, Fowlkes, Bhotika, Soatto &
Perona, "A linearized framework and a new benchmark for model selection for
fine-tuning", arXiv:2102.00084, 2021.

Both scores are the Pearson correlation between the entries of the ``N x N``
similarity matrix ``K = F F^T`` of per-sample vectors ``f_i`` (penultimate
features for LFC, per-sample gradients of the network output for LGC) and the
entries of the label similarity matrix ``Y`` (``+1`` for a pair of the same
class, ``-1`` otherwise). :func:`_gram_label_correlation` computes it exactly
from ``N x D`` and ``D x D`` (or ``N x N`` when ``N < D``) quantities, never
forming an ``N x N`` matrix when ``D <= N``.
"""

from __future__ import annotations

import numpy as np

from transferlab._linalg import gram
from transferlab._validation import check_features_labels, check_scalar
from transferlab.scores._linalg import _centre, _class_sums
from transferlab.scores._registry import register_score

_REFERENCE = (
    "Deshpande, Achille, Ravichandran, Li, Zancato, Fowlkes, Bhotika, Soatto & Perona, "
    '"A linearized framework and a new benchmark for model selection for fine-tuning", '
    "arXiv:2102.00084, 2021"
)


def _squared_gram_norm(C: np.ndarray) -> float:
    """``||C C^T||_F^2 = ||C^T C||_F^2``, from the smaller of the two Gram matrices."""
    G = gram(C.T) if C.shape[1] <= C.shape[0] else gram(C)
    return float(np.sum(G * G))


def _gram_label_correlation(X: np.ndarray, y: np.ndarray, n_classes: int, *, center: bool) -> float:
    """Pearson correlation of the entries of ``K = F F^T`` and ``Y`` (clean float64 input).

    With ``f_i = c_i + m`` (``m`` the mean vector, ``c_i`` the centred rows),
    ``K = C C^T + a 1^T + 1 a^T + ||m||^2 1 1^T`` where ``a_i = c_i . m`` and
    ``sum_i a_i = 0``. Hence ``mean(K) = ||m||^2`` and, with ``S_k`` the sum of
    the centred rows of class ``k``, ``n_k`` its size and ``p_k = n_k / N``,

    - ``<K - mean K, Y - mean Y> = 2 sum_k ||S_k||^2 + 4 sum_k n_k (S_k . m)``,
    - ``||K - mean K||_F^2 = ||C^T C||_F^2 + 2 N ||a||^2`` (the cross terms vanish),
    - ``||Y - mean Y||_F^2 = 4 N^2 q (1 - q)`` with ``q = sum_k p_k^2``,

    all sums of non-negative terms except the numerator, so nothing cancels.
    ``center=True`` sets ``m = 0`` (the Gram matrix of the centred features).
    The features are first divided by their largest magnitude (the correlation
    is scale-invariant), so magnitudes up to the float64 limit do not overflow.
    A constant ``K`` (zero denominator) gives 0.
    """
    n = X.shape[0]
    scale = np.max(np.abs(X))
    if scale == 0.0:
        return 0.0
    X = X / scale
    C = _centre(X)
    m = np.zeros(X.shape[1]) if center else X.mean(axis=0)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    S = _class_sums(C, y, n_classes)  # per-class sums of the centred rows
    a = C @ m
    numerator = 2.0 * np.sum(S * S) + 4.0 * float(counts @ (S @ m))
    k_norm2 = _squared_gram_norm(C) + 2.0 * n * float(a @ a)
    if k_norm2 == 0.0:  # every f_i is the same vector: K is constant
        return 0.0
    q = float(np.sum((counts / n) ** 2))
    y_norm = 2.0 * n * np.sqrt(q * (1.0 - q))  # q < 1: at least two classes
    value = numerator / (np.sqrt(k_norm2) * y_norm)
    return float(np.clip(value, -1.0, 1.0))


def _check_center(center) -> bool:
    return check_scalar(center, "center", bool)


@register_score(
    "lfc",
    needs={"features"},
    reference=_REFERENCE,
    # Pearson correlation of the Gram matrix of the centred features with the labels:
    # scale-free and translation-free; constant K gives 0.
    min_per_class=1,
    scale_invariant=True,
    translation_invariant=True,
)
def lfc(features, labels, *, center: bool = True) -> float:
    """LFC (Label-Feature Correlation): Pearson correlation of the feature Gram matrix with the label similarity.

    With ``K = F F^T`` the Gram matrix of the (centred, by default) features and
    ``Y_ij = +1`` if ``y_i = y_j``, ``-1`` otherwise, LFC is the correlation
    coefficient between the ``N^2`` entries of the two matrices:

    .. math::

        \\mathrm{LFC} = \\frac{\\langle K - \\bar K,\\; Y - \\bar Y\\rangle_F}
            {\\lVert K - \\bar K\\rVert_F\\, \\lVert Y - \\bar Y\\rVert_F},
        \\qquad \\bar K = \\frac{1}{N^2}\\sum_{ij} K_{ij},\\;
        \\bar Y = \\frac{1}{N^2}\\sum_{ij} Y_{ij}.

    It lies in ``[-1, 1]``; higher is better (samples of the same class are more
    similar than samples of different classes). It is computed exactly without
    the ``N x N`` matrices: ``sum(K) = ||sum_i f_i||^2``,
    ``<K, Y> = 2 sum_k ||S_k||^2 - ||S||^2`` from the per-class sums ``S_k``,
    ``||K||_F = ||F^T F||_F`` (the ``D x D`` form, or ``N x N`` when ``N < D``),
    and the sums of ``Y`` from the class counts; ``O(N D min(N, D))`` time.

    Centring. The paper correlates the Gram matrix of the features as they come
    out of the network. By default (``center=True``) we centre the features
    first (``K = (F - 1 mu^T)(F - 1 mu^T)^T``), as the house rule for Gram work
    says: a fine-tuned linear head has a bias, so a common offset of the
    features carries no information, and without centring it adds the terms
    ``a_i + a_j`` (``a_i = (f_i - mu) . mu``) to ``K``, which inflate the
    denominator (and, with unbalanced classes, the numerator) through the
    feature mean alone. With centred features LFC is in fact in ``[0, 1]``: the
    numerator is ``2 sum_k n_k^2 ||mu_k - mu||^2``. ``center=False`` gives the
    paper's uncentred Gram matrix.

    Unlike the public reference code, which divides by the spectral norms
    (``np.linalg.norm(., ord=2)``) of the two matrices and so is not a
    correlation and not bounded, the normalisation here is by the Frobenius
    norms, as in the paper's definition of a correlation.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target-task features from the candidate model.
    labels : array-like of shape (n_samples,)
        Class labels (integers or strings, at least 2 classes; a class may have
        a single sample).
    center : bool, default=True
        Centre the features before forming the Gram matrix (see above).

    Returns
    -------
    float
        The correlation, in ``[-1, 1]`` (``[0, 1]`` with ``center=True``).
        Features that are all the same vector (a constant ``K``) give 0.

    Raises
    ------
    ValueError
        On invalid input (see :func:`~transferlab.scores._validation.check_features_labels`).

    References
    ----------
    A. Deshpande, A. Achille, A. Ravichandran, H. Li, L. Zancato, C. Fowlkes,
    R. Bhotika, S. Soatto, P. Perona. A linearized framework and a new benchmark
    for model selection for fine-tuning. arXiv:2102.00084, 2021.

    Examples
    --------
    Two classes at +1 and -1 on a line: centred ``K_ij = x_i x_j`` equals
    ``Y_ij`` exactly, so the correlation is 1:

    >>> lfc([[1.0], [1.0], [-1.0], [-1.0]], [0, 0, 1, 1])
    1.0

    Shifted to ``0, 0, 2, 2`` and uncentred, ``K`` is 4 on the four pairs of
    class 1 and 0 elsewhere; with ``mean(K) = 1`` and ``mean(Y) = 0`` the
    entrywise covariance is ``(4 * 3 - 4 * 1 + 8 * 1) / 16 = 1``, the variances
    ``(4 * 9 + 12) / 16 = 3`` and 1, so the correlation is ``1 / sqrt(3)``:

    >>> round(lfc([[0.0], [0.0], [2.0], [2.0]], [0, 0, 1, 1], center=False), 12)
    0.57735026919
    >>> lfc([[0.0], [0.0], [2.0], [2.0]], [0, 0, 1, 1])  # centred: back to 1
    1.0
    """
    center = _check_center(center)
    X, y, classes = check_features_labels(features, labels, min_per_class=1)
    return _gram_label_correlation(X, y, classes.shape[0], center=center)


@register_score(
    "lgc",
    needs={"gradients"},
    reference=_REFERENCE,
    # As lfc, on the centred gradients.
    min_per_class=1,
    scale_invariant=True,
    translation_invariant=True,
)
def lgc(gradients, labels, *, center: bool = True) -> float:
    """LGC (Label-Gradient Correlation): Pearson correlation of the gradient Gram matrix with the label similarity.

    The same score as :func:`lfc` applied to per-sample gradients: with
    ``g_i = d f(x_i) / d w`` the gradient of the network output
    ``f(x) = log sum_z exp(logit_z(x))`` with respect to the parameters ``w`` of
    the last stage (randomly projected to a fixed dimension, see
    :func:`transferlab.features._gradients.per_sample_gradients`),
    ``Theta = G G^T`` is the empirical neural tangent kernel of the linearised
    network, and

    .. math::

        \\mathrm{LGC} = \\frac{\\langle \\Theta - \\bar\\Theta,\\; Y - \\bar Y\\rangle_F}
            {\\lVert \\Theta - \\bar\\Theta\\rVert_F\\, \\lVert Y - \\bar Y\\rVert_F},
        \\qquad Y_{ij} = \\begin{cases} +1 & y_i = y_j \\\\ -1 & \\text{otherwise}. \\end{cases}

    In ``[-1, 1]``; higher is better. The gradients are centred by default, as in
    :func:`lfc` (``center=False`` gives the paper's uncentred kernel). A random
    projection with ``E[R R^T] = I`` preserves ``Theta`` in expectation.

    Parameters
    ----------
    gradients : array-like of shape (n_samples, n_gradient_dims)
        Per-sample (projected) gradients.
    labels : array-like of shape (n_samples,)
        Class labels (integers or strings, at least 2 classes).
    center : bool, default=True
        Centre the gradients before forming the Gram matrix.

    Returns
    -------
    float
        The correlation, in ``[-1, 1]``; identical gradients give 0.

    Raises
    ------
    ValueError
        If ``gradients`` is not a finite 2-D numeric array, or the labels are
        invalid (see :func:`~transferlab.scores._validation._check_labels`).

    References
    ----------
    A. Deshpande et al. A linearized framework and a new benchmark for model
    selection for fine-tuning. arXiv:2102.00084, 2021.

    Examples
    --------
    >>> lgc([[3.0, 0.0], [3.0, 0.0], [0.0, 3.0], [0.0, 3.0]], ["a", "a", "b", "b"])
    1.0
    """
    center = _check_center(center)
    G, y, classes = check_features_labels(gradients, labels, min_per_class=1, name="gradients")
    return _gram_label_correlation(G, y, classes.shape[0], center=center)
