"""Figures of a ranking decision: each model's value with its interval, and the agreement of the scores."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

from transferlab._atomic import atomic_write  # noqa: E402
from transferlab.report._ranking_input import (  # noqa: E402
    COUNT_COLUMNS,
    check_ranking,
    columns,
    fmt_p,
    fmt_value,
    is_missing,
    uncertainty_at,
)

#: Colours (matplotlib's tab10, as the other figures): the recommended model, the models
#: the recommendation calls within noise of it, every other model.
RECOMMENDED, NEAR, OTHER = "tab:red", "tab:orange", "tab:blue"
#: Panels per row of the ranking figure, and the longest model name shown in full.
PANELS_PER_ROW = 4
MAX_NAME = 32


def plot_ranking(d: dict, path: str | Path) -> Path:
    """Draw every model's value under every column of a ranking, one panel per column.

    Panels follow the groups (priors, baselines, scores) and, within a group, the
    order the columns were asked in; each is titled ``"column (group)"``. Models run
    down the y axis in recommendation order, best at the top. A dot is a model's
    value; a horizontal bar its bootstrap interval where ``d["uncertainty"]`` has one
    (none otherwise); the number beside it its probability of ranking first,
    P(best), under that column. The recommended model is red, the models the
    recommendation calls within noise of it orange, the others blue; a hollow dot
    marks a model that the bootstrap cannot tell apart from the first under that
    column. A missing value (``None``) shows as ``n/a``.

    Parameters
    ----------
    d : dict
        The ranking, as ``Ranking.to_dict()`` returns it (its keys are described in
        ``transferlab.report._ranking_input``).
    path : str or Path
        Where to write the figure; the format comes from the suffix (``.png``). The
        file is written atomically: a failed write leaves no partial file.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If ``d`` is not a well-formed ranking dict.
    OSError
        If ``path`` cannot be written (the message names it).
    """
    check_ranking(d)
    return _save(_ranking_figure(d), path)


def plot_agreement(d: dict, path: str | Path) -> Path:
    """Draw the Kendall tau between the rankings of every pair of scores as a heatmap.

    Kendall's tau-b (Kendall 1938, *A new measure of rank correlation*; 1945 for
    ties) between the model orders under scores :math:`a` and :math:`b`,

    .. math::

        \\tau_b = \\frac{n_c - n_d}{\\sqrt{(n_0 - n_a)(n_0 - n_b)}},

    with :math:`n_0 = n(n-1)/2`, :math:`n_c, n_d` the concordant and discordant
    pairs of models and :math:`n_a, n_b` the pairs tied under one score, is read from
    ``d["agreement"]``; this function only draws it. The colour scale is diverging
    and fixed to [-1, 1] (1: same order, -1: reversed); every cell carries its value,
    a cell without one (fewer than two models have both scores) is grey ``n/a``.

    Parameters
    ----------
    d : dict
        The ranking, as ``Ranking.to_dict()`` returns it; ``d["agreement"]`` holds
        ``"scores"`` (k names) and ``"tau"`` (k x k, cells may be None).
    path : str or Path
        Where to write the figure (format from the suffix), atomically.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If ``d`` is not a well-formed ranking dict or its agreement is empty.
    OSError
        If ``path`` cannot be written.
    """
    check_ranking(d)
    if not (d.get("agreement") or {}).get("scores"):
        raise ValueError("ranking['agreement']['scores'] is empty: no agreement to plot")
    return _save(_agreement_figure(d), path)


def _save(fig, path) -> Path:
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=110))
    finally:
        plt.close(fig)
    return path


def _short(name: str) -> str:
    name = " ".join(name.split())
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "\u2026"


def _ranking_figure(d):
    rows, cols = d["rows"], columns(d)
    rec = d["recommendation"]
    near = set(rec.get("within_noise") or [])
    n, n_panels = len(rows), max(len(cols), 1)
    ncols = min(n_panels, PANELS_PER_ROW)
    nrows = math.ceil(n_panels / ncols)
    name_width = max(len(_short(r["model"])) for r in rows)
    panel_h = 0.9 + 0.28 * n
    legend_cols = 3 if ncols > 1 else 2
    legend_h = 0.2 * math.ceil(5 / legend_cols) + 0.1
    fig, axes = plt.subplots(
        nrows, ncols, squeeze=False, sharey=True,
        figsize=(max(3.6 * ncols + 0.07 * name_width, 7.5), panel_h * nrows + legend_h + 0.8),
    )
    y = np.arange(n)[::-1]  # best (first row) at the top
    for ax, (column, group) in zip(axes.flat, cols):
        _panel(ax, d, column, group, y, rec.get("model"), near)
    for ax in axes.flat[len(cols):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_yticks(y, [_short(r["model"]) for r in rows], fontsize=8)
        ax.set_ylim(-0.7, n - 0.3)
    handles = [
        Line2D([], [], marker="o", ls="", color=RECOMMENDED, label="recommended"),
        Line2D([], [], marker="o", ls="", color=NEAR, label="within noise of the recommended"),
        Line2D([], [], marker="o", ls="", color=OTHER, label="other"),
        Line2D([], [], marker="o", ls="", color="grey", markerfacecolor="none",
               label="hollow: within noise of the first under this column"),
        Line2D([], [], color="grey", label="bar: bootstrap interval; number: P(best)"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=legend_cols, fontsize=7, frameon=False)
    title = f"Ranking for {d['target']}"
    if rec.get("model"):
        title += f": recommended {_short(rec['model'])}"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, legend_h / fig.get_figheight(), 1, 1))
    return fig


def _panel(ax, d, column, group, y, recommended, near) -> None:
    rows = d["rows"]
    at_y = blended_transform_factory(ax.transAxes, ax.transData)
    for i, (row, yi) in enumerate(zip(rows, y)):
        value = row.get(column)
        if is_missing(value):
            ax.text(0.5, yi, "n/a", transform=at_y, ha="center", va="center", fontsize=7, color="grey")
            continue
        colour = RECOMMENDED if row["model"] == recommended else NEAR if row["model"] in near else OTHER
        low, high = uncertainty_at(d, column, "low", i), uncertainty_at(d, column, "high", i)
        right = value
        if not (is_missing(low) or is_missing(high)):
            ax.hlines(yi, low, high, color=colour, linewidth=1.6, alpha=0.8)
            right = max(value, high)
        hollow = bool(uncertainty_at(d, column, "within_noise", i))
        ax.plot([value], [yi], marker="o", ms=6, ls="", color=colour,
                markerfacecolor="white" if hollow else colour, markeredgewidth=1.5, zorder=3)
        p = uncertainty_at(d, column, "p_best", i)
        if not is_missing(p):
            ax.annotate(fmt_p(p), (right, yi), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=7)
    ax.margins(x=0.2)
    if column in COUNT_COLUMNS:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_value(v, column)))
    ax.set_title(textwrap.shorten(f"{column} ({group})", 48), fontsize=9)
    ax.set_xlabel("value", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)


def _agreement_figure(d):
    names = list(d["agreement"]["scores"])
    k = len(names)
    tau = np.array([[np.nan if v is None else float(v) for v in r] for r in d["agreement"]["tau"]], dtype=float)
    cmap = plt.get_cmap("RdBu").with_extremes(bad="lightgrey")
    size = 2.6 + 0.55 * k
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(np.ma.masked_invalid(tau), cmap=cmap, vmin=-1.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            v = tau[i, j]
            text = "n/a" if np.isnan(v) else f"{v:+.2f}"
            colour = "white" if not np.isnan(v) and abs(v) > 0.6 else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    labels = [_short(s) for s in names]
    ax.set_xticks(range(k), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels, fontsize=8)
    fig.colorbar(image, ax=ax, label="Kendall tau", fraction=0.046, pad=0.04)
    ax.set_title(f"Agreement of the score rankings\n{d['target']}", fontsize=10)
    fig.tight_layout()
    return fig
