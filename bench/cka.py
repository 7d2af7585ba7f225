"""Linear CKA in feature space against Gram space, and minibatch CKA's memory (issue 6).

Goals, at N = 20000 samples and D = 256 features (float64):

- ``feature_vs_gram_speedup``: wall time of linear CKA from the two N x N Gram
  matrices (centred in place, the lean form of the reference notebook's
  ``cka(gram_linear(X), gram_linear(Y))``) divided by that of
  :func:`transferlab.analysis.cka`, which only forms D x D products
  (goal: >= 10);
- ``minibatch_peak_memory_ratio``: peak memory traced by ``tracemalloc``
  (NumPy's allocations) of the full debiased Gram-space CKA divided by that of
  :func:`transferlab.analysis.minibatch_cka` with batches of 1000 (printed with
  both peaks; no goal in the issue, higher is better).

    .venv/bin/python bench/cka.py [--n 20000] [--d 256]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from transferlab._linalg import gram  # x x' without OpenBLAS 0.3.31's crashing SYRK at N = 20000
from transferlab.analysis import cka, minibatch_cka


def gram_space_linear_cka(x: np.ndarray, y: np.ndarray, debiased: bool = False) -> float:
    """The baseline: Gram matrices, centred in place (as lean as the N x N form gets)."""
    from transferlab.analysis._cka import _centre_gram

    if debiased:
        k, l = _centre_gram(gram(x), True), _centre_gram(gram(y), True)
    else:
        k, l = gram(x), gram(y)
        for g in (k, l):  # H G H, in place
            g -= g.mean(axis=0, keepdims=True)
            g -= g.mean(axis=1, keepdims=True)
    return float(np.vdot(k, l) / np.sqrt(np.vdot(k, k) * np.vdot(l, l)))


def _timed(fn, *args, repeats: int = 1) -> tuple[float, float]:
    best, value = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, value


def _peak(fn, *args, **kwargs) -> tuple[int, float]:
    tracemalloc.start()
    value = fn(*args, **kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--d", type=int, default=256)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, args.d))
    y = x @ rng.normal(size=(args.d, args.d)) / np.sqrt(args.d) + rng.normal(size=(args.n, args.d))

    t_feature, v_feature = _timed(cka, x, y, repeats=3)
    t_gram, v_gram = _timed(gram_space_linear_cka, x, y)
    if not np.isclose(v_feature, v_gram, rtol=1e-8):
        raise SystemExit(f"the two forms disagree: {v_feature} against {v_gram}")
    print(f"feature_space_seconds: {t_feature:.3f}; gram_space_seconds: {t_gram:.2f} (N={args.n}, D={args.d})")
    print(f"feature_vs_gram_speedup: {t_gram / t_feature:.1f} (goal: >= 10)")

    peak_mini, v_mini = _peak(minibatch_cka, x, y, batch_size=1000)
    peak_full, v_full = _peak(gram_space_linear_cka, x, y, True)
    print(f"minibatch_cka: {v_mini:.4f} against full debiased {v_full:.4f}; peak memory "
          f"{peak_mini / 2**20:.0f} MiB against {peak_full / 2**20:.0f} MiB")
    print(f"minibatch_peak_memory_ratio: {peak_full / peak_mini:.1f} (no goal; higher is better)")


if __name__ == "__main__":
    main()
