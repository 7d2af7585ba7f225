"""NCE: the negative conditional entropy of the target labels given the source model's hard labels.

Tran, Nguyen & Hassner, "Transferability and Hardness of Supervised
Classification Tasks", ICCV 2019.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from transferlab._validation import check_sample_weight, check_source_probs
from transferlab.scores._registry import register_score


def _nce(z: np.ndarray, y: np.ndarray, n_classes: int, n_source: int, weights: np.ndarray | None = None) -> float:
    """``-H(Y | Z)`` in nats from the joint counts of ``y`` (N,) in ``0..C-1`` and ``z`` (N,) in ``0..Z-1``.

    With ``weights`` (N,) the counts are weighted (integer weights: the rows repeated).
    """
    n = y.shape[0] if weights is None else float(np.sum(weights))
    counts = np.bincount(y * n_source + z, weights=weights, minlength=n_classes * n_source)
    counts = counts.reshape(n_classes, n_source)
    z_counts = counts.sum(axis=0)
    yy, zz = np.nonzero(counts)  # 0 log 0 = 0: only the occupied cells contribute
    n_yz = counts[yy, zz].astype(np.float64)
    # sum_{y,z} P(y, z) log P(y | z), with P(y | z) = n_yz / n_z <= 1, so every term is <= 0
    return float(np.sum(n_yz * np.log(n_yz / z_counts[zz])) / n) + 0.0


def _nce_batch(z: np.ndarray, y: np.ndarray, n_classes: int, n_source: int, weights: np.ndarray) -> np.ndarray:
    """:func:`_nce` under each row of ``weights`` (B, N): (B,) values.

    The weighted joint counts of every weighting are one product with the
    one-hot matrix of the cells ``(y_i, z_i)``: ``counts = W @ onehot`` (B, C * Z).
    """
    n = np.sum(weights, axis=1)
    cells = y * n_source + z
    onehot = sparse.csr_matrix((np.ones(cells.size), (cells, np.arange(cells.size))),
                               shape=(n_classes * n_source, cells.size))
    counts = np.asarray((onehot @ weights.T).T).reshape(-1, n_classes, n_source)  # (B, C, Z)
    z_counts = counts.sum(axis=1, keepdims=True)
    occupied = counts > 0  # 0 log 0 = 0: only the occupied cells contribute
    ratio = np.divide(counts, z_counts, out=np.ones_like(counts), where=occupied)
    return np.sum(counts * np.log(ratio), axis=(1, 2)) / n + 0.0


@register_score(
    "nce",
    needs={"source_probs"},
    reference='Tran, Nguyen & Hassner, "Transferability and Hardness of Supervised Classification Tasks", ICCV 2019',
    # Source probabilities only (their argmax): one sample per class is a valid joint
    # count; uniform rows all go to source class 0. Probabilities are neither scaled
    # nor translated, so the two invariances do not apply.
    min_per_class=1,
    scale_invariant=False,
    translation_invariant=False,
)
def nce(source_probs, labels, *, sample_weight=None) -> float | np.ndarray:
    """NCE: negative conditional entropy of the target labels given the source model's predicted labels.

    The source model labels every target sample with its most probable source
    class, ``z_i = argmax_z theta_z(x_i)`` (ties go to the lowest index, as
    :func:`numpy.argmax`). With the empirical joint distribution of the pairs
    ``(y_i, z_i)``,

    .. math::

        \\hat P(y, z) = \\frac{|\\{i : y_i = y, z_i = z\\}|}{N}, \\qquad
        \\mathrm{NCE} = -H(Y \\mid Z)
            = \\sum_{y, z} \\hat P(y, z) \\log \\frac{\\hat P(y, z)}{\\hat P(z)}

    in nats (cells with ``P(y, z) = 0`` contribute 0). ``NCE <= 0``; higher is
    better: 0 when the source label determines the target label (any
    many-to-one map), ``-H(Y)`` when it carries no information. It equals LEEP
    evaluated on one-hot source predictions.

    The value is exact: unlike some public implementations we add no
    ``epsilon`` to the joint and marginal probabilities.

    Parameters
    ----------
    source_probs : array-like of shape (n_samples, n_source_classes)
        Source-class probabilities (softmax outputs) of the candidate model on
        the target samples; rows sum to 1. Only the arg-max of each row is used.
    labels : array-like of shape (n_samples,)
        Target labels (integers or strings, at least 2 classes).
    sample_weight : array-like of shape (n_samples,) or (n_weightings, n_samples), optional
        Non-negative weights of the joint counts (integer weights give the value
        of the repeated rows). The ranker's bootstrap passes Bayesian-bootstrap
        weights. A 2-D stack gives one value per row (each that row's 1-D value).

    Returns
    -------
    float, or ndarray of shape (n_weightings,) for 2-D ``sample_weight``
        The NCE score, at most 0.

    Raises
    ------
    ValueError
        On invalid input (see :func:`~transferlab.scores._validation.check_source_probs`).

    References
    ----------
    A. T. Tran, C. V. Nguyen, T. Hassner. Transferability and Hardness of
    Supervised Classification Tasks. ICCV 2019.

    Examples
    --------
    Source labels ``z = 0, 1, 0, 1``; ``z = 1`` always means target ``b``, ``z = 0``
    splits evenly, so ``H(Y | Z) = P(z=0) log 2 = log(2) / 2``:

    >>> probs = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]
    >>> round(nce(probs, ["a", "b", "b", "b"]), 12) == round(float(-np.log(2) / 2), 12)
    True
    """
    P, y, classes = check_source_probs(source_probs, labels)
    z = np.argmax(P, axis=1)
    weights = None if sample_weight is None else check_sample_weight(sample_weight, P.shape[0], batched=True)
    if weights is not None and weights.ndim == 2:
        return _nce_batch(z, y, classes.shape[0], P.shape[1], weights)
    return _nce(z, y, classes.shape[0], P.shape[1], weights)
