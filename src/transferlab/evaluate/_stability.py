"""How stable a benchmark's verdict on the scores is: reduced pools and changed setups.

Pure NumPy/SciPy. A benchmark judges each transferability score by its **mean
weighted tau**: the weighted Kendall tau (:func:`~transferlab.evaluate.weighted_kendall`)
between the score and the fine-tuned accuracies of the zoo on each target,
averaged over the targets. Agostinelli, Pándy, Uijlings, Mensink & Ferrari,
"How stable are transferability metrics evaluations?" (ECCV 2022,
arXiv:2204.01403) showed that small changes of the setup (the pool of
candidate models, the fine-tuning hyper-parameters, the targets) flip which
score wins; Singh et al. saw rankings collapse once the strongest models leave
the pool. This module re-evaluates cached results under such changes:

- :func:`mean_weighted_tau`: the verdict on one pool (a subset of the members);
- :func:`leave_out_stability`: every pool without one member, or without one
  family of members (one architecture, one kind of pre-training);
- :func:`pool_size_curve`: many random sub-pools of each size;
- :func:`setup_stability`: the setup-stability score of Agostinelli et al.,
  the mean Kendall tau between the rankings of the scores in different setups;
- :func:`best_scores` and :func:`top_k_frequency`: which scores are among the
  ``k`` best, and how often, across the variations.

Inputs are arrays of shape ``(n_targets, n_models)``: row ``t`` holds the
ground-truth accuracies (or one score's values) of every member on target ``t``,
the members in the same order in every array.

Undefined values
----------------
The weighted tau of a target is undefined when the accuracies or the score
values of the pool are constant on it (a constant score cannot rank, a constant
truth cannot be ranked). Such a target is left out of that score's mean; a
score undefined on every target has mean ``None`` (never NaN), and ``None`` is
never among the best scores.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from transferlab._validation import check_scalar


# --------------------------------------------------------------------------- validation


def _check_table(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_targets, n_models); got shape {arr.shape}")
    arr = np.array(arr, dtype=np.float64, copy=True)
    if arr.shape[0] < 1 or arr.shape[1] < 2:
        raise ValueError(f"{name} needs at least 1 target and 2 models; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        t, m = (int(i[0]) for i in np.nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} must be finite; got {arr[t, m].item()!r} at target {t}, model {m}")
    return arr


def _check_inputs(accuracies, scores) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    a = _check_table(accuracies, "accuracies")
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores must be a non-empty mapping of score name to an (n_targets, n_models) array")
    out = {}
    for name, values in scores.items():
        s = _check_table(values, f"scores[{name!r}]")
        if s.shape != a.shape:
            raise ValueError(f"scores[{name!r}] has shape {s.shape}; the accuracies have {a.shape}")
        out[str(name)] = s
    return a, out


def _check_int(value, name: str, low: int, high: int | None = None) -> int:
    return check_scalar(value, name, numbers.Integral, min_val=low, max_val=high)


def _check_members(members, n: int) -> np.ndarray:
    idx = np.asarray(members)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise ValueError(f"members must be a 1-D sequence of integer indices; got {members!r}")
    idx = idx.astype(np.intp)
    if idx.size < 2:
        raise ValueError(f"a pool needs at least 2 members to be ranked; got {idx.size}")
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"members must be indices in 0..{n - 1}; got {idx.tolist()}")
    if np.unique(idx).size != idx.size:
        raise ValueError(f"members must not repeat an index; got {idx.tolist()}")
    return idx


def _check_k(k) -> int:
    return _check_int(k, "k (how many best scores)", 1)


# --------------------------------------------------------------------------- workers (clean input)


def _tau(s: np.ndarray, a: np.ndarray) -> float | None:
    """Weighted tau of one target, None when either side is constant."""
    if np.all(s == s[0]) or np.all(a == a[0]):
        return None
    return float(stats.weightedtau(s, a).statistic)


def _means(a: np.ndarray, scores: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, float | None]:
    out = {}
    for name, s in scores.items():
        taus = [t for t in (_tau(s[i, idx], a[i, idx]) for i in range(a.shape[0])) if t is not None]
        out[name] = float(np.mean(taus)) if taus else None
    return out


def _best(means: Mapping[str, float | None], k: int) -> set[str]:
    defined = {n: v for n, v in means.items() if v is not None}
    return {n for n, v in defined.items() if sum(w > v for w in defined.values()) < k}


# --------------------------------------------------------------------------- public


def mean_weighted_tau(accuracies, scores, members=None) -> dict[str, float | None]:
    """Each score's weighted tau with the accuracies, averaged over the targets, on one pool.

    .. math::

        \\bar\\tau_s(P) = \\frac{1}{|T_s|} \\sum_{t \\in T_s} \\tau_w\\big(s_{t,P}, a_{t,P}\\big),

    with :math:`\\tau_w` the weighted Kendall tau of ``scipy.stats.weightedtau``
    (hyperbolic weights, the convention of :func:`~transferlab.evaluate.weighted_kendall`),
    :math:`P` the pool and :math:`T_s` the targets where it is defined (neither
    side constant on the pool).

    Parameters
    ----------
    accuracies : array-like of shape (n_targets, n_models)
        Ground-truth accuracies after fine-tuning.
    scores : mapping of str to array-like of shape (n_targets, n_models)
        Every score's values (higher = predicted better).
    members : sequence of int, optional
        The pool: distinct member indices, at least 2. Default: every member.

    Returns
    -------
    dict of str to float or None
        By score, in the order of ``scores``; ``None`` when undefined on every target.

    Raises
    ------
    ValueError
        If a table is not a finite 2-D array with at least 2 models, the shapes
        differ, or ``members`` is not a set of at least 2 valid indices.

    Examples
    --------
    >>> acc = [[1.0, 2.0, 3.0]]
    >>> mean_weighted_tau(acc, {"good": [[1.0, 2.0, 3.0]], "flat": [[1.0, 1.0, 1.0]]})
    {'good': 1.0, 'flat': None}
    """
    a, s = _check_inputs(accuracies, scores)
    idx = np.arange(a.shape[1]) if members is None else _check_members(members, a.shape[1])
    return _means(a, s, idx)


def best_scores(means: Mapping[str, float | None], k: int = 3) -> set[str]:
    """The scores among the ``k`` best: those with fewer than ``k`` scores strictly ahead.

    Ties are kept together (two scores tied for third are both among the three
    best), so the set can hold more than ``k`` scores; a score whose mean is
    ``None`` is never in it.

    Raises
    ------
    ValueError
        If ``k`` is not a positive integer or a mean is not a finite number or None.

    Examples
    --------
    >>> sorted(best_scores({"a": 0.5, "b": 0.2, "c": 0.2, "d": -0.1, "e": None}, k=2))
    ['a', 'b', 'c']
    """
    k = _check_k(k)
    for name, value in means.items():
        if value is not None and not (isinstance(value, numbers.Real) and math.isfinite(value)):
            raise ValueError(f"the mean of score {name!r} must be a finite number or None; got {value!r}")
    return _best(means, k)


def top_k_frequency(variations: Sequence[Mapping[str, float | None]], k: int = 3) -> dict[str, float]:
    """For every score, the fraction of the variations in which it is among the ``k`` best.

    .. math::

        f_s = \\frac{1}{V} \\sum_{v=1}^{V} \\mathbb{1}\\big[s \\in \\text{best}_k(v)\\big],

    with :func:`best_scores` deciding membership (ties kept). Every score seen
    in any variation gets an entry.

    Raises
    ------
    ValueError
        If ``variations`` is empty or ``k`` is not a positive integer.

    Examples
    --------
    >>> top_k_frequency([{"a": 0.9, "b": 0.1}, {"a": 0.1, "b": 0.9}], k=1)
    {'a': 0.5, 'b': 0.5}
    """
    k = _check_k(k)
    if len(variations) == 0:
        raise ValueError("top_k_frequency needs at least one variation; got none")
    names = list(dict.fromkeys(n for v in variations for n in v))
    counts = dict.fromkeys(names, 0)
    for means in variations:
        for name in best_scores(means, k):
            counts[name] += 1
    return {n: counts[n] / len(variations) for n in names}


def leave_out_stability(accuracies, scores, labels, *, k: int = 3, min_size: int = 3) -> dict:
    """Every pool without the members of one label, and how often each score stays among the best.

    For each distinct label ``g`` (in order of first appearance), the pool is
    every member whose label is not ``g`` and each score gets its
    :func:`mean_weighted_tau` on it. With the member names as labels this is
    leave-one-member-out; with their architectures or pre-training kinds,
    leave-one-family-out. A pool of fewer than ``min_size`` members is skipped
    (and listed), as is a label held by every member.

    Parameters
    ----------
    accuracies, scores
        As in :func:`mean_weighted_tau`.
    labels : sequence of str, length n_models
        The label (name, family) of each member.
    k : int, default 3
        How many best scores :func:`top_k_frequency` counts.
    min_size : int, default 3
        The smallest pool evaluated (at least 2).

    Returns
    -------
    dict
        ``variations``: a list of ``{"left_out", "n_models", "means"}``;
        ``skipped``: the labels whose pool was too small;
        ``top_k_frequency``: by score, over the variations (empty when every
        label was skipped).

    Raises
    ------
    ValueError
        If the tables are invalid, ``labels`` does not have one entry per
        model, or ``k`` / ``min_size`` are out of range.

    Examples
    --------
    >>> acc = [[1.0, 2.0, 3.0, 4.0]]
    >>> out = leave_out_stability(acc, {"s": [[1.0, 2.0, 3.0, 4.0]]}, ["x", "x", "y", "z"], min_size=2)
    >>> [(v["left_out"], v["n_models"], v["means"]["s"]) for v in out["variations"]]
    [('x', 2, 1.0), ('y', 3, 1.0), ('z', 3, 1.0)]
    """
    a, s = _check_inputs(accuracies, scores)
    k = _check_k(k)
    min_size = _check_int(min_size, "min_size", 2)
    labels = [str(x) for x in labels]
    if len(labels) != a.shape[1]:
        raise ValueError(f"labels must hold one entry per model ({a.shape[1]}); got {len(labels)}")
    variations, skipped = [], []
    for label in dict.fromkeys(labels):
        idx = np.array([i for i, x in enumerate(labels) if x != label], dtype=np.intp)
        if idx.size < min_size:
            skipped.append(label)
            continue
        variations.append({"left_out": label, "n_models": int(idx.size), "means": _means(a, s, idx)})
    freq = top_k_frequency([v["means"] for v in variations], k) if variations else {}
    return {"variations": variations, "skipped": skipped, "top_k_frequency": freq}


def pool_size_curve(
    accuracies,
    scores,
    *,
    sizes=None,
    n_pools: int = 50,
    seed: int = 0,
    quantiles: tuple[float, float] = (0.1, 0.9),
    k: int = 3,
) -> list[dict]:
    """Each score's mean weighted tau on many random sub-pools of each size.

    For a size ``m``, the sub-pools are every ``m``-subset of the members when
    there are at most ``n_pools`` of them (exact), otherwise ``n_pools`` subsets
    drawn uniformly without replacement within a subset (independently across
    pools) by ``numpy.random.default_rng(seed)``. On each sub-pool every score
    gets its :func:`mean_weighted_tau`; the row of ``(m, score)`` holds the mean
    of these over the sub-pools where it is defined, the ``quantiles`` of them
    (``numpy.quantile``, linear interpolation) as a band, and the fraction of
    the sub-pools in which the score is among the ``k`` best (:func:`top_k_frequency`).

    Parameters
    ----------
    accuracies, scores
        As in :func:`mean_weighted_tau`.
    sizes : sequence of int, optional
        Pool sizes, each in ``2..n_models``. Default ``3..n_models`` (none when
        the zoo has fewer than 3 members).
    n_pools : int, default 50
        Sub-pools per size (at least 1).
    seed : int, default 0
        Seed of the draws.
    quantiles : (float, float), default (0.1, 0.9)
        Lower and upper quantile of the band, ``0 <= low <= high <= 1``.
    k : int, default 3

    Returns
    -------
    list of dict
        One row per size and score: ``size``, ``score``, ``n_pools`` (sub-pools
        evaluated), ``n_defined``, ``exact`` (every subset enumerated), ``mean``,
        ``low``, ``high`` (``None`` when undefined on every sub-pool) and
        ``top_k_frequency``.

    Raises
    ------
    ValueError
        If the tables are invalid or a parameter is out of range.

    Examples
    --------
    >>> rows = pool_size_curve([[1.0, 2.0, 3.0]], {"s": [[3.0, 2.0, 1.0]]}, sizes=[2])
    >>> [(r["size"], r["n_pools"], r["exact"], r["mean"]) for r in rows]
    [(2, 3, True, -1.0)]
    """
    a, s = _check_inputs(accuracies, scores)
    n = a.shape[1]
    n_pools = _check_int(n_pools, "n_pools", 1)
    seed = _check_int(seed, "seed", 0)
    k = _check_k(k)
    if sizes is None:
        sizes = list(range(3, n + 1))
    sizes = [_check_int(m, f"every pool size (zoo of {n} models)", 2, n) for m in sizes]
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes must not repeat a value; got {sizes}")
    try:
        low_q, high_q = (float(q) for q in quantiles)
    except (TypeError, ValueError):
        raise ValueError(f"quantiles must be a pair of numbers (low, high); got {quantiles!r}") from None
    if not 0.0 <= low_q <= high_q <= 1.0:
        raise ValueError(f"quantiles must satisfy 0 <= low <= high <= 1; got {quantiles!r}")
    rng = np.random.default_rng(seed)
    rows = []
    for m in sizes:
        exact = math.comb(n, m) <= n_pools
        if exact:
            pools = [np.array(c, dtype=np.intp) for c in itertools.combinations(range(n), m)]
        else:
            pools = [np.sort(rng.choice(n, size=m, replace=False)) for _ in range(n_pools)]
        per_pool = [_means(a, s, idx) for idx in pools]
        freq = top_k_frequency(per_pool, k)
        for name in s:
            values = np.array([p[name] for p in per_pool if p[name] is not None], dtype=float)
            defined = values.size > 0
            rows.append(
                {
                    "size": m,
                    "score": name,
                    "n_pools": len(pools),
                    "n_defined": int(values.size),
                    "exact": exact,
                    "mean": float(values.mean()) if defined else None,
                    "low": float(np.quantile(values, low_q)) if defined else None,
                    "high": float(np.quantile(values, high_q)) if defined else None,
                    "top_k_frequency": freq[name],
                }
            )
    return rows


def setup_stability(means_by_setup: Mapping[str, Mapping[str, float | None]], *, k: int = 3) -> dict:
    """The setup-stability score of Agostinelli et al. (ECCV 2022) and the top-k frequencies.

    Each setup (a learning rate, a sample budget, a seed, ...) ranks the scores
    by their mean weighted tau. Agostinelli et al. measure how much the
    conclusion depends on the setup by the expected Kendall tau between the
    rankings of the scores in two setups that differ in one factor; over ``S``
    setups,

    .. math::

        \\text{SS} = \\binom{S}{2}^{-1} \\sum_{i < j} \\tau\\big(\\bar\\tau_{\\cdot}(i), \\bar\\tau_{\\cdot}(j)\\big),

    with :math:`\\tau` Kendall's tau-b (``scipy.stats.kendalltau``, ties
    counted) between the mean weighted taus of the scores defined in both
    setups. 1: every setup ranks the scores alike; 0: unrelated rankings. A pair
    with fewer than 2 common scores, or with constant means in either setup, has
    no tau and is left out.

    Parameters
    ----------
    means_by_setup : mapping of str to mapping of str to float or None
        For every setup, the mean weighted tau of every score.
    k : int, default 3
        How many best scores :func:`top_k_frequency` counts.

    Returns
    -------
    dict
        ``stability`` (``None`` with fewer than 2 setups or no defined pair),
        ``pairs`` (a list of ``(setup_i, setup_j, tau or None)``), ``n_setups``
        and ``top_k_frequency`` by score.

    Raises
    ------
    ValueError
        If there is no setup, or ``k`` or a mean is invalid.

    Examples
    --------
    >>> out = setup_stability({"lr=0.1": {"a": 0.9, "b": 0.5, "c": 0.1},
    ...                        "lr=0.01": {"a": 0.8, "b": 0.2, "c": 0.3}}, k=1)
    >>> round(out["stability"], 6), out["top_k_frequency"]
    (0.333333, {'a': 1.0, 'b': 0.0, 'c': 0.0})
    """
    k = _check_k(k)
    if not isinstance(means_by_setup, Mapping) or not means_by_setup:
        raise ValueError("means_by_setup must be a non-empty mapping of setup to {score: mean weighted tau}")
    setups = {str(name): dict(means) for name, means in means_by_setup.items()}
    freq = top_k_frequency(list(setups.values()), k)  # validates every mean via best_scores
    pairs = []
    for (name_i, mi), (name_j, mj) in itertools.combinations(setups.items(), 2):
        common = [n for n in mi if n in mj and mi[n] is not None and mj[n] is not None]
        x = np.array([mi[n] for n in common], dtype=float)
        y = np.array([mj[n] for n in common], dtype=float)
        tau = None
        if len(common) >= 2 and not np.all(x == x[0]) and not np.all(y == y[0]):
            tau = float(stats.kendalltau(x, y).statistic)
        pairs.append((name_i, name_j, tau))
    defined = [t for _, _, t in pairs if t is not None]
    return {
        "stability": float(np.mean(defined)) if defined else None,
        "pairs": pairs,
        "n_setups": len(setups),
        "top_k_frequency": freq,
    }
