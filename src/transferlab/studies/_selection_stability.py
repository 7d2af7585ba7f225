"""Stability of the selection benchmark's verdict, re-evaluating its cached results only.

No new fine-tuning or scoring: the per-member accuracies and scores the study
already holds are re-ranked under changed pools and setups
(:mod:`transferlab.evaluate._stability`), for every data regime, against the
ground truth ``best`` (best test accuracy over the LR grid):

- **leave one out**: every pool without one member, without one architecture
  (the member's ``arch``) and without one kind of pre-training (its ``role``:
  single-source, generic, from-generic, multi-domain);
- **pool size**: many seeded random sub-pools of each size from 3 to the zoo;
- **setups across the LR grid**: the ground truth of each learning rate alone
  (its test accuracy), the setup-stability score of Agostinelli et al. (ECCV
  2022) over these setups.

For every score and analysis, how often it is among the three best scores
(ties kept). Writes ``stability.csv``, three figures and a report section.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from transferlab.evaluate import (
    best_scores,
    leave_out_stability,
    mean_weighted_tau,
    pool_size_curve,
    setup_stability,
)
from transferlab.report import save_figure, write_csv  # also selects the Agg backend

TOP = 3  #: "among the three best scores"
N_POOLS = 50  #: random sub-pools per size
MAX_SIZES = 20  #: pool sizes evaluated at most (evenly spaced from 3 to the zoo size beyond that)
QUANTILES = (0.1, 0.9)  #: the band of the pool-size curves
MIN_POOL = 3  #: the smallest pool evaluated
TRUTH = "best_test_accuracy"

#: The leave-out analyses: name, what a family is, the finetune-row column holding it.
LEAVE_OUT = (
    ("leave_one_member_out", "member", "model"),
    ("leave_one_arch_out", "architecture", "arch"),
    ("leave_one_kind_out", "pre-training kind", "role"),
)


def _sizes(n: int) -> list[int]:
    if n < MIN_POOL:
        return []
    if n - MIN_POOL + 1 <= MAX_SIZES:
        return list(range(MIN_POOL, n + 1))
    return sorted({int(round(x)) for x in np.linspace(MIN_POOL, n, MAX_SIZES)})


def _row(analysis, regime, variation, n_models, score, mean, in_top, frequency, **extra) -> dict:
    return {
        "analysis": analysis,
        "regime": regime,
        "variation": variation,
        "n_models": n_models,
        "score": score,
        "mean_weighted_tau": mean,
        "low": extra.get("low"),
        "high": extra.get("high"),
        "in_top3": in_top,
        "top3_frequency": frequency,
        "setup_stability": extra.get("setup_stability"),
    }


#: The scoring setups varied one at a time: analysis, setup-name prefix, the preset's own value.
SCORING_SETUPS = (("score_budget", "K=", "score_per_class"), ("score_seed", "seed=", "seed"))
#: The setup analyses, with what a setup is, for the report and the figure.
SETUP_ANALYSES = (("lr_grid", "the LR grid"), ("score_budget", "the scoring budget K"),
                  ("score_seed", "the scoring seed"))


def stability_analyses(cfg, members, finetune_rows, score_rows, per_lr_rows, score_names, setups=None) -> dict:
    """Every stability analysis of every regime: ``rows`` for ``stability.csv``, ``notes`` and ``summary``.

    ``members`` is the zoo order; ``per_lr_rows`` hold ``target, regime, model,
    lr, test_accuracy`` (one per learning rate of every fine-tuning job);
    ``setups`` maps a scoring setup (``"K=5"``, ``"seed=1"``) to its score rows
    (the study's setup jobs), each compared with the preset's own scoring.
    """
    setups = setups or {}
    info = {r["model"]: r for r in finetune_rows}
    acc_by = {(r["target"], r["regime"], r["model"]): r[TRUTH] for r in finetune_rows}
    score_by = {(r["target"], r["regime"], r["model"]): r for r in score_rows}
    lr_by = {(r["target"], r["regime"], r["model"], r["lr"]): r["test_accuracy"] for r in per_lr_rows}
    targets = list(dict.fromkeys(r["target"] for r in finetune_rows))
    names = list(score_names)
    rows, notes, summary = [], [], defaultdict(dict)

    def table(regime, value):
        return np.array([[value(t, m) for m in members] for t in targets], dtype=float)

    for regime in cfg.regimes:
        acc = table(regime, lambda t, m: acc_by[(t, regime, m)])
        scores = {n: table(regime, lambda t, m, n=n: score_by[(t, regime, m)][n]) for n in names}
        full = mean_weighted_tau(acc, scores)
        top = best_scores(full, TOP)
        for n in names:
            rows.append(_row("full_pool", regime, "all members", len(members), n, full[n], n in top, None))
            summary[(regime, n)]["full_pool"] = full[n]

        for analysis, family, column in LEAVE_OUT:
            labels = [str(info[m][column]) for m in members]
            if len(set(labels)) < 2 and analysis != "leave_one_member_out":
                notes.append(f"{regime}: {analysis} skipped, every member has the same {family} ({labels[0]}).")
                continue
            out = leave_out_stability(acc, scores, labels, k=TOP, min_size=MIN_POOL)
            if out["skipped"]:
                notes.append(f"{regime}: {analysis} skipped {', '.join(out['skipped'])} "
                             f"(fewer than {MIN_POOL} members left).")
            for v in out["variations"]:
                top = best_scores(v["means"], TOP)
                for n in names:
                    rows.append(_row(analysis, regime, f"without {v['left_out']}", v["n_models"], n, v["means"][n],
                                     n in top, out["top_k_frequency"].get(n)))
            for n in names:
                summary[(regime, n)][analysis] = out["top_k_frequency"].get(n)

        sizes = _sizes(len(members))
        if not sizes:
            notes.append(f"{regime}: pool-size curve skipped, the zoo has fewer than {MIN_POOL} members.")
        curve = pool_size_curve(acc, scores, sizes=sizes, n_pools=N_POOLS, seed=cfg.seed, quantiles=QUANTILES,
                                k=TOP) if sizes else []
        for r in curve:
            rows.append(_row("pool_size", regime, f"size {r['size']}", r["size"], r["score"], r["mean"], None,
                             r["top_k_frequency"], low=r["low"], high=r["high"]))
        for n in names:
            mine = [r for r in curve if r["score"] == n]
            summary[(regime, n)]["pool_size"] = float(np.mean([r["top_k_frequency"] for r in mine])) if mine else None
            summary[(regime, n)]["smallest_pool"] = mine[0] if mine else None

        lrs = list(cfg.lrs)
        if len(lrs) < 2:
            notes.append(f"{regime}: setup stability across the LR grid skipped, the grid has one rate.")
        means_by_lr = {}
        for lr in lrs:
            lr_acc = table(regime, lambda t, m, lr=lr: lr_by[(t, regime, m, lr)])
            means_by_lr[f"lr={lr:g}"] = mean_weighted_tau(lr_acc, scores)
        lr_setups = setup_stability(means_by_lr, k=TOP)
        for setup, means in means_by_lr.items():
            top = best_scores(means, TOP)
            for n in names:
                rows.append(_row("lr_grid", regime, setup, len(members), n, means[n], n in top,
                                 lr_setups["top_k_frequency"].get(n), setup_stability=lr_setups["stability"]))
        for n in names:
            summary[(regime, n)]["lr_grid"] = lr_setups["top_k_frequency"].get(n)
        summary[(regime, None)]["lr_grid_stability"] = lr_setups["stability"]

        for analysis, prefix, field in SCORING_SETUPS:
            varied = {name: r for name, r in setups.items() if name.startswith(prefix)}
            if not varied or regime not in (cfg.setup_regimes or cfg.regimes):
                continue
            means_by = {f"{prefix}{getattr(cfg, field)}": full}
            for name, setup_rows in varied.items():
                by = {(r["target"], r["regime"], r["model"]): r for r in setup_rows}
                setup_scores = {n: table(regime, lambda t, m, n=n: by[(t, regime, m)].get(n)) for n in names}
                means_by[name] = mean_weighted_tau(acc, setup_scores)
            out = setup_stability(means_by, k=TOP)
            for setup, means in means_by.items():
                top = best_scores(means, TOP)
                for n in names:
                    rows.append(_row(analysis, regime, setup, len(members), n, means[n], n in top,
                                     out["top_k_frequency"].get(n), setup_stability=out["stability"]))
            for n in names:
                summary[(regime, n)][analysis] = out["top_k_frequency"].get(n)
            summary[(regime, None)][f"{analysis}_stability"] = out["stability"]
    for analysis, prefix, _ in SCORING_SETUPS:
        if not any(name.startswith(prefix) for name in setups):
            notes.append(f"{analysis}: not varied (the preset lists no "
                         f"{'setup_score_per_class' if prefix == 'K=' else 'setup_seeds'}).")
    return {"rows": rows, "notes": notes, "summary": dict(summary), "names": names, "members": list(members)}


# --------------------------------------------------------------------------- figures


def _colours(names):
    cmap = plt.cm.tab20 if len(names) > 10 else plt.cm.tab10
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def _layout_with_legend(fig, axes):
    """Tight layout leaving the right margin to one legend of the scores (save_figure does not crop)."""
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0, 0.82 if handles else 1.0, 1))
    if handles:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.83, 0.5), fontsize=7)


def plot_pool_size(stability, regimes, path) -> Path:
    """Mean weighted tau against the pool size, one line and 10-90% band per score, a panel per regime."""
    names, colours = stability["names"], _colours(stability["names"])
    fig, axes = plt.subplots(1, len(regimes), figsize=(4.6 * len(regimes) + 1.6, 3.8), squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        rows = [r for r in stability["rows"] if r["analysis"] == "pool_size" and r["regime"] == regime]
        for n in names:
            mine = [r for r in rows if r["score"] == n and r["mean_weighted_tau"] is not None]
            if not mine:
                continue
            x = [r["n_models"] for r in mine]
            ax.plot(x, [r["mean_weighted_tau"] for r in mine], marker=".", color=colours[n], label=n, lw=1)
            ax.fill_between(x, [r["low"] for r in mine], [r["high"] for r in mine], color=colours[n], alpha=0.08)
        if not rows:
            ax.text(0.5, 0.5, f"fewer than {MIN_POOL} members", ha="center", transform=ax.transAxes)
        ax.set_title(regime, fontsize=10)
        ax.set_xlabel("pool size (members)")
        ax.axhline(0.0, color="k", lw=0.5)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"mean weighted tau ({int(QUANTILES[0] * 100)}-{int(QUANTILES[1] * 100)}% band)")
    fig.suptitle(f"Random sub-pools ({N_POOLS} per size, or every subset when fewer)", fontsize=10)
    _layout_with_legend(fig, axes)
    return save_figure(fig, path)


def plot_leave_out(stability, regimes, path) -> Path:
    """Mean weighted tau of every score on every leave-out pool (dots) and on the full pool (black bar)."""
    names = stability["names"]
    analyses = [a for a, _, _ in LEAVE_OUT]
    fig, axes = plt.subplots(len(regimes), len(analyses), figsize=(max(4.0, 0.45 * len(names)) * len(analyses),
                             3.2 * len(regimes)), squeeze=False)
    x = np.arange(len(names))
    for i, regime in enumerate(regimes):
        full = {r["score"]: r["mean_weighted_tau"] for r in stability["rows"]
                if r["analysis"] == "full_pool" and r["regime"] == regime}
        for j, (analysis, family, _) in enumerate(LEAVE_OUT):
            ax = axes[i][j]
            rows = [r for r in stability["rows"] if r["analysis"] == analysis and r["regime"] == regime]
            for k, n in enumerate(names):
                vals = [r["mean_weighted_tau"] for r in rows if r["score"] == n and r["mean_weighted_tau"] is not None]
                ax.scatter(np.full(len(vals), k), vals, s=10, alpha=0.6, color="tab:blue")
                if full.get(n) is not None:
                    ax.plot([k - 0.35, k + 0.35], [full[n]] * 2, color="k", lw=1.5)
            if not rows:
                ax.text(0.5, 0.5, "no variation", ha="center", transform=ax.transAxes)
            ax.set_title(f"{regime}: without one {family}", fontsize=9)
            ax.set_xticks(x, names, rotation=90, fontsize=7)
            ax.axhline(0.0, color="k", lw=0.5)
            ax.grid(alpha=0.3, axis="y")
        axes[i][0].set_ylabel("mean weighted tau")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_setups(stability, regimes, path) -> Path:
    """Mean weighted tau of every score in every setup: a row per setup analysis, a panel per regime."""
    names, colours = stability["names"], _colours(stability["names"])
    analyses = [(a, what) for a, what in SETUP_ANALYSES if any(r["analysis"] == a for r in stability["rows"])]
    analyses = analyses or [SETUP_ANALYSES[0]]
    fig, axes = plt.subplots(len(analyses), len(regimes), figsize=(4.6 * len(regimes) + 1.6, 3.4 * len(analyses)),
                             squeeze=False)
    for i, (analysis, what) in enumerate(analyses):
        for ax, regime in zip(axes[i], regimes):
            rows = [r for r in stability["rows"] if r["analysis"] == analysis and r["regime"] == regime]
            setups = list(dict.fromkeys(r["variation"] for r in rows))
            for n in names:
                ys = [next(r["mean_weighted_tau"] for r in rows if r["variation"] == s and r["score"] == n)
                      for s in setups]
                ys = [np.nan if y is None else y for y in ys]
                ax.plot(range(len(setups)), ys, marker="o", color=colours[n], label=n if i == 0 else None, lw=1)
            ss = stability["summary"].get((regime, None), {}).get(f"{analysis}_stability")
            ax.set_title(f"{regime}, {what}: setup stability {'n/a' if ss is None else f'{ss:+.2f}'}", fontsize=9)
            ax.set_xticks(range(len(setups)), setups, fontsize=8)
            if not rows:
                ax.text(0.5, 0.5, "not varied", ha="center", transform=ax.transAxes)
            ax.axhline(0.0, color="k", lw=0.5)
            ax.grid(alpha=0.3)
        axes[i][0].set_ylabel("mean weighted tau")
    _layout_with_legend(fig, axes)
    return save_figure(fig, path)


def write_stability(cfg, out_dir, stability) -> dict:
    """Write ``stability.csv`` and the three figures; return ``{what: path}``."""
    out_dir = Path(out_dir)
    regimes = list(cfg.regimes)
    return {
        "stability of the verdict: every analysis, variation and score": write_csv(out_dir / "stability.csv",
                                                                                  stability["rows"]),
        "weighted tau against the pool size": plot_pool_size(stability, regimes, out_dir / "stability_pool_size.png"),
        "weighted tau on leave-one-out pools": plot_leave_out(stability, regimes, out_dir / "stability_leave_out.png"),
        "weighted tau in every setup (LR grid, scoring budget K, scoring seed)": plot_setups(
            stability, regimes, out_dir / "stability_setups.png"),
    }


# --------------------------------------------------------------------------- report


def _f(value, fmt="+.3f") -> str:
    return "n/a" if value is None else format(value, fmt)


def _setup_values(stability, analysis: str, regime: str) -> str:
    """The setups of one analysis in one regime, as a list: ``[lr=0.1, lr=0.03]``."""
    setups = dict.fromkeys(r["variation"] for r in stability["rows"]
                           if r["analysis"] == analysis and r["regime"] == regime)
    return "[" + ", ".join(setups) + "]"


def stability_markdown(cfg, stability) -> list[str]:
    """The "Stability" section of ``report.md``, as lines."""
    lines = [
        "## Stability",
        "",
        "Re-evaluation of the cached results (no new fine-tuning; the scoring setups are the preset's extra "
        "scoring jobs), against the ground truth "
        "`best`. A score's verdict is its mean weighted tau over the targets (weighted tau undefined on a target, "
        "a constant side, leaves it out). *Top-3*: the fraction of the variations in which the score is among "
        "the three best scores (fewer than three scores strictly ahead; ties kept). Variations: every pool "
        f"without one member, one architecture (`arch`) or one pre-training kind (`role`), pools of fewer than "
        f"{MIN_POOL} members skipped; random sub-pools of each size from {MIN_POOL} to the zoo ({N_POOLS} per "
        f"size, seeded with the preset's seed {cfg.seed}, every subset when there are fewer; "
        f"at most {MAX_SIZES} sizes); the ground truth of each learning rate of the grid alone "
        "(its test accuracy); and the scores computed with another budget K of scoring samples per class "
        "(`setup_score_per_class`) or another seed of the scoring sample and of the scores (`setup_seeds`), "
        "each varied alone against the preset's own. *Setup stability* (Agostinelli et al., ECCV 2022, *How stable are transferability "
        "metrics evaluations?*): the mean over pairs of setups of the Kendall tau-b between the scores' mean "
        "weighted taus, 1 when every setup ranks the scores alike. *Top-3, random pools* is averaged over the sizes.",
        "",
    ]
    names = stability["names"]
    varied = [(a, what) for a, what in SETUP_ANALYSES
              if any(r["analysis"] == a for r in stability["rows"])] or [SETUP_ANALYSES[0]]
    for regime in cfg.regimes:
        overall = stability["summary"].get((regime, None), {})
        setups = [f"{what} {_setup_values(stability, a, regime)}: **{_f(overall.get(f'{a}_stability'))}**"
                  for a, what in varied if any(r["analysis"] == a and r["regime"] == regime
                                                for r in stability["rows"])]
        lines += [
            f"### {regime}",
            "",
            "Setup stability across " + "; across ".join(setups) + ".",
            "",
            "| score | weighted tau, all members | top-3, leave one member out | top-3, leave one arch out | "
            f"top-3, leave one kind out | weighted tau, pools of {MIN_POOL} (10-90%) | top-3, random pools | "
            + " | ".join(f"top-3, {what}" for _, what in varied) + " |",
            "|---|---|---|---|---|---|---|" + "---|" * len(varied),
        ]
        full = {n: stability["summary"][(regime, n)].get("full_pool") for n in names}
        order = sorted(names, key=lambda n: (full[n] is None, -(full[n] or 0.0)))  # undefined last
        for n in order:
            s = stability["summary"][(regime, n)]
            small = s.get("smallest_pool")
            pool = "n/a" if not small or small["mean"] is None else \
                f"{small['mean']:+.3f} [{small['low']:+.3f}, {small['high']:+.3f}]"
            lines.append(
                f"| {n} | {_f(s.get('full_pool'))} | {_f(s.get('leave_one_member_out'), '.2f')} | "
                f"{_f(s.get('leave_one_arch_out'), '.2f')} | {_f(s.get('leave_one_kind_out'), '.2f')} | {pool} | "
                f"{_f(s.get('pool_size'), '.2f')} | "
                + " | ".join(_f(s.get(a), ".2f") for a, _ in varied) + " |"
            )
        lines.append("")
    if stability["notes"]:
        lines += ["Notes:", ""] + [f"- {note}" for note in stability["notes"]] + [""]
    return lines
