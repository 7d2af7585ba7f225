"""Ground-truth sensitivity of the selection benchmark: would a longer fine-tuning change the truth?

The benchmark's truth is each member's best test accuracy after a fixed budget
(the small preset: 24 SGD steps per learning rate). A short budget may reward
features that are already linearly separable rather than models that fine-tune
well, so the preset can fine-tune again with ``truth_factor`` times the budget
on a subset of targets and regimes (``truth_targets``, ``truth_regimes``). For
each such (target, regime) this compares the two truths over the zoo:

- Kendall's tau-b between the members' accuracies under the two budgets, and
  the weighted tau (``scipy.stats.weightedtau``, the benchmark's convention);
- the best member under each, and the accuracy points the longer truth loses
  when the shorter one's best is kept (its regret);
- every score's weighted tau with each truth, averaged over the checked pairs,
  and the setup stability (Agostinelli et al., ECCV 2022) of the two truths as
  two setups: whether the verdict on the scores survives the longer budget.

The truths *agree* when the mean Kendall tau over the checked pairs is at least
:data:`AGREE`; otherwise the report says that the default budget should move
toward the longer one. Pure re-evaluation of the fine-tuning jobs' results.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import kendalltau

from transferlab.evaluate import setup_stability, weighted_kendall
from transferlab.report import save_figure, write_csv  # also selects the Agg backend
from transferlab.studies._selection_stability import _f

#: The mean Kendall tau between the two truths at or above which they agree.
AGREE = 0.7
TRUTH = "best_test_accuracy"


def _tau(a: np.ndarray, b: np.ndarray) -> float | None:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(kendalltau(a, b).statistic)


def _weighted(a: np.ndarray, b: np.ndarray) -> float | None:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(weighted_kendall(a, b))


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def truth_sensitivity(cfg, members, finetune_rows, long_rows, score_rows, score_names) -> dict:
    """The two truths compared on every checked (target, regime); ``{}`` when the preset has no check.

    Returns
    -------
    dict
        ``rows`` (one per checked pair: ``target, regime, kendall_tau,
        weighted_tau, best_default, best_long, regret_long, mean_gain``),
        ``scores`` (one per score: ``weighted_tau_default``, ``weighted_tau_long``),
        ``mean_tau``, ``agree``, ``stability`` (the two truths as setups),
        ``factor`` and the preset's budget ``budget``.
    """
    if not long_rows:
        return {}
    default = {(r["target"], r["regime"], r["model"]): r[TRUTH] for r in finetune_rows}
    longer = {(r["target"], r["regime"], r["model"]): r[TRUTH] for r in long_rows}
    scored = {(r["target"], r["regime"], r["model"]): r for r in score_rows}
    pairs = list(dict.fromkeys((r["target"], r["regime"]) for r in long_rows))
    rows, per_score = [], {n: ([], []) for n in score_names}
    for target, regime in pairs:
        a = np.array([default[(target, regime, m)] for m in members], dtype=float)
        b = np.array([longer[(target, regime, m)] for m in members], dtype=float)
        kept = int(np.argmax(a))
        rows.append({
            "target": target, "regime": regime, "n_models": len(members),
            "kendall_tau": _tau(a, b), "weighted_tau": _weighted(a, b),
            "best_default": members[kept], "best_long": members[int(np.argmax(b))],
            "regret_long": float(b.max() - b[kept]), "mean_gain": float(np.mean(b - a)),
        })
        for n in score_names:
            s = np.array([scored[(target, regime, m)].get(n) for m in members], dtype=float)
            if np.isfinite(s).all():
                per_score[n][0].append(_weighted(s, a))
                per_score[n][1].append(_weighted(s, b))
    scores = [{"score": n, "weighted_tau_default": _mean(d), "weighted_tau_long": _mean(lg)}
              for n, (d, lg) in per_score.items()]
    mean_tau = _mean(r["kendall_tau"] for r in rows)
    stability = setup_stability({"default": {s["score"]: s["weighted_tau_default"] for s in scores},
                                 "long": {s["score"]: s["weighted_tau_long"] for s in scores}})["stability"]
    budget = f"{cfg.steps} steps" if cfg.steps is not None else f"{cfg.train.epochs} epochs"
    return {"rows": rows, "scores": scores, "mean_tau": mean_tau, "stability": stability,
            "agree": mean_tau is not None and mean_tau >= AGREE, "factor": cfg.truth_factor, "budget": budget,
            "accuracies": {(t, r): ([default[(t, r, m)] for m in members], [longer[(t, r, m)] for m in members])
                           for t, r in pairs}}


def plot_truths(truth: dict, path) -> Path:
    """Each member's accuracy under the preset's budget against the longer one, a panel per checked pair."""
    pairs = list(truth["accuracies"])
    cols = min(3, len(pairs))
    n_rows = -(-len(pairs) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.6 * cols, 3.4 * n_rows), squeeze=False)
    by_pair = {(r["target"], r["regime"]): r for r in truth["rows"]}
    for ax, pair in zip(axes.flat, pairs):
        a, b = truth["accuracies"][pair]
        ax.scatter(a, b, s=14, alpha=0.7)
        low, high = min(min(a), min(b)), max(max(a), max(b))
        ax.plot([low, high], [low, high], color="k", lw=0.5)
        tau = by_pair[pair]["kendall_tau"]
        ax.set_title(f"{pair[0]}, {pair[1]}\ntau {'n/a' if tau is None else f'{tau:+.2f}'}", fontsize=8)
        ax.set_xlabel(f"accuracy, {truth['budget']}", fontsize=8)
        ax.set_ylabel(f"accuracy, {truth['factor']}x", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(pairs):]:
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


def write_truth(out_dir, truth: dict) -> dict:
    """``truth.csv``, ``truth_scores.csv`` and ``truth.png``; ``{}`` without a check."""
    if not truth:
        return {}
    out_dir = Path(out_dir)
    return {
        "the two ground truths compared per checked target and regime": write_csv(out_dir / "truth.csv",
                                                                                 truth["rows"]),
        "each score's weighted tau with each ground truth": write_csv(out_dir / "truth_scores.csv", truth["scores"]),
        "accuracy at the preset's budget against the longer one": plot_truths(truth, out_dir / "truth.png"),
    }


def truth_markdown(truth: dict) -> list[str]:
    """The "Ground-truth sensitivity" section of ``report.md``, as lines."""
    lines = ["## Ground-truth sensitivity", ""]
    if not truth:
        return lines + ["Not checked: the preset sets no `truth_factor` (see `presets/selection.toml`).", ""]
    verdict = (f"**They agree** (mean Kendall tau {_f(truth['mean_tau'])} >= {AGREE}): the preset's budget ranks the "
               "zoo as the longer one does." if truth["agree"] else
               f"**They disagree** (mean Kendall tau {_f(truth['mean_tau'])} < {AGREE}): the preset's budget "
               "does not rank the zoo as the longer one does; the default budget should move toward the longer "
               "one.")
    lines += [
        f"The truth (each member's best test accuracy over the LR grid) at the preset's budget ({truth['budget']}) "
        f"against {truth['factor']} times that budget, on {len(truth['rows'])} (target, regime) pairs. "
        + verdict + f" Setup stability of the verdict on the scores across the two truths: "
        f"**{_f(truth['stability'])}** (1: the scores rank alike under both).",
        "",
        "| target | regime | Kendall tau | weighted tau | best (preset) | best (longer) | regret (points) | "
        "mean gain (points) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in truth["rows"]:
        lines.append(f"| {r['target']} | {r['regime']} | {_f(r['kendall_tau'])} | {_f(r['weighted_tau'])} | "
                     f"{r['best_default']} | {r['best_long']} | {100 * r['regret_long']:.1f} | "
                     f"{100 * r['mean_gain']:+.1f} |")
    lines += ["", "| score | weighted tau, preset's truth | weighted tau, longer truth |", "|---|---|---|"]
    order = sorted(truth["scores"], key=lambda s: -(s["weighted_tau_long"] if s["weighted_tau_long"] is not None
                                                    else -np.inf))
    for s in order:
        lines.append(f"| {s['score']} | {_f(s['weighted_tau_default'])} | {_f(s['weighted_tau_long'])} |")
    return lines + [""]
