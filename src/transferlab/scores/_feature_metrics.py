"""Feature metrics: the sparsity of a candidate's target features as a transferability indicator.

After Ueno & Kondo (2020), who relate simple statistics of pre-trained features
(their sparsity) to transfer performance. The sparsity measure is Hoyer's
(Hurley & Rickard 2009, "Comparing measures of sparsity", IEEE Trans. Inf. Theory).
"""

from __future__ import annotations

import numpy as np

from transferlab._validation import check_features_labels
from transferlab.scores._registry import register_score


def _hoyer_sparsity(X: np.ndarray) -> np.ndarray:
    """Hoyer sparsity of every row of ``X`` (N, D) float64; returns (N,) values in [0, 1].

    ``(sqrt(D) - |x|_1 / |x|_2) / (sqrt(D) - 1)``. Each row is divided by its
    largest absolute entry first (the ratio is scale-free), so squares never
    overflow. An all-zero row counts as maximally sparse (1.0: no active unit),
    and with ``D = 1`` every row is 1.0 (a single coordinate is one-hot).
    """
    n, d = X.shape
    out = np.ones(n)
    if d == 1:
        return out
    A = np.abs(X)
    peak = A.max(axis=1)
    active = peak > 0
    A = A[active] / peak[active, None]  # entries in [0, 1], at least one equal to 1
    ratio = A.sum(axis=1) / np.sqrt(np.einsum("ij,ij->i", A, A))  # |x|_1 / |x|_2 in [1, sqrt(D)]
    root = np.sqrt(d)
    out[active] = np.clip((root - ratio) / (root - 1.0), 0.0, 1.0)
    return out


@register_score(
    "feature_metrics",
    needs={"features"},
    reference="Ueno & Kondo 2020 (feature sparsity as a transferability indicator); sparsity "
    'measure: Hurley & Rickard, "Comparing Measures of Sparsity", IEEE Trans. Inf. Theory 2009',
    # Sparsity of each sample's features (a scale-free ratio); ignores the labels. Adding
    # a constant changes which units are near zero, so not translation-invariant.
    min_per_class=1,
    scale_invariant=True,
    translation_invariant=False,
)
def feature_metrics(features, labels) -> float:
    """Feature metrics: the density (1 - mean Hoyer sparsity) of the candidate's target features.

    For each target sample the Hoyer sparsity of its feature vector
    :math:`x \\in \\mathbb{R}^D` is

    .. math::

        s(x) = \\frac{\\sqrt{D} - \\lVert x \\rVert_1 / \\lVert x \\rVert_2}{\\sqrt{D} - 1} \\in [0, 1],

    1 for a one-hot vector (one active unit), 0 for a vector whose entries all
    have the same magnitude. The score is

    .. math::

        S = 1 - \\frac{1}{N} \\sum_{i=1}^{N} s(x_i) \\in [0, 1].

    Higher is better: denser (less sparse) features predict better transfer.

    **Our reading of the paper.** Ueno & Kondo (2020) study simple metrics of
    pre-trained representations, feature sparsity first among them, as
    indicators of how well the representation transfers; we could not consult
    the text of the paper while writing this (it is not available offline), so
    the exact statistic is our choice and is stated here precisely: the Hoyer
    measure above (Hurley & Rickard 2009 show it satisfies all their sparsity
    criteria, unlike the fraction of zeros, and it is defined for features that
    are not exactly zero, e.g. after average pooling) of each sample's feature
    vector, averaged over the target samples. The direction is also our choice:
    sparse, few-unit codes are specific to the source task (in the spirit of
    Kornblith et al. 2019, "Do Better ImageNet Models Transfer Better?", where
    regularisers that sharpen penultimate features hurt the transfer of fixed
    features), so we score density, ``1 - sparsity``. The labels are validated
    but not used: the metric is label-free.

    Properties: invariant to the scale of each sample's features, to permuting
    samples and to permuting features; features are used as given (no
    centring, which would destroy zeros); absolute values are taken, so signed
    features work too. An all-zero feature vector counts as sparsity 1 (no
    active unit) and with a single feature (``D = 1``) every vector is
    sparsity 1, so the score is 0.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate model.
    labels : array-like of shape (n_samples,)
        Target labels (validated; unused).

    Returns
    -------
    float
        ``1 - mean Hoyer sparsity``, in ``[0, 1]``.

    Raises
    ------
    ValueError
        On invalid input (see :func:`~transferlab.scores._validation.check_features_labels`).

    References
    ----------
    Ueno & Kondo, 2020: feature sparsity as an indicator of transferability
    (the baseline "feature metrics" of model-selection benchmarks).
    N. Hurley, S. Rickard. Comparing Measures of Sparsity. IEEE Transactions on
    Information Theory 55(10), 2009. P. O. Hoyer. Non-negative Matrix
    Factorization with Sparseness Constraints. JMLR 5, 2004.

    Examples
    --------
    A one-hot vector has sparsity 1, a constant vector sparsity 0, so one of
    each gives a mean sparsity of 1/2:

    >>> feature_metrics([[0.0, 0.0, 0.0, 5.0], [2.0, 2.0, 2.0, 2.0]], [0, 1])
    0.5
    """
    X, _, _ = check_features_labels(features, labels, min_per_class=1)
    return float(1.0 - np.mean(_hoyer_sparsity(X)))
