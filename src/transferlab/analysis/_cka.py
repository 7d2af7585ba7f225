"""Centered kernel alignment (CKA) between two representations of the same samples: pure NumPy.

Kornblith, Norouzi, Lee & Hinton, "Similarity of neural network representations
revisited" (ICML 2019), and for the minibatch estimator Nguyen, Raghu &
Kornblith, "Do wide and deep networks learn the same things?" (ICLR 2021).

For Gram matrices ``K`` and ``L`` of ``n`` samples and the centring matrix
``H = I - 11'/n``,

.. math::

    \\mathrm{CKA}(K, L) = \\frac{\\langle HKH, HLH\\rangle_F}
                               {\\lVert HKH\\rVert_F \\, \\lVert HLH\\rVert_F}.

For the linear kernel ``K = XX'`` with centred ``X`` this is
``||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F)``, computed here from ``D x D`` products
only (no ``n x n`` matrix). The debiased form replaces each Frobenius product by
the unbiased HSIC estimator of Song et al. (2012). Everything is float64 and
features are centred before any product, so a large common offset (even in
float32 input) does not change the result.
"""

from __future__ import annotations

import numbers

import numpy as np

from transferlab._linalg import gram
from transferlab._validation import check_int, check_scalar

__all__ = ["cka", "minibatch_cka", "MinibatchCKA"]


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    y = np.asarray(y)
    for name, a in (("X", x), ("Y", y)):
        if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(f"{name} must be a non-empty (N, D) array; got shape {a.shape}")
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise ValueError(f"{name} must hold real numbers; got dtype {a.dtype}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or Inf")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"X and Y must describe the same samples; got {x.shape[0]} and {y.shape[0]} rows")
    return x.astype(np.float64), y.astype(np.float64)


def _centred(a: np.ndarray) -> np.ndarray:
    return a - a.mean(axis=0, keepdims=True)


def _unbiased_dot(xty: float, rows_x: np.ndarray, rows_y: np.ndarray, n: int) -> float:
    """Unbiased HSIC (up to a factor) of two linear kernels from feature-space quantities.

    With ``K~`` and ``L~`` the Gram matrices of centred features with zeroed
    diagonals, ``sum(K~ * L~) - 2/(n-2) 1'K~L~1 + (1'K~1)(1'L~1)/((n-1)(n-2))``
    reduces to the expression below given ``xty = ||X'Y||_F^2`` and the squared
    row norms (centred features make ``1'K1 = 0``).
    """
    return xty - n / (n - 2.0) * float(rows_x @ rows_y) + float(rows_x.sum() * rows_y.sum()) / ((n - 1.0) * (n - 2.0))


def _linear_cka(x: np.ndarray, y: np.ndarray, debiased: bool) -> float:
    x, y = _centred(x), _centred(y)
    xty = float(np.sum((x.T @ y) ** 2))
    xtx = float(np.sum(gram(x.T) ** 2))
    yty = float(np.sum(gram(y.T) ** 2))
    if debiased:
        n = x.shape[0]
        if n < 4:
            raise ValueError(f"debiased CKA needs at least 4 samples; got {n}")
        rows_x, rows_y = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
        xty = _unbiased_dot(xty, rows_x, rows_y, n)
        xtx = _unbiased_dot(xtx, rows_x, rows_x, n)
        yty = _unbiased_dot(yty, rows_y, rows_y, n)
    return _normalise(xty, xtx, yty)


def _normalise(xy: float, xx: float, yy: float) -> float:
    if not (xx > 0 and yy > 0):
        raise ValueError("a representation is constant across samples (zero variance): CKA is undefined")
    return float(xy / np.sqrt(xx * yy))


def _rbf_gram(x: np.ndarray, threshold: float) -> np.ndarray:
    """``exp(-d^2 / (2 threshold^2 median(d^2)))`` over all pairs (median taken over all n^2 entries)."""
    x = _centred(x)
    dot = gram(x)
    sq = np.diag(dot)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * dot, 0.0)
    median = float(np.median(d2))
    if median <= 0:
        raise ValueError("the median squared distance is 0 (most samples coincide): the RBF bandwidth is undefined")
    return np.exp(-d2 / (2.0 * threshold**2 * median))


def _centre_gram(gram: np.ndarray, unbiased: bool) -> np.ndarray:
    g = gram.copy()
    n = g.shape[0]
    if unbiased:
        # U-centring (Szekely & Rizzo 2014): with a zero diagonal, the Frobenius product of two
        # U-centred matrices is (n (n - 3)) times the unbiased HSIC of Song et al. (2012).
        np.fill_diagonal(g, 0.0)
        means = g.sum(axis=0) / (n - 2.0)
        means -= means.sum() / (2.0 * (n - 1.0))
        g -= means[:, None] + means[None, :]
        np.fill_diagonal(g, 0.0)
    else:
        means = g.mean(axis=0)
        means -= means.mean() / 2.0
        g -= means[:, None] + means[None, :]
    return g


def _gram_cka(k: np.ndarray, l: np.ndarray, debiased: bool) -> float:
    if debiased and k.shape[0] < 4:
        raise ValueError(f"debiased CKA needs at least 4 samples; got {k.shape[0]}")
    k, l = _centre_gram(k, debiased), _centre_gram(l, debiased)
    return _normalise(float(np.sum(k * l)), float(np.sum(k * k)), float(np.sum(l * l)))


def cka(X, Y, kernel: str = "linear", debiased: bool = False, threshold: float = 1.0) -> float:
    """CKA between two representations ``X`` (N, D1) and ``Y`` (N, D2) of the same N samples.

    Parameters
    ----------
    X, Y : array-like of shape (N, D1) and (N, D2)
        Real, finite; rows are the same samples in the same order.
    kernel : {"linear", "rbf"}, default "linear"
        ``"linear"`` is computed in feature space, ``O(N D^2)`` time and
        ``O(D^2)`` extra memory. ``"rbf"`` uses
        ``k(x, x') = exp(-||x - x'||^2 / (2 threshold^2 m))`` with ``m`` the
        median squared distance between the samples (an ``N x N`` Gram matrix,
        inherent to the kernel).
    debiased : bool, default False
        Use the unbiased HSIC estimator (Song et al. 2012) in numerator and
        denominator; needs ``N >= 4``. Less biased for ``D`` comparable to ``N``.
    threshold : float, default 1.0
        RBF bandwidth as a fraction of the median distance.

    Returns
    -------
    float
        In ``[0, 1]`` for the biased forms; 1 for representations equal up to
        an orthogonal transform and isotropic scaling.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 4))
    >>> round(cka(X, 3.0 * X @ np.linalg.qr(rng.normal(size=(4, 4)))[0]), 10)
    1.0
    """
    x, y = _pair(X, Y)
    debiased = check_scalar(debiased, "debiased", bool)
    if kernel == "linear":
        return _linear_cka(x, y, debiased)
    if kernel == "rbf":
        threshold = check_scalar(threshold, "threshold", numbers.Real, min_val=0, include_boundaries="neither")
        return _gram_cka(_rbf_gram(x, threshold), _rbf_gram(y, threshold), debiased)
    raise ValueError(f"kernel must be 'linear' or 'rbf'; got {kernel!r}")


class MinibatchCKA:
    """Linear CKA accumulated over minibatches (Nguyen, Raghu & Kornblith 2021).

    Each :meth:`update` adds the unbiased HSIC (Song et al. 2012) of one batch
    for the pairs (X, Y), (X, X) and (Y, Y); :attr:`value` is

    .. math:: \\frac{\\sum_b \\mathrm{HSIC}_1(K_b, L_b)}
                   {\\sqrt{\\sum_b \\mathrm{HSIC}_1(K_b, K_b) \\sum_b \\mathrm{HSIC}_1(L_b, L_b)}}.

    Memory is that of one batch, whatever the number of samples; batches should
    have the same size (the estimator weights them equally).
    """

    def __init__(self):
        self._xy = self._xx = self._yy = 0.0
        self.n_batches = 0
        self.batch_size: int | None = None

    def update(self, X, Y) -> "MinibatchCKA":
        x, y = _pair(X, Y)
        n = x.shape[0]
        if n < 4:
            raise ValueError(f"each batch needs at least 4 samples for the unbiased HSIC; got {n}")
        if self.batch_size is not None and n != self.batch_size:
            raise ValueError(f"batches must have equal sizes; got {n} after {self.batch_size}")
        self.batch_size = n
        x, y = _centred(x), _centred(y)
        rows_x, rows_y = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
        scale = 1.0 / (n * (n - 3.0))
        self._xy += scale * _unbiased_dot(float(np.sum((x.T @ y) ** 2)), rows_x, rows_y, n)
        self._xx += scale * _unbiased_dot(float(np.sum(gram(x.T) ** 2)), rows_x, rows_x, n)
        self._yy += scale * _unbiased_dot(float(np.sum(gram(y.T) ** 2)), rows_y, rows_y, n)
        self.n_batches += 1
        return self

    @property
    def value(self) -> float:
        if self.n_batches == 0:
            raise ValueError("no batch was added: call update(X_batch, Y_batch) first")
        return _normalise(self._xy, self._xx, self._yy)


def minibatch_cka(X, Y, *, batch_size: int = 256, seed: int | None = 0) -> float:
    """Linear minibatch CKA of ``X`` and ``Y`` over equal-size batches of their rows.

    The rows are shuffled with ``seed`` (``None``: kept in order) and cut into
    ``N // batch_size`` batches; the last ``N % batch_size`` rows are left out so
    that every batch weighs the same. See :class:`MinibatchCKA`.
    """
    x, y = _pair(X, Y)
    batch_size = check_int(batch_size, "batch_size", 4)
    n = x.shape[0]
    if n < batch_size:
        raise ValueError(f"need at least one batch: {n} samples < batch_size {batch_size}")
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    acc = MinibatchCKA()
    for b in range(n // batch_size):
        idx = order[b * batch_size : (b + 1) * batch_size]
        acc.update(x[idx], y[idx])
    return acc.value
