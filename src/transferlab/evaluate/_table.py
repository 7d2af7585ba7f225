"""The selection benchmark's evaluation of a plain results table, fine-tuned anywhere.

A researcher who fine-tuned a zoo elsewhere (a GPU cluster) has, for each
target and model, the fine-tuned accuracy and any number of transferability
scores. :func:`evaluate_table` judges every score with the evaluation of the
selection study (Deshpande et al., "A linearized framework and a new benchmark
for model selection for fine-tuning", arXiv:2102.00084, 2021): per target the
metrics of :func:`~transferlab.evaluate.selection_metrics` (weighted Kendall
tau, Spearman, Pearson, top-1/top-3 gain over a generic baseline, relative
top-k accuracy, trials to the best model, each with its random-selection
expectation) and of :func:`~transferlab.evaluate.fidelity_metrics` (gap
fidelity, top-1/top-3 regret), then their means over targets with percentile bootstrap 95%
intervals (:func:`summarise_over_targets`, the same code the selection study
uses).

Pure: the rows come in as mappings (``csv.DictReader`` rows work as they are);
no file is read or written here.
"""

from __future__ import annotations

import math
import numbers
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from transferlab.evaluate._bootstrap import bootstrap_ci
from transferlab.evaluate._fidelity import fidelity_metrics
from transferlab.evaluate._selection import selection_metrics

#: Columns of a results table that are not scores.
TABLE_COLUMNS = ("target", "model", "accuracy")
#: The regime of a row without a ``regime`` column (or with an empty cell).
DEFAULT_REGIME = "full"
_RESERVED = (*TABLE_COLUMNS, "regime")


def summarise_over_targets(
    metrics: Sequence[Mapping], keys: Sequence[str], *, seed=0, n_boot: int = 2000
) -> list[dict]:
    """Mean over targets of every per-target metric, with its percentile bootstrap 95% interval.

    The rows of ``metrics`` (one per target and group) are grouped by the
    columns ``keys`` (e.g. ``("regime", "score")``); every other column except
    ``target`` is a metric. For each group and metric, the values that are not
    ``None`` (a metric undefined on a target) give
    :func:`~transferlab.evaluate.bootstrap_ci`: the mean over targets and the
    2.5% and 97.5% percentiles of ``n_boot`` resampled means, the targets
    resampled with replacement (Efron & Tibshirani, 1993, ch. 13). A metric
    defined on fewer than 2 targets has no interval: all three are ``None``.
    Every metric of a group is resampled from the same seed (a paired bootstrap).

    Returns one row per group, sorted by the group key: the ``keys`` columns,
    ``n_targets`` (rows in the group), then ``<metric>``, ``<metric>_low``,
    ``<metric>_high`` for every metric in the column order of the group's first row.
    """
    keys = tuple(keys)
    groups: dict[tuple, list[Mapping]] = defaultdict(list)
    for row in metrics:
        groups[tuple(row[k] for k in keys)].append(row)
    summary = []
    for group, rows in sorted(groups.items()):
        flat = {**dict(zip(keys, group)), "n_targets": len(rows)}
        for metric in (k for k in rows[0] if k not in keys and k != "target"):
            values = [r[metric] for r in rows if r[metric] is not None]
            est, low, high = (
                bootstrap_ci(values, seed=seed, n_boot=n_boot) if len(values) >= 2 else (None, None, None)
            )
            flat[metric], flat[f"{metric}_low"], flat[f"{metric}_high"] = est, low, high
        summary.append(flat)
    return summary


def _number(value, column: str, line: int) -> float:
    """A finite float from a number or a numeric string; else a ValueError naming the cell."""
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            shown = "an empty cell" if not text else repr(value)
            raise ValueError(f"row {line}: {column} must be a number; got {shown}") from None
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValueError(f"row {line}: {column} must be a number; got {value!r}")
    if not math.isfinite(number):
        raise ValueError(f"row {line}: {column} must be a finite number; got {value!r}")
    return number


def check_table(rows: Sequence[Mapping]) -> tuple[list[dict], list[str]]:
    """Validate a results table and return its rows with numbers, and its score columns.

    Every row has ``target``, ``model``, ``accuracy``, optionally ``regime``
    (missing or empty: :data:`DEFAULT_REGIME`), and one value per score column:
    every other column. Numbers may be given as strings (a CSV cell). Row ``i``
    in a message counts the data rows from 1 (a CSV's line ``i + 1``).

    Raises
    ------
    ValueError
        If the table is empty, a required column is missing, there is no score
        column, a row has other columns than the first, a target or model name
        is empty, an accuracy or score is not a finite number (NaN, inf, empty,
        text), a (target, regime, model) repeats, or a (target, regime) has
        fewer than 2 models.
    """
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        got = type(rows).__name__
        raise ValueError(f"rows must be a sequence of mappings (one per target and model); got {got}")  # noqa: TRY004
    if not rows:
        raise ValueError("the results table has no rows")
    columns = list(rows[0])
    missing = [c for c in TABLE_COLUMNS if c not in columns]
    if missing:
        raise ValueError(
            f"the results table lacks the column(s) {', '.join(missing)}; it needs target, model, accuracy "
            f"and one column per score (optional: regime); got columns {', '.join(map(str, columns)) or 'none'}"
        )
    scores = [c for c in columns if c not in _RESERVED]
    if not scores:
        raise ValueError(
            "the results table has no score column: add one column per score next to target, model, accuracy"
        )
    out, seen, per_group = [], set(), defaultdict(int)
    for line, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            got = type(row).__name__
            raise ValueError(f"row {line} is not a mapping of column to value; got {got}")  # noqa: TRY004
        if list(row) != columns or None in row.values():
            header = ", ".join(map(str, columns))
            raise ValueError(f"row {line} does not have the header's {len(columns)} columns ({header})")
        target, model = str(row["target"]).strip(), str(row["model"]).strip()
        regime = str(row.get("regime") or "").strip() or DEFAULT_REGIME
        for name, value in (("target", target), ("model", model)):
            if not value:
                raise ValueError(f"row {line}: {name} is empty")
        key = (target, regime, model)
        if key in seen:
            raise ValueError(f"row {line}: target {target!r}, regime {regime!r}, model {model!r} appears twice")
        seen.add(key)
        per_group[(target, regime)] += 1
        clean = {"target": target, "regime": regime, "model": model}
        clean["accuracy"] = _number(row["accuracy"], "accuracy", line)
        clean.update({s: _number(row[s], f"score {s}", line) for s in scores})
        out.append(clean)
    for (target, regime), n in per_group.items():
        if n < 2:
            raise ValueError(f"target {target!r} (regime {regime!r}) has {n} model; a ranking needs at least 2")
    return out, scores


def _metrics(s: np.ndarray, a: np.ndarray, base: int) -> dict:
    """The selection study's per-target row: selection_metrics then fidelity_metrics, ks = (1, 3).

    A zoo of 2 models selects both as its "top 3" (k = min(3, n)).
    """
    ks = (1, min(3, s.shape[0]))
    raw = {**selection_metrics(s, a, baseline=base, ks=ks), **fidelity_metrics(s, a, ks=ks)}
    return raw if ks[1] == 3 else {k.replace(f"top{ks[1]}_", "top3_"): v for k, v in raw.items()}


def evaluate_table(rows: Sequence[Mapping], *, baseline: str | None = None, seed=0, n_boot: int = 2000) -> dict:
    """Every selection metric of every score on every target, and their means with 95% intervals.

    Parameters
    ----------
    rows : sequence of mappings
        The results table, validated by :func:`check_table`: ``target``,
        ``model``, ``accuracy`` (non-negative, any unit: the gains have it),
        optional ``regime``, and one column per score (higher = predicted better).
    baseline : str, optional
        The generic model every selection must beat (the "ImageNet expert" of
        Deshpande et al.). When given, it must be a model of every
        (target, regime), and ``top1_gain``/``top3_gain`` are the accuracy of
        the top-1/top-3 selection minus its accuracy. When not, the gains are
        ``None`` and the relative top-k accuracies (always reported) carry the
        selection verdict.
    seed : int, default 0
        Seed of the bootstrap over targets.
    n_boot : int, default 2000
        Bootstrap resamples (the selection study's default).

    Returns
    -------
    dict
        ``metrics``: one row per (target, regime, score), ``target``, ``regime``,
        ``score`` then the keys of :func:`~transferlab.evaluate.selection_metrics`
        and of :func:`~transferlab.evaluate.fidelity_metrics` (gap fidelity, top-k
        regret), both with ``ks=(1, 3)``, as the selection study computes them (a
        target of 2 models: its ``top3`` is its top 2, all of it);
        ``summary``: :func:`summarise_over_targets` grouped by (regime, score);
        ``baseline``; ``scores``, ``targets``, ``regimes`` in table order;
        ``rows``: the validated table.

    Raises
    ------
    ValueError
        Bad input (see :func:`check_table`), a baseline missing from a
        (target, regime), or a negative accuracy (named with its target).
    """
    clean, scores = check_table(rows)
    by_group: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in clean:
        by_group[(row["target"], row["regime"])].append(row)
    metrics = []
    for (target, regime), members in by_group.items():
        names = [m["model"] for m in members]
        if baseline is not None and baseline not in names:
            raise ValueError(
                f"--baseline {baseline!r} is not a model of target {target!r} (regime {regime!r}); "
                f"its models: {', '.join(names)}"
            )
        base = names.index(baseline) if baseline is not None else 0
        acc = np.array([m["accuracy"] for m in members])
        if np.any(acc < 0):
            bad = members[int(np.flatnonzero(acc < 0)[0])]
            raise ValueError(f"target {target!r}: accuracy of {bad['model']!r} is negative ({bad['accuracy']!r})")
        for name in scores:
            row = _metrics(np.array([m[name] for m in members]), acc, base)
            if baseline is None:
                row.update({k: None for k in row if k.endswith("_gain")})
            metrics.append({"target": target, "regime": regime, "score": name, **row})
    summary = summarise_over_targets(metrics, ("regime", "score"), seed=seed, n_boot=n_boot)
    return {
        "metrics": metrics,
        "summary": summary,
        "baseline": baseline,
        "scores": scores,
        "targets": list(dict.fromkeys(t for t, _ in by_group)),
        "regimes": list(dict.fromkeys(r for _, r in by_group)),
        "rows": clean,
    }
