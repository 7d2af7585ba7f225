"""Linear MSE: minus the training mean squared error of a ridge regression on the features (regression targets).

Nguyen, Tran, Nguyen & Do, "Simple Transferability Estimation for Regression
Tasks", UAI 2023. A regression-only score: class labels are refused (use
LogME, or the other scores, for classes).
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.linalg

from transferlab._linalg import binary_exponent, gram
from transferlab._validation import check_features, check_scalar, check_targets
from transferlab.scores._linalg import _centre
from transferlab.scores._registry import register_score

#: The ridge penalty, by default: scikit-learn's ``Ridge(alpha=1.0)``.
DEFAULT_ALPHA = 1.0


@register_score(
    "linear_mse",
    needs={"features"},
    reference='Nguyen, Tran, Nguyen & Do, "Simple Transferability Estimation for Regression Tasks", UAI 2023',
    # Regression targets only. The intercept is not penalised, so adding a constant to the
    # features moves only the intercept; the penalty on w is not scale-free (F -> cF changes
    # the fit unless alpha scales by c^2). Constant features leave the intercept alone: a
    # finite value, minus the variance of the targets.
    targets=frozenset({"regression"}),
    # Targets are numbers, not class names: renaming classes does not apply (declared False).
    constant="finite",
    scale_invariant=False,
    translation_invariant=True,
    label_permutation_invariant=False,
)
def linear_mse(features, labels, *, alpha: float = DEFAULT_ALPHA, target_kind: str = "regression") -> float:
    """Linear MSE: minus the training mean squared error of a ridge regression on the features.

    For each target column ``y`` a linear model with an intercept is fitted
    by ridge regression on the features ``F`` (N, D):

    .. math::

        (\\hat w, \\hat b) = \\arg\\min_{w, b} \\sum_{i=1}^{N} (y_i - w^\\top f_i - b)^2
            + \\alpha \\lVert w \\rVert^2 ,

    and the score is minus its mean squared error on the same samples,
    averaged over the ``K`` target columns:

    .. math::

        S = -\\frac{1}{N K} \\sum_{k=1}^{K} \\sum_{i=1}^{N} (y_{ik} - \\hat w_k^\\top f_i - \\hat b_k)^2 .

    Higher (closer to 0) is better. The intercept is not penalised, so with
    the centred ``F_c`` and ``y_c`` it is ``\\hat w = (F_c^\\top F_c + \\alpha
    I)^{-1} F_c^\\top y_c``, solved in the ``D x D`` form when ``D <= N`` and
    in the ``N x N`` form otherwise (the residual is then ``\\alpha (F_c
    F_c^\\top + \\alpha I)^{-1} y_c``); both in float64, computed once for all
    columns. The features are used as given (no standardisation), as in the
    paper.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate model.
    labels : array-like of shape (n_samples,) or (n_samples, n_targets)
        Real-valued regression targets (finite), at least 2 samples.
    alpha : float, default=1.0
        The ridge penalty :math:`\\alpha > 0` (scikit-learn's ``Ridge``
        default, the regularised linear regression of the paper).
    target_kind : {"regression"}, default="regression"
        The kind of target; the score is defined for regression only.

    Returns
    -------
    float
        Minus the mean training squared error, ``<= 0``.

    Raises
    ------
    ValueError
        On invalid ``features``, ``labels`` that are not finite numbers with
        one row per sample, fewer than 2 samples, ``alpha`` not a positive
        number, or a ``target_kind`` other than ``"regression"`` (the message
        names the score).

    References
    ----------
    C. V. Nguyen, H. M. Tran, T. D. Nguyen and T. Q. Do. Simple
    transferability estimation for regression tasks. UAI 2023.

    Examples
    --------
    Targets that are exactly linear in the features, fitted with almost no penalty:

    >>> features = [[0.0], [1.0], [2.0], [3.0]]
    >>> round(linear_mse(features, [1.0, 3.0, 5.0, 7.0], alpha=1e-12), 9)
    -0.0
    """
    if target_kind != "regression":
        raise ValueError(f"score 'linear_mse' does not support {target_kind!r} targets (it supports regression)")
    alpha = check_scalar(alpha, "alpha", numbers.Real, min_val=0, include_boundaries="neither")
    F = check_features(features)
    Y = check_targets(labels, F.shape[0])
    if F.shape[0] < 2:
        raise ValueError(f"linear_mse needs at least 2 samples; got {F.shape[0]}")
    return _linear_mse(F, Y, float(alpha))


def _linear_mse(F: np.ndarray, Y: np.ndarray, alpha: float) -> float:
    """Minus the mean training squared error of ridge with an intercept (clean float64 input)."""
    Fc, Yc = _centre(F), _centre(Y)
    # Dividing F by 2**e and alpha by 4**e (exact) gives the same fit, with products clear of overflow.
    e = binary_exponent(Fc)
    Fc, alpha = np.ldexp(Fc, -e), float(np.ldexp(alpha, -2 * e))
    n, d = Fc.shape
    if d <= n:
        A = gram(Fc.T) + alpha * np.eye(d)  # F_c^T F_c + alpha I, (D, D)
        W = scipy.linalg.solve(A, Fc.T @ Yc, assume_a="pos")
        residual = Yc - Fc @ W
    else:
        K = gram(Fc) + alpha * np.eye(n)  # F_c F_c^T + alpha I, (N, N) with N < D
        residual = alpha * scipy.linalg.solve(K, Yc, assume_a="pos")
    return -float(np.mean(residual**2))
