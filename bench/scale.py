"""Fast at real sizes (issue 20): every goal on one line, ``name: value (goal: ...)``.

Three parts, each its own module (run alone with ``--quick`` for a smoke test):

- ``bench/scale_extraction.py``: ``rank`` over a folder of 2,000 JPEG files at
  224 px with a ResNet-50 built from its config, against a bare ``model(x)``
  loop over the same images already decoded (goal >= 0.8 of its throughput),
  and the peak resident memory for 8,000 images against 2,000 (goal <= 1.3);
- ``bench/scale_scores.py``: every default score at N = 50,000, D = 2048,
  C = 100 and C = 1000 against the time to extract those 50,000 images at
  224 px, estimated from the measured ResNet-50 throughput (goal <= 0.2 each),
  the peak memory (goal < 8 GiB), and the sample caps of the scores quadratic
  in N (shown, no goal);
- ``bench/scale_nleep.py``: NLEEP at N = 10,000, D = 512 (goal <= 15 s);
- ``bench/scale_stability.py``: three runs of ``bench/scores.py``'s per-score
  timings, the spread of each score (goal: the slowest within 1.2 times the fastest).
  It runs first: right after the 50,000-sample scores (gigabytes allocated and
  freed) its first runs' extraction was 15-20% slower than its last.

    .venv/bin/python bench/scale.py            # every line (under 20 minutes on 2 cores)
    .venv/bin/python bench/scale.py --quick    # smaller sizes: a smoke test
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Smaller sizes: a smoke test.")
    args = parser.parse_args()
    from scale_extraction import extraction_lines
    from scale_nleep import nleep_lines
    from scale_scores import score_lines
    from scale_stability import stability_lines

    start = time.perf_counter()
    for part in (stability_lines, extraction_lines, score_lines, nleep_lines):
        for line in part(quick=args.quick):
            print(line, flush=True)
    print(f"scale_bench_minutes: {(time.perf_counter() - start) / 60:.1f} (goal: <= 20)")


if __name__ == "__main__":
    main()
