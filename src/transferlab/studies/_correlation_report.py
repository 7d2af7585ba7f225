"""The correlation study's verdicts on the paper's claims, its tables, figures and report."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from transferlab._atomic import atomic_write_bytes
from transferlab.report import save_figure, write_csv  # also selects the Agg backend


def mean_and_se(values) -> tuple[float, float]:
    """Mean and standard error over seeds (SE 0 for a single seed)."""
    v = np.asarray(values, dtype=float)
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0
    return float(v.mean()), se


def _by(rows, keys, value) -> dict:
    groups = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in keys)].append(r[value])
    return {k: mean_and_se(v) for k, v in sorted(groups.items())}


def best_stage(rows) -> list[dict]:
    """Per (arch, beta, seed) the first trained stage ``l`` with the best accuracy (ties: the lowest ``l``)."""
    groups = defaultdict(list)
    for r in rows:
        groups[(r["arch"], r["beta"], r["seed"])].append(r)
    out = []
    for (arch, beta, seed), rs in sorted(groups.items()):
        best = max(sorted(rs, key=lambda r: r["first_trained"]), key=lambda r: r["bob_accuracy"])
        out.append({"arch": arch, "beta": beta, "seed": seed, "best_first_trained": best["first_trained"]})
    return out


def freezing_cost(rows) -> list[dict]:
    """Per (arch, beta, seed): accuracy with nothing frozen minus accuracy with only the head trained.

    The claim "with little correlation, reusing only lower layers is best" predicts a
    cost that is large at low beta and shrinks as beta grows.
    """
    groups = defaultdict(dict)
    for r in rows:
        groups[(r["arch"], r["beta"], r["seed"])][r["first_trained"]] = r["bob_accuracy"]
    return [
        {"arch": arch, "beta": beta, "seed": seed, "freezing_cost": accs[1] - accs[max(accs)]}
        for (arch, beta, seed), accs in sorted(groups.items())
    ]


def claims_from(cfg, tables) -> list[dict]:
    """For each claim of the paper and each setting: supported or not, with the numbers."""
    claims = []
    pairs = _by(tables["pairs"], ("pair", "beta"), "bob_probe_accuracy")
    chance = _by(tables["pairs"], ("pair", "beta"), "chance")
    random_init = _by(tables["pairs"], ("pair", "beta"), "random_init_accuracy")
    for pair in dict.fromkeys(p for p, _ in pairs):
        curve = [(b, *pairs[(pair, b)]) for b in cfg.betas]
        steps = [(b1, b2, m2 - m1, 2 * np.hypot(s1, s2)) for (b1, m1, s1), (b2, m2, s2) in zip(curve, curve[1:])]
        drops = [f"{b1:g}->{b2:g} ({d:+.3f})" for b1, b2, d, tol in steps if d < -tol]
        rise = curve[-1][1] - curve[0][1]
        claims.append({
            "claim": "Bob's accuracy rises monotonically with beta",
            "setting": pair,
            "supported": bool(rise > 2 * np.hypot(curve[0][2], curve[-1][2]) and not drops),
            "numbers": "accuracy by beta: " + ", ".join(f"{b:g}: {m:.3f}+-{s:.3f}" for b, m, s in curve)
            + (f"; significant drops {', '.join(drops)}" if drops else "; no significant drop"),
        })
        b0 = cfg.betas[0]
        m0, s0 = pairs[(pair, b0)]
        c0 = chance[(pair, b0)][0]
        r0 = random_init[(pair, b0)][0]
        claims.append({
            "claim": f"above chance at beta = {b0:g}",
            "setting": pair,
            "supported": bool(m0 - 2 * s0 > c0),
            "numbers": f"accuracy {m0:.3f}+-{s0:.3f} against chance {c0:.3f} (random-init network {r0:.3f})",
        })
    best = best_stage(tables["layerwise"])
    cost = freezing_cost(tables["layerwise"])
    for arch in cfg.layerwise.archs:
        by_beta = {b: mean_and_se([r["best_first_trained"] for r in best if r["arch"] == arch and r["beta"] == b])
                   for b in cfg.betas}
        cost_by = {b: mean_and_se([r["freezing_cost"] for r in cost if r["arch"] == arch and r["beta"] == b])
                   for b in cfg.betas}
        (c_low, s_low), (c_high, s_high) = cost_by[cfg.betas[0]], cost_by[cfg.betas[-1]]
        claims.append({
            "claim": "with little correlation, reusing only lower layers is best",
            "setting": arch,
            # Judged by the freezing cost: the best l itself is noisy where several l tie.
            "supported": bool(c_low > c_high + 2 * np.hypot(s_low, s_high)),
            "numbers": "accuracy lost by freezing every stage rather than none, by beta: "
            + ", ".join(f"{b:g}: {m:+.3f}+-{e:.3f}" for b, (m, e) in cost_by.items())
            + "; best first fine-tuned stage l by beta: "
            + ", ".join(f"{b:g}: {m:.2f}" for b, (m, _) in by_beta.items())
            + f" (l = 1 fine-tunes everything, l = {_n_stages(tables, arch) + 1} only the head)",
        })
    return claims


def _n_stages(tables, arch) -> int:
    return next(r["n_stages"] for r in tables["layerwise"] if r["arch"] == arch)


# --------------------------------------------------------------------------- figures


def _band(ax, xs, stats, label, **style):
    m = np.array([s[0] for s in stats])
    e = np.array([s[1] for s in stats])
    line = ax.plot(xs, m, marker="o", label=label, **style)[0]
    ax.fill_between(xs, m - e, m + e, color=line.get_color(), alpha=0.2)


def plot_toy(rows, path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    s1 = [r for r in rows if r["scenario"] == "S1"]
    s2 = [r for r in rows if r["scenario"] == "S2"]
    alphas = sorted({r["alpha"] for r in s1})
    for decay in sorted({r["decay"] for r in s1}):
        stats = _by([r for r in s1 if r["decay"] == decay], ("alpha",), "w_ratio")
        _band(axes[0], alphas, [stats[(a,)] for a in alphas], f"decay {decay:g}")
    axes[0].plot(alphas, alphas, "k--", lw=1, label="[1, alpha] (E[y_A x])")
    axes[0].axhline(0, color="grey", lw=1, ls=":", label="[1, 0]")
    axes[0].set(xlabel="feature correlation alpha", ylabel="w_b / w_a of Alice's w*", title="S1: Alice's weights")
    for ax, part, knob in ((axes[1], s1, "alpha"), (axes[2], s2, "beta")):
        xs = sorted({r[knob] for r in part})
        decay = min(r["decay"] for r in part)
        sel = [r for r in part if r["decay"] == decay]
        for column, label in (("bob_as_is", "as is"), ("bob_refit", "v re-fitted")):
            stats = _by(sel, (knob,), column)
            _band(ax, xs, [stats[(x,)] for x in xs], f"{label} (simulated)")
            cf = _by(sel, (knob,), column.replace("bob", "closed_form"))
            ax.plot(xs, [cf[(x,)][0] for x in xs], "k:" if column == "bob_as_is" else "k--", lw=1,
                    label=f"{label}: 1/2 + arcsin(rho)/pi")
        ax.set(xlabel=f"{knob}", ylabel="Bob's accuracy", title=f"{part[0]['scenario']}: Bob reuses Alice (decay {decay:g})")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_per_pair(rows, betas, path, curves, ylabel, reference, reference_label, ylim) -> Path:
    """One panel per dataset pair: each of ``curves`` (column, label) against beta, with a reference line."""
    pairs = list(dict.fromkeys(r["pair"] for r in rows))
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        sel = [r for r in rows if r["pair"] == pair]
        for column, label in curves:
            stats = _by(sel, ("beta",), column)
            _band(ax, betas, [stats[(b,)] for b in betas], label)
        ax.axhline(reference(sel), color="grey", ls="--", lw=1, label=reference_label)
        ax.set(xlabel="task correlation beta", ylabel=ylabel, title=pair, ylim=ylim)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_pairs(rows, betas, path) -> Path:
    """Bob's accuracy against beta per pair: Alice's network, a random one, chance."""
    curves = (("bob_probe_accuracy", "Alice's network, output layer retrained"),
              ("random_init_accuracy", "random network, output layer trained"))
    return _plot_per_pair(rows, betas, path, curves, "Bob's test accuracy",
                          lambda sel: float(np.mean([r["chance"] for r in sel])), "chance", (0, 1.02))


def plot_layerwise(rows, betas, path) -> Path:
    """Bob's accuracy against the first fine-tuned stage per beta (one panel per arch), and the best stage."""
    archs = list(dict.fromkeys(r["arch"] for r in rows))
    fig, axes = plt.subplots(1, len(archs) + 1, figsize=(5 * (len(archs) + 1), 4))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(betas)))
    for ax, arch in zip(axes, archs):
        sel = [r for r in rows if r["arch"] == arch]
        ls = sorted({r["first_trained"] for r in sel})
        stats = _by(sel, ("beta", "first_trained"), "bob_accuracy")
        for colour, b in zip(colours, betas):
            _band(ax, ls, [stats[(b, l)] for l in ls], f"beta {b:g}", color=colour)
        ax.set(xlabel="first fine-tuned stage l (stages < l frozen)", ylabel="Bob's test accuracy", title=arch)
        ax.set_xticks(ls)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    best = best_stage(rows)
    for arch in archs:
        stats = _by([r for r in best if r["arch"] == arch], ("beta",), "best_first_trained")
        _band(axes[-1], betas, [stats[(b,)] for b in betas], arch)
    axes[-1].set(xlabel="task correlation beta", ylabel="best l (mean over seeds)", title="where to start fine-tuning")
    axes[-1].grid(alpha=0.3)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_attribution(rows, betas, path) -> Path:
    """The share of |IG| on the left half against beta, for Alice's model and Bob's."""
    curves = (("alice_left_share", "Alice"), ("bob_left_share", "Bob (Alice's network, his head)"))
    return _plot_per_pair(rows, betas, path, curves, "share of |IG| on the left half",
                          lambda sel: 0.5, "even split", (0, 1))


def plot_semantic(rows, path) -> Path:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        stats = _by([r for r in rows if r["method"] == method], ("bob_task",), "accuracy")
        xs = np.arange(2) + i * width
        keys = [("related",), ("unrelated",)]
        ax.bar(xs, [stats[k][0] for k in keys], width, yerr=[stats[k][1] for k in keys], label=method)
    for j, task in enumerate(("related", "unrelated")):
        c = np.mean([r["chance"] for r in rows if r["bob_task"] == task])
        ax.hlines(c, j - 0.1, j + 0.9 - 0.1, colors="grey", linestyles="--")
    ax.set_xticks(np.arange(2) + 0.4 - width / 2, ["related grouping", "unrelated grouping"])
    ax.set(ylabel="Bob's test accuracy", title="semantic case (dashed: chance)", ylim=(0, 1.02))
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------- report


def write_correlation_report(cfg, out_dir, tables, claims) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, rows in tables.items():
        files[f"{name}.csv"] = write_csv(out_dir / f"{name}.csv", rows)
    files["claims.csv"] = write_csv(out_dir / "claims.csv", claims)
    figures = {
        "toy.png": lambda p: plot_toy(tables["toy"], p),
        "transfer_vs_beta.png": lambda p: plot_pairs(tables["pairs"], cfg.betas, p),
        "layerwise.png": lambda p: plot_layerwise(tables["layerwise"], cfg.betas, p),
        "attribution.png": lambda p: plot_attribution(tables["pairs"], cfg.betas, p),
        "semantic.png": lambda p: plot_semantic(tables["semantic"], p),
    }
    for name, draw in figures.items():
        files[name] = draw(out_dir / name)
    text = _markdown(cfg, tables, claims)
    files["report"] = atomic_write_bytes(out_dir / "report.md", text.encode())
    return files


def _markdown(cfg, tables, claims) -> str:
    lines = [
        f"# Correlation study ({cfg.preset})",
        "",
        "After Mohamud & Brink, *An empirical study of task and feature correlations in the reuse of "
        "pre-trained models*; our generator is described in DESIGN.md. "
        f"Seeds {list(cfg.seeds)}, task correlations beta {list(cfg.betas)}; means +- standard error over seeds.",
        "",
        "## The paper's claims",
        "",
        "| claim | setting | supported | numbers |",
        "|---|---|---|---|",
    ]
    for c in claims:
        setting = c["setting"].replace("|", "\\|")  # a pair name holds a pipe
        lines.append(f"| {c['claim']} | {setting} | {'yes' if c['supported'] else '**no**'} | {c['numbers']} |")
    toy = tables["toy"]
    s1 = [r for r in toy if r["scenario"] == "S1"]
    gap = max(abs(r["bob_refit"] - r["closed_form_refit"]) for r in toy)
    lines += [
        "",
        "## 1. Linear toy",
        "",
        "![toy](toy.png)",
        "",
        "Alice's `w*` (ratio of the mean weight on `b` to that on `a`) by decay and alpha:",
        "",
        "| decay | " + " | ".join(f"alpha {a:g}" for a in sorted({r['alpha'] for r in s1})) + " |",
        "|---|" + "---|" * len({r["alpha"] for r in s1}),
    ]
    for decay in sorted({r["decay"] for r in s1}):
        stats = _by([r for r in s1 if r["decay"] == decay], ("alpha",), "w_ratio")
        lines.append(f"| {decay:g} | " + " | ".join(f"{m:+.2f}" for (_,), (m, _) in stats.items()) + " |")
    lines += [
        "",
        f"Largest gap between Bob's simulated accuracy (v re-fitted) and the closed form "
        f"1/2 + arcsin(rho)/pi: {gap:.4f} (on {toy[0]['n_test']} test points).",
        "",
        "## 2. Output-layer reuse against task correlation",
        "",
        "![transfer](transfer_vs_beta.png)",
        "",
        "## 3. Layer-wise reuse",
        "",
        "![layerwise](layerwise.png)",
        "",
        "## 4. Attribution (integrated gradients)",
        "",
        "![attribution](attribution.png)",
        "",
        "## 5. Semantic case",
        "",
        "![semantic](semantic.png)",
        "",
        "| Bob's task | method | accuracy | chance |",
        "|---|---|---|---|",
    ]
    stats = _by(tables["semantic"], ("bob_task", "method"), "accuracy")
    chance = _by(tables["semantic"], ("bob_task", "method"), "chance")
    for (task, method), (m, s) in stats.items():
        lines.append(f"| {task} | {method} | {m:.3f} +- {s:.3f} | {chance[(task, method)][0]:.3f} |")
    lines.append("")
    return "\n".join(lines)
