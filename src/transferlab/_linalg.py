"""The product of a matrix with its own transpose, kept off BLAS's symmetric rank-k kernel.

NumPy hands ``a @ a.T``, ``a.T @ a`` and ``np.dot(a, a.T)`` (one buffer, once
transposed) to BLAS ``syrk``. In the OpenBLAS 0.3.31 bundled with NumPy that
kernel crashes the interpreter (SIGSEGV) with two threads on a 20000 x 256
``a @ a.T``; ``gemm`` on the same operands works. :func:`gram` computes the
product with ``gemm`` only, so every Gram matrix whose size grows with the data
(N x N over samples, D x D over features) goes through it.

It lives here, a base module shared by every layer (layer 0 in
``tests/test_layers.py``), rather than in ``scores/_linalg.py``: the scores,
``analysis``, ``evaluate``, ``features`` and the benches all form such
products, and a package may not import another package's private helpers.
Pure NumPy.
"""

from __future__ import annotations

import contextlib

import numpy as np

__all__ = ["gram", "weighted_gram", "one_blas_thread", "binary_exponent"]

#: How many :func:`one_blas_thread` contexts are open (process-wide, like the BLAS setting).
_ONE_THREAD_DEPTH = 0


@contextlib.contextmanager
def one_blas_thread():
    """Hold every BLAS library to one thread; inside, :func:`weighted_gram` may use ``syrk``.

    ``syrk`` is safe with one thread (the OpenBLAS crash needs two) and costs half a
    ``gemm``. Worker threads started inside the context (the bootstrap's) each run
    BLAS single-threaded, so they never spin against each other or against torch.
    """
    global _ONE_THREAD_DEPTH
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        _ONE_THREAD_DEPTH += 1
        try:
            yield
        finally:
            _ONE_THREAD_DEPTH -= 1

#: Rows of the result computed per ``gemm`` call; bounds the temporary to
#: ``_BLOCK_ROWS x n`` entries.
_BLOCK_ROWS = 2048


def gram(a, b=None) -> np.ndarray:
    """The Gram matrix ``a @ a.T`` of the rows of ``a`` (or ``a @ b.T``), without BLAS ``syrk``.

    For ``a.T @ a`` (the Gram matrix of the columns) pass ``a.T``. The
    transposed operand is copied into its own buffer, so NumPy sees two
    unrelated operands and calls ``gemm``. Without ``b`` the result is built by
    row blocks of the lower triangle, ``G[i:j, :j] = a[i:j] @ a[:j].T``, and
    mirrored, so it costs about half a full ``gemm``, is exactly symmetric (as
    ``syrk``'s result is), and equals ``a @ a.T`` up to rounding. With ``b``
    (typically a view of the same rows, for a block of a larger Gram matrix:
    ``gram(a[i:j], a[i:])``) it is one ``gemm``, ``a @ b.T`` up to rounding.

    Parameters
    ----------
    a : array_like of shape (n, k)
        A real matrix. Its dtype is kept (float32 in, float32 out).
    b : array_like of shape (m, k), optional
        The rows to take the products with; ``a`` itself when omitted.

    Returns
    -------
    ndarray of shape (n, n), or (n, m) with ``b``
        ``a @ a.T``, or ``a @ b.T``.

    Raises
    ------
    ValueError
        If ``a`` or ``b`` is not 2-D, or their rows differ in length.

    Examples
    --------
    >>> a = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> gram(a)
    array([[ 5., 11.],
           [11., 25.]])
    >>> gram(a.T)  # the columns' Gram matrix, a.T @ a
    array([[10., 14.],
           [14., 20.]])
    >>> gram(a[:1], a)  # the first row of gram(a)
    array([[ 5., 11.]])
    """
    a = _matrix(a, "a")
    if b is not None:
        b = _matrix(b, "b")
        if b.shape[1] != a.shape[1]:
            raise ValueError(f"gram(a, b) needs rows of one length; got a of shape {a.shape} and b of shape {b.shape}")
        return a @ np.array(b.T, order="C", copy=True)  # a buffer of its own: gemm, never syrk
    n = a.shape[0]
    at = np.array(a.T, order="C", copy=True)  # a buffer of its own: never a @ a.T to NumPy
    out = np.empty((n, n), dtype=np.result_type(a, at))
    for lo in range(0, n, _BLOCK_ROWS):
        hi = min(lo + _BLOCK_ROWS, n)
        out[lo:hi, :hi] = a[lo:hi] @ at[:, :hi]
        out[:lo, lo:hi] = out[lo:hi, :lo].T
        block = out[lo:hi, lo:hi]
        upper = np.triu_indices(hi - lo, 1)
        block[upper] = block.T[upper]
    return out


def weighted_gram(a, weights) -> np.ndarray:
    """The weighted Gram matrix of the columns of ``a``, ``a.T @ diag(weights) @ a``, without ``syrk``.

    The weighted rows ``weights[:, None] * a`` are a buffer of their own, so the
    product is one ``gemm``; rows of weight 0 are left out first. Inside
    :func:`one_blas_thread` (the ranker's bootstrap) it is BLAS ``syrk`` on
    ``sqrt(weights) * a`` instead: half the flops, and safe with one thread.

    Parameters
    ----------
    a : array_like of shape (n, k)
    weights : array_like of shape (n,)
        Non-negative weights (not checked here; the caller validates them).

    Returns
    -------
    ndarray of shape (k, k)

    Examples
    --------
    >>> weighted_gram(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([2.0, 0.0]))
    array([[2., 4.],
           [4., 8.]])
    """
    a = _matrix(a, "a")
    weights = np.asarray(weights)
    if weights.shape != (a.shape[0],):
        raise ValueError(f"weighted_gram needs one weight per row of a {a.shape}; got weights of shape {weights.shape}")
    keep = weights != 0
    owned = not keep.all()
    if owned:
        a, weights = a[keep], weights[keep]  # a copy of its own: scaled in place below
    if _ONE_THREAD_DEPTH > 0 and a.dtype == np.float64 and (weights >= 0).all():
        rooted = np.multiply(a, np.sqrt(weights)[:, None], out=a if owned else None)
        # NumPy sends rooted.T @ rooted to syrk (one BLAS thread: safe, half the flops) and, unlike
        # SciPy's f2py BLAS wrappers, releases the GIL: the bootstrap's threads then run side by side.
        return rooted.T @ rooted
    return (a * weights[:, None]).T @ a


def binary_exponent(values) -> int:
    """The exponent ``e`` with ``max|values|`` in ``[2^(e-1), 2^e)``; 0 when every value is 0.

    Scaling by ``2^-e`` (``np.ldexp(x, -e)``) is exact in float64 and brings the
    largest magnitude into ``[0.5, 1)``: the scores that are invariant to
    ``x -> c x`` (or rescale a parameter with it) use it to keep their products
    clear of overflow and underflow over the whole float64 range.

    Examples
    --------
    >>> binary_exponent([0.5, -3.0]), binary_exponent(np.zeros(3)), binary_exponent(1e300)
    (2, 0, 997)
    """
    return int(np.frexp(np.max(np.abs(values), initial=0.0))[1])


def _matrix(values, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"gram needs 2-D matrices (n, k); got {name} of shape {values.shape}")
    return values
