"""PARC: pairwise annotation representation comparison.

Bolya, Mittapalli & Hoffman, "Scalable Diverse Model Selection for Accessible
Transfer Learning", NeurIPS 2021.

PARC compares two ``N x N`` dissimilarity matrices, so it is inherently
quadratic in the number of samples; it is meant for at most K samples per class
(and subsamples above ``max_samples``). The matrices are never held in full:
the upper triangle of the feature dissimilarities is built one block of rows
at a time.
"""

from __future__ import annotations

import numbers

import numpy as np

from transferlab._linalg import gram
from transferlab._validation import check_features_labels, check_int, check_scalar, check_seed
from transferlab.scores._linalg import _pca
from transferlab.scores._registry import register_score

#: Rows per block when building the condensed dissimilarities.
_BLOCK_ROWS = 256
#: Dissimilarities (in [0, 2]) closer than this to their neighbour in sorted
#: order count as tied: round-off would otherwise break exact ties (with two
#: components, for instance, every correlation is +-1).
_TIE_TOL = 1e-12
#: A standardised sample whose coordinates differ from their mean by less than
#: this (in norm) is treated as constant: its Pearson correlation is undefined.
_CONSTANT_ROW_TOL = 1e-12


def _check_options(n_components, max_samples, seed) -> tuple[int, int | None, int]:
    n_components = check_int(n_components, "n_components")
    max_samples = check_scalar(max_samples, "max_samples", (numbers.Integral, type(None)), min_val=2)
    return n_components, max_samples, check_seed(seed)


def _stratified_subset(y: np.ndarray, n_classes: int, max_samples: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded class-stratified subset: ``max(2, floor(n_c * max_samples / N))`` per class."""
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    chosen = []
    for c in range(n_classes):
        members = np.flatnonzero(y == c)
        take = max(2, members.shape[0] * max_samples // n)
        chosen.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(chosen))


def _row_normalised(Z: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm, so that ``U U^T`` is the Pearson correlation of the rows.

    A row with (numerically) equal coordinates becomes 0: its correlation with
    every other row is taken as 0 (``np.corrcoef`` would give NaN).
    """
    U = Z - Z.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(U, axis=1)
    constant = norms <= _CONSTANT_ROW_TOL * np.sqrt(Z.shape[1])
    norms[constant] = 1.0
    U /= norms[:, None]
    U[constant] = 0.0
    return U


def _condensed_dissimilarity(U: np.ndarray) -> np.ndarray:
    """``1 - U_i . U_j`` for ``i < j`` in row-major order (the order of ``np.triu_indices(N, 1)``)."""
    n = U.shape[0]
    parts = []
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n)
        block = gram(U[start:stop], U[start:])  # (b, N - start)
        parts.extend(1.0 - block[r, r + 1 :] for r in range(stop - start))
    return np.concatenate(parts) if parts else np.zeros(0)


def _condensed_different(y: np.ndarray) -> np.ndarray:
    """``y_i != y_j`` for ``i < j`` in the same order as :func:`_condensed_dissimilarity`."""
    n = y.shape[0]
    return np.concatenate([y[i + 1 :] != y[i] for i in range(n - 1)]) if n > 1 else np.zeros(0, dtype=bool)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties averaged (``scipy.stats.rankdata``), ties up to :data:`_TIE_TOL`.

    Values are grouped along the sorted order: a value within ``_TIE_TOL`` of
    the previous one joins its group.
    """
    order = np.argsort(values, kind="stable")
    starts = np.empty(values.shape[0], dtype=bool)
    starts[:1] = True
    np.greater(np.diff(values[order]), _TIE_TOL, out=starts[1:])
    first = np.flatnonzero(starts)
    sizes = np.diff(np.append(first, values.shape[0]))
    ranks = np.empty(values.shape[0])
    ranks[order] = np.repeat(first + (sizes + 1) / 2.0, sizes)
    return ranks


def _parc(X: np.ndarray, y: np.ndarray, n_components: int) -> float:
    """PARC on clean float64 input, as a correlation in ``[-1, 1]`` (see :func:`parc`)."""
    Z = _pca(X)[0][:, :n_components]
    if Z.shape[1] < 2:  # every row has at most one coordinate: no row correlation exists
        return 0.0
    Z = Z / np.sqrt(np.mean(Z**2, axis=0))  # standardise each component (it is centred already)
    dissimilarity = _condensed_dissimilarity(_row_normalised(Z))
    if np.ptp(dissimilarity) <= _TIE_TOL:
        return 0.0
    # Spearman = Pearson of the ranks. The label dissimilarity takes two values (0 within a
    # class, C / (C - 1) across), so its ranks are an affine map of the indicator b.
    ranks = _average_ranks(dissimilarity)
    b = _condensed_different(y).astype(np.float64)
    ranks -= ranks.mean()
    b -= b.mean()
    return float(np.dot(ranks, b) / np.sqrt(np.dot(ranks, ranks) * np.dot(b, b))) + 0.0


@register_score(
    "parc",
    needs={"features"},
    reference='Bolya, Mittapalli & Hoffman, "Scalable Diverse Model Selection for Accessible '
    'Transfer Learning", NeurIPS 2021',
    # Pearson correlation of the correlation matrices of the standardised PCA components
    # (centred) and of the labels. The seeded subset is drawn only above max_samples=2000
    # samples: deterministic below.
    min_per_class=2,
    scale_invariant=True,
    translation_invariant=True,
    resample=False,  # an N x N correlation matrix per bootstrap resample: too costly
)
def parc(features, labels, *, n_components: int = 32, max_samples: int | None = 2000, seed: int = 0) -> float:
    """PARC: Spearman correlation between the feature and the label dissimilarities of all sample pairs.

    The centred features are reduced by PCA to ``n_components`` dimensions (32
    in the paper's experiments; capped at the rank of the centred features) and
    each component is standardised to unit variance, giving ``z_i``. The
    representation dissimilarity matrices are one minus the Pearson correlation
    across coordinates of two samples, for the features and for the one-hot
    labels ``e_{y_i}``:

    .. math::

        F_{ij} = 1 - \\operatorname{corr}(z_i, z_j), \\qquad
        L_{ij} = 1 - \\operatorname{corr}(e_{y_i}, e_{y_j})
            = \\begin{cases} 0 & y_i = y_j \\\\ C / (C - 1) & y_i \\ne y_j \\end{cases},

    .. math::

        \\mathrm{PARC} = \\rho_{\\text{Spearman}}\\big(\\{F_{ij}\\}_{i<j}, \\{L_{ij}\\}_{i<j}\\big)
            \\in [-1, 1].

    Higher is better: samples of the same class are represented alike. The paper
    and its code report ``100 * rho``; we return ``rho`` itself (the ranking of
    candidates is the same). Ties are ranked by their average rank, as
    :func:`scipy.stats.spearmanr` does; feature dissimilarities within ``1e-12``
    of each other count as tied, so that round-off does not order pairs whose
    dissimilarities are equal.

    Cost: ``N (N - 1) / 2`` pairs, inherent to the method, so use it on at most
    K samples per class. Above ``max_samples`` samples a seeded class-stratified
    subset is scored (``max(2, floor(n_c * max_samples / N))`` samples of each
    class ``c``; the paper's evaluation code subsamples likewise above 15000).

    Conventions (the reference code leaves them to scikit-learn or to NaN): the
    PCA is exact (the reference uses a one-iteration randomised PCA); PCA
    components beyond the rank of the centred features are dropped (standardising
    them would amplify round-off); each principal axis is signed so that its
    largest loading is positive (scikit-learn's convention; the row correlation
    depends on these signs, a property of PARC itself); a sample whose
    standardised coordinates are all equal has correlation 0 with every other
    sample; the label dissimilarities are exactly two-valued (in the reference
    code, ``1 - np.corrcoef`` of the one-hot rows leaves round-off of about
    ``2e-16`` on some within-class pairs, which breaks their ties in the ranking
    and shifts ``rho`` by up to about 0.01); and fewer than 2 components (constant features, one feature) or
    equal dissimilarities for every pair give PARC = 0. PARC is invariant to
    translating or scaling the features, to the order of the samples (when no
    subset is drawn) and to renaming the classes.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate model.
    labels : array-like of shape (n_samples,)
        Target labels (integers or strings, at least 2 classes, at least 2
        samples per class).
    n_components : int, default=32
        PCA dimension.
    max_samples : int or None, default=2000
        Score a class-stratified random subset when there are more samples;
        ``None`` scores every sample (memory and time grow as ``N^2``).
    seed : int, default=0
        Seed of the subset (used only when ``N > max_samples``).

    Returns
    -------
    float
        The PARC score, in ``[-1, 1]``.

    Raises
    ------
    ValueError
        On invalid input (see :func:`~transferlab.scores._validation.check_features_labels`)
        or options.

    References
    ----------
    D. Bolya, R. Mittapalli, J. Hoffman. Scalable Diverse Model Selection for
    Accessible Transfer Learning. NeurIPS 2021.

    Examples
    --------
    The columns below are orthogonal and centred with distinct variances, so
    PCA only reorders and standardises them. The six dissimilarities, from
    smallest to largest, are the pairs (1, 2), (1, 4), (3, 4), (2, 3), (2, 4),
    (1, 3); the two within-class pairs get ranks 1 and 3 of 6, so
    ``rho = corr([1, 2, 3, 4, 5, 6], [0, 1, 0, 1, 1, 1]) = sqrt(27 / 70)``:

    >>> x = [[9.0, 2.0, 1.0], [3.0, -2.0, -3.0], [-3.0, -2.0, 3.0], [-9.0, 2.0, -1.0]]
    >>> round(parc(x, [0, 0, 1, 1]), 12) == round(float(np.sqrt(27 / 70)), 12)
    True
    """
    n_components, max_samples, seed = _check_options(n_components, max_samples, seed)
    X, y, classes = check_features_labels(features, labels, min_per_class=2)
    if max_samples is not None and X.shape[0] > max_samples:
        keep = _stratified_subset(y, classes.shape[0], max_samples, seed)
        X, y = X[keep], y[keep]
    return _parc(X, y, n_components)
