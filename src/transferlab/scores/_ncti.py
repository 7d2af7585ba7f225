"""NCTI: how close each candidate's target features are to neural collapse, normalised across the pool.

A pool-level score (``kind="pool"``): its three terms are min-max normalised
across the candidates (see :mod:`transferlab.scores._pool`).

Wang, Luo, Zheng, Huang & Baktashmotlagh, "How Far Pre-trained Models Are from
Neural Collapse on the Target Dataset Informs their Transferability", ICCV 2023.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh

from transferlab._linalg import gram
from transferlab.scores._pool import SHRINKAGE_FLOOR, _check_pool, _LDA, _minmax, _true_class_probability
from transferlab.scores._registry import register_score

#: NCTI: PCA dimension before the LDA (the reference code's ``PCA(n_components=64)``).
NCTI_PCA_COMPONENTS = 64
#: NCTI: the shrinkage is ``exp(-sum of the first 32 PCA variances)`` (reference code).
NCTI_SHRINKAGE_COMPONENTS = 32


def _pca_scores(X: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact PCA: scores ``(N, k)`` on the leading non-degenerate components and their variances ``(k,)``.

    ``k = min(n_components, N, D)`` less the components of (numerically) zero
    variance; variances use the ``N - 1`` denominator (scikit-learn's
    ``explained_variance_``).
    """
    n, d = X.shape
    Xc = X - X.mean(axis=0)
    tol = max(n, d) * np.finfo(np.float64).eps
    if n > d:  # the D x D scatter matrix is the cheaper decomposition; its eigenvalues are s_i^2
        lam, V = eigh(gram(Xc.T))
        lam, V = lam[::-1], V[:, ::-1]
        k = min(n_components, d, int(np.count_nonzero(lam > lam[0] * tol)) if lam[0] > 0 else 0)
        return Xc @ V[:, :k], lam[:k] / (n - 1)
    U, s, _ = np.linalg.svd(Xc, full_matrices=False)
    k = min(n_components, int(np.count_nonzero(s > s[0] * tol)) if s[0] > 0 else 0)
    return U[:, :k] * s[:k], s[:k] ** 2 / max(n - 1, 1)


def _ncti_terms(X: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[float, float, float]:
    """The three raw NCTI terms of one model: ``(S_seli, S_ncc, log sum_c ||P_c||_*)``."""
    Z, variances = _pca_scores(X, NCTI_PCA_COMPONENTS)
    shrinkage = max(float(np.exp(-variances[:NCTI_SHRINKAGE_COMPONENTS].sum())), SHRINKAGE_FLOOR)
    lda = _LDA(Z, y, n_classes)
    lda.whiten(shrinkage)
    projected = lda.transform(n_classes - 1)
    projected = projected - projected.mean(axis=0)
    seli = float(np.linalg.svd(projected, compute_uv=False).sum()) if projected.size else 0.0
    P = lda.posterior()
    ncc = _true_class_probability(P, y)
    class_nuclear = sum(float(np.linalg.svd(P[y == c], compute_uv=False).sum()) for c in range(n_classes))
    return seli, ncc, float(np.log(class_nuclear))


@register_score(
    "ncti",
    kind="pool",
    needs={"features"},
    reference='Wang, Luo, Zheng, Huang & Baktashmotlagh, "How Far Pre-trained Models Are from Neural '
    'Collapse on the Target Dataset Informs their Transferability", ICCV 2023',
    # The LDA takes class means over any number of samples; constant members give
    # finite terms. The shrinkage exp(-sum of PCA variances) depends on the feature
    # scale; the PCA and the LDA centre the features.
    min_per_class=1,
    scale_invariant=False,
    translation_invariant=True,
)
def ncti(pool, labels) -> np.ndarray:
    """NCTI: how close each candidate's target features are to neural collapse, normalised across the pool.

    For each candidate ``m`` with target features :math:`H^m` three neural-collapse
    proxies (steps 2-4) are computed, following the paper and its reference
    code (``NCTI_Score`` in ``BUserName/NCTI``):

    1. the features are reduced by PCA to at most 64 components and a
       shrinkage LDA is fitted with shrinkage
       :math:`s = \\max(e^{-\\sum_{i \\le 32} \\lambda_i}, 10^{-10})`, :math:`\\lambda_i`
       the PCA variances;
    2. **SELI geometry** (distance to the simplex-encoded-labels interpolation,
       the generalisation of the simplex ETF to any class balance): the
       nuclear norm of the centred LDA projection :math:`\\tilde H^m` onto its
       :math:`C - 1` discriminant directions,
       :math:`S^m_{seli} = \\lVert \\tilde H^m \\rVert_*` (larger rank, closer to SELI);
    3. **nearest-centre classifier**: the mean LDA posterior of the true class,
       :math:`S^m_{ncc} = \\frac1N \\sum_i z^m_{i, y_i}`;
    4. **within-class variability collapse**: the nuclear norm of each class's
       posteriors :math:`Z^m_c` (the rows of class ``c``),
       :math:`V^m = \\log \\sum_c \\lVert Z^m_c \\rVert_*` (less variability is better).

    Each term is min-max normalised across the pool,
    :math:`\\mathcal{N}(S^m) = (S^m - \\min_k S^k) / (\\max_k S^k - \\min_k S^k)`, and

    .. math::

        \\mathrm{NCTI}^m = \\mathcal{N}(S^m_{seli}) + \\mathcal{N}(S^m_{ncc}) - \\mathcal{N}(V^m)
            \\in [-1, 2].

    Higher is better. A term on which every candidate agrees contributes 0 to
    every candidate.

    Differences from the reference code: the PCA is exact (the reference's
    scikit-learn ``PCA`` picks a randomized, unseeded solver for large
    inputs) and keeps at most ``min(64, N, D)`` components, dropping those of
    zero variance (the reference fails when ``N`` or ``D`` is below 64); the
    LDA is ours for every shrinkage (the reference switches to scikit-learn's
    SVD solver at the floor ``1e-10`` and otherwise shrinks each class's
    standardised covariance): the shrinkage target is the scaled identity
    ``(tr Sigma_w / k) I`` and eigenvalues of the shrunk covariance are floored
    at ``1e-12`` times the mean total variance, so classes collapsed to points
    give a finite, confident posterior instead of a singular matrix. The paper
    writes :math:`S_{vc} = -\\sum_c \\lVert Z_c \\rVert_*`; like the reference code
    we normalise its logarithm :math:`V`. The geometric term is often described
    as the simplex-ETF-ness of the class means; the paper measures it through
    SELI (which is the simplex ETF for balanced classes), as above.

    Parameters
    ----------
    pool : sequence of array-like, each of shape (n_samples, n_features_m)
        Target features of each candidate model, all on the same samples in the
        same order (feature dimensions may differ). At least 2 candidates.
    labels : array-like of shape (n_samples,)
        Target labels (integers or strings, at least 2 classes).

    Returns
    -------
    ndarray of shape (n_models,), float64
        One score per candidate, in ``[-1, 2]``, in the order of ``pool``.

    Raises
    ------
    ValueError
        If ``pool`` holds fewer than 2 models, a member is not a finite 2-D
        array, the members have different numbers of samples, or the labels
        are invalid (see :func:`~transferlab._validation.check_features_labels`).

    References
    ----------
    Z. Wang, Y. Luo, L. Zheng, Z. Huang, M. Baktashmotlagh. How Far Pre-trained
    Models Are from Neural Collapse on the Target Dataset Informs their
    Transferability. ICCV 2023.

    Examples
    --------
    Features that separate the classes win the SELI and nearest-centre terms
    (1 + 1); their confident, near one-hot posteriors have the larger class
    nuclear norms (about ``sqrt(n_c)`` against ``sqrt(n_c / C)`` for uniform
    posteriors), so noise wins the variability term, and the sums are
    ``1 + 1 - 1`` and ``0 + 0 - 0``:

    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], 20)
    >>> good = 4.0 * np.eye(3)[labels] + 0.3 * rng.normal(size=(60, 3))
    >>> noise = rng.normal(size=(60, 3))
    >>> ncti([good, noise], labels).tolist()
    [1.0, 0.0]
    """
    arrays, y, n_classes = _check_pool(pool, labels)
    terms = np.array([_ncti_terms(X, y, n_classes) for X in arrays])  # (M, 3)
    return _minmax(terms[:, 0]) + _minmax(terms[:, 1]) - _minmax(terms[:, 2])


