"""TransRate: the coding-rate estimate of the mutual information between features and labels.

Huang, Huang, Rong, Yang & Wei, "Frustratingly Easy Transferability
Estimation", ICML 2022.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import linalg

from transferlab._linalg import gram
from transferlab._validation import check_features_labels, check_scalar
from transferlab.scores._registry import register_score


def _gram_eigenvalues(Z: np.ndarray, *, form: str = "auto") -> np.ndarray:
    """Eigenvalues of ``Z^T Z`` that are not numerical zeros (the others set to 0).

    ``form="auto"`` uses the smaller Gram matrix: ``Z^T Z`` (d x d) when
    ``d <= n``, else ``Z Z^T`` (n x n); both have the same non-zero eigenvalues.
    ``"features"`` / ``"samples"`` force one form (the tests compare them).
    Eigenvalues at most ``lambda_max * max(n, d) * eps`` are rounding noise of
    the Gram product and are returned as exactly 0.
    """
    n, d = Z.shape
    if form == "auto":
        form = "features" if d <= n else "samples"
    G = gram(Z.T) if form == "features" else gram(Z)
    lam = linalg.eigvalsh(G)
    if lam[-1] <= 0.0:
        return np.zeros_like(lam)
    lam[lam <= lam[-1] * max(n, d) * np.finfo(np.float64).eps] = 0.0
    return lam


def _coding_rate(Z: np.ndarray, eps: float, *, form: str = "auto") -> float:
    """``R(Z, eps) = 1/2 logdet(I + Z^T Z / (n eps))`` for ``Z`` of shape (n, d).

    By Sylvester's determinant identity ``det(I_d + a Z^T Z) = det(I_n + a Z Z^T)``
    the log-determinant is ``sum_k log1p(a lambda_k)`` over the eigenvalues of the
    smaller Gram matrix. Summing ``log1p`` of eigenvalues with the rank threshold
    of :func:`_gram_eigenvalues` is the slogdet of ``I + a Z^T Z`` without its
    one weakness: a direction that is zero in exact arithmetic (the centring
    makes ``n``-row blocks rank ``n - 1``) but holds rounding noise ``~ eps
    lambda_max`` would add ``log(a * noise)``, which is large when ``a
    lambda_max`` is (large features, small ``eps``).
    """
    n = Z.shape[0]
    lam = _gram_eigenvalues(Z, form=form)
    return 0.5 * float(np.sum(np.log1p(lam / (n * eps))))


def _transrate(Z: np.ndarray, y: np.ndarray, n_classes: int, eps: float, *, form: str = "auto") -> float:
    """TransRate on clean input: ``Z`` (N, D) float64, ``y`` (N,) in ``0..C-1``."""
    Z = Z - Z.mean(axis=0)
    n = Z.shape[0]
    total = _coding_rate(Z, eps, form=form)
    conditional = 0.0
    for k in range(n_classes):
        Zk = Z[y == k]
        conditional += Zk.shape[0] / n * _coding_rate(Zk, eps, form=form)
    return total - conditional


def _check_eps(eps) -> float:
    return check_scalar(eps, "eps", numbers.Real, min_val=0, include_boundaries="neither")


@register_score(
    "transrate",
    needs={"features"},
    reference='Huang, Huang, Rong, Yang & Wei, "Frustratingly Easy Transferability Estimation", ICML 2022',
    # Coding rate of the globally centred features with a fixed distortion eps: not
    # scale-invariant (documented), translation-invariant.
    min_per_class=1,
    scale_invariant=False,
    translation_invariant=True,
)
def transrate(features, labels, *, eps: float = 1e-4) -> float:
    """TransRate: coding rate of all features minus the class-weighted coding rates of each class.

    With ``Z`` the globally centred features (N, D), ``Z_k`` the rows of class
    ``k`` (``n_k`` of them, not re-centred) and the coding rate

    .. math::

        R(Z, \\epsilon) = \\frac12 \\log\\det\\!\\left(I_D + \\frac{1}{N \\epsilon} Z^\\top Z\\right),

    TransRate is the rate reduction

    .. math::

        \\mathrm{TrR}(Z, y) = R(Z, \\epsilon) - \\sum_k \\frac{n_k}{N} R(Z_k, \\epsilon),

    a surrogate of the mutual information ``I(Z; Y) = H(Z) - H(Z | Y)`` in nats:
    high when the features of the whole task span many directions (completeness)
    while each class is compact. Higher is better.

    Conventions. The paper writes the rate of ``n`` vectors in ``R^d`` with
    distortion ``epsilon`` as ``1/2 logdet(I + d / (n epsilon^2) Z^T Z)`` and the
    conditional rate with class weights ``n_k / N``. The reference code uses
    ``1 / (n * eps)`` with ``eps = 1e-4`` and averages the class rates with equal
    weights ``1 / C``. We take the code's scaling (so ``eps`` here is the code's
    ``eps``, the paper's ``epsilon^2 / d``, and its default is the code's default)
    and the paper's weights ``n_k / N``, which equal the code's for balanced
    classes; with unbalanced classes the code's ``1 / C`` is not the conditional
    entropy that the score estimates. As in the reference code (and the rates of
    maximal coding rate reduction), ``Z_k`` keeps the global centring: each class
    rate counts the offset of the class mean from the global mean, so TransRate
    rewards classes that occupy different directions, not merely different
    means (see the second example). The value is not scale-invariant: scaling
    the features by ``s`` acts like dividing ``eps`` by ``s^2``.

    Computation. Each log-determinant uses the smaller Gram matrix (``D x D`` or
    ``n x n``, Sylvester's identity) and sums ``log1p`` of its eigenvalues,
    treating eigenvalues below ``lambda_max * max(n, d) * eps_machine`` as 0
    (where ``slogdet`` of ``I + Z^T Z / (n eps)`` would return the log of
    amplified rounding noise). Constant features give 0; ``N < D`` is fine.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target-task features from the candidate model.
    labels : array-like of shape (n_samples,)
        Class labels (integers or strings, at least 2 classes).
    eps : float, default=1e-4
        Distortion: the coding rate counts directions whose variance exceeds
        about ``eps``.

    Returns
    -------
    float
        TransRate in nats (at least ``-sum_k (n_k/N) R(Z_k)``, at most ``R(Z)``).

    Raises
    ------
    ValueError
        If ``eps`` is not positive and finite, or on invalid input (see
        :func:`~transferlab.scores._validation.check_features_labels`).

    References
    ----------
    L.-K. Huang, J. Huang, Y. Rong, Q. Yang, Y. Wei. Frustratingly Easy
    Transferability Estimation. ICML 2022.

    Examples
    --------
    Class 0 on the first axis, class 1 on the second (already centred), ``eps = 1/2``:
    ``Z^T Z = diag(2, 2)`` gives ``R(Z) = 2 * 1/2 log(1 + 2 / (4 * 1/2)) = log 2``;
    each class has ``Z_k^T Z_k = diag(2, 0)`` (or ``diag(0, 2)``) and ``n_k = 2``,
    ``R(Z_k) = 1/2 log(1 + 2 / (2 * 1/2)) = 1/2 log 3``; TrR = ``log 2 - 1/2 log 3``:

    >>> Z = [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]
    >>> round(transrate(Z, [0, 0, 1, 1], eps=0.5), 12)
    0.143841036226
    >>> import math; round(math.log(2) - 0.5 * math.log(3), 12)
    0.143841036226

    The class rates are taken about the global mean, as in the reference code,
    not about each class mean: two balanced classes placed symmetrically about
    the mean (``-1, -1 | 1, 1``) have the same second moment as the whole set,
    so their rate reduction is 0 however far apart they are:

    >>> transrate([[-1.0], [-1.0], [1.0], [1.0]], [0, 0, 1, 1])
    0.0
    """
    eps = _check_eps(eps)
    X, y, classes = check_features_labels(features, labels, min_per_class=1)
    return _transrate(X, y, classes.shape[0], eps)
