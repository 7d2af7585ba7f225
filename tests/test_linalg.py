"""Tests for transferlab._linalg.gram: the product of a matrix with its transpose, without BLAS syrk."""

import contextlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from transferlab import _linalg
from transferlab._linalg import gram, one_blas_thread, weighted_gram


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (5, 3), (3, 5), (40, 9)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_equals_the_plain_product(shape, dtype):
    a = np.random.default_rng(sum(shape)).normal(size=shape).astype(dtype)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    g = gram(a)
    assert g.shape == (shape[0], shape[0]) and g.dtype == dtype
    np.testing.assert_allclose(g, np.dot(a, a.T.copy()), rtol=rtol, atol=rtol * shape[1])
    h = gram(a.T)
    assert h.shape == (shape[1], shape[1]) and h.dtype == dtype
    np.testing.assert_allclose(h, np.dot(a.T.copy(), a), rtol=rtol, atol=rtol * shape[0])


def test_blocks_cover_the_whole_matrix_and_are_exactly_symmetric(monkeypatch):
    # Blocks of 4 rows over 11 rows (4 + 4 + 3): every entry is written, the result is the plain
    # product, and it is symmetric bit for bit, as syrk's result is.
    monkeypatch.setattr(_linalg, "_BLOCK_ROWS", 4)
    a = np.random.default_rng(0).normal(size=(11, 6))
    g = gram(a)
    np.testing.assert_allclose(g, np.dot(a, a.T.copy()), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(g, g.T)


def test_integer_entries_are_exact_and_the_input_is_left_alone():
    a = np.arange(12.0).reshape(3, 4)
    before = a.copy()
    # rows (0,1,2,3), (4,5,6,7), (8,9,10,11): dot products worked by hand
    np.testing.assert_array_equal(gram(a), [[14, 38, 62], [38, 126, 214], [62, 214, 366]])
    np.testing.assert_array_equal(a, before)


def test_non_contiguous_views():
    a = np.random.default_rng(1).normal(size=(30, 20))
    view = a[::2, 1::3]
    np.testing.assert_allclose(gram(view), view @ view.T.copy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", [np.ones(3), np.ones((2, 2, 2)), 5.0])
def test_refuses_what_is_not_a_matrix(bad):
    with pytest.raises(ValueError, match=r"gram needs 2-D matrices \(n, k\); got a of shape"):
        gram(bad)
    with pytest.raises(ValueError, match=r"gram needs 2-D matrices \(n, k\); got b of shape"):
        gram(np.ones((2, 2)), bad)


def test_two_operands_give_the_product_with_the_second_transposed():
    # A block of a larger Gram matrix, as PARC takes it: rows 3..5 against rows 3.. of the same array.
    a = np.random.default_rng(2).normal(size=(9, 4))
    np.testing.assert_allclose(gram(a[3:6], a[3:]), gram(a)[3:6, 3:], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(gram(np.array([[1.0, 2.0]]), np.array([[3.0, 4.0], [5.0, 6.0]])), [[11.0, 17.0]])
    with pytest.raises(ValueError, match=r"rows of one length; got a of shape \(2, 3\) and b of shape \(2, 2\)"):
        gram(np.ones((2, 3)), np.ones((2, 2)))


def test_large_product_with_two_openblas_threads_does_not_crash():
    # OpenBLAS 0.3.31's syrk crashes (SIGSEGV) on a 20000 x 256 a @ a.T with two threads; the
    # helper uses gemm only. A subprocess, so a crash fails this test instead of the run. The
    # 20000 x 20000 result takes 3.2 GB and a few seconds; entries are checked on a sample.
    code = textwrap.dedent(
        """
        import numpy as np
        from transferlab._linalg import gram
        a = np.random.default_rng(0).normal(size=(20000, 256))
        g = gram(a)
        rows = np.random.default_rng(1).integers(0, 20000, 50)
        assert g.shape == (20000, 20000)
        np.testing.assert_allclose(g[rows], a[rows] @ a.T.copy(), rtol=1e-12, atol=1e-9)
        np.testing.assert_array_equal(g[rows][:, rows], g[rows][:, rows].T)
        print("ok")
        """
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("one_thread", [False, True])
def test_weighted_gram_drops_zero_weights_and_leaves_the_input_alone(one_thread):
    # Integer weights: the Gram matrix of the rows repeated that many times (syrk inside one_blas_thread).
    rng = np.random.default_rng(3)
    a = rng.normal(size=(40, 5))
    weights = rng.integers(0, 3, size=40).astype(float)
    before = a.copy()
    with one_blas_thread() if one_thread else contextlib.nullcontext():
        got = weighted_gram(a, weights)
    repeated = np.repeat(a, weights.astype(int), axis=0)
    np.testing.assert_allclose(got, repeated.T @ repeated, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(a, before)
