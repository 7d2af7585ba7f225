"""LEEP: the log expected empirical prediction of the source model's classifier.

Nguyen, Hassner, Seeger & Archambeau, "LEEP: A New Measure to Evaluate
Transferability of Learned Representations", ICML 2020.
"""

from __future__ import annotations

import numpy as np

from transferlab._validation import check_sample_weight, check_source_probs
from transferlab.scores._linalg import _class_sums
from transferlab.scores._registry import register_score

#: Entries of one block of gathered conditionals in :func:`_leep` (32 MiB of float64).
_BLOCK_ELEMENTS = 1 << 22


def _leep(P: np.ndarray, y: np.ndarray, n_classes: int, weights: np.ndarray | None = None) -> float:
    """LEEP on clean input: ``P`` (N, Z) float64 rows summing to 1, ``y`` (N,) in ``0..C-1``.

    With ``weights`` (N,) sample ``i`` counts ``w_i`` times in the empirical joint and
    in the mean (integer weights: the rows repeated).
    """
    if weights is not None:
        keep = weights > 0
        P, y, weights = P[keep], y[keep], weights[keep]
    n = P.shape[0] if weights is None else float(np.sum(weights))
    # row c: sum of theta(x_i) (times w_i) over the samples of class c
    joint = _class_sums(P if weights is None else P * weights[:, None], y, n_classes)
    joint /= n  # empirical P(y, z)
    marginal = joint.sum(axis=0)  # empirical P(z)
    # P(y | z) = P(y, z) / P(z); a source class with P(z) = 0 has theta_z(x_i) = 0 for
    # every i, so its column never contributes; define P(y | z) = 0 there (no 0/0).
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    # EEP_i = sum_z P(y_i | z) theta_z(x_i) > 0: sample i itself puts mass on P(y_i, z).
    # By blocks of rows: the gathered rows P(y_i | .) never make a second N x Z array.
    eep = np.empty(P.shape[0])
    step = max(1, _BLOCK_ELEMENTS // P.shape[1])
    for lo in range(0, P.shape[0], step):
        eep[lo : lo + step] = np.einsum("iz,iz->i", conditional[y[lo : lo + step]], P[lo : lo + step])
    if weights is None:
        return float(np.mean(np.log(eep)))
    return float(np.dot(weights, np.log(eep)) / n)


def _leep_batch(P: np.ndarray, y: np.ndarray, n_classes: int, weights: np.ndarray) -> np.ndarray:
    """:func:`_leep` under each row of ``weights`` (B, N): (B,) values, in matrix form.

    For every weighting at once: the joints ``P_b(y, z) = sum_{i: y_i = y} w_bi theta_z(x_i) / n_b``
    are ``W[:, class c] @ P[class c]`` per class (B, Z), and ``EEP_bi`` the matching
    rows of ``P_b(y | z) @ P^T``. A sample of weight 0 adds nothing (its term is
    left out, as :func:`_leep` drops the row), so zero weights never give ``0 log 0``.
    """
    n = np.sum(weights, axis=1)  # (B,)
    members = [np.flatnonzero(y == c) for c in range(n_classes)]
    joint = np.stack([weights[:, rows] @ P[rows] for rows in members], axis=1) / n[:, None, None]  # (B, C, Z)
    marginal = joint.sum(axis=1, keepdims=True)  # (B, 1, Z)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    eep = np.empty_like(weights)
    for c, rows in enumerate(members):
        eep[:, rows] = conditional[:, c, :] @ P[rows].T  # (B, n_c)
    log_eep = np.log(eep, out=np.zeros_like(eep), where=weights > 0)
    return np.sum(weights * log_eep, axis=1) / n


@register_score(
    "leep",
    needs={"source_probs"},
    reference='Nguyen, Hassner, Seeger & Archambeau, "LEEP: A New Measure to Evaluate '
    'Transferability of Learned Representations", ICML 2020',
    # Source probabilities only: a class with one sample is a valid empirical joint;
    # uniform rows ("constant") give the log class prior. Probabilities are neither
    # scaled nor translated, so the two invariances do not apply.
    min_per_class=1,
    scale_invariant=False,
    translation_invariant=False,
)
def leep(source_probs, labels, *, sample_weight=None) -> float | np.ndarray:
    """LEEP: mean log-likelihood of the target labels under the source classifier's empirical predictor.

    With ``theta(x_i)`` the source model's distribution over its ``Z`` classes
    for target sample ``x_i``, the empirical joint and conditional are

    .. math::

        \\hat P(y, z) = \\frac{1}{N}\\sum_{i: y_i = y} \\theta_z(x_i), \\qquad
        \\hat P(y \\mid z) = \\frac{\\hat P(y, z)}{\\hat P(z)},

    and LEEP is the average log-likelihood of the "expected empirical predictor"

    .. math::

        T = \\frac{1}{N}\\sum_{i=1}^{N} \\log \\sum_{z} \\hat P(y_i \\mid z)\\, \\theta_z(x_i).

    ``T <= 0``; higher is better. With one-hot (hard) source predictions it is the
    negative empirical conditional entropy ``-H(Y | Z)``. A source class that
    receives no mass (``P(z) = 0``) contributes nothing and never produces NaN.

    Parameters
    ----------
    source_probs : array-like of shape (n_samples, n_source_classes)
        Source-class probabilities (softmax outputs) of the candidate model on
        the target samples; rows sum to 1.
    labels : array-like of shape (n_samples,)
        Target labels (integers or strings, at least 2 classes).
    sample_weight : array-like of shape (n_samples,) or (n_weightings, n_samples), optional
        Non-negative weights: sample ``i`` counts ``w_i`` times in the empirical
        joint and in the mean (integer weights give the value of the repeated
        rows). The ranker's bootstrap passes Bayesian-bootstrap weights. A 2-D
        stack gives one value per row (each that row's 1-D value), in matrix form.

    Returns
    -------
    float, or ndarray of shape (n_weightings,) for 2-D ``sample_weight``
        The LEEP score, at most 0.

    Raises
    ------
    ValueError
        On invalid input (see :func:`~transferlab.scores._validation.check_source_probs`).

    References
    ----------
    C. V. Nguyen, T. Hassner, M. Seeger, C. Archambeau. LEEP: A New Measure to
    Evaluate Transferability of Learned Representations. ICML 2020.

    Examples
    --------
    A source class that maps one-to-one onto the target classes is perfect:

    >>> leep([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], ["a", "b", "a"])
    0.0
    """
    P, y, classes = check_source_probs(source_probs, labels)
    weights = None if sample_weight is None else check_sample_weight(sample_weight, P.shape[0], batched=True)
    if weights is not None and weights.ndim == 2:
        return _leep_batch(P, y, classes.shape[0], weights)
    return _leep(P, y, classes.shape[0], weights)
