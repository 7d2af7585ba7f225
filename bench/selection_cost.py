"""Cost of model selection against brute-force fine-tuning, on the selection benchmark.

Goals (issue 4), on the small preset, for LogME (the reference score; every
other score is printed too, without a goal):

- ``top3_vs_brute_force``: (scoring + fine-tuning the top 3) / fine-tuning the
  whole zoo (goal: < 0.3);
- ``scoring_vs_brute_force``: scoring alone / fine-tuning the whole zoo
  (goal: < 0.02).

Both sides are measured in the same run of ``transferlab study selection``:
each fine-tuning job and each scoring job records its wall time in the results
store (a finished job is not rerun, so a second invocation reports the times of
the first). Means over targets and regimes.

And the goal of issue 19, the study's wall time from an empty cache:

- ``selection_<preset>_minutes``: the whole run (zoo, scoring, fine-tuning, the
  scoring setups, the ground-truth check, stability, report) on this machine
  (goal for ``small``: <= 45 on 2 cores). Judged only when ``TRANSFERLAB_HOME``
  was empty or missing; otherwise printed with "(no goal)".

    TRANSFERLAB_HOME=$(mktemp -d) .venv/bin/python bench/selection_cost.py [--preset small] [--score logme]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from transferlab._paths import home
from transferlab.studies._selection import run_selection

#: Minutes the study may take from an empty cache, by preset (issue 19).
MINUTES_GOAL = {"small": 45}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--score", default="logme", help="The score the goals are checked for.")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    empty = not home().exists() or not any(home().iterdir())
    start = time.perf_counter()
    result = run_selection(args.preset, out_dir=args.out, progress=True)
    minutes = (time.perf_counter() - start) / 60
    goal = MINUTES_GOAL.get(args.preset)
    if goal is not None and empty:
        print(f"selection_{args.preset}_minutes: {minutes:.1f} (goal: <= {goal}; from an empty cache)")
    else:
        why = "no goal for this preset" if goal is None else "the cache was not empty"
        print(f"selection_{args.preset}_minutes: {minutes:.1f} (no goal; {why})")
    by_score: dict[str, list[dict]] = {}
    for row in result.cost:
        by_score.setdefault(row["score"], []).append(row)
    if args.score not in by_score:
        raise SystemExit(f"score {args.score!r} was not run; scores: {sorted(by_score)}")
    brute = np.mean([r["brute_force_seconds"] for r in by_score[args.score]])
    print(f"brute_force_seconds: {brute:.1f} (mean over targets and regimes, {len(result.finetune)} fine-tunings)")
    for name, rows in sorted(by_score.items()):
        top3 = float(np.mean([r["top3_ratio"] for r in rows]))
        scoring = float(np.mean([r["scoring_ratio"] for r in rows]))
        if name == args.score:
            print(f"top3_vs_brute_force: {top3:.3f} (goal: < 0.3)")
            print(f"scoring_vs_brute_force: {scoring:.4f} (goal: < 0.02)")
        else:
            print(f"{name}_top3_vs_brute_force: {top3:.3f} (no goal); scoring {scoring:.4f}")


if __name__ == "__main__":
    main()
