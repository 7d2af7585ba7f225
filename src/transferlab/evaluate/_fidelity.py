"""Whether score gaps track accuracy gaps (fidelity), and what top-k selection loses (regret).

Two per-target measures of a ranking, next to those of
:mod:`~transferlab.evaluate._selection`. For one target task, a zoo of ``n``
models has transferability ``scores`` (higher = predicted better) and
ground-truth ``accuracies`` after fine-tuning.

Fidelity
--------
A score is *faithful* when a large score gap between two models means a large
accuracy gap: the gap, not only the order, carries information (the question of
"fidelity" in model-selection benchmarks, e.g. Agostinelli et al., "How stable
are transferability metrics evaluations?", ECCV 2022, who ask which
conclusions survive a change of setup). We measure it over the model pairs of
one target, each pair **oriented by the score** (``i`` the model the score puts
first, so the score gap :math:`s_i - s_j \\ge 0` is what the score claims):

.. math::

    F = \\operatorname{corr}\\big(\\{s_i - s_j\\},\\ \\{a_i - a_j\\}\\big)
    \\quad\\text{over the pairs } i \\ne j \\text{ with } (s_i, a_i) \\text{ ahead of } (s_j, a_j),

the Pearson correlation of the score gaps with the accuracy gaps that go with
them. A pair tied in score is oriented pessimistically (the lower accuracy
first), as every function of :mod:`~transferlab.evaluate._selection` breaks
ties. ``F = 1`` when every accuracy gap is an increasing affine function of the
score gap; ``F`` is low when the score orders models but its gaps say nothing
about how much better a model is (and negative when large claimed gaps go
with small or reversed accuracy gaps).

Why oriented pairs: over *all ordered* pairs (both ``(i, j)`` and ``(j, i)``)
the differences are symmetric around 0 and the correlation of pairwise
differences reduces exactly to the Pearson correlation of ``s`` and ``a``,
since :math:`\\sum_{i<j}(s_i-s_j)(a_i-a_j) = n\\sum_i (s_i-\\bar s)(a_i-\\bar a)`
and likewise for the squares; over unordered pairs in index order it would
depend on the arbitrary order of the zoo. Orienting by the score removes both
problems and measures something the plain Pearson correlation does not.

Regret
------
The accuracy points lost by fine-tuning only the first ``k`` models of the
score's ranking and keeping the best of them, against the best model of the
zoo:

.. math::

    R_k = \\max_m a_m - \\max_{m \\in \\text{top}_k(s)} a_m \\;\\ge 0,

0 when the top ``k`` contain a best model. Since the generic expert is in the
zoo, :math:`R_k = \\text{best gain} - \\text{gain}_k` with the top-k gain of
Deshpande et al. (2021) (:func:`~transferlab.evaluate._selection.top_k_gain`).
Ties in score are broken pessimistically.

Pure NumPy (never imports torch).
"""

from __future__ import annotations

import numpy as np

from transferlab.evaluate._ranking import _check_scores_accuracies
from transferlab.evaluate._selection import _check_k, _check_ks, _top_k_best


def _oriented_gaps(s: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Score and accuracy gaps of every pair, the pair ordered by (score desc, accuracy asc)."""
    order = np.lexsort((a, -s))  # decreasing score; among ties, increasing accuracy (pessimistic)
    s, a = s[order], a[order]
    i, j = np.triu_indices(s.shape[0], k=1)  # i before j in that order
    return s[i] - s[j], a[i] - a[j]


def _fidelity_or_none(s: np.ndarray, a: np.ndarray) -> float | None:
    ds, da = _oriented_gaps(s, a)
    if ds.shape[0] < 2 or np.all(ds == ds[0]) or np.all(da == da[0]):
        return None
    value = float(np.corrcoef(ds, da)[0, 1])
    return value if np.isfinite(value) else None


def gap_fidelity(scores, accuracies) -> float:
    """Pearson correlation of the score gaps with the accuracy gaps over score-oriented model pairs.

    For every pair of models, ordered so that the score puts ``i`` first (ties in
    score: the lower accuracy first), the score gap :math:`s_i - s_j \\ge 0` and
    the accuracy gap :math:`a_i - a_j`; the fidelity is the Pearson correlation
    of the two over the :math:`n(n-1)/2` pairs (see the module docstring for why
    the pairs are oriented: over all ordered pairs this would be the plain
    Pearson correlation of ``scores`` and ``accuracies``).

    Parameters
    ----------
    scores : array-like of shape (n_models,)
        Transferability scores (higher = predicted better).
    accuracies : array-like of shape (n_models,)
        Ground-truth accuracies after fine-tuning.

    Returns
    -------
    float
        In [-1, 1]; invariant to positive affine maps of the scores and of the accuracies.

    Raises
    ------
    ValueError
        If the inputs are not 1-D finite vectors of the same length >= 3, or the
        score gaps or the accuracy gaps are all equal (the correlation is undefined).

    Examples
    --------
    >>> round(gap_fidelity([3.0, 2.0, 1.0], [30.0, 20.0, 10.0]), 12)
    1.0
    """
    s, a = _check_scores_accuracies(scores, accuracies)
    if s.shape[0] < 3:
        raise ValueError(f"gap fidelity needs at least 3 models (2 pairs); got {s.shape[0]}")
    value = _fidelity_or_none(s, a)
    if value is None:
        raise ValueError(
            "gap fidelity is undefined: the score gaps or the accuracy gaps of the model pairs are all equal "
            "(all scores equal, or all accuracies equal)"
        )
    return value


def top_k_regret(scores, accuracies, k: int = 1) -> float:
    """Accuracy lost by keeping the best of the score's first ``k`` models instead of the best model.

    .. math::

        R_k = \\max_m a_m - \\max_{m \\in \\text{top}_k(s)} a_m,

    ties in score broken pessimistically (lower accuracy first).

    Parameters
    ----------
    scores : array-like of shape (n_models,)
        Transferability scores (higher = predicted better).
    accuracies : array-like of shape (n_models,)
        Ground-truth accuracies after fine-tuning, in any unit (the regret has it).
    k : int, default 1
        Number of models fine-tuned, in ``1..n_models``.

    Returns
    -------
    float
        ``>= 0``; 0 when the first ``k`` models hold a best one.

    Raises
    ------
    ValueError
        If the inputs are not 1-D finite vectors of the same length >= 2, or
        ``k`` is not an integer in range.

    Examples
    --------
    >>> top_k_regret([0.9, 0.5, 0.7], [70.0, 80.0, 75.0], k=2)
    5.0
    """
    s, a = _check_scores_accuracies(scores, accuracies)
    k = _check_k(k, s.shape[0])
    return float(a.max()) - _top_k_best(s, a, k)


def fidelity_metrics(scores, accuracies, *, ks=(1, 3)) -> dict[str, float | None]:
    """The fidelity and the top-k regrets of one target, as one dictionary.

    Keys, in this order: ``gap_fidelity`` (:func:`gap_fidelity`; ``None`` where
    undefined: fewer than 3 models, or constant score or accuracy gaps) and
    ``top{k}_regret`` for every ``k`` in ``ks`` (:func:`top_k_regret`).

    Parameters
    ----------
    scores : array-like of shape (n_models,)
        Transferability scores (higher = predicted better).
    accuracies : array-like of shape (n_models,)
        Ground-truth accuracies after fine-tuning.
    ks : sequence of int, default (1, 3)
        Selection sizes, distinct, each in ``1..n_models``.

    Returns
    -------
    dict of str to float or None

    Raises
    ------
    ValueError
        If the inputs are not 1-D finite vectors of the same length >= 2, or an
        entry of ``ks`` is out of range.

    Examples
    --------
    >>> m = fidelity_metrics([0.9, 0.5, 0.7], [70.0, 80.0, 75.0], ks=(1, 2))
    >>> round(m["gap_fidelity"], 12), m["top1_regret"], m["top2_regret"]
    (-1.0, 10.0, 5.0)
    """
    s, a = _check_scores_accuracies(scores, accuracies)
    ks = _check_ks(ks, s.shape[0])
    out: dict[str, float | None] = {"gap_fidelity": _fidelity_or_none(s, a) if s.shape[0] >= 3 else None}
    best = float(a.max())
    for k in ks:
        out[f"top{k}_regret"] = best - _top_k_best(s, a, k)
    return out
