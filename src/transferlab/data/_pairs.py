"""Concatenated image pairs with a tunable task correlation (the correlation study).

After Mohamud & Brink, "An empirical study of task and feature correlations in
the reuse of pre-trained models". The paper does not publish its generator;
the parametrisation here is ours (DESIGN.md, "Correlation study"). Each input is
``x = [x_left | x_right]``, two images side by side. Alice's label is the class
of the left half, Bob's the class of the right half. The task correlation
``beta`` couples the two classes; the feature correlation comes from the
choice of the two source tasks (same source versus different sources).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transferlab._validation import check_int, check_scalar, check_seed
from transferlab.data._ops import _check_permutation, _check_task
from transferlab.data._task import Task

__all__ = ["PairedTasks", "concat_pairs"]


@dataclass(frozen=True)
class PairedTasks:
    """Alice's and Bob's tasks on the same concatenated images.

    Attributes
    ----------
    alice : Task
        Images ``[x_left | x_right]``; label = class of the left half.
    bob : Task
        The same images; label = class of the right half.
    beta : float
        Task correlation in ``[0, 1]``.
    bijection : tuple of int
        The class map ``c_left -> c_right`` used when the classes are coupled.
    """

    alice: Task
    bob: Task
    beta: float
    bijection: tuple[int, ...]


def _check_beta(beta: Any) -> float:
    return check_scalar(beta, "beta", numbers.Real, min_val=0, max_val=1)  # the task correlation


def _check_bijection(bijection: Any, n_classes: int) -> np.ndarray:
    if bijection is None:
        return np.arange(n_classes, dtype=np.int64)
    return _check_permutation(bijection, n_classes, "bijection", "one right class per left class")


def _check_class_coverage(task: Task, side: str) -> None:
    for split in ("train", "test"):
        counts = np.bincount(task.split(split)[1], minlength=task.n_classes)
        empty = [task.class_names[c] for c in range(task.n_classes) if counts[c] == 0]
        if empty:
            raise ValueError(
                f"{side} task {task.name!r} has no {split} samples of class(es) {empty}; every class "
                f"needs at least one sample in both splits to draw pairs"
            )


def _draw_of_class(labels: np.ndarray, classes: np.ndarray, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """For each entry of ``classes``, the index of a uniform random sample of that class."""
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=n_classes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    offsets = rng.integers(0, counts[classes])  # one uniform draw in 0..count-1 per entry
    return order[starts[classes] + offsets]


def _common_dtype(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mixed uint8/float halves: scale the uint8 half to float32 in [0, 1]."""
    if left.dtype == right.dtype:
        return left, right

    def as_unit(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)

    return as_unit(left), as_unit(right)


def _draw_split(
    left: Task, right: Task, split: str, n: int, beta: float, bijection: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_classes = left.n_classes
    x_left, y_left = left.split(split)
    x_right, y_right = right.split(split)
    c_left = rng.integers(0, n_classes, size=n)
    i_left = _draw_of_class(y_left, c_left, n_classes, rng)
    coupled = rng.random(n) < beta  # U[0, 1) < beta: never at beta = 0, always at beta = 1
    c_free = rng.integers(0, n_classes, size=n)
    c_right = np.where(coupled, bijection[c_left], c_free)
    i_right = _draw_of_class(y_right, c_right, n_classes, rng)
    halves = _common_dtype(x_left[i_left], x_right[i_right])
    return np.concatenate(halves, axis=-1), c_left, c_right


def concat_pairs(
    left: Task,
    right: Task,
    beta: float,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    bijection: Sequence[int] | None = None,
    seed: int = 0,
) -> PairedTasks:
    """Side-by-side image pairs whose left and right classes agree with probability set by ``beta``.

    For each sample of a split (train pairs from the train splits, test pairs
    from the test splits):

    1. draw the left class ``y_A`` uniformly from ``0..C-1``, then a left image
       of that class uniformly from ``left`` (a class-balanced draw);
    2. with probability ``beta`` set the right class ``y_B = bijection[y_A]``,
       otherwise draw ``y_B`` uniformly from ``0..C-1``, independently of ``y_A``;
    3. draw a right image of class ``y_B`` uniformly from ``right``;
    4. ``x = [x_left | x_right]`` along the width.

    Hence the joint law is
    ``P(y_A = a, y_B = b) = (beta * 1[b = bijection(a)] + (1 - beta) / C) / C``
    and the agreement rate is

    .. math::

        P(y_B = \\pi(y_A)) = \\beta + \\frac{1 - \\beta}{C},

    so ``beta = 0`` gives independent tasks (agreement at chance, ``1/C``) and
    ``beta = 1`` gives Bob's label as a fixed function of Alice's.

    Parameters
    ----------
    left, right : Task
        Source tasks with the same number of classes ``C`` and the same image
        height and channels (widths may differ). If one is ``uint8`` and the
        other float, the ``uint8`` half is scaled to float32 in ``[0, 1]``.
        Every class needs at least one sample in each split.
    beta : float in [0, 1]
        Task correlation.
    n_train, n_test : int >= 1 or None
        Number of pairs per split; default: the size of ``left``'s split.
    bijection : sequence of int, shape (C,), or None
        A permutation of ``0..C-1`` mapping a left class to its coupled right
        class; ``None`` is the identity.
    seed : int >= 0
        Seed of all draws. Train and test use independent streams spawned from
        ``numpy.random.SeedSequence(seed)``, so the train pairs do not depend on
        ``n_test``.

    Returns
    -------
    PairedTasks
        ``alice`` (class names of ``left``) and ``bob`` (class names of
        ``right``) share the images ``(n, C_channels, H, W_left + W_right)``.

    Raises
    ------
    ValueError
        ``beta`` outside ``[0, 1]``, different numbers of classes or image
        heights/channels, a bijection that is not a permutation, a class with
        no samples in a split, or a bad ``n_train``/``n_test``/``seed``.

    References
    ----------
    M. Mohamud and W. Brink, "An empirical study of task and feature correlations
    in the reuse of pre-trained models".

    Examples
    --------
    >>> import numpy as np
    >>> from transferlab.data._task import Task
    >>> t = Task("toy", np.zeros((4, 2, 3), np.uint8), [0, 1, 0, 1],
    ...          np.zeros((2, 2, 3), np.uint8), [0, 1], ("a", "b"), {"source": "toy"})
    >>> pairs = concat_pairs(t, t, 1.0, n_train=50)
    >>> pairs.alice.image_shape, bool((pairs.alice.y_train == pairs.bob.y_train).all())
    ((1, 2, 6), True)
    """
    left = _check_task(left, "left")
    right = _check_task(right, "right")
    beta = _check_beta(beta)
    if left.n_classes != right.n_classes:
        raise ValueError(
            f"left and right must have the same number of classes; got {left.n_classes} "
            f"({left.name!r}) and {right.n_classes} ({right.name!r}); use subset_classes or relabel"
        )
    (c_l, h_l, _), (c_r, h_r, _) = left.image_shape, right.image_shape
    if (c_l, h_l) != (c_r, h_r):
        raise ValueError(
            f"left and right must have the same image channels and height; got (channels, height) "
            f"({c_l}, {h_l}) for {left.name!r} and ({c_r}, {h_r}) for {right.name!r}"
        )
    n_classes = left.n_classes
    perm = _check_bijection(bijection, n_classes)
    sizes = {
        "train": len(left.y_train) if n_train is None else check_int(n_train, "n_train"),
        "test": len(left.y_test) if n_test is None else check_int(n_test, "n_test"),
    }
    seed = check_seed(seed)
    _check_class_coverage(left, "left")
    _check_class_coverage(right, "right")

    rng_train, rng_test = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    x_train, a_train, b_train = _draw_split(left, right, "train", sizes["train"], beta, perm, rng_train)
    x_test, a_test, b_test = _draw_split(left, right, "test", sizes["test"], beta, perm, rng_test)

    base_op = {
        "op": "concat_pairs",
        "right": right.recipe,
        "beta": beta,
        "bijection": perm.tolist(),
        "n_train": sizes["train"],
        "n_test": sizes["test"],
        "seed": seed,
    }
    stem = f"pairs({left.name}|{right.name},beta={beta:g})"
    alice = left.derive(
        f"{stem}/alice", dict(base_op, label="left"),
        x_train=x_train, y_train=a_train, x_test=x_test, y_test=a_test, class_names=left.class_names,
    )
    bob = left.derive(
        f"{stem}/bob", dict(base_op, label="right"),
        x_train=x_train, y_train=b_train, x_test=x_test, y_test=b_test, class_names=right.class_names,
    )
    return PairedTasks(alice=alice, bob=bob, beta=beta, bijection=tuple(perm.tolist()))
