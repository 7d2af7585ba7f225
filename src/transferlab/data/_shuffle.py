"""Block-shuffled inputs (Neyshabur, Sedghi & Zhang 2020).

An image of side ``s`` is cut into ``(s / b)^2`` square blocks of side ``b``,
numbered in row-major order, and the blocks are rearranged by one fixed random
permutation. Small blocks destroy the visual features while keeping low-level
statistics (pixel histogram, local correlations within a block), which is how
"What is being transferred in transfer learning?" (NeurIPS 2020) separates
feature reuse from the reuse of low-level statistics. Block sizes for 28x28
images are the divisors of 28: 1, 2, 4, 7, 14, 28.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from transferlab._validation import check_scalar, check_seed
from transferlab.data._ops import _check_permutation, _check_task
from transferlab.data._task import Task

__all__ = ["block_permutation", "shuffle_blocks", "unshuffle_blocks", "block_shuffle"]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _check_block_size(side: int, block_size: Any) -> int:
    block_size = check_scalar(block_size, "block_size", numbers.Integral, min_val=0, include_boundaries="right")
    if side % block_size:
        raise ValueError(
            f"block_size must divide the image side {side}; got {block_size}. "
            f"Valid block sizes: {_divisors(side)}"
        )
    return block_size


def _check_block_permutation(permutation: Any, n_blocks: int, block_size: int, side: int) -> np.ndarray:
    meaning = f"the {n_blocks} blocks of side {block_size} in a {side}x{side} image"
    return _check_permutation(permutation, n_blocks, "permutation", meaning)


def _as_nchw(images: Any) -> tuple[np.ndarray, bool]:
    arr = np.asarray(images)
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"images must be (n_samples, height, width) or (n_samples, channels, height, width); "
            f"got shape {arr.shape}"
        )
    if arr.shape[-1] != arr.shape[-2]:
        raise ValueError(
            f"images must be square (height == width); got height {arr.shape[-2]} and width {arr.shape[-1]}"
        )
    squeeze = arr.ndim == 3
    return (arr[:, None] if squeeze else arr), squeeze


def _permute_blocks(images: np.ndarray, block_size: int, perm: np.ndarray) -> np.ndarray:
    """Output block ``j`` is input block ``perm[j]``; ``images`` is (N, C, s, s), clean."""
    n, c, side, _ = images.shape
    g = side // block_size
    # (N, C, s, s) -> (N, C, g, b, g, b) -> (N, C, g, g, b, b) -> (N, C, g*g, b, b):
    # axis 2 is the block index in row-major order (block row, block column).
    blocks = images.reshape(n, c, g, block_size, g, block_size).transpose(0, 1, 2, 4, 3, 5)
    blocks = blocks.reshape(n, c, g * g, block_size, block_size)[:, :, perm]  # fancy indexing copies
    return blocks.reshape(n, c, g, g, block_size, block_size).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, side, side)


def block_permutation(side: int, block_size: int, *, seed: int = 0) -> np.ndarray:
    """One fixed random permutation of the blocks of a ``side x side`` image.

    Parameters
    ----------
    side : int >= 1
        Image height (= width).
    block_size : int
        Block side; must divide ``side``.
    seed : int >= 0
        ``numpy.random.default_rng(seed).permutation``; same seed, same permutation.

    Returns
    -------
    ndarray of int64, shape ((side // block_size) ** 2,)
        A permutation of the block indices (row-major numbering).

    Raises
    ------
    ValueError
        ``block_size`` does not divide ``side`` (the message lists the valid divisors).

    Examples
    --------
    >>> block_permutation(28, 28).tolist()
    [0]
    >>> sorted(block_permutation(28, 14, seed=3).tolist())
    [0, 1, 2, 3]
    """
    side = check_scalar(side, "side", numbers.Integral, min_val=0, include_boundaries="right")
    block_size = _check_block_size(side, block_size)
    seed = check_seed(seed)
    n_blocks = (int(side) // block_size) ** 2
    return np.random.default_rng(seed).permutation(n_blocks).astype(np.int64)


def shuffle_blocks(images: np.ndarray, block_size: int, permutation: np.ndarray) -> np.ndarray:
    """Rearrange the blocks of every image: block ``permutation[j]`` goes to position ``j``.

    With ``g = side / block_size`` and blocks numbered row-major,
    ``out[..., (j // g) * b : (j // g + 1) * b, (j % g) * b : (j % g + 1) * b]``
    equals the input block ``permutation[j]``, for every image and every channel
    (a block moves with all its channels). Done with reshape/transpose and one
    gather, no loop over blocks.

    Parameters
    ----------
    images : ndarray, shape (N, C, side, side) or (N, side, side)
        Square images, any dtype. Not modified.
    block_size : int
        Block side; must divide ``side``.
    permutation : ndarray of int, shape (g * g,)
        A permutation of ``0..g*g-1``, e.g. from :func:`block_permutation`.

    Returns
    -------
    ndarray, same shape and dtype as ``images``
        A new array.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16).reshape(1, 4, 4)
    >>> shuffle_blocks(x, 2, np.array([3, 2, 1, 0]))[0].tolist()
    [[10, 11, 8, 9], [14, 15, 12, 13], [2, 3, 0, 1], [6, 7, 4, 5]]
    """
    arr, squeeze = _as_nchw(images)
    side = arr.shape[-1]
    block_size = _check_block_size(side, block_size)
    perm = _check_block_permutation(permutation, (side // block_size) ** 2, block_size, side)
    out = _permute_blocks(arr, block_size, perm)
    return out[:, 0] if squeeze else out


def unshuffle_blocks(images: np.ndarray, block_size: int, permutation: np.ndarray) -> np.ndarray:
    """Invert :func:`shuffle_blocks`: apply the inverse permutation ``argsort(permutation)``.

    Parameters
    ----------
    images : ndarray, shape (N, C, side, side) or (N, side, side)
        Images shuffled with ``permutation``.
    block_size : int
        Block side used to shuffle.
    permutation : ndarray of int, shape (g * g,)
        The permutation used to shuffle.

    Returns
    -------
    ndarray, same shape and dtype as ``images``
        ``unshuffle_blocks(shuffle_blocks(x, b, p), b, p) == x``.
    """
    arr, squeeze = _as_nchw(images)
    side = arr.shape[-1]
    block_size = _check_block_size(side, block_size)
    perm = _check_block_permutation(permutation, (side // block_size) ** 2, block_size, side)
    out = _permute_blocks(arr, block_size, np.argsort(perm))
    return out[:, 0] if squeeze else out


def block_shuffle(task: Task, block_size: int, *, seed: int = 0) -> Task:
    """Block-shuffle every image of a task with one permutation (train and test alike).

    The permutation is ``block_permutation(side, block_size, seed=seed)``; the
    same one is applied to every image of both splits, so the shuffled task is
    as learnable as the original for a model without spatial priors
    (Neyshabur, Sedghi & Zhang, "What is being transferred in transfer
    learning?", NeurIPS 2020, Section 3).

    Parameters
    ----------
    task : Task
        Task with square images.
    block_size : int
        Block side; must divide the image side. ``block_size == side`` is the
        identity; ``block_size == 1`` permutes pixels.
    seed : int >= 0
        Seed of the permutation.

    Returns
    -------
    Task
        Same labels, shuffled images; the recipe records ``block_size`` and ``seed``.
    """
    task = _check_task(task)
    _, height, width = task.image_shape
    if height != width:
        raise ValueError(f"task images must be square to block-shuffle; got height {height} and width {width}")
    perm = block_permutation(height, block_size, seed=seed)
    block_size, seed = int(block_size), int(seed)
    op = {"op": "block_shuffle", "block_size": block_size, "seed": seed}
    return task.derive(
        f"{task.name}/shuffle{block_size}",
        op,
        x_train=_permute_blocks(task.x_train, block_size, perm),
        x_test=_permute_blocks(task.x_test, block_size, perm),
    )
