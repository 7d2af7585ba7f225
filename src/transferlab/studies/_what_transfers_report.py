"""The what-transfers study's verdicts on DESIGN's expected shape, its figures and report."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from transferlab._atomic import atomic_write_bytes
from transferlab.report import save_figure, write_csv  # also selects the Agg backend
from transferlab.studies._claims import claim as _claim
from transferlab.studies._correlation_report import _band, _by, mean_and_se


def _mean(rows, column) -> tuple[float, float]:
    return mean_and_se([r[column] for r in rows]) if rows else (float("nan"), 0.0)


def claims_from(cfg, tables) -> list[dict]:
    """A verdict with numbers for each claim of DESIGN's "Expected shape"."""
    top, low = max(cfg.block_sizes), min(cfg.block_sizes)
    acc = tables["accuracy"]
    claims = []
    for target in cfg.targets:
        by = _by([r for r in acc if r["target"] == target], ("model", "block"), "accuracy")
        p, ri = by[("P-T", top)], by[("RI-T", top)]
        claims.append(_claim("P beats RI", target, p[0] - ri[0] > 2 * np.hypot(p[1], ri[1]),
                             f"P-T {p[0]:.3f}+-{p[1]:.3f} against RI-T {ri[0]:.3f}+-{ri[1]:.3f} (unshuffled)"))
        gaps = {b: by[("P-T", b)][0] - by[("RI-T", b)][0] for b in cfg.block_sizes}
        claims.append(_claim(
            "P degrades gracefully as blocks shrink", target,
            by[("P-T", top)][0] >= by[("P-T", low)][0] and all(g >= -0.02 for g in gaps.values()),
            "P-T accuracy by block size: " + ", ".join(f"{b}: {by[('P-T', b)][0]:.3f}" for b in cfg.block_sizes)
            + "; P-T minus RI-T: " + ", ".join(f"{b}: {g:+.3f}" for b, g in gaps.items())))
    pairs = [r for r in tables["pairs"] if r["block"] == top]
    stages = sorted({k[4:] for r in pairs for k in r if k.startswith("cka_")})

    def pair(name):
        return [r for r in pairs if r["pair"] == name]

    for column, claim, better in (("disagreement_fraction", "P-P pairs agree more than RI-RI pairs", "lower"),
                                  ("l2_total", "P-P pairs are closer in weight space", "lower")):
        pp, rr = _mean(pair("P-P"), column), _mean(pair("RI-RI"), column)
        claims.append(_claim(claim, "all targets, unshuffled", pp[0] < rr[0],
                             f"{column}: P-P {pp[0]:.4g}+-{pp[1]:.2g} against RI-RI {rr[0]:.4g}+-{rr[1]:.2g} ({better} is closer)"))
    cka_pp = [np.mean([r[f"cka_{s}"] for s in stages]) for r in pair("P-P")]
    cka_rr = [np.mean([r[f"cka_{s}"] for s in stages]) for r in pair("RI-RI")]
    claims.append(_claim("P-P pairs have higher CKA", "all targets, unshuffled, mean over stages",
                         np.mean(cka_pp) > np.mean(cka_rr),
                         f"CKA P-P {np.mean(cka_pp):.3f} against RI-RI {np.mean(cka_rr):.3f}; per stage P-P "
                         + ", ".join(f"{s}: {_mean(pair('P-P'), f'cka_{s}')[0]:.3f}" for s in stages)))
    barrier = {name: _mean([r for r in tables["interpolation"]
                            if r["pair"] == name and r["t"] == 0.0 and r["block"] == top],
                           "test_barrier") for name in ("P-P", "RI-RI")}
    claims.append(_claim("no barrier between P-P solutions, a barrier between RI-RI ones", "all targets, unshuffled",
                         barrier["P-P"][0] < barrier["RI-RI"][0],
                         f"test-loss barrier P-P {barrier['P-P'][0]:.4f}+-{barrier['P-P'][1]:.4f}, "
                         f"RI-RI {barrier['RI-RI'][0]:.4f}+-{barrier['RI-RI'][1]:.4f}"))
    crit = [r for r in tables["criticality"] if r["model"] == "P-T" and r["block"] == top]
    depths = sorted({r["depth"] for r in crit})
    by_depth = {d: float(np.median([r["criticality"] for r in crit if r["depth"] == d])) for d in depths}
    claims.append(_claim("criticality grows with depth", "P-T, unshuffled, median over targets and seeds",
                         by_depth[depths[-1]] > by_depth[depths[0]],
                         "criticality by stage: " + ", ".join(f"{d}: {v:.3g}" for d, v in by_depth.items())))
    ck = _by(tables["checkpoints"], ("epoch",), "accuracy")
    epochs = sorted(e for (e,) in ck)
    first, last, early = ck[(epochs[0],)][0], ck[(epochs[-1],)][0], ck[(epochs[1],)][0] if len(epochs) > 1 else None
    claims.append(_claim("early checkpoints already give most of the benefit", f"epoch {epochs[1] if early is not None else '-'}",
                         early is not None and early - first >= 0.5 * (last - first),
                         "accuracy by pre-training epoch: " + ", ".join(f"{e}: {ck[(e,)][0]:.3f}" for e in epochs)))
    return claims


# --------------------------------------------------------------------------- figures


def _finish(fig, ax, path: Path) -> Path:
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _figures(cfg, tables, out_dir: Path) -> dict:
    files = {}
    fig, axes = plt.subplots(1, len(cfg.targets), figsize=(5 * len(cfg.targets), 4), squeeze=False)
    blocks = sorted(cfg.block_sizes)
    for ax, target in zip(axes[0], cfg.targets):
        by = _by([r for r in tables["accuracy"] if r["target"] == target], ("model", "block"), "accuracy")
        for kind in ("P-T", "RI-T"):
            _band(ax, blocks, [by[(kind, b)] for b in blocks], kind)
        ax.set(xscale="log", xlabel="block size (28 = unshuffled)", ylabel="test accuracy", title=target)
        ax.set_xticks(blocks, [str(b) for b in blocks])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    files["accuracy_vs_block.png"] = save_figure(fig, out_dir / "accuracy_vs_block.png")

    top = max(cfg.block_sizes)
    pairs = [r for r in tables["pairs"] if r["block"] == top]
    stages = sorted({k[4:] for r in pairs for k in r if k.startswith("cka_")})
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, name in enumerate(("P-P", "P-RI", "RI-RI")):
        stats = [_mean([r for r in pairs if r["pair"] == name], f"cka_{s}") for s in stages]
        ax.bar(np.arange(len(stages)) + 0.27 * i, [m for m, _ in stats], 0.27, yerr=[e for _, e in stats], label=name)
    ax.set_xticks(np.arange(len(stages)) + 0.27, stages)
    ax.set(ylabel="linear CKA (test images)", title="representation similarity per stage", ylim=(0, 1.05))
    ax.legend(fontsize=8)
    fig.tight_layout()
    files["cka_per_stage.png"] = save_figure(fig, out_dir / "cka_per_stage.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in ("P-P", "RI-RI"):
        rows = [r for r in tables["interpolation"] if r["pair"] == name and r["block"] == top]
        ts = sorted({r["t"] for r in rows})
        stats = _by(rows, ("t",), "test_loss")
        _band(ax, ts, [stats[(t,)] for t in ts], name)
    ax.set(xlabel="t (0: first solution, 1: second)", ylabel="test loss",
           title="linear path between two solutions (unshuffled)")
    files["interpolation.png"] = _finish(fig, ax, out_dir / "interpolation.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    for kind in ("P-T", "RI-T"):
        rows = [r for r in tables["criticality"]
                if r["model"] == kind and r["block"] == top and np.isfinite(r["criticality"])]
        depths = sorted({r["depth"] for r in rows})
        ax.plot(depths, [np.median([r["criticality"] for r in rows if r["depth"] == d]) for d in depths],
                marker="o", label=kind)
    ax.set(yscale="log", xlabel="stage (depth)", ylabel="module criticality (median)",
           title="criticality per stage (unshuffled)")
    files["criticality.png"] = _finish(fig, ax, out_dir / "criticality.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    stats = _by(tables["checkpoints"], ("epoch",), "accuracy")
    epochs = sorted(e for (e,) in stats)
    _band(ax, epochs, [stats[(e,)] for e in epochs], "fine-tuned from the checkpoint")
    ax.set(xlabel="pre-training epoch of the checkpoint (0 = random)", ylabel="target test accuracy",
           title="fine-tuning from earlier checkpoints")
    files["checkpoints.png"] = _finish(fig, ax, out_dir / "checkpoints.png")
    return files


def write_what_transfers_report(cfg, out_dir, tables, claims) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {f"{name}.csv": write_csv(out_dir / f"{name}.csv", rows) for name, rows in tables.items()}
    files["claims.csv"] = write_csv(out_dir / "claims.csv", claims)
    files.update(_figures(cfg, tables, out_dir))
    lines = [
        f"# What-transfers study ({cfg.preset})",
        "",
        "After Neyshabur, Sedghi & Zhang, *What is being transferred in transfer learning?* (2020). "
        f"P pre-trained on `{cfg.source}`; targets {', '.join(f'`{t}`' for t in cfg.targets)}; block sizes "
        f"{list(cfg.block_sizes)}; seeds {list(cfg.seeds)}. Means +- standard error over runs.",
        "",
        "| claim | setting | supported | numbers |",
        "|---|---|---|---|",
        *[f"| {c['claim']} | {c['setting']} | {'yes' if c['supported'] else '**no**'} | {c['numbers']} |" for c in claims],
        "",
        *[f"![{name}]({name})" for name in files if name.endswith(".png")],
        "",
    ]
    files["report"] = atomic_write_bytes(out_dir / "report.md", "\n".join(lines).encode())
    return files
