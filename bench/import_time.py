"""Import time of ``transferlab.scores`` in a fresh process (issue 14).

Goal: ``scores_import_seconds`` <= 0.6, the median over 5 fresh interpreters of
the wall time of ``import transferlab.scores`` alone (interpreter start-up not
included). The scores are pure NumPy/SciPy: the heavy modules they use once
(``sklearn.mixture``, ``scipy.stats``, ``scipy.optimize``, ``scipy.spatial``,
POT) are imported inside the functions that need them. Prints one line:

    scores_import_seconds: <value> (goal: <= 0.6)

    .venv/bin/python bench/import_time.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

_TIMED_IMPORT = (
    "import time\n"
    "start = time.perf_counter()\n"
    "import transferlab.scores\n"
    "print(repr(time.perf_counter() - start))\n"
)


def import_seconds() -> float:
    """Seconds one fresh interpreter takes to ``import transferlab.scores``."""
    out = subprocess.run([sys.executable, "-c", _TIMED_IMPORT], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be an integer >= 1; got {args.runs}")
    median = statistics.median(import_seconds() for _ in range(args.runs))
    print(f"scores_import_seconds: {median:.3f} (goal: <= 0.6)")


if __name__ == "__main__":
    main()
