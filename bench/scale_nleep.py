"""NLEEP at a real size (issue 20): one fit at N = 10,000, D = 512, C = 10.

Goal, one line ``name: value (goal: ...)``:

``nleep_seconds_n10000``: the time of one ``nleep`` call (default options: PCA
to 80% of the variance, a full-covariance Gaussian mixture with 5 C = 50
components, seed 0) on the inputs of ``bench/scores.py`` (``_score_inputs``:
class means of strength 0.5 plus unit noise, balanced shuffled labels), goal
at most 15 s on the 2-core machine. A tiny warm-up call first loads SciPy and
scikit-learn, so the line times the computation, not the imports. A second
line gives the value and the mixture's size (no goal).

    .venv/bin/python bench/scale_nleep.py            # N = 10,000 (about 10 s)
    .venv/bin/python bench/scale_nleep.py --quick    # N = 2,000: a smoke test (no goal)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scores import _score_inputs  # noqa: E402  (bench/scores.py, on the path above)

from transferlab.scores._nleep import _reduced_features, nleep  # noqa: E402

#: The sizes of ``bench/scores.py`` and the goal of issue 20.
N, D, C = 10_000, 512, 10
GOAL_SECONDS = 15.0


def nleep_lines(quick: bool = False, seed: int = 0) -> list[str]:
    """Time one ``nleep`` call at N = 10,000 (2,000 with ``quick``), D = 512, C = 10; the bench lines."""
    n = 2_000 if quick else N
    inputs = _score_inputs(np.random.default_rng(seed + 2), n, D, C)  # bench/scores.py's draw for its seed
    features, labels = inputs["features"], inputs["labels"]
    rng = np.random.default_rng(seed)
    nleep(rng.normal(size=(40, 4)), np.arange(40) % 2)  # warm-up: imports scipy / sklearn.cluster
    start = time.perf_counter()
    value = nleep(features, labels, seed=seed)
    seconds = time.perf_counter() - start
    dims = _reduced_features(np.asarray(features, dtype=np.float64), 0.8).shape[1]
    goal = "(quick: no goal)" if quick else f"(goal: <= {GOAL_SECONDS:g})"
    return [
        f"nleep_seconds_n{n}: {seconds:.2f} {goal}",
        f"nleep_value_n{n}: {value:.6g} (no goal; PCA to {dims} of {D} dims, {5 * C} components, seed {seed})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 2,000: a smoke test (no goal).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for line in nleep_lines(quick=args.quick, seed=args.seed):
        print(line, flush=True)


if __name__ == "__main__":
    main()
