"""Wall time of the transfer-bound study (issue 7: the small preset in at most about 30 minutes).

Runs ``transferlab study bound`` in one process from the cache it finds (point
``TRANSFERLAB_HOME`` at an empty folder to include building the zoo) and prints

- ``bound_<preset>_minutes``: the whole run, zoo build included (goal: <= 30 on 2 cores);
- the share of the pair jobs' time spent in each stage (features, smooth head,
  transforms, bound, probe, scores), without goals.

A finished pair job is never rerun, so a second invocation in the same
``TRANSFERLAB_HOME`` measures only what was left.

    TRANSFERLAB_HOME=$(mktemp -d) .venv/bin/python bench/bound.py [--preset small]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from transferlab.studies._bound import run_bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    start = time.perf_counter()
    result = run_bound(args.preset, out_dir=args.out, progress=True)
    minutes = (time.perf_counter() - start) / 60
    print(f"bound_{args.preset}_minutes: {minutes:.1f} (goal: <= 30)")
    stages = sorted({k for p in result.pairs for k in p if k.startswith("seconds_")})
    total = sum(p[k] for p in result.pairs for k in stages)
    for k in stages:
        share = sum(p[k] for p in result.pairs) / total if total else float("nan")
        print(f"{k[8:]}_share_of_pair_time: {share:.3f} (no goal; mean {np.mean([p[k] for p in result.pairs]):.2f} s)")


if __name__ == "__main__":
    main()
