"""Linear-algebra helpers shared by the scores: exact centring and exact PCA."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy import sparse

from transferlab._linalg import gram


def _centre(X: np.ndarray) -> np.ndarray:
    """``X`` minus its column means, computed in two passes; constant columns become exactly 0.

    The second pass removes the rounding error of the first (it matters when a
    column has a large offset), and a column whose values are all equal is set
    to zero exactly, so it cannot leak round-off into a score.
    """
    Xc = X - X.mean(axis=0)
    Xc -= Xc.mean(axis=0)
    Xc[:, np.ptp(X, axis=0) == 0] = 0.0
    return Xc


def _pca(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact PCA of clean float64 ``X`` (N, D): the scores and variances of the informative components.

    The features are centred (:func:`_centre`) and divided by their largest
    magnitude ``s`` (so any finite magnitude is safe). The principal axes come
    from ``eigh`` of the ``D x D`` scatter when ``D <= N`` and from the thin SVD
    of the ``N x D`` matrix otherwise. Components whose variance is at most
    ``max(N, D) * eps`` times the largest (the null space of the centred data,
    round-off) are dropped. Each axis is signed so that its loading of largest
    magnitude is positive (scikit-learn's convention), which makes the scores
    deterministic.

    Returns
    -------
    scores : ndarray of shape (n_samples, r)
        ``(X - mean) / s @ V``, components in decreasing order of variance;
        ``r = 0`` when every feature is constant.
    variances : ndarray of shape (r,)
        The population variance (divided by ``N``) of each column of ``scores``.
    """
    n, d = X.shape
    Xc = _centre(X)
    scale = float(np.max(np.abs(Xc)))
    if scale == 0.0:
        return np.zeros((n, 0)), np.zeros(0)
    Xc /= scale
    if d <= n:
        evals, V = scipy.linalg.eigh(gram(Xc.T), check_finite=False)
        evals, V = evals[::-1], V[:, ::-1]
    else:
        try:
            _, sv, Vt = scipy.linalg.svd(Xc, full_matrices=False, check_finite=False)
        except np.linalg.LinAlgError:  # gesdd can fail to converge; gesvd is slower but robust
            _, sv, Vt = scipy.linalg.svd(Xc, full_matrices=False, check_finite=False, lapack_driver="gesvd")
        evals, V = sv**2, Vt.T
    keep = evals > max(n, d) * np.finfo(np.float64).eps * max(evals[0], 0.0)
    V = V[:, keep]
    if V.shape[1]:
        pivot = np.argmax(np.abs(V), axis=0)
        V = V * np.sign(V[pivot, np.arange(V.shape[1])])
    scores = Xc @ V
    return scores, np.mean(scores**2, axis=0)


def _class_sums(X: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class sums of the rows of ``X``, (n_classes, D): a sparse one-hot product, O(N D).

    Much faster than ``np.add.at`` (an unbuffered scatter) at the same float64 accuracy.
    """
    n = y.shape[0]
    onehot = sparse.csr_matrix((np.ones(n), (y, np.arange(n))), shape=(n_classes, n))
    return np.asarray(onehot @ X)
