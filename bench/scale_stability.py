"""Are ``bench/scores.py``'s figures stable? Three runs of its per-score timings, their spread.

Issue 20 saw hscore, logme, sfda and regularized_hscore take 2.5-5 s in one run
of ``bench/scores.py`` and 0.4-0.6 s in another (NumPy's BLAS threads spinning
beside torch's after the extraction it times first). This runs part (c) of
``bench/scores.py`` (extraction with the built-in ConvNet, then each score, best
of 3 calls) three times, each in a fresh process, for those scores and the
other classics, and prints for each figure the ratio of its slowest run to its
fastest; the goal line is the largest ratio over the extraction (every ratio's
denominator) and the scores whose fastest run takes at least ``MIN_SECONDS``
(below that the timer's own noise dominates).

What made them stable: ``bench/scores.py`` runs as the command line does, with
glibc's malloc keeping freed memory (the extraction varied 4.2-8.6 s between
runs on page faults of freshly mapped batch buffers) and the scores on one BLAS
thread, as ``rank`` runs them (two threads on two cores: 15-30% apart).

    .venv/bin/python bench/scale_stability.py [--quick]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCORES = ("hscore", "logme", "sfda", "regularized_hscore", "leep", "nce", "lfc")
RUNS = 3
#: Timed calls per score in each run (bench/scores.py keeps the fastest): more than its default 3,
#: so that a run's figure is its best case, not the timer's noise at a tenth of a second.
REPEATS = 7
MIN_SECONDS = 0.1
_LINE = re.compile(r"^(\w+)_seconds: ([0-9.]+)")


def _run(quick: bool) -> dict[str, float]:
    command = [sys.executable, str(HERE / "scores.py"), "--only", "scores", "--scores", ",".join(SCORES),
               "--repeats", str(REPEATS)]
    done = subprocess.run(command + (["--quick"] if quick else []), capture_output=True, text=True, check=True)
    return {m.group(1): float(m.group(2)) for m in map(_LINE.match, done.stdout.splitlines()) if m}


def stability_lines(quick: bool = False) -> list[str]:
    """One line per score (its slowest over fastest run) and the goal line; see the module docstring."""
    runs = [_run(quick) for _ in range(RUNS)]
    lines, judged = [], []
    for name in ("extraction", *SCORES):
        times = [r[name] for r in runs if name in r]
        if len(times) < RUNS:
            lines.append(f"scores_bench_spread_{name}: missing (no goal; a run did not time it)")
            continue
        spread = max(times) / min(times) if min(times) > 0 else float("inf")
        if name == "extraction" or min(times) >= MIN_SECONDS:
            judged.append(spread)
        lines.append(f"scores_bench_spread_{name}: {spread:.2f} (no goal; seconds "
                     + ", ".join(f"{t:.3f}" for t in times) + ")")
    worst = max(judged) if judged else float("nan")
    lines.append(f"scores_bench_spread_max: {worst:.2f} (goal: <= 1.2; over {RUNS} runs, "
                 f"the extraction and scores of at least {MIN_SECONDS} s)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="bench/scores.py --quick sizes: a smoke test.")
    args = parser.parse_args()
    for line in stability_lines(quick=args.quick):
        print(line, flush=True)


if __name__ == "__main__":
    main()
