"""kNN accuracy: the leave-one-out accuracy of a k-nearest-neighbour classifier on the target features.

For regression targets (``target_kind="regression"``) the same neighbours
predict the mean of their targets, and the score is the leave-one-out R^2.

A simple target-aware baseline that every transferability score must beat:
Renggli et al. (CVPR 2022) use the kNN accuracy of a model's features as a
cheap proxy of its fine-tuned accuracy. Each queried sample is compared with
every other sample, in blocks of rows, so the memory is bounded whatever the
number of samples. Leave-one-out over all ``N`` samples is quadratic in ``N``;
above ``max_samples`` (10,000 by default) the accuracy is averaged over a
seeded class-stratified subset of ``max_samples`` queries, each still voted on
by its neighbours among all ``N`` samples (time ``O(min(N, max_samples) N D)``).
"""

from __future__ import annotations

import numbers

import numpy as np

from transferlab._linalg import gram
from transferlab._validation import (
    check_features,
    check_features_labels,
    check_int,
    check_multilabel,
    check_scalar,
    check_seed,
    check_targets,
)
from transferlab.scores._linalg import _centre
from transferlab.scores._registry import register_score

#: The neighbours each sample votes with, by default.
DEFAULT_K = 10
#: The most samples whose leave-one-out votes are averaged, by default (the sample cap; see :func:`knn`).
DEFAULT_MAX_SAMPLES = 10_000
#: Bytes of one block of similarities (block rows x N, float64). Each block streams all of the
#: (N, D) features through one product: 128 MB blocks (335 rows at N = 50,000) measured about
#: 1.4 times as fast as 32 MB ones there, and larger ones no faster.
_BLOCK_BYTES = 128 * 2**20


@register_score(
    "knn",
    needs={"features"},
    reference='Renggli, Pinto, Rimanic, Puigcerver, Riquelme, Zhang & Lucic, "Which model to transfer? '
    'Finding the needle in the growing haystack", CVPR 2022',
    # Leave-one-out needs a second sample of the class; cosine similarity of z-scored
    # features: scale- and translation-free; a class is found by its samples, not its name
    # (up to exact ties in the vote, broken by class index: see the docstring). Every row
    # equal leaves no feature after standardisation: a ValueError naming features.
    min_per_class=2,
    constant="raises",
    scale_invariant=True,
    translation_invariant=True,
    label_permutation_invariant=True,
    # Above max_samples the queries are a seeded subset drawn by sample position (the same images
    # for every candidate of a ranking, which share the samples' order): the value then depends on
    # the sample order. At or below max_samples every sample is a query: no randomness at all.
    stochastic=True,
    group="baseline",
    resample=False,  # leave-one-out on a bootstrap sample: a duplicated row is its own nearest neighbour
    # regression: leave-one-out kNN regression R^2; multi-label: the mean over labels of each
    # label's two-class leave-one-out accuracy (the neighbours found once).
    targets=frozenset({"classes", "regression", "multilabel"}),
)
def knn(
    features,
    labels,
    *,
    k: int = DEFAULT_K,
    max_samples: int | None = DEFAULT_MAX_SAMPLES,
    seed: int = 0,
    target_kind: str = "classes",
) -> float:
    """kNN accuracy: leave-one-out accuracy of a k-nearest-neighbour vote (cosine; <= ~10,000 queries), in [0, 1].

    The features are standardised (each column centred and divided by its
    standard deviation; zero-variance columns are dropped) and each row is
    L2-normalised, so the similarity of samples ``i`` and ``j`` is the cosine
    of their standardised features:

    .. math::

        z_{id} = \\frac{x_{id} - \\bar x_d}{\\sigma_d}, \\qquad
        s_{ij} = \\frac{z_i^\\top z_j}{\\lVert z_i \\rVert \\, \\lVert z_j \\rVert}

    (a row with :math:`z_i = 0` has similarity 0 to every row). Every sample
    ``i`` is classified by a majority vote of its ``k`` most similar *other*
    samples :math:`\\mathcal N_k(i)` (leave-one-out: it is never its own
    neighbour), and the score is the fraction classified correctly:

    .. math::

        \\hat y_i = \\arg\\max_c \\, \\bigl|\\{ j \\in \\mathcal N_k(i) : y_j = c \\}\\bigr|, \\qquad
        S = \\frac{1}{N} \\sum_i [\\hat y_i = y_i]

    Ties are broken exactly as follows. Neighbours: the other samples are
    ordered by decreasing similarity, equal similarities by increasing sample
    index, and the first ``k`` are taken. Vote: among the classes with the most
    votes, the one with the larger summed similarity of its voters (summed in
    increasing sample index); then the smaller class index (classes sorted as
    :func:`numpy.unique` sorts the labels). Exact ties arise from duplicated
    rows or from a single informative feature (every standardised row is then
    ``+1`` or ``-1``); on them the value depends on the sample order and the
    class names.

    With ``target_kind="regression"`` the same ``k`` neighbours (same ties)
    predict the mean of their real-valued targets,
    :math:`\\hat y_i = \\frac1k \\sum_{j \\in \\mathcal N_k(i)} y_j`, and the
    score is the leave-one-out coefficient of determination, averaged over
    the ``K`` target columns:

    .. math::

        R^2 = \\frac1K \\sum_{k=1}^{K} \\Bigl(1 - \\frac{\\sum_i (y_{ik} - \\hat y_{ik})^2}
            {\\sum_i (y_{ik} - \\bar y_k)^2}\\Bigr) .

    With ``target_kind="multilabel"`` (a 0/1 matrix, ``L`` labels) each
    label's column is a two-class problem voted on by the same neighbours, and
    the score is the mean over the labels of their leave-one-out accuracies
    (each equals ``knn`` on that column alone).

    Sample cap. With ``N > max_samples`` the mean is over a subset :math:`Q`
    of :math:`M = |Q|` query samples instead of all ``N``,

    .. math::

        S_Q = \\frac{1}{M} \\sum_{i \\in Q} [\\hat y_i = y_i],

    where each :math:`\\hat y_i` is exactly the vote above: its neighbours are
    sought among all ``N`` samples (and the standardisation uses all ``N``).
    :math:`S_Q` is therefore an estimate of :math:`S`, unbiased when the class
    shares below are exact (each :math:`n_c M_{\\max} / N` an integer; the
    rounding shifts them by less than one sample per class), with standard
    error at most :math:`1 / (2 \\sqrt{M})` (0.005 at ``M = 10,000``). ``Q`` is
    class-stratified: class ``c`` with :math:`n_c` samples keeps
    :math:`\\max(1, \\lfloor n_c M_{\\max} / N \\rfloor)` of them (so :math:`M`
    is about ``max_samples``), those with the smallest of one uniform random key
    per sample, drawn in sample order from ``seed``: the same samples for every
    candidate model that sees the samples in the same order (a paired
    comparison), and independent of the class names. For regression and
    multi-label targets ``Q`` is a uniform subset of ``max_samples`` samples.

    Higher is better. The similarities are computed in blocks of query rows
    of at most 128 MB each (float64), so memory stays bounded at any ``N``; the
    time is ``O(M N D)`` with ``M = min(N, max_samples)``.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate model.
    labels : array-like of shape (n_samples,), or (n_samples, n_targets) for regression
        Target labels, at least 2 classes, at least 2 samples per class; or
        real-valued targets, each column not constant.
    k : int, default=10
        Neighbours per vote, at least 1; clipped to ``n_samples - 1``. Renggli
        et al. (2022) report kNN accuracy as a proxy of transferability; 10 is a
        common middle choice (an odd ``k`` does not avoid ties with more than 2
        classes, so none is preferred).
    max_samples : int or None, default=10000
        The sample cap: above it, the leave-one-out votes of a seeded
        class-stratified subset of about ``max_samples`` query samples are
        averaged (see above); ``None`` queries every sample (exact, ``O(N^2 D)``).
        At least 1.
    seed : int, default=0
        Seed of the query subset; not read when ``N <= max_samples``.
    target_kind : {"classes", "regression", "multilabel"}, default="classes"
        Class labels (accuracy), real-valued targets (R^2) or a multi-label
        0/1 matrix (mean per-label accuracy; every label needs 2 samples with
        it and 2 without).

    Returns
    -------
    float
        The leave-one-out accuracy, in ``[0, 1]``; for regression the
        leave-one-out R^2, at most 1.

    Raises
    ------
    ValueError
        On invalid ``features``/``labels`` (see
        :func:`~transferlab._validation.check_features_labels`; a class with a
        single sample included), ``k`` not an integer >= 1, ``max_samples``
        not an integer >= 1 or None, a bad ``seed``, or ``features`` whose every
        column has zero variance (every row equal).

    References
    ----------
    C. Renggli, A. S. Pinto, L. Rimanic, J. Puigcerver, C. Riquelme, C. Zhang
    and M. Lucic. Which model to transfer? Finding the needle in the growing
    haystack. CVPR 2022.

    Examples
    --------
    Two well separated classes: every sample's nearest neighbours share its class.

    >>> features = [[0.0, 1.0], [0.1, 1.0], [0.0, 1.1], [5.0, 0.0], [5.1, 0.1], [5.0, 0.2]]
    >>> knn(features, [0, 0, 0, 1, 1, 1], k=2)
    1.0
    """
    if target_kind not in ("classes", "regression", "multilabel"):
        raise ValueError(f"score 'knn' does not support {target_kind!r} targets (it supports classes, regression, "
                         "multilabel)")
    if target_kind == "regression":
        X = check_features(features)
        Y = check_targets(labels, X.shape[0])
        k, max_samples, seed = _check_options(k, max_samples, seed)
        if X.shape[0] < 2:
            raise ValueError(f"knn needs at least 2 samples for leave-one-out; got {X.shape[0]}")
        if (np.ptp(Y, axis=0) == 0).any():
            raise ValueError("labels (regression targets) have a constant column: R^2 is undefined for it")
        queries = _uniform_rows(X.shape[0], max_samples, seed)
        return _knn_r2(X, Y, k, block_bytes=_BLOCK_BYTES, queries=queries)
    if target_kind == "multilabel":
        X = check_features(features)
        Y = check_multilabel(labels, X.shape[0]).astype(np.int64)
        k, max_samples, seed = _check_options(k, max_samples, seed)
        for c in range(Y.shape[1]):  # each label is a two-class problem: 2 samples with it and 2 without
            count = int(Y[:, c].sum())
            if min(count, Y.shape[0] - count) < 2:
                raise ValueError(f"labels (multi-label) column {c} has {count} of {Y.shape[0]} samples with the label; "
                                 "leave-one-out kNN needs at least 2 with it and 2 without")
        queries = _uniform_rows(X.shape[0], max_samples, seed)
        return _knn_accuracy(X, Y, 2, k, block_bytes=_BLOCK_BYTES, queries=queries)
    X, y, classes = check_features_labels(features, labels, min_per_class=2)
    k, max_samples, seed = _check_options(k, max_samples, seed)
    queries = _stratified_rows(y, classes.shape[0], max_samples, seed)
    return _knn_accuracy(X, y, classes.shape[0], k, block_bytes=_BLOCK_BYTES, queries=queries)


def _check_options(k, max_samples, seed) -> tuple[int, int | None, int]:
    k = check_int(k, "k")
    max_samples = check_scalar(max_samples, "max_samples", (numbers.Integral, type(None)), min_val=1)
    return k, None if max_samples is None else int(max_samples), check_seed(seed)


def _stratified_rows(
    y: np.ndarray, n_classes: int, max_samples: int | None, seed: int, *, minimum: int = 1
) -> np.ndarray | None:
    """Sorted indices of a seeded class-stratified subset of about ``max_samples`` rows; ``None`` (every row) below it.

    Class ``c`` (``y`` in ``0..n_classes-1``, every class present) keeps
    ``min(n_c, max(minimum, floor(n_c * max_samples / N)))`` of its ``n_c`` rows:
    those with the smallest of one uniform key per row, drawn in row order from
    ``seed``. The subset depends on the row order and the seed, not on the class
    names; the same seed and order give the same rows whatever the features.
    """
    n = y.shape[0]
    if max_samples is None or n <= max_samples:
        return None
    keys = np.random.default_rng(seed).random(n)
    order = np.lexsort((keys, y))  # by class, then by key
    counts = np.bincount(y, minlength=n_classes)
    take = np.minimum(counts, np.maximum(minimum, counts * max_samples // n))
    starts = np.cumsum(counts) - counts
    rank_in_class = np.arange(n) - starts[y[order]]
    return np.sort(order[rank_in_class < take[y[order]]])


def _uniform_rows(n: int, max_samples: int | None, seed: int) -> np.ndarray | None:
    """:func:`_stratified_rows` of ``n`` rows of one class: a seeded uniform subset of ``max_samples`` of them."""
    return _stratified_rows(np.zeros(n, dtype=np.int64), 1, max_samples, seed)


def _knn_r2(X: np.ndarray, Y: np.ndarray, k: int, *, block_bytes: int, queries: np.ndarray | None = None) -> float:
    """The leave-one-out kNN-regression R^2 of clean ``X``, ``Y`` (N, K), averaged over the columns.

    With ``queries`` (sorted row indices) the R^2 is that of those rows' predictions
    (their neighbours sought among all rows), against those rows' own mean.
    """
    n = X.shape[0]
    k = min(k, n - 1)
    U = _standardised_unit_rows(X)
    q = np.arange(n) if queries is None else queries
    rows_per_block = max(1, block_bytes // (8 * n))
    predicted = np.empty((q.shape[0], Y.shape[1]))
    for lo in range(0, q.shape[0], rows_per_block):
        rows = q[lo : lo + rows_per_block]
        r, j, _ = _neighbours_block(U, k, rows)
        sums = np.zeros((rows.shape[0], Y.shape[1]))
        np.add.at(sums, r, Y[j])
        predicted[lo : lo + rows.shape[0]] = sums / k
    Yq = Y[q]
    residual = np.sum((Yq - predicted) ** 2, axis=0)
    total = np.sum(_centre(Yq) ** 2, axis=0)
    return float(np.mean(1.0 - residual / total))


def _standardised_unit_rows(X: np.ndarray) -> np.ndarray:
    """The rows of z-scored ``X`` (zero-variance columns dropped), each divided by its L2 norm (zero rows stay 0)."""
    keep = np.ptp(X, axis=0) > 0
    if not keep.any():
        raise ValueError(
            "features have zero variance in every column (every row is the same vector): "
            "kNN has no similarity to rank the neighbours by"
        )
    Z = _centre(X if keep.all() else X[:, keep])  # one copy (centring is column by column)
    # unit magnitude first: squaring can neither overflow nor underflow (max |z| without an |Z| copy)
    Z /= np.maximum(Z.max(axis=0), -Z.min(axis=0))
    Z /= np.sqrt(np.mean(Z**2, axis=0))
    norms = np.sqrt(np.sum(Z**2, axis=1))
    nonzero = norms > 0
    Z[nonzero] /= norms[nonzero, None]
    return Z


def _knn_accuracy(
    X: np.ndarray, y: np.ndarray, n_classes: int, k: int, *, block_bytes: int, queries: np.ndarray | None = None
) -> float:
    """The leave-one-out kNN accuracy of clean ``X``, ``y`` (0..C-1), by blocks of ``block_bytes`` of similarities.

    ``y`` of shape (N, L) holds ``L`` labelings (each 0..C-1, a multi-label target's
    0/1 columns): the neighbours are found once, each column votes on its own, and
    the value is the mean of the columns' accuracies. With ``queries`` (sorted row
    indices) only those rows vote, each against all ``N`` rows, and the accuracy is
    their mean.
    """
    n = X.shape[0]
    k = min(k, n - 1)
    U = _standardised_unit_rows(X)
    Y = y[:, None] if y.ndim == 1 else y
    q = np.arange(n) if queries is None else queries
    rows_per_block = max(1, block_bytes // (8 * n))
    correct = np.zeros(Y.shape[1], dtype=np.int64)
    for lo in range(0, q.shape[0], rows_per_block):
        rows = q[lo : lo + rows_per_block]
        r, j, S = _neighbours_block(U, k, rows)
        for c in range(Y.shape[1]):
            correct[c] += int(np.sum(_vote(r, j, S, Y[:, c], n_classes, rows.shape[0]) == Y[rows, c]))
    return float(np.mean(correct / q.shape[0]))


def _predict_block(U: np.ndarray, y: np.ndarray, n_classes: int, k: int, rows: np.ndarray) -> np.ndarray:
    """The kNN vote of the samples ``rows`` (unit rows ``U``), with the documented tie rules."""
    r, j, S = _neighbours_block(U, k, rows)
    return _vote(r, j, S, y, n_classes, rows.shape[0])


def _vote(r: np.ndarray, j: np.ndarray, S: np.ndarray, y: np.ndarray, n_classes: int, b: int) -> np.ndarray:
    """The kNN vote of a block's ``b`` rows from their neighbours (:func:`_neighbours_block`), documented ties."""
    votes = np.zeros((b, n_classes))
    np.add.at(votes, (r, y[j]), 1.0)
    sums = np.zeros((b, n_classes))
    np.add.at(sums, (r, y[j]), S[r, j])
    top = votes == votes.max(axis=1, keepdims=True)
    tied_sums = np.where(top, sums, -np.inf)
    top &= tied_sums == tied_sums.max(axis=1, keepdims=True)
    return np.argmax(top, axis=1)  # the first (smallest) class index left


def _neighbours_block(U: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, neighbour, similarities)`` of the ``k`` neighbours of the samples ``rows`` (block-local row
    numbers, row-major), with the ties; ``k <= N - 1``."""
    n, b = U.shape[0], rows.shape[0]
    # U @ U[rows].T: gram copies only the block's rows (not all of U) for each block.
    S = np.ascontiguousarray(gram(U, U[rows]).T)  # (b, n) cosine similarities
    S[np.arange(b), rows] = -np.inf  # never its own neighbour
    # The k-th largest similarity of each row; all above it, then the lowest indices equal to it.
    kth = np.partition(S, n - k, axis=1)[:, n - k]
    above = S > kth[:, None]
    equal = S == kth[:, None]
    wanted = k - above.sum(axis=1)
    chosen = above | (equal & (np.cumsum(equal, axis=1, dtype=np.int32) <= wanted[:, None]))
    r, j = np.nonzero(chosen)  # row-major: each row's neighbours in increasing sample index
    return r, j, S
