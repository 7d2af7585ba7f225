"""The selection study's verdicts on Deshpande et al. (2021), its baselines and its fidelity and regret.

Deshpande, Achille, Ravichandran, Li, Zancato, Fowlkes, Bhotika, Soatto &
Perona, "A linearized framework and a new benchmark for model selection for
fine-tuning" (arXiv:2102.00084, 2021). Every claim is judged on the paper's
ground truth (``best``: the best test accuracy over the learning-rate grid),
per regime, by a statistic with a 95% percentile bootstrap interval over the
targets (:func:`transferlab.evaluate.bootstrap_ci`, the study's seed) and a
threshold (:func:`transferlab.studies._claims.verdict`: "holds" when the
interval clears it, "does not hold" when it lies on the wrong side,
"inconclusive" when it straddles it). Accuracies are fractions (0-1).

The claims
----------
(a) *The best zoo member beats the generic expert* ("ImageNet expert" in the
    paper): per target, :math:`g = \\max_m a_m - a_{\\text{generic}}`, mean over
    targets; holds when the interval is above 0 (``g >= 0`` by construction: the
    generic expert is a member). *By more at few-shot than at full data*: the
    paired per-target difference :math:`g_{\\text{few}} - g_{\\text{full}}`
    (fewest shots of the preset against ``full``), holds above 0.
(b) *Only a few members give a gain on each target*: per target, the share of
    the other members whose accuracy is strictly above the generic expert's;
    holds when the interval of its mean is below :data:`FEW` (a quarter of the
    zoo).
(c) *Top-3 selection by the best scores recovers most of the best gain*: for
    the two scores (group ``score``) with the highest mean weighted tau, the
    share :math:`\\sum_t \\text{gain}_3(t) / \\sum_t g(t)` over the targets with
    a gain to recover (``g > 0``; a ratio of sums, stable where one ``g`` is
    tiny), resampling targets; holds above :data:`MOST` (a half).
(d) *Which score ranks best*: the score with the highest mean weighted tau, and
    a paired bootstrap over targets of its lead over the next score (per-target
    differences of weighted tau, targets where both are defined); "holds"
    (the lead is significant) when the interval excludes 0 from above.

Baselines: per regime, each score's paired lead in weighted tau over the best
baseline (the random score, the target-blind priors and kNN / linear probe,
whichever the preset scores: groups ``prior`` and ``baseline``).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from transferlab.evaluate import bootstrap_ci
from transferlab.scores import GROUPS
from transferlab.scores import spec as score_spec
from transferlab.studies._claims import judged_claim
from transferlab.studies._selection_config import regime_shots

#: Claim (b) holds when fewer than this share of the other members beats the generic expert.
FEW = 0.25
#: Claim (c) holds when top-3 selection recovers more than this share of the best gain.
MOST = 0.5
_TRUTH = "best"  # the paper's ground truth
_COLUMN = "best_test_accuracy"


def score_group(name: str) -> str:
    """The registry's group of a score (``prior``, ``baseline`` or ``score``); ``score`` for one it does not know."""
    try:
        return score_spec(name).group
    except (ValueError, KeyError):
        return "score"


def group_order(name: str) -> int:
    """Sort key: priors, then baselines, then scores (:data:`transferlab.scores.GROUPS`)."""
    group = score_group(name)
    return GROUPS.index(group) if group in GROUPS else len(GROUPS)


def _ci(values, seed, statistic=np.mean):
    """(estimate, low, high) over the defined values, or None with fewer than 2."""
    values = [v for v in values if v is not None]
    return bootstrap_ci(values, statistic=statistic, seed=seed) if len(values) >= 2 else None


def _fmt(ci, digits=3) -> str:
    if ci is None:
        return "n/a (fewer than 2 targets)"
    return f"{ci[0]:+.{digits}f} [{ci[1]:+.{digits}f}, {ci[2]:+.{digits}f}]"


def _accuracies(finetune_rows) -> dict:
    """{(target, regime): {model: accuracy}} on the paper's truth."""
    out = defaultdict(dict)
    for r in finetune_rows:
        out[(r["target"], r["regime"])][r["model"]] = float(r[_COLUMN])
    return out


def _metric(metrics, regime, score, column) -> dict:
    """{target: value} of one metric of one score in one regime, on the paper's truth."""
    return {r["target"]: r[column] for r in metrics
            if r["regime"] == regime and r["truth"] == _TRUTH and r["score"] == score}


def ranked_scores(summary, regime) -> list[str]:
    """The scores of group ``score`` in ``regime``, by decreasing mean weighted tau (paper's truth)."""
    rows = [r for r in summary if r["regime"] == regime and r["truth"] == _TRUTH
            and score_group(r["score"]) == "score" and r.get("weighted_kendall") is not None]
    return [r["score"] for r in sorted(rows, key=lambda r: (-r["weighted_kendall"], r["score"]))]


def _lead(metrics, regime, first, second, seed):
    """Paired per-target differences of weighted tau, first minus second, and their interval."""
    a, b = _metric(metrics, regime, first, "weighted_kendall"), _metric(metrics, regime, second, "weighted_kendall")
    diffs = [a[t] - b[t] for t in a if t in b and a[t] is not None and b[t] is not None]
    return diffs, _ci(diffs, seed)


def selection_claims(cfg, evaluation, finetune_rows) -> list[dict]:
    """A verdict with its interval for each claim of Deshpande et al. (2021); see the module docstring."""
    seed, metrics, summary = cfg.seed, evaluation["metrics"], evaluation["summary"]
    generic = evaluation.get("baseline")
    acc = _accuracies(finetune_rows)
    regimes = list(cfg.regimes)
    claims = []
    gains = {}  # (regime) -> {target: best gain}
    if generic is not None:
        for regime in regimes:
            per_target = {t: max(a.values()) - a[generic] for (t, r), a in acc.items() if r == regime}
            gains[regime] = per_target
            ci = _ci(list(per_target.values()), seed)
            claims.append(judged_claim(
                "the best zoo member beats the generic expert", regime,
                "mean over targets of best accuracy - generic expert's", ci, 0.0,
                f"best member over `{generic}`: {_fmt(ci)} over {len(per_target)} targets"))
        shots = {r: regime_shots(r) for r in regimes}
        few = [r for r in regimes if shots[r] is not None]
        if "full" in regimes and few:
            low_shot = min(few, key=lambda r: shots[r])
            diffs = [gains[low_shot][t] - gains["full"][t] for t in gains[low_shot] if t in gains["full"]]
            ci = _ci(diffs, seed)
            claims.append(judged_claim(
                f"the best member's gain is larger at {low_shot} than at full data", f"{low_shot} - full",
                "mean over targets of the paired gain difference", ci, 0.0,
                f"gain {low_shot} {_fmt(_ci(list(gains[low_shot].values()), seed))}, full "
                f"{_fmt(_ci(list(gains['full'].values()), seed))}; paired difference {_fmt(ci)}"))
        for regime in regimes:
            shares, n_others = [], 0
            for (t, r), a in sorted(acc.items()):
                if r == regime:
                    others = [m for m in a if m != generic]
                    n_others = len(others)
                    shares.append(sum(a[m] > a[generic] for m in others) / n_others)
            ci = _ci(shares, seed)
            claims.append(judged_claim(
                "only a few members give a gain on each target", regime,
                "mean over targets of the share of members above the generic expert", ci, FEW,
                f"share {_fmt(ci)}; 'a few' means under {FEW:.0%} of the other {n_others} members",
                above=False))
        for regime in regimes:
            positive = {t: g for t, g in gains[regime].items() if g > 0}
            for name in ranked_scores(summary, regime)[:2]:
                top3 = _metric(metrics, regime, name, "top3_gain")
                targets = [t for t in positive if top3.get(t) is not None]
                num = np.array([top3[t] for t in targets])
                den = np.array([positive[t] for t in targets])
                ci = None
                if len(targets) >= 2:
                    ci = bootstrap_ci(np.arange(len(targets), dtype=float), seed=seed,
                                      statistic=lambda i: num[i.astype(int)].sum() / den[i.astype(int)].sum())
                claims.append(judged_claim(
                    "top-3 selection by a best score recovers most of the best gain", f"{regime}, {name}",
                    "sum over targets of top-3 gain / sum of best gain", ci, MOST,
                    f"`{name}` (rank {ranked_scores(summary, regime).index(name) + 1} by weighted tau) recovers "
                    f"{_fmt(ci)} of the gain, over the {len(targets)} targets with a gain; 'most' means over "
                    f"{MOST:.0%}"))
    for regime in regimes:
        ranked = ranked_scores(summary, regime)
        if len(ranked) < 2:
            continue
        first, second = ranked[:2]
        diffs, ci = _lead(metrics, regime, first, second, seed)
        claims.append(judged_claim(
            f"`{first}` ranks best, significantly ahead of the next", f"{regime}, {first} - {second}",
            "mean over targets of the paired weighted-tau difference", ci, 0.0,
            f"`{first}` leads `{second}` by {_fmt(ci)} in weighted tau over {len(diffs)} targets "
            "(paired bootstrap; significant when the interval excludes 0)"))
    return claims


def versus_baselines(cfg, evaluation) -> list[dict]:
    """Per regime and score: its paired lead in weighted tau over the best baseline, with an interval.

    The best baseline of a regime is the member of groups ``prior`` and
    ``baseline`` with the highest mean weighted tau (paper's truth). ``verdict``
    is "beats" when the interval of the lead is above 0, "below" when it is
    below 0, "within noise" otherwise.
    """
    out = []
    summary, metrics = evaluation["summary"], evaluation["metrics"]
    for regime in cfg.regimes:
        rows = [r for r in summary if r["regime"] == regime and r["truth"] == _TRUTH
                and r.get("weighted_kendall") is not None]
        bases = sorted((r for r in rows if score_group(r["score"]) != "score"),
                       key=lambda r: (-r["weighted_kendall"], r["score"]))
        if not bases:
            continue
        best = bases[0]["score"]
        for name in ranked_scores(summary, regime):
            diffs, ci = _lead(metrics, regime, name, best, cfg.seed)
            judged = "within noise" if ci is None or ci[1] <= 0 <= ci[2] else "beats" if ci[1] > 0 else "below"
            out.append({"regime": regime, "score": name, "best_baseline": best,
                        "best_baseline_group": score_group(best), "n_targets": len(diffs),
                        "lead": None if ci is None else ci[0], "lead_low": None if ci is None else ci[1],
                        "lead_high": None if ci is None else ci[2], "verdict": judged})
    return out


# --------------------------------------------------------------------------- report sections


def _cell(value) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def claims_markdown(claims) -> list[str]:
    """The report's "Claims" section."""
    lines = [
        "## Claims",
        "",
        "The claims of Deshpande et al. (2021), on the paper's ground truth (`best`), each judged by a "
        "statistic with its 95% bootstrap interval over targets against a threshold: *holds* when the "
        "interval clears it, *does not hold* when it lies on the wrong side, *inconclusive* when it "
        "straddles it (also `claims.csv`).",
        "",
        "| claim | setting | statistic | estimate [95% CI] | threshold | verdict | evidence |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in claims:
        ci = "n/a" if c["estimate"] is None else f"{c['estimate']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]"
        verdict = c["verdict"] if c["verdict"] == "holds" else f"**{c['verdict']}**"
        lines.append(f"| {c['claim']} | {c['setting']} | {c['statistic']} | {ci} | {c['threshold']:g} | "
                     f"{verdict} | {c['evidence']} |")
    if not claims:
        lines.append("| (none: the preset has no generic expert and fewer than two scores) | | | | | | |")
    return lines + [""]


def baselines_markdown(rows) -> list[str]:
    """Which scores beat the best baseline, per regime."""
    lines = [
        "## Scores against the baselines",
        "",
        "Per regime, each score's lead in mean weighted tau over the best baseline (the best of the random "
        "score, the target-blind priors and kNN / linear probe that the preset scores), paired over targets "
        "with a 95% bootstrap interval: *beats* when the interval is above 0.",
        "",
    ]
    if not rows:
        return lines + ["No baseline or prior is scored by this preset.", ""]
    for regime in dict.fromkeys(r["regime"] for r in rows):
        rs = [r for r in rows if r["regime"] == regime]
        beat = [f"`{r['score']}`" for r in rs if r["verdict"] == "beats"]
        lines.append(f"- **{regime}** (best baseline `{rs[0]['best_baseline']}`, {rs[0]['best_baseline_group']}): "
                     + (f"beaten by {', '.join(beat)}" if beat else "no score beats it")
                     + "; " + ", ".join(
                         f"`{r['score']}` {_cell(r['lead'])}"
                         + ("" if r["lead"] is None else f" [{r['lead_low']:+.3f}, {r['lead_high']:+.3f}]")
                         for r in rs) + ".")
    return lines + [""]


def fidelity_markdown(cfg, summary) -> list[str]:
    """Fidelity of score gaps and regret of top-1 and top-3 selection, per regime (paper's truth)."""
    lines = [
        "## Fidelity and regret",
        "",
        "*Fidelity*: per target, the Pearson correlation of the score gap with the accuracy gap over every "
        "pair of models oriented by the score (the first model is the one the score prefers; over all ordered "
        "pairs it would equal the plain Pearson correlation above), then the mean over targets. *Regret*: accuracy "
        "lost (fraction) by fine-tuning the score's first k models and keeping the best, against the best "
        "model. Means over targets with 95% bootstrap intervals (`transferlab.evaluate.gap_fidelity`, "
        "`top_k_regret`).",
        "",
    ]
    for regime in cfg.regimes:
        rows = sorted((r for r in summary if r["regime"] == regime and r["truth"] == _TRUTH),
                      key=lambda r: (group_order(r["score"]), r["score"]))
        if not rows:
            continue
        lines += [f"### {regime}", "", "| score | group | fidelity | top-1 regret | top-3 regret |",
                  "|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['score']} | {score_group(r['score'])} | {_interval(r, 'gap_fidelity')} | "
                         f"{_interval(r, 'top1_regret')} | {_interval(r, 'top3_regret')} |")
        lines.append("")
    return lines


def _interval(row, metric) -> str:
    if row.get(metric) is None:
        return "n/a"
    return f"{row[metric]:+.3f} [{row[f'{metric}_low']:+.3f}, {row[f'{metric}_high']:+.3f}]"


# --------------------------------------------------------------------------- hooks of the evaluation


def with_groups(rows) -> list[dict]:
    """``rows`` with a ``group`` column after ``score``, ordered priors, baselines, scores within each
    (regime, truth) (other columns kept in order; the sort is stable otherwise)."""
    out = []
    for r in rows:
        row = {}
        for k, v in r.items():
            if k == "group":
                continue
            row[k] = v
            if k == "score":
                row["group"] = score_group(v)
        out.append(row)
    return sorted(out, key=lambda r: (r.get("target", ""), r.get("regime", ""), r.get("truth", ""),
                                      group_order(r["score"]), r["score"]))


def judge_selection(cfg, evaluation, finetune_rows) -> dict:
    """The claims and the comparison with the baselines, to add to the evaluation."""
    return {"claims": selection_claims(cfg, evaluation, finetune_rows),
            "versus_baselines": versus_baselines(cfg, evaluation)}
