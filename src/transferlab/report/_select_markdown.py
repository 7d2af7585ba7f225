"""The Markdown report of a selection (``select.md``): what was fine-tuned, what was kept, what it cost."""

from __future__ import annotations

from transferlab.report._ranking_input import fmt_value, is_missing


def _cell(value, digits: int = 4) -> str:
    if is_missing(value):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value).replace("|", "\\|")


def _pct(value) -> str:
    return "n/a" if is_missing(value) else f"{100 * value:.1f}%"


def select_markdown(d: dict) -> str:
    """A self-contained Markdown report of ``Selection.to_dict()``.

    Sections: the chosen model and its checkpoint; every candidate in selection
    order with its ordering value and, for the fine-tuned ones, validation and
    test accuracy, learning rate and time; the cost against brute force; with
    every candidate fine-tuned, each ranking column's top-1 and top-3 regret; the
    settings; the ranking's recommendation.
    """
    for key in ("by", "chosen", "checkpoint", "rows", "seconds", "brute_force_seconds", "cost_ratio", "settings"):
        if key not in d:
            raise ValueError(f"the selection dict has no {key!r} (pass Selection.to_dict())")
    s = d["settings"]
    chosen = next(r for r in d["rows"] if r["model"] == d["chosen"])
    lines = [
        "# Model selection",
        "",
        f"> **Chosen: {_cell(d['chosen'])}**: validation accuracy {_pct(chosen['val_accuracy'])}, "
        f"test accuracy {_pct(chosen['test_accuracy'])} (learning rate {_cell(chosen['lr'])}). "
        f"Saved to `{d['checkpoint']}`.",
        "",
        f"The candidates were ordered by {'the consensus rank of the ranking' if d['by'] == 'consensus' else d['by']}"
        f"; the first {s['top_k']} were fine-tuned and the one with the best validation accuracy was kept "
        "(the test split only reports).",
        "",
        "## Candidates",
        "",
        f"| # | model | {d['by']} | fine-tuned | val accuracy | test accuracy | lr | best epoch | seconds |",
        "|---:|---|---:|:---:|---:|---:|---:|---:|---:|",
    ]
    for r in d["rows"]:
        tuned = r["fine_tuned"]
        lines.append(
            f"| {r['position']} | {_cell(r['model'])}{' (chosen)' if r['model'] == d['chosen'] else ''} | "
            f"{fmt_value(r['score'])} | {_cell(tuned)} | "
            + " | ".join([_pct(r.get("val_accuracy")), _pct(r.get("test_accuracy")), _cell(r.get("lr")),
                          _cell(r.get("best_epoch")), _cell(r.get("seconds"), 3)])
            + " |"
        )
    sec = d["seconds"]
    lines += [
        "",
        "## Cost",
        "",
        f"- ranking: {sec['ranking']:.1f} s; fine-tuning the top {s['top_k']}: {sec['fine_tuning']:.1f} s "
        f"(as measured by each job; a cached job counts its first run)",
        f"- brute force (estimated): {d['brute_force_seconds']:.1f} s, the mean fine-tuning time times "
        f"{len(d['rows'])} candidates",
        f"- cost ratio (ranking + fine-tuning) / brute force: {d['cost_ratio']:.3f}",
    ]
    if d.get("regret"):
        lines += [
            "",
            "## Regret (every candidate fine-tuned)",
            "",
            "Test accuracy points lost by fine-tuning only the first (first three) of each column's order, "
            "against the best candidate.",
            "",
            "| column | top-1 regret | top-3 regret |",
            "|---|---:|---:|",
        ]
        lines += [f"| {_cell(name)} | {v['top1']:.1f} | {v['top3']:.1f} |" for name, v in d["regret"].items()]
    budget = f"{s['steps']} steps" if s.get("steps") else f"{s['epochs']} epochs"
    lines += [
        "",
        "## Settings",
        "",
        f"- learning rates {', '.join(f'{lr:g}' for lr in s['lrs'])}; {budget} each, batch size {s['batch_size']}; "
        f"early stopping patience {s['patience'] if s['patience'] is not None else 'off'}; "
        f"freeze {s['freeze']}; validation fraction {s['val_fraction']:g}; seed {s['seed']}; device {s['device']}",
        f"- data: `{s['data']}`",
    ]
    text = (d.get("ranking") or {}).get("recommendation", {}).get("text")
    if text:
        lines += ["", "## The ranking said", "", f"> {text}"]
    return "\n".join(lines) + "\n"
