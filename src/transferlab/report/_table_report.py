"""Tables, figures and ``report.md`` of ``transferlab evaluate``: a results table fine-tuned elsewhere."""

from __future__ import annotations

from pathlib import Path

from transferlab._atomic import atomic_write_bytes
from transferlab.report._figures import plot_metric_bars, plot_score_grid
from transferlab.report._tables import write_csv


def _interval(row: dict, metric: str) -> str:
    est = row.get(metric)
    if est is None:
        return "n/a"
    low, high = row.get(f"{metric}_low"), row.get(f"{metric}_high")
    if low is None or high is None:
        return f"{est:+.3f}"
    return f"{est:+.3f} [{low:+.3f}, {high:+.3f}]"


def _mean(row: dict, metric: str, digits: int = 2) -> str:
    value = row.get(metric)
    return "n/a" if value is None else f"{value:.{digits}f}"


def _markdown(evaluation: dict, source: str, files: dict) -> str:
    baseline = evaluation["baseline"]
    gains = baseline is not None
    lines = [
        f"# Model-selection evaluation of `{source}`",
        "",
        "The evaluation of the selection study (after Deshpande et al. 2021, *A linearized framework and a new "
        "benchmark for model selection for fine-tuning*) applied to a table of fine-tuned accuracies and scores. "
        f"Targets: {', '.join(f'`{t}`' for t in evaluation['targets'])}. "
        f"Regimes: {', '.join(evaluation['regimes'])}. Scores: {', '.join(f'`{s}`' for s in evaluation['scores'])}.",
        "",
        (f"Gains are over the baseline model `{baseline}`." if gains else
         "No baseline model was named (--baseline MODEL): no gains; relative top-k accuracy "
         "(best accuracy among the top k by score over the best accuracy of the target) instead."),
        "",
        "Means over targets with percentile bootstrap 95% intervals (targets resampled); in parentheses the "
        "expectation under uniformly random selection. Ties in score count pessimistically. Top-1 regret: "
        "the best accuracy of the target minus that of the top-scored model. metrics.csv and summary.csv "
        "also hold gap fidelity and top-3 regret.",
        "",
    ]
    for regime in evaluation["regimes"]:
        rows = [r for r in evaluation["summary"] if r["regime"] == regime]
        rows.sort(key=lambda r: -(r["weighted_kendall"] if r.get("weighted_kendall") is not None else -9))
        k1, k3 = ("top1_gain", "top3_gain") if gains else ("relative_top1_accuracy", "relative_top3_accuracy")
        what = "gain" if gains else "relative accuracy"
        lines += [
            f"## Regime `{regime}`",
            "",
            f"| score | targets | weighted tau | Spearman | Pearson | top-1 {what} (random) | top-3 {what} (random) "
            "| top-1 regret | trials to best (random) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['score']} | {r['n_targets']} | {_interval(r, 'weighted_kendall')} | "
                f"{_interval(r, 'spearman')} | "
                f"{_interval(r, 'pearson')} | {_interval(r, k1)} ({_mean(r, 'random_' + k1, 3)}) | "
                f"{_interval(r, k3)} ({_mean(r, 'random_' + k3, 3)}) | {_interval(r, 'top1_regret')} | "
                f"{_mean(r, 'trials_to_best')} ({_mean(r, 'random_trials_to_best')}) |"
            )
        lines.append("")
    lines += ["## Files", ""]
    lines += [f"- `{Path(p).name}`: {what}" for what, p in files.items()]
    return "\n".join(lines) + "\n"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_table_report(evaluation: dict, out_dir: str | Path, *, source: str = "results.csv") -> dict[str, str]:
    """Write ``metrics.csv``, ``summary.csv``, the figures and ``report.md`` of a table evaluation.

    ``evaluation`` is what :func:`transferlab.evaluate.evaluate_table` returns.
    Figures: one grid per score (targets x regimes) of the score against the
    fine-tuned accuracy, and bars of the mean weighted Kendall tau per score and
    regime with their 95% intervals (and of trials to the best model against the
    random-selection expectation). Every file is written atomically. Returns
    ``{what: path}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, regimes = evaluation["rows"], list(evaluation["regimes"])
    files = {
        "selection metrics per target, regime and score": write_csv(out_dir / "metrics.csv", evaluation["metrics"]),
        "metrics averaged over targets, with 95% intervals": write_csv(out_dir / "summary.csv", evaluation["summary"]),
    }
    for name in evaluation["scores"]:
        files[f"{name} against fine-tuned accuracy, every target and regime"] = plot_score_grid(
            rows, rows, name, out_dir / f"score_vs_accuracy_{_slug(name)}.png",
            targets=list(evaluation["targets"]), regimes=regimes, accuracy="accuracy",
        )
    files["weighted Kendall tau per score"] = plot_metric_bars(
        evaluation["summary"], "weighted_kendall", out_dir / "weighted_kendall.png", regimes=regimes,
        ylabel="weighted Kendall tau",
    )
    files["trials until the best model is selected"] = plot_metric_bars(
        evaluation["summary"], "trials_to_best", out_dir / "trials_to_best.png", regimes=regimes,
        ylabel="trials to the best model (lower is better)", reference="random_trials_to_best",
    )
    report = out_dir / "report.md"
    atomic_write_bytes(report, _markdown(evaluation, source, {**files, "this report": report}).encode())
    files["this report"] = report
    return {what: str(p) for what, p in files.items()}
