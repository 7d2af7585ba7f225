"""Figures people would rather look at than read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from transferlab._atomic import atomic_write  # noqa: E402


def plot_score_vs_accuracy(
    rows: Sequence[dict],
    scores: Sequence[str],
    path: str | Path,
    *,
    accuracy: str = "fine_tuned_accuracy",
    title: str = "",
    taus: dict | None = None,
) -> Path:
    """One panel per score: each model's score against its fine-tuned accuracy.

    Points are coloured by architecture and labelled by source; the panel title
    gives the weighted Kendall tau when ``taus`` is given.
    """
    if not rows:
        raise ValueError("rows is empty: nothing to plot")
    archs = sorted({r.get("arch", "") for r in rows})
    colours = {a: plt.cm.tab10(i % 10) for i, a in enumerate(archs)}
    fig, axes = plt.subplots(1, len(scores), figsize=(5 * len(scores), 4.2), squeeze=False)
    for ax, score in zip(axes[0], scores):
        for arch in archs:
            pts = [r for r in rows if r.get("arch", "") == arch]
            ax.scatter([r[score] for r in pts], [r[accuracy] for r in pts], color=colours[arch], label=arch, s=40)
            for r in pts:
                ax.annotate(str(r.get("source", r.get("model", ""))), (r[score], r[accuracy]),
                            fontsize=7, xytext=(3, 3), textcoords="offset points")
        tau = f"  (weighted tau = {taus[score]:+.2f})" if taus and taus.get(score) is not None else ""
        ax.set_title(f"{score}{tau}", fontsize=10)
        ax.set_xlabel(f"{score} score (higher = better predicted)")
        ax.set_ylabel("fine-tuned test accuracy")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120))
    plt.close(fig)
    return path


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` atomically (format from the suffix) and close it."""
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=110))
    plt.close(fig)
    return path


def plot_score_grid(
    finetune_rows: Sequence[dict],
    score_rows: Sequence[dict],
    score: str,
    path: str | Path,
    *,
    targets: Sequence[str],
    regimes: Sequence[str],
    accuracy: str = "best_test_accuracy",
) -> Path:
    """A grid (targets x regimes) of one score against fine-tuned accuracy, one point per model."""
    if not finetune_rows or not score_rows:
        raise ValueError("nothing to plot: the fine-tuning or score rows are empty")
    acc = {(r["target"], r["regime"], r["model"]): r for r in finetune_rows}
    roles = sorted({r.get("role", "") for r in finetune_rows})
    colours = {role: plt.cm.tab10(i % 10) for i, role in enumerate(roles)}
    fig, axes = plt.subplots(
        len(targets), len(regimes), figsize=(3.6 * len(regimes), 2.9 * len(targets)), squeeze=False
    )
    for i, target in enumerate(targets):
        for j, regime in enumerate(regimes):
            ax = axes[i][j]
            for role in roles:
                pts = [
                    (r[score], acc[(target, regime, r["model"])][accuracy])
                    for r in score_rows
                    if r["target"] == target and r["regime"] == regime
                    and acc[(target, regime, r["model"])].get("role", "") == role
                ]
                if pts:
                    xs, ys = zip(*pts)
                    ax.scatter(xs, ys, s=18, color=colours[role], label=role or None)
            ax.set_title(f"{target}\n{regime}", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if i == len(targets) - 1:
                ax.set_xlabel(score, fontsize=8)
            if j == 0:
                ax.set_ylabel("fine-tuned accuracy", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle(f"{score} against fine-tuned test accuracy", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_metric_bars(
    summary: Sequence[dict],
    metric: str,
    path: str | Path,
    *,
    regimes: Sequence[str],
    ylabel: str = "",
    reference: str | None = None,
) -> Path:
    """Bars of one summary metric per score and regime, with their 95% intervals.

    ``reference`` names a metric drawn as a tick on each bar (e.g. the value
    expected under random selection).
    """
    if not summary:
        raise ValueError("summary is empty: nothing to plot")
    scores = sorted({r["score"] for r in summary})
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(scores) * len(regimes)), 4.2))
    width = 0.8 / max(len(regimes), 1)
    x = np.arange(len(scores))
    for k, regime in enumerate(regimes):
        rows = {r["score"]: r for r in summary if r["regime"] == regime}
        est = np.array([_value(rows.get(s), metric) for s in scores])
        low = np.array([_value(rows.get(s), f"{metric}_low") for s in scores])
        high = np.array([_value(rows.get(s), f"{metric}_high") for s in scores])
        pos = x + (k - (len(regimes) - 1) / 2) * width
        err = np.vstack([np.nan_to_num(est - low), np.nan_to_num(high - est)])
        ax.bar(pos, np.nan_to_num(est), width, yerr=err, capsize=2, label=regime)
        if reference:
            ref = np.array([_value(rows.get(s), reference) for s in scores])
            ax.scatter(pos, ref, marker="_", s=120, color="black", zorder=3,
                       label="random selection" if k == 0 else None)
    ax.set_xticks(x, scores, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel or metric)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _value(row, key) -> float:
    if row is None or row.get(key) is None:
        return float("nan")
    return float(row[key])
