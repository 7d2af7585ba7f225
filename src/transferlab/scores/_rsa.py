"""RSA: representation similarity between a candidate and a small probe network trained on the target.

Dwivedi & Roig, "Representation Similarity Analysis for Efficient Task Taxonomy
& Transfer Learning", CVPR 2019.
"""

from __future__ import annotations

import numbers

import numpy as np

from transferlab._linalg import gram
from transferlab._validation import check_features_labels, check_rows, check_scalar, check_seed
from transferlab.scores._registry import register_score

#: Default cap on the number of samples whose N x N dissimilarity matrices are built.
DEFAULT_MAX_SAMPLES = 2000
# Dissimilarities are rounded to this many decimals before ranking (see _rdm_upper).
_DECIMALS = 12


def _check_options(max_samples, seed, centre) -> tuple[int | None, int, bool]:
    max_samples = check_scalar(max_samples, "max_samples", (numbers.Integral, type(None)), min_val=3)
    seed = check_seed(seed)
    return max_samples, seed, check_scalar(centre, "centre", bool)


def _rdm_upper(X: np.ndarray, centre: bool) -> np.ndarray:
    """Upper triangle (``k > i``, row-major) of the RDM ``1 - Pearson(x_i, x_k)`` of the rows of ``X``.

    With ``centre`` the columns are first centred over the samples (the
    reference code's preprocessing). A row with zero variance across its
    features has no defined correlation; its correlation with every other row
    is taken as 0 (dissimilarity 1).
    """
    Z = X - X.mean(axis=0) if centre else X.copy()
    Z -= Z.mean(axis=1, keepdims=True)
    # Scale each row by its largest entry before the norm: no overflow for huge features.
    peak = np.abs(Z).max(axis=1, keepdims=True)
    np.divide(Z, peak, out=Z, where=peak > 0)
    norm = np.sqrt(np.einsum("ij,ij->i", Z, Z))[:, None]
    np.divide(Z, norm, out=Z, where=norm > 0)  # a constant row stays 0: correlation 0 with all
    corr = gram(Z)  # N x N: inherent to RSA
    iu = np.triu_indices(X.shape[0], k=1)
    # Round to 12 decimals: pairs equal in exact arithmetic (e.g. correlations of +-1) tie,
    # whatever rounding the matrix product gave them, so the ranks do not depend on it.
    return np.round(1.0 - np.clip(corr[iu], -1.0, 1.0), _DECIMALS)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); 0.0 when either side is constant."""
    from scipy.stats import rankdata  # deferred: scipy.stats takes ~0.2 s to import

    ra = rankdata(a)
    rb = rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = np.sqrt(np.dot(ra, ra) * np.dot(rb, rb))
    if denom == 0.0:
        return 0.0
    return float(np.clip(np.dot(ra, rb) / denom, -1.0, 1.0))


@register_score(
    "rsa",
    needs={"features", "probe"},
    reference='Dwivedi & Roig, "Representation Similarity Analysis for Efficient Task Taxonomy '
    '& Transfer Learning", CVPR 2019',
    # Spearman correlation of two RDMs (1 - Pearson per pair of centred samples): scale-
    # and translation-free; labels unused. Seeded subset only above max_samples=2000.
    min_per_class=1,
    scale_invariant=True,
    translation_invariant=True,
    resample=False,  # two N x N dissimilarity matrices per bootstrap resample: too costly
)
def rsa(
    features,
    labels,
    *,
    probe_features,
    max_samples: int | None = DEFAULT_MAX_SAMPLES,
    seed: int = 0,
    centre: bool = True,
) -> float:
    """RSA: Spearman correlation between the dissimilarity matrices of the candidate and of a target probe.

    A small probe network is trained on the target task (see
    :func:`transferlab.features._probe.probe_features`); its features stand for
    a representation that suits the target. For each representation the
    representation dissimilarity matrix (RDM) of the samples is

    .. math::

        \\mathrm{RDM}_{ik} = 1 - \\rho(x_i, x_k), \\qquad
        \\rho(x_i, x_k) = \\frac{\\langle x_i - \\bar x_i, x_k - \\bar x_k \\rangle}
            {\\lVert x_i - \\bar x_i \\rVert\\, \\lVert x_k - \\bar x_k \\rVert},

    the Pearson correlation across the feature dimensions (:math:`\\bar x_i` the
    mean of the entries of :math:`x_i`), and the score is the Spearman rank
    correlation of the two RDMs' upper triangles (the pairs ``i < k``):

    .. math::

        \\mathrm{RSA} = \\mathrm{Spearman}\\big(\\{\\mathrm{RDM}^{\\text{cand}}_{ik}\\}_{i<k},
            \\{\\mathrm{RDM}^{\\text{probe}}_{ik}\\}_{i<k}\\big) \\in [-1, 1].

    Higher is better: the candidate arranges the target samples the way a
    network trained on the target does. Identical representations give 1.

    Details we take from the paper and its reference code (Dwivedi & Roig,
    ``create_taskonomy_RDMs_enc_final.py``): with ``centre=True`` (default)
    each feature is first centred across the samples, then the per-pair
    Pearson correlation is taken; the RDMs are compared with Spearman's rank
    correlation, ties getting average ranks (dissimilarities are rounded to
    12 decimals first, so that pairs equal in exact arithmetic tie). The paper builds its RDMs from 500
    images; here every given sample is used up to ``max_samples``, above which
    a seeded uniform subset of ``max_samples`` samples (the same for both
    representations) is drawn. A sample whose (centred) feature vector is
    constant has no defined correlation; its correlations are taken as 0. If
    either RDM is constant the rank correlation is undefined and 0.0 is
    returned. The labels are validated but not used (the probe carries the
    target task).

    **Cost.** RSA is inherently pairwise: it builds two ``n x n`` correlation
    matrices and ranks their ``n (n - 1) / 2`` upper-triangle entries, ``n =
    min(N, max_samples)``, so time is ``O(n^2 (D + E) + n^2 log n)`` and memory
    ``O(n^2)`` (about 100 MB at ``n = 2000``). Give it at most K samples per
    class, as the model-selection benchmark does.

    Invariances: permuting the samples of both representations together (when
    no subsampling happens); with ``centre=True``, adding a constant vector to
    every sample and scaling a representation by a positive number; with
    ``centre=False``, also scaling or shifting each sample's features by its own
    positive factor or offset (Pearson correlation per pair).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate model.
    labels : array-like of shape (n_samples,)
        Target labels (validated; unused).
    probe_features : array-like of shape (n_samples, n_probe_features)
        Features of the probe network on the same samples, in the same order.
    max_samples : int or None, default=2000
        Largest number of samples used; ``None`` uses all of them.
    seed : int, default=0
        Seeds the choice of the subset when ``N > max_samples``.
    centre : bool, default=True
        Centre each feature across the samples before the per-pair correlation.

    Returns
    -------
    float
        The Spearman correlation of the two RDMs, in ``[-1, 1]``.

    Raises
    ------
    ValueError
        On invalid input (see
        :func:`~transferlab.scores._validation.check_features_labels`),
        ``probe_features`` that is not a finite 2-D array with one row per
        sample, or invalid options.

    References
    ----------
    K. Dwivedi, G. Roig. Representation Similarity Analysis for Efficient Task
    Taxonomy & Transfer Learning. CVPR 2019.

    Examples
    --------
    A representation compared with a shifted, rescaled copy of itself gives 1:

    >>> X = np.random.default_rng(0).normal(size=(12, 4))
    >>> round(rsa(X, np.repeat([0, 1], 6), probe_features=3.0 * X + 1.0), 12)
    1.0
    """
    max_samples, seed, centre = _check_options(max_samples, seed, centre)
    X, _, _ = check_features_labels(features, labels, min_per_class=1)
    P = check_rows(probe_features, X.shape[0], name="probe_features")
    n = X.shape[0]
    if max_samples is not None and n > max_samples:
        keep = np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))
        X, P = X[keep], P[keep]
    if X.shape[0] < 3:  # one pair: no rank correlation
        return 0.0
    return _spearman(_rdm_upper(X, centre), _rdm_upper(P, centre))
