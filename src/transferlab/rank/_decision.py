"""From score columns and their bootstrap to a decision: ranks, intervals, P(best), agreement, a recommendation.

Pure array code (NumPy, SciPy): the ranker (:func:`~transferlab.rank.rank`)
hands over the values; nothing here runs a model or reads a file.

Why a rule and not a table: rankings of the same models flip under small
changes of the setup (Agostinelli et al., "How stable are transferability
metrics evaluations?", ECCV 2022), and simple baselines on frozen features often
beat published scores (Renggli et al., "Which model to transfer? Finding the
needle in the growing haystack", CVPR 2022). So a model is recommended only when
the scores agree on it *and* the bootstrap over the target samples separates it
from the next; otherwise the decision says which models cannot be told apart.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

#: Two-sided level of the bootstrap intervals.
LEVEL = 0.95
#: A model is recommended when its bootstrap probability of being first under the
#: primary score is more than this, and it is first (alone) under most scores.
DECIDE_P_BEST = 0.5


def ranks(values) -> np.ndarray:
    """Rank of each value, 1 = highest; ties share their mean rank; NaN (no value) stays NaN.

    Examples
    --------
    >>> ranks([0.2, 0.9, np.nan, 0.9]).tolist()
    [3.0, 1.5, nan, 1.5]
    """
    v = np.asarray(values, dtype=float)
    out = np.full(v.shape, np.nan)
    ok = ~np.isnan(v)
    if ok.any():
        out[ok] = stats.rankdata(-v[ok], method="average")
    return out


def intervals(boot: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of each model's bootstrap values.

    Parameters
    ----------
    boot : ndarray of shape (n_resamples, n_models)
        One row per resample (NaN where a model has no value).
    level : float, default 0.95

    Returns
    -------
    low, high : ndarray of shape (n_models,)
        The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of each column.
    """
    tail = 100.0 * (1.0 - level) / 2.0
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a model without values: NaN interval
        low, high = np.nanpercentile(boot, [tail, 100.0 - tail], axis=0) if boot.size else (np.nan, np.nan)
    return np.asarray(low, dtype=float), np.asarray(high, dtype=float)


def p_best(boot: np.ndarray) -> np.ndarray:
    """Bootstrap probability that each model is ranked first; a tie for first splits the resample.

    .. math:: P_m = \\frac{1}{B} \\sum_b \\frac{[v_{bm} = \\max_k v_{bk}]}{\\#\\{k : v_{bk} = \\max_k v_{bk}\\}}

    Models without a value (NaN) never come first. The probabilities sum to 1 over
    the models (0 everywhere when no resample has any value).

    Examples
    --------
    >>> p_best(np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])).tolist()
    [0.5, 0.5]
    """
    boot = np.asarray(boot, dtype=float)
    if boot.size == 0:
        return np.zeros(boot.shape[1] if boot.ndim == 2 else 0)
    filled = np.where(np.isnan(boot), -np.inf, boot)
    top = filled.max(axis=1, keepdims=True)
    first = (filled == top) & np.isfinite(top)
    counts = first.sum(axis=1, keepdims=True)
    share = np.divide(first, counts, out=np.zeros(first.shape), where=counts > 0)
    return share.sum(axis=0) / boot.shape[0]


def within_noise(boot: np.ndarray, reference: int, level: float = LEVEL) -> np.ndarray:
    """Which models cannot be told apart from model ``reference`` under a paired bootstrap.

    Model ``m`` is within noise of ``r`` when the paired difference
    ``v_r - v_m`` has a ``level`` interval that reaches 0, i.e. when
    ``v_m >= v_r`` in at least a fraction ``(1 - level) / 2`` of the resamples.
    The reference itself is ``False``; a model without values is ``False``.

    Examples
    --------
    >>> boot = np.array([[3.0, 3.0, 0.0], [2.0, 2.0, 1.0]])
    >>> within_noise(boot, 0).tolist()
    [False, True, False]
    """
    boot = np.asarray(boot, dtype=float)
    out = np.zeros(boot.shape[1], dtype=bool)
    if boot.shape[0] == 0:
        return out
    ref = boot[:, reference]
    for m in range(boot.shape[1]):
        if m == reference or np.isnan(boot[:, m]).all():
            continue
        both = ~np.isnan(ref) & ~np.isnan(boot[:, m])
        if both.any():
            out[m] = np.mean(boot[both, m] >= ref[both]) >= (1.0 - level) / 2.0
    return out


def kendall_matrix(columns: Mapping[str, np.ndarray]) -> tuple[list[str], list[list[float | None]]]:
    """Kendall's tau-b between the rankings of every pair of columns.

    Each pair is compared on the models that have a value under both; a pair
    with fewer than two such models, or a constant column, has no tau (``None``).

    Returns
    -------
    names : list of str
    tau : list of list of float or None
        Symmetric, 1 on the diagonal where the column ranks at least two models.
    """
    names = list(columns)
    tau: list[list[float | None]] = [[None] * len(names) for _ in names]
    for i, a in enumerate(names):
        for j in range(i, len(names)):
            x, y = np.asarray(columns[a], float), np.asarray(columns[names[j]], float)
            ok = ~np.isnan(x) & ~np.isnan(y)
            value = None
            if ok.sum() >= 2 and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) > 0:
                value = float(stats.kendalltau(x[ok], y[ok]).statistic)
            tau[i][j] = tau[j][i] = value
    return names, tau


def consensus(rank_columns: Sequence[np.ndarray]) -> np.ndarray:
    """Mean rank of each model over the given rank columns, ignoring missing ranks (NaN if none)."""
    if not rank_columns:
        raise ValueError("consensus needs at least one rank column")
    stacked = np.vstack([np.asarray(r, dtype=float) for r in rank_columns])
    with warnings.catch_warnings():  # a model without any rank: NaN, without "mean of empty slice"
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(stacked, axis=0)


RULE = (
    "The candidate with the best consensus rank (mean rank over the transferability scores; "
    "baselines and priors are shown, not averaged) is recommended when it is first under most "
    f"of those scores and its bootstrap probability of being first under the primary score (the "
    f"first score asked) is at least {DECIDE_P_BEST:g}. Models whose paired bootstrap difference "
    f"from it reaches 0 ({LEVEL:.0%} interval) are within noise. Otherwise the top models cannot "
    "be told apart: fine-tune them all. Rationale: rankings flip under small changes of the "
    "setup (Agostinelli et al., ECCV 2022), so one score's order is not evidence unless the "
    "scores agree and the resampling separates the models."
)


def recommend(
    models: Sequence[str],
    evidence: Mapping[str, np.ndarray],
    consensus_rank: np.ndarray,
    *,
    primary: str | None,
    primary_p_best: np.ndarray | None,
    primary_within_noise: np.ndarray | None,
    baselines: Mapping[str, np.ndarray] | None = None,
) -> dict:
    """Apply :data:`RULE`; return ``text``, ``model`` (or None), ``within_noise``, ``decided``, ``rule``.

    Parameters
    ----------
    models : sequence of str
    evidence : mapping of str to ndarray (n_models,)
        The rank columns of the transferability scores (1 = best, NaN = no value).
    consensus_rank : ndarray of shape (n_models,)
    primary : str or None
        The score whose bootstrap decides; None when nothing was bootstrapped.
    primary_p_best, primary_within_noise : ndarray of shape (n_models,) or None
        That score's P(best) and within-noise marks relative to the consensus top
        (see :func:`within_noise`).
    baselines : mapping of str to ndarray (n_models,), optional
        Rank columns of the baselines; one that puts another model first is named.
    """
    finite = np.where(np.isnan(consensus_rank), np.inf, consensus_rank)
    if not len(models) or not np.isfinite(finite).any():
        return {"text": "No recommendation: no score has a value for any model.", "model": None,
                "within_noise": [], "decided": False, "rule": RULE}
    top = int(np.argmin(finite))
    name = models[top]
    firsts = sum(1 for r in evidence.values() if r[top] == 1.0)  # first alone (a tie shares rank 1.5, ...)
    counted = sum(1 for r in evidence.values() if not np.isnan(r).all())
    noise = [models[i] for i in np.flatnonzero(primary_within_noise)] if primary_within_noise is not None else []
    p = None if primary_p_best is None else float(primary_p_best[top])
    details = [f"first under {firsts} of {counted} score{'s' if counted != 1 else ''}"]
    if p is not None:
        details.append(f"P(best) {p:.2f} under {primary}")
    decided = len(models) == 1 or (2 * firsts > counted and (p is None or p > DECIDE_P_BEST))
    if decided:
        text = f"Recommended: {name} ({'; '.join(details)})."
        if noise:
            text += f" {_join(noise)} {'is' if len(noise) == 1 else 'are'} within noise."
    else:
        tied = [name, *noise] if noise else [name, *_runner_up(models, finite, top)]
        text = (f"Cannot tell apart: {_join(tied)} ({name}: {'; '.join(details)}). "
                f"Fine-tune these {len(tied)} and keep the best (transferlab select --top-k {len(tied)}).")
    for baseline, r in (baselines or {}).items():
        if not np.isnan(r).all() and r[top] != np.nanmin(r):
            text += f" The {baseline} baseline prefers {models[int(np.nanargmin(r))]}."
    return {"text": text, "model": name if decided else None, "within_noise": noise, "decided": bool(decided),
            "rule": RULE}


def _runner_up(models, finite, top) -> list[str]:
    order = [i for i in np.argsort(finite, kind="stable") if i != top and math.isfinite(finite[i])]
    return [models[order[0]]] if order else []


def _join(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
