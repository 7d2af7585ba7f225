"""The ranking dict the ranking figures and report read: its checks, column order and number format.

A ranking arrives as a plain JSON-ready dict (what ``transferlab.rank``'s
``Ranking.to_dict()`` returns); ``report`` sits below ``rank`` and only reads it.
Its keys:

``target`` (str)
    The target data set, e.g. ``"glyphs:greek"``.
``scores``, ``pool_scores`` (list of str)
    The per-model and the pool-level columns, in the order asked (``pool_scores``
    may be empty or absent).
``groups`` (dict str -> ``"prior" | "baseline" | "score"``)
    The group of every column (extra names are ignored).
``rows`` (list of dict)
    One per model in recommendation order, best first: ``"model"`` and the value
    of each column (``None`` where the score is not available), ``"consensus_rank"``.
``uncertainty`` (dict column -> dict of lists aligned with ``rows``)
    ``"low"``, ``"high"``, ``"p_best"``, ``"within_noise"``, ``"rank"`` for each
    bootstrapped column.
``ranks`` (dict column -> list)
    The rank of each row under each column (1 = best, ties share the mean rank,
    ``None`` where the value is ``None``).
``bootstrap`` (dict)
    ``"resamples"``, ``"seed"``, ``"level"``, ``"skipped"`` (column -> reason).
``agreement`` (dict)
    ``"scores"`` and ``"tau"``, the square matrix of Kendall tau (cells may be ``None``).
``recommendation`` (dict)
    ``"text"``, ``"model"`` (``None`` when undecided), ``"within_noise"`` (model
    names), ``"decided"``, ``"rule"``.
``seconds`` (dict step -> float)
    Timings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real

#: Display order of the groups, and their plural headings.
GROUPS = ("prior", "baseline", "score")
GROUP_TITLES = {"prior": "Priors", "baseline": "Baselines", "score": "Scores"}

#: Columns that count things (shown as 1.2K, 11.69M, 1.5B).
COUNT_COLUMNS = frozenset({"parameters"})

_REQUIRED = ("target", "scores", "rows", "groups", "recommendation")
_UNCERTAINTY_KEYS = ("low", "high", "p_best", "within_noise", "rank")


def check_ranking(d) -> None:
    """Raise a ``ValueError`` naming the first thing wrong with the ranking dict ``d``."""
    if not isinstance(d, Mapping):
        raise ValueError(f"the ranking must be a dict (Ranking.to_dict()); got {type(d).__name__}")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise ValueError(f"the ranking dict lacks the key(s) {missing}; it has {sorted(d)}")
    if not isinstance(d["target"], str):
        raise ValueError(f"ranking['target'] must be a str; got {d['target']!r}")
    rows = d["rows"]
    if not isinstance(rows, Sequence) or isinstance(rows, str) or not rows:
        raise ValueError("ranking['rows'] must be a non-empty list of dicts, one per model")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping) or not isinstance(row.get("model"), str):
            raise ValueError(f"ranking['rows'][{i}] must be a dict with a str 'model'; got {row!r}")
    names = [*_names(d, "scores"), *_names(d, "pool_scores")]
    if len(set(names)) != len(names):
        raise ValueError(f"a column is named twice in ranking['scores'] + ranking['pool_scores']: {names}")
    groups = d["groups"]
    if not isinstance(groups, Mapping):
        raise ValueError(f"ranking['groups'] must be a dict column -> group; got {groups!r}")
    for name in names:
        if groups.get(name) not in GROUPS:
            raise ValueError(
                f"ranking['groups'][{name!r}] must be one of {list(GROUPS)}; got {groups.get(name)!r}"
            )
    for name in names:
        for i, row in enumerate(rows):
            value = row.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, Real)):
                raise ValueError(f"ranking['rows'][{i}][{name!r}] must be a number or None; got {value!r}")
    _check_aligned(d.get("uncertainty") or {}, "uncertainty", names, len(rows), nested=True)
    _check_aligned(d.get("ranks") or {}, "ranks", names, len(rows), nested=False)
    _check_agreement(d.get("agreement") or {"scores": [], "tau": []})
    rec = d["recommendation"]
    if not isinstance(rec, Mapping) or not isinstance(rec.get("text"), str):
        raise ValueError(f"ranking['recommendation'] must be a dict with a str 'text'; got {rec!r}")
    for key in ("bootstrap", "seconds"):
        if d.get(key) is not None and not isinstance(d[key], Mapping):
            raise ValueError(f"ranking[{key!r}] must be a dict; got {d[key]!r}")


def _names(d, key) -> list[str]:
    names = d.get(key) or []
    if isinstance(names, str) or not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"ranking[{key!r}] must be a list of column names; got {names!r}")
    return list(names)


def _check_aligned(table, key, names, n_rows, *, nested) -> None:
    if not isinstance(table, Mapping):
        raise ValueError(f"ranking[{key!r}] must be a dict column -> ...; got {table!r}")
    for name, entry in table.items():
        if name not in names:
            raise ValueError(f"ranking[{key!r}] names {name!r}, which is not a column; columns: {names}")
        if nested and not isinstance(entry, Mapping):
            raise ValueError(f"ranking[{key!r}][{name!r}] must be a dict of lists; got {entry!r}")
        lists = {k: entry[k] for k in _UNCERTAINTY_KEYS if k in entry} if nested else {"": entry}
        for sub, values in lists.items():
            where = f"ranking[{key!r}][{name!r}]" + (f"[{sub!r}]" if sub else "")
            if isinstance(values, str) or not isinstance(values, Sequence) or len(values) != n_rows:
                raise ValueError(f"{where} must be a list with one entry per row ({n_rows}); got {values!r}")


def _check_agreement(agreement) -> None:
    if not isinstance(agreement, Mapping):
        raise ValueError(f"ranking['agreement'] must be a dict with 'scores' and 'tau'; got {agreement!r}")
    scores, tau = agreement.get("scores") or [], agreement.get("tau") or []
    n = len(scores)
    if len(tau) != n or any(isinstance(r, str) or not isinstance(r, Sequence) or len(r) != n for r in tau):
        raise ValueError(
            f"ranking['agreement']['tau'] must be a {n}x{n} matrix (one row and column per score "
            f"in ranking['agreement']['scores']); got {tau!r}"
        )
    for r in tau:
        for v in r:
            if v is None or (isinstance(v, Real) and math.isnan(v)):
                continue
            if isinstance(v, bool) or not isinstance(v, Real) or not -1.0 - 1e-9 <= v <= 1.0 + 1e-9:
                raise ValueError(f"every Kendall tau must lie in [-1, 1] or be None; got {v!r}")


def columns(d) -> list[tuple[str, str]]:
    """``(column, group)`` in display order: priors, baselines, scores; the order asked within each."""
    names = [*(d.get("scores") or []), *(d.get("pool_scores") or [])]
    return [(n, g) for g in GROUPS for n in names if d["groups"][n] == g]


def is_missing(value) -> bool:
    return value is None or (isinstance(value, Real) and not math.isfinite(value))


def fmt_value(value, column: str | None = None) -> str:
    """A value to 4 significant digits (counts as 1.2K / 11.69M); ``"n/a"`` for None or NaN.

    >>> fmt_value(-0.456213), fmt_value(11689512, "parameters"), fmt_value(None)
    ('-0.4562', '11.69M', 'n/a')
    """
    if is_missing(value):
        return "n/a"
    if column in COUNT_COLUMNS:
        return _fmt_count(float(value))
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.4g}"


def _fmt_count(value: float) -> str:
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale * 0.99995:  # 999,999.6 rounds to 1000K, so show it as 1M
            return f"{value / scale:.4g}{unit}"
    return f"{value:.4g}"


def fmt_rank(rank) -> str:
    """A rank: ``"1"``, a shared rank ``"1.5"``; ``"n/a"`` for None."""
    return "n/a" if is_missing(rank) else f"{float(rank):g}"


def fmt_p(p) -> str:
    """A probability to two decimals."""
    return "n/a" if is_missing(p) else f"{float(p):.2f}"


def uncertainty_at(d, column: str, key: str, i: int):
    """``d['uncertainty'][column][key][i]``, or None where the dict has no such entry."""
    values = ((d.get("uncertainty") or {}).get(column) or {}).get(key)
    return None if values is None else values[i]


def rank_of(d, column: str, i: int):
    ranks = (d.get("ranks") or {}).get(column)
    return ranks[i] if ranks is not None else uncertainty_at(d, column, "rank", i)
