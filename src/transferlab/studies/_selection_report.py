"""Evaluate the selection benchmark's rankings and write its tables, figures and report."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from transferlab._atomic import atomic_write_bytes
from transferlab.evaluate import fidelity_metrics, selection_metrics, summarise_over_targets
from transferlab.report import plot_metric_bars, plot_score_grid, write_csv
from transferlab.scores import NEED_ARGUMENTS
from transferlab.scores import spec as score_spec
from transferlab.studies._selection_claims import (
    baselines_markdown,
    claims_markdown,
    fidelity_markdown,
    group_order,
    judge_selection,
    score_group,
    with_groups,
)

#: The ground truths a ranking is compared with: the paper's protocol (best test
#: accuracy over the LR grid) and the honest one (LR chosen on a validation split).
TRUTHS = {"best": "best_test_accuracy", "val": "val_selected_test_accuracy"}
_KEYS = ("target", "regime", "truth", "score")


def _baseline_name(zoo) -> str | None:
    """The generic expert of the first architecture: the baseline every selection must beat."""
    generic = [m.name for m in zoo if getattr(m, "role", None) == "generic"]
    return generic[0] if generic else None


def _score_cost(name: str, seconds: dict) -> float:
    """Seconds to compute ``name`` for the whole zoo: its inputs (as if alone) plus the score itself.

    A pool-level score's spec needs ``features`` (of every member), like any other spec's needs.
    """
    inputs = [arg for need in score_spec(name).needs for arg in NEED_ARGUMENTS[need]]
    return float(sum(seconds.get(arg, 0.0) for arg in inputs) + seconds.get(name, 0.0))


def evaluate_selection(cfg, zoo, finetune_rows, score_rows, score_seconds) -> dict:
    """Per-target metrics, their means over targets with bootstrap 95% intervals, and the cost table."""
    baseline = _baseline_name(zoo)
    members = [m.name for m in zoo]
    accuracy = {(r["target"], r["regime"], r["model"]): r for r in finetune_rows}
    scored = {(r["target"], r["regime"], r["model"]): r for r in score_rows}
    seconds_by = {(s["target"], s["regime"]): s for s in score_seconds}

    metrics, cost = [], []
    for (target, regime), secs in seconds_by.items():
        names = secs["scores"]
        brute = sum(accuracy[(target, regime, m)]["seconds"] for m in members)
        for truth, column in TRUTHS.items():
            acc = np.array([accuracy[(target, regime, m)][column] for m in members], dtype=float)
            for name in names:
                values = np.array([scored[(target, regime, m)][name] for m in members], dtype=float)
                row = selection_metrics(values, acc, baseline=members.index(baseline or members[0]), ks=(1, 3))
                row.update(fidelity_metrics(values, acc, ks=(1, 3)))  # gap fidelity, top-1/top-3 regret
                if baseline is None:  # no generic expert in the zoo: no gain to report
                    row.update({k: None for k in row if k.endswith("_gain")})
                row = {"target": target, "regime": regime, "truth": truth, "score": name, **row}
                metrics.append(row)
        ft_seconds = np.array([accuracy[(target, regime, m)]["seconds"] for m in members])
        for name in names:
            values = np.array([scored[(target, regime, m)][name] for m in members], dtype=float)
            order = np.argsort(-values, kind="stable")
            scoring = _score_cost(name, secs)
            cost.append(
                {
                    "target": target,
                    "regime": regime,
                    "score": name,
                    "brute_force_seconds": brute,
                    "scoring_seconds": scoring,
                    "top1_seconds": scoring + float(ft_seconds[order[:1]].sum()),
                    "top3_seconds": scoring + float(ft_seconds[order[:3]].sum()),
                    "scoring_ratio": scoring / brute,
                    "top1_ratio": (scoring + float(ft_seconds[order[:1]].sum())) / brute,
                    "top3_ratio": (scoring + float(ft_seconds[order[:3]].sum())) / brute,
                }
            )

    # Means over targets with bootstrap intervals; a metric defined on < 2 targets has none.
    summary = summarise_over_targets(metrics, ("regime", "truth", "score"), seed=cfg.seed)
    evaluation = {"metrics": with_groups(metrics), "summary": with_groups(summary), "cost": cost,
                  "baseline": baseline}
    evaluation.update(judge_selection(cfg, evaluation, finetune_rows))  # claims, scores against baselines
    return evaluation


def _cost_summary(cost) -> list[dict]:
    by_score = defaultdict(list)
    for row in cost:
        by_score[row["score"]].append(row)
    out = []
    for name, rows in sorted(by_score.items()):
        out.append(
            {
                "score": name,
                "brute_force_seconds": float(np.mean([r["brute_force_seconds"] for r in rows])),
                "scoring_seconds": float(np.mean([r["scoring_seconds"] for r in rows])),
                "top1_seconds": float(np.mean([r["top1_seconds"] for r in rows])),
                "top3_seconds": float(np.mean([r["top3_seconds"] for r in rows])),
                "scoring_ratio": float(np.mean([r["scoring_ratio"] for r in rows])),
                "top3_ratio": float(np.mean([r["top3_ratio"] for r in rows])),
            }
        )
    return out


def _budget(cfg) -> str:
    if cfg.steps is None:
        return f"{cfg.train.epochs} epochs"
    return f"at least {cfg.steps} SGD steps of batch {cfg.train.batch_size} in every regime, whole epochs"


def _fmt(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:+.{digits}f}" if isinstance(value, float) else str(value)


def _interval(row, metric) -> str:
    est = row.get(metric)
    if est is None:
        return "n/a"
    low, high = row.get(f"{metric}_low"), row.get(f"{metric}_high")
    return f"{est:+.3f} [{low:+.3f}, {high:+.3f}]"


def _markdown(cfg, evaluation, files) -> str:
    lines = [
        f"# Model-selection benchmark: preset `{cfg.preset}`",
        "",
        "After Deshpande et al. 2021, *A linearized framework and a new benchmark for model selection "
        "for fine-tuning*. Every score ranks the zoo from at most "
        f"{cfg.score_per_class} training samples per class; every member is fine-tuned over the learning "
        f"rates {list(cfg.lrs)} ({_budget(cfg)}). Ground truth `best`: the best test accuracy over "
        "the grid (the paper's protocol); `val`: the test accuracy of the rate chosen on a validation split.",
        "",
        f"Targets: {', '.join(f'`{t.name}`' for t in cfg.targets)}. Regimes: {', '.join(cfg.regimes)}. "
        f"Baseline for the gains: `{evaluation['baseline'] or 'none (the zoo has no generic expert)'}`.",
        "",
        "Means over targets with bootstrap 95% intervals.",
        "",
        *claims_markdown(evaluation.get("claims", [])),
    ]
    for regime in cfg.regimes:
        for truth in TRUTHS:
            rows = [r for r in evaluation["summary"] if r["regime"] == regime and r["truth"] == truth]
            if not rows:
                continue
            # Priors, then baselines, then scores; by weighted tau within each group.
            rows.sort(key=lambda r: (group_order(r["score"]),
                                     -(r.get("weighted_kendall") if r.get("weighted_kendall") is not None else -9)))
            lines += [
                f"## {regime}, ground truth `{truth}`",
                "",
                "| score | group | weighted tau | Spearman | Pearson | top-1 gain | top-3 gain "
                "| trials to best (random) |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for r in rows:
                trials = r.get("trials_to_best")
                rand = r.get("random_trials_to_best")
                lines.append(
                    f"| {r['score']} | {score_group(r['score'])} | {_interval(r, 'weighted_kendall')} | "
                    f"{_interval(r, 'spearman')} | "
                    f"{_interval(r, 'pearson')} | {_interval(r, 'top1_gain')} | {_interval(r, 'top3_gain')} | "
                    f"{'n/a' if trials is None else f'{trials:.2f}'} ({'n/a' if rand is None else f'{rand:.2f}'}) |"
                )
            lines.append("")
    lines += baselines_markdown(evaluation.get("versus_baselines", []))
    lines += fidelity_markdown(cfg, evaluation["summary"])
    lines += [
        "## Cost",
        "",
        "Mean over targets and regimes of the wall time (seconds) to fine-tune the whole zoo (brute force) "
        "against scoring alone and scoring plus fine-tuning the top 1 and top 3.",
        "",
        "| score | brute force | scoring | top-1 | top-3 | scoring / brute | top-3 / brute |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in _cost_summary(evaluation["cost"]):
        lines.append(
            f"| {r['score']} | {r['brute_force_seconds']:.1f} | {r['scoring_seconds']:.2f} | {r['top1_seconds']:.1f} | "
            f"{r['top3_seconds']:.1f} | {r['scoring_ratio']:.3f} | {r['top3_ratio']:.3f} |"
        )
    if evaluation.get("stability"):  # the "Stability" section (studies/_selection_stability.py)
        from transferlab.studies._selection_stability import stability_markdown

        lines += ["", *stability_markdown(cfg, evaluation["stability"])]
    if "truth" in evaluation:  # the "Ground-truth sensitivity" section (studies/_selection_truth.py)
        from transferlab.studies._selection_truth import truth_markdown

        lines += ["", *truth_markdown(evaluation["truth"])]
    lines += ["", "## Files", ""]
    lines += [f"- `{Path(p).name}`: {what}" for what, p in files.items()]
    return "\n".join(lines) + "\n"


def write_report(cfg, out_dir: Path, finetune_rows, score_rows, evaluation) -> dict:
    """Write the CSV tables, the figures and ``report.md`` into ``out_dir``; return what was written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "fine-tuned accuracy of every (member, target, regime)": write_csv(out_dir / "finetune.csv", finetune_rows),
        "every score of every (member, target, regime)": write_csv(out_dir / "scores.csv", score_rows),
        "ranking metrics per target": write_csv(out_dir / "metrics.csv", evaluation["metrics"]),
        "metrics averaged over targets, with 95% intervals": write_csv(out_dir / "summary.csv", evaluation["summary"]),
        "cost per target, regime and score": write_csv(out_dir / "cost.csv", evaluation["cost"]),
    }
    for what, name, rows in (("the paper's claims, each judged by an interval", "claims.csv", evaluation["claims"]),
                             ("each score's lead in weighted tau over the best baseline", "versus_baselines.csv",
                              evaluation["versus_baselines"])):
        if rows:  # none without a generic expert, two scores or a baseline
            files[what] = write_csv(out_dir / name, rows)
    names = sorted({r["score"] for r in evaluation["metrics"]})
    for name in names:
        files[f"{name} against fine-tuned accuracy, every target and regime"] = plot_score_grid(
            finetune_rows, score_rows, name, out_dir / f"score_vs_accuracy_{name}.png",
            targets=[t.name for t in cfg.targets], regimes=list(cfg.regimes),
        )
    best = [r for r in evaluation["summary"] if r["truth"] == "best"]
    files["top-3 accuracy gain over the generic expert"] = plot_metric_bars(
        best, "top3_gain", out_dir / "top3_gain.png", regimes=list(cfg.regimes),
        ylabel="top-3 gain over the generic expert",
    )
    files["trials until the best model is selected"] = plot_metric_bars(
        best, "trials_to_best", out_dir / "trials_to_best.png", regimes=list(cfg.regimes),
        ylabel="trials to the best model (lower is better)", reference="random_trials_to_best",
    )
    files["weighted Kendall tau"] = plot_metric_bars(
        best, "weighted_kendall", out_dir / "weighted_kendall.png", regimes=list(cfg.regimes),
        ylabel="weighted Kendall tau",
    )
    cost_rows = _cost_summary(evaluation["cost"])
    files["cost table"] = write_csv(out_dir / "cost_summary.csv", cost_rows)
    if evaluation.get("stability"):
        from transferlab.studies._selection_stability import write_stability

        files.update(write_stability(cfg, out_dir, evaluation["stability"]))
    if evaluation.get("truth"):
        from transferlab.studies._selection_truth import write_truth

        files.update(write_truth(out_dir, evaluation["truth"]))
    # Written by run_study once the report is done.
    files["resolved configuration"] = out_dir / "config.json"
    files["code versions, executor and wall time"] = out_dir / "provenance.json"
    report = out_dir / "report.md"
    atomic_write_bytes(report, _markdown(cfg, evaluation, {**files, "this report": report}).encode())
    files["this report"] = report
    return {what: str(p) for what, p in files.items()}
