"""The transfer-bound study's summary across pairs, its verdicts, figures and report."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from transferlab._atomic import atomic_write_bytes
from transferlab.evaluate import bootstrap_ci
from transferlab.report import save_figure, write_csv  # also selects the Agg backend

#: Predictors of the real loss, each oriented so that it should rise with the loss.
_PREDICTORS = (("bound", "bound", 1.0), ("-LogME", "logme", -1.0), ("-LEEP", "leep", -1.0))
_TERMS = (("source_loss", "re-weighted source loss"), ("conditional_entropy", "H(Y_T | Y_S)"),
          ("wasserstein", "Wasserstein term"))


def _correlation(x: np.ndarray, y: np.ndarray, kind: str, seed: int) -> tuple[float, float, float]:
    """Pearson or Spearman correlation and its paired percentile-bootstrap 95% interval (pairs resampled)."""
    fn = stats.pearsonr if kind == "pearson" else stats.spearmanr
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan"), float("nan")
    estimate = float(fn(x, y)[0])
    with warnings.catch_warnings():  # a resample of tied values has no correlation: it is dropped (NaN)
        warnings.simplefilter("ignore")
        boot = stats.bootstrap((x, y), lambda a, b: fn(a, b)[0], paired=True, vectorized=False, n_resamples=2000,
                               method="percentile", random_state=np.random.default_rng(seed))
    return estimate, float(boot.confidence_interval.low), float(boot.confidence_interval.high)


def _share(hits: np.ndarray) -> tuple[float, float, float]:
    """Share of true entries and its exact (Clopper-Pearson) 95% interval."""
    k, n = int(hits.sum()), int(hits.size)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return k / n, float(ci.low), float(ci.high)


def _within(pairs, group: str, seed: int) -> tuple[float, float, float, int]:
    """Mean Spearman of the bound with the real loss inside each group (>= 3 pairs), bootstrap over groups."""
    values = []
    for name in sorted({p[group] for p in pairs}):
        rows = [p for p in pairs if p[group] == name]
        x, y = np.array([p["bound"] for p in rows]), np.array([p["probe_loss"] for p in rows])
        if len(rows) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0 and np.isfinite(x).all():
            values.append(float(stats.spearmanr(x, y)[0]))
    if len(values) < 2:
        return float("nan"), float("nan"), float("nan"), len(values)
    return (*bootstrap_ci(values, seed=seed), len(values))


def summarise_bound(cfg, pairs: list[dict]) -> tuple[list[dict], list[dict]]:
    """Validity shares, correlations with the real loss, and a verdict per claim.

    Beside the correlations over all pairs: the mean Spearman correlation inside
    each model (across its targets: the paper's view of one source model) and
    inside each target (across models: model selection), with a bootstrap over
    the groups; and the correlation of the transferred source classifier's own
    loss with the real loss (how much of transferability the transforms capture
    before the Wasserstein term is added).
    """
    loss = np.array([p["probe_loss"] for p in pairs], dtype=np.float64)
    bound = np.array([p["bound"] for p in pairs], dtype=np.float64)
    summary = []
    for name, hits in (("bound >= probe loss", bound >= loss),
                       ("bound >= transferred-classifier loss",
                        bound >= np.array([p["transferred_loss"] for p in pairs]))):
        share, low, high = _share(hits)
        summary.append({"measure": "share of pairs", "of": name, "estimate": share, "low": low, "high": high,
                        "n_pairs": len(pairs), "n_groups": None})
    for label, column, sign in (*_PREDICTORS, ("transferred-classifier loss", "transferred_loss", 1.0)):
        x = sign * np.array([p[column] for p in pairs], dtype=np.float64)
        for kind in ("pearson", "spearman"):
            est, low, high = _correlation(x, loss, kind, cfg.seed)
            summary.append({"measure": kind, "of": f"{label} vs probe loss", "estimate": est, "low": low,
                            "high": high, "n_pairs": len(pairs), "n_groups": None})
    for group, what in (("model", "within each model (across targets)"), ("target", "within each target (across models)")):
        est, low, high, n = _within(pairs, group, cfg.seed)
        summary.append({"measure": "mean spearman", "of": f"bound vs probe loss {what}", "estimate": est, "low": low,
                        "high": high, "n_pairs": len(pairs), "n_groups": n})
    return summary, _claims(summary)


def _row(summary, measure, of) -> dict:
    return next(r for r in summary if r["measure"] == measure and r["of"] == of)


def _fmt(r) -> str:
    return f"{r['estimate']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


def _claims(summary) -> list[dict]:
    valid = _row(summary, "share of pairs", "bound >= probe loss")
    exact = _row(summary, "share of pairs", "bound >= transferred-classifier loss")
    spearman = {label: _row(summary, "spearman", f"{label} vs probe loss") for label, _, _ in _PREDICTORS}
    pearson = _row(summary, "pearson", "bound vs probe loss")
    best_score = max(spearman["-LogME"]["estimate"], spearman["-LEEP"]["estimate"])
    per_model = _row(summary, "mean spearman", "bound vs probe loss within each model (across targets)")
    per_target = _row(summary, "mean spearman", "bound vs probe loss within each target (across models)")
    return [
        {"claim": "the bound upper-bounds the linear-probe target loss", "setting": f"{valid['n_pairs']} pairs",
         "supported": bool(valid["estimate"] >= 0.9),
         "numbers": f"share of pairs {_fmt(valid)}; the transferred classifier's own loss is bounded in "
                    f"{exact['estimate']:.0%} of pairs (a theorem on the same samples)"},
        {"claim": "the bound tracks the real loss across the targets of one model",
         "setting": f"mean over {per_model['n_groups']} models",
         "supported": bool(per_model["low"] > 0),
         "numbers": f"mean Spearman {_fmt(per_model)}"},
        {"claim": "the bound tracks the real loss across all pairs", "setting": "models and targets together",
         "supported": bool(spearman["bound"]["low"] > 0),
         "numbers": f"Spearman {_fmt(spearman['bound'])}, Pearson {_fmt(pearson)}; inside each target "
                    f"(model selection) mean Spearman {_fmt(per_target)}"},
        {"claim": "the bound ranks pairs at least as well as LogME and LEEP", "setting": "Spearman with the probe loss",
         "supported": bool(spearman["bound"]["estimate"] >= best_score),
         "numbers": ", ".join(f"{label} {_fmt(r)}" for label, r in spearman.items())},
    ]


# --------------------------------------------------------------------------- figures


def _scatter(pairs, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for target in sorted({p["target"] for p in pairs}):
        rows = [p for p in pairs if p["target"] == target]
        ax.scatter([p["probe_loss"] for p in rows], [p["bound"] for p in rows], label=target, s=28, alpha=0.8)
    losses = [p["probe_loss"] for p in pairs if np.isfinite(p["probe_loss"])]
    right = 1.15 * max(losses) if losses else 1.0
    ax.plot([0, right], [0, right], color="black", lw=1, ls="--", label="bound = real loss")
    ax.set(xlabel="real target loss (linear probe, test)", ylabel="bound (test splits)", xlim=(0, right),
           title="transfer bound against the real loss\n(above the dashed line: the bound holds)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def _terms(pairs, path: Path) -> Path:
    """Horizontal stacked bars, one row per pair (sorted by the bound), so that every label stays readable."""
    rows = sorted(pairs, key=lambda p: p["bound"])
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.17 * len(rows)))
    left = np.zeros(len(rows))
    for column, label in _TERMS:
        values = np.array([p[column] for p in rows], dtype=np.float64)
        ax.barh(y, values, 0.8, left=left, label=label)
        left += values
    ax.scatter([p["probe_loss"] for p in rows], y, color="black", marker="|", s=60, zorder=3,
               label="real loss (linear probe)")
    ax.set_yticks(y, [f"{p['model']} | {p['target']}" for p in rows], fontsize=6)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set(xlabel="nats", title="the bound's three terms per (model, target)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def write_bound_report(cfg, out_dir, pairs, summary, claims) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"pairs.csv": write_csv(out_dir / "pairs.csv", pairs),
             "summary.csv": write_csv(out_dir / "summary.csv", summary),
             "claims.csv": write_csv(out_dir / "claims.csv", claims),
             "bound_vs_loss.png": _scatter(pairs, out_dir / "bound_vs_loss.png"),
             "bound_terms.png": _terms(pairs, out_dir / "bound_terms.png")}
    mean = {k: float(np.mean([p[k] for p in pairs])) for k in
            ("bound", "source_loss", "conditional_entropy", "wasserstein", "probe_loss", "transferred_loss")}
    lines = [
        f"# Transfer-bound study ({cfg.preset})",
        "",
        "After Mehra, Zhang & Hamm, *Analysis of Task Transferability in Large Pre-trained Classifiers* (2023). "
        f"{len({p['model'] for p in pairs})} members of the `{cfg.zoo}` zoo ({cfg.zoo_preset}; roles "
        f"{', '.join(cfg.roles)}) x {len(cfg.targets)} targets = {len(pairs)} pairs. The bound is "
        "re-weighted source loss + H(Y_T | Y_S) + Wasserstein term, on the test splits; the real loss is the "
        "test cross-entropy of a linear probe trained on the target's train features. Intervals: 95%, "
        "Clopper-Pearson for shares, paired percentile bootstrap over pairs for correlations.",
        "",
        "| claim | setting | supported | numbers |",
        "|---|---|---|---|",
        *[f"| {c['claim']} | {c['setting']} | {'yes' if c['supported'] else '**no**'} | {c['numbers']} |" for c in claims],
        "",
        "| measure | of | estimate | 95% interval |",
        "|---|---|---|---|",
        *[f"| {r['measure']} | {r['of']} | {r['estimate']:.3f} | [{r['low']:.3f}, {r['high']:.3f}] |" for r in summary],
        "",
        "The Wasserstein term is a distance in each model's feature space: its scale follows the width "
        "and spread of the features, so it compares the targets of one model better than it compares models.",
        "",
        f"Means over pairs: bound {mean['bound']:.3f} = source loss {mean['source_loss']:.3f} + entropy "
        f"{mean['conditional_entropy']:.3f} + Wasserstein {mean['wasserstein']:.3f}; real loss "
        f"{mean['probe_loss']:.3f}; loss of the transferred source classifier {mean['transferred_loss']:.3f}.",
        "",
        *[f"![{name}]({name})" for name in files if name.endswith(".png")],
        "",
    ]
    files["report"] = atomic_write_bytes(out_dir / "report.md", "\n".join(lines).encode())
    return files
