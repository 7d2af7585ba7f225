"""The Markdown report of a ranking decision, readable on its own."""

from __future__ import annotations

from collections.abc import Sequence

from transferlab.report._ranking_input import (
    GROUP_TITLES,
    GROUPS,
    check_ranking,
    columns,
    fmt_p,
    fmt_rank,
    fmt_value,
    is_missing,
    rank_of,
    uncertainty_at,
)


_BAYESIAN = (
    "Scores that take sample weights (LogME, LEEP, NCE) are recomputed under Bayesian-bootstrap weights "
    "(within each class, the class size times a flat Dirichlet draw: a small target, where repeated rows could "
    "make LogME's evidence unbounded), the others on the rows drawn with replacement within each class."
)
_COUNTS = (
    "Every score is recomputed on the rows drawn with replacement within each class (scores that take sample "
    "weights, LogME, LEEP and NCE, get them as counts)."
)


def ranking_markdown(d: dict) -> str:
    """A Markdown document of a ranking decision that a person can read on its own.

    In order: a title naming the target; the recommendation (a bold quote) and the
    rule that made it; the models in recommendation order with their consensus rank;
    one table per group (priors, baselines, scores) whose cells read ``rank (value)``,
    e.g. ``1 (0.81)``, with, for every bootstrapped column, the interval as
    ``[low, high]`` and P(best) (``0.21 (within noise)`` when the bootstrap cannot
    tell the model from the first); the columns left out of the bootstrap and why;
    what the intervals mean; the Kendall tau between the scores' rankings; timings.

    Values have 4 significant digits (``-0.4562``), counts such as ``parameters`` a
    unit (``11.69M``), probabilities and tau two decimals; a missing value is
    ``n/a``. A ``|`` in a name is escaped (``\\|``) so that it cannot split a cell.

    Parameters
    ----------
    d : dict
        The ranking, as ``Ranking.to_dict()`` returns it (its keys are described in
        ``transferlab.report._ranking_input``).

    Returns
    -------
    str
        The document, ending in a newline.

    Raises
    ------
    ValueError
        If ``d`` is not a well-formed ranking dict.

    Examples
    --------
    >>> d = {"target": "glyphs:greek", "scores": ["logme"], "groups": {"logme": "score"},
    ...      "rows": [{"model": "a", "logme": -0.4562}], "ranks": {"logme": [1]},
    ...      "recommendation": {"text": "Recommended: a.", "model": "a"}}
    >>> text = ranking_markdown(d)
    >>> text.splitlines()[0], "| a | 1 (-0.4562) |" in text
    ('# Ranking for `glyphs:greek`', True)
    """
    check_ranking(d)
    rec = d["recommendation"]
    lines = [f"# Ranking for `{d['target']}`", ""]
    lines += ["> **" + line + "**" if line.strip() else ">" for line in rec["text"].strip().splitlines()]
    lines.append("")
    if rec.get("rule"):
        lines += [f"**Rule.** {rec['rule'].strip()}", ""]
    lines += _order(d)
    lines += _groups(d)
    lines += _uncertainty(d)
    lines += _agreement(d)
    lines += _timings(d)
    return "\n".join(lines).rstrip("\n") + "\n"


def _cell(text) -> str:
    """Text safe inside a table cell: one line, ``|`` escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _level(d) -> str:
    level = (d.get("bootstrap") or {}).get("level", 0.95)
    return f"{100 * float(level):g}%"


def _bootstrapped(d, column) -> bool:
    return column in (d.get("uncertainty") or {})


def _order(d) -> list[str]:
    rows, rec = d["rows"], d["recommendation"]
    near = set(rec.get("within_noise") or [])
    has_arch = any("arch" in r for r in rows)
    header = ["#", "model", *(["arch"] if has_arch else []), "consensus rank", "decision"]
    body = []
    for i, r in enumerate(rows, 1):
        decision = "recommended" if r["model"] == rec.get("model") else "within noise" if r["model"] in near else ""
        consensus = r.get("consensus_rank")
        body.append([str(i), r["model"], *([r.get("arch") or ""] if has_arch else []),
                     "n/a" if is_missing(consensus) else f"{float(consensus):.4g}", decision])
    return [
        "## Models in recommendation order",
        "",
        "The consensus rank is the mean of a model's ranks under the scores the rule uses (1 = best).",
        "",
        *_table(header, body, [True, False, *([False] if has_arch else []), True, False]),
    ]


def _groups(d) -> list[str]:
    cols = columns(d)
    pool = set(d.get("pool_scores") or [])
    level = _level(d)
    lines = [
        "## Rank and value under each column",
        "",
        f"A cell reads `rank (value)`: rank 1 is the best under that column and tied models share "
        f"the mean rank. For bootstrapped columns, `{level} interval` is `[low, high]` and `P(best)` the "
        f"probability of ranking first; `within noise` marks a model the bootstrap cannot tell from the "
        f"first under that column.",
        "",
    ]
    for group in GROUPS:
        names = [c for c, g in cols if g == group]
        if not names:
            continue
        header, right = ["model"], [False]
        for c in names:
            label = f"{c} (pool)" if c in pool else c
            header.append(label)
            if _bootstrapped(d, c):
                header += [f"{label} {level} interval", f"{label} P(best)"]
            right += [True] * (3 if _bootstrapped(d, c) else 1)
        body = []
        for i, row in enumerate(d["rows"]):
            cells = [row["model"]]
            for c in names:
                value = row.get(c)
                cells.append("n/a" if is_missing(value) else f"{fmt_rank(rank_of(d, c, i))} ({fmt_value(value, c)})")
                if _bootstrapped(d, c):
                    cells += [_interval(d, c, i), _p_best(d, c, i)]
            body.append(cells)
        lines += [f"### {GROUP_TITLES[group]}", "", *_table(header, body, right)]
    if pool & {c for c, _ in cols}:
        lines += ["Pool-level scores, marked `(pool)`, are computed over all the candidates together: "
                  "a model's value depends on the others.", ""]
    return lines


def _interval(d, column, i) -> str:
    low, high = uncertainty_at(d, column, "low", i), uncertainty_at(d, column, "high", i)
    if is_missing(low) or is_missing(high):
        return "n/a"
    return f"[{fmt_value(low, column)}, {fmt_value(high, column)}]"


def _p_best(d, column, i) -> str:
    p = fmt_p(uncertainty_at(d, column, "p_best", i))
    return f"{p} (within noise)" if uncertainty_at(d, column, "within_noise", i) else p


def _uncertainty(d) -> list[str]:
    boot = d.get("bootstrap") or {}
    resamples = boot.get("resamples") or 0
    lines = ["## Uncertainty", ""]
    if resamples and d.get("uncertainty"):
        seed = boot.get("seed")
        lines += [
            f"Intervals are {_level(d)} intervals from a "
            f"{'stratified' if d.get('target_kind', 'classes') == 'classes' else 'plain (unstratified)'} "
            "bootstrap over the target samples: "
            f"{resamples} resamples, the same for every model (paired)"
            + (f", seed {seed}" if seed is not None else "")
            + ". "
            + (_BAYESIAN if boot.get("weights", "bayesian") == "bayesian" else _COUNTS)
            + " Each model's replicates are re-centred on its "
            "full-sample value, so an interval always holds the value. P(best) is the fraction of "
            "resamples in which a model ranks first under that column; a model within noise cannot be "
            "told apart from the column's first (their paired difference reaches 0).",
            "",
        ]
    else:
        lines += ["The bootstrap was off: no intervals and no P(best).", ""]
    skipped = dict(boot.get("skipped") or {})
    cols = [c for c, _ in columns(d)]
    unexplained = [c for c in cols if not _bootstrapped(d, c) and c not in skipped]
    if skipped or (resamples and unexplained):
        lines += ["Columns without intervals:", ""]
        lines += [f"- `{c}`: {reason}" for c, reason in skipped.items()]
        if resamples:
            lines += [f"- `{c}`: not bootstrapped" for c in unexplained]
        lines.append("")
    return lines


def _agreement(d) -> list[str]:
    agreement = d.get("agreement") or {}
    names = list(agreement.get("scores") or [])
    lines = ["## Agreement between the scores", ""]
    if not names:
        return lines + ["No agreement was computed.", ""]
    lines += [
        "Kendall tau between the model rankings under each pair of scores (1: the same order; "
        "0: unrelated; -1: reversed; n/a: fewer than two models have both values).",
        "",
    ]
    body = [[n, *("n/a" if is_missing(v) else f"{float(v):+.2f}" for v in r)]
            for n, r in zip(names, agreement["tau"])]
    return lines + _table(["", *names], body, [False, *[True] * len(names)])


def _timings(d) -> list[str]:
    seconds = d.get("seconds") or {}
    if not seconds:
        return []
    body = [[step, "< 0.001" if not is_missing(s) and 0 <= s < 1e-3 else fmt_value(s)] for step, s in seconds.items()]
    return ["## Timings", "", *_table(["step", "seconds"], body, [False, True])]
