"""Speed (and memory) of the transferability scores, against naive forms and against extraction.

Goals (issue 3), one line each in the form ``name: value (goal: ...)``:

(a) ``lfc`` exact fast form against the naive N x N form at N = 20000, D = 256:
    time ratio (goal >= 20), with the peak memory of each (tracemalloc, which
    sees NumPy's allocations). The naive form centres the features, builds
    ``K = F F^T`` and the label matrix ``Y`` (both N x N, float64) and takes the
    Pearson correlation of their entries (means subtracted in place, then dot
    products of the flattened matrices: ``np.corrcoef`` without its extra
    stacked copy).
(b) ``logme`` against a straightforward per-class loop that recomputes the
    residual ``F m - y`` in sample space (N-dim) at every fixed-point iteration,
    at N = 10000, D = 512, C = 100 (the eigendecomposition of ``F^T F`` is shared,
    as in the reference code): time ratio (goal >= 2) and equal values to 1e-6
    relative.
(c) The time of every registered per-model score at N = 10000, D = 512, C = 10
    next to the time to extract those features with the built-in ConvNet
    (widths 64, 128, 512, so D = 512) from 10000 random 28x28 uint8 images:
    ratio goal <= 0.1, except ``rsa``, ``nleep``, the ``knn`` and
    ``linear_probe`` baselines and the three PACTran variants (a mixture fit, or
    an L-BFGS fit of a softmax head: printed with "(no goal)").
    Scores whose method needs N x N distance matrices (parc, rsa) are run, as
    in the protocol, on at most 100 samples per class (1000 samples). So are
    otce, f_otce and jc_otce: they solve an exact optimal-transport problem
    between the source and the target samples (network simplex, about O(n^3)
    time on an M x N cost matrix), so the method itself caps each domain
    (``max_samples=1000`` by default, a seeded class-stratified subset); the
    bench hands them the capped target (and a source of 1000 samples), the
    size they would use anyway.

    .venv/bin/python bench/scores.py            # everything (a few minutes, ~7 GB peak for naive LFC)
    .venv/bin/python bench/scores.py --quick    # small sizes: a smoke test (goals not meaningful)

Timings are the fastest of ``--repeats`` calls after a warm-up (robust to other
processes on a shared machine); a call over 2 s (the naive LFC, NLEEP) is timed
once. The process runs as the command line does: glibc's malloc keeps freed
memory (:func:`transferlab._malloc.keep_freed_memory`; with glibc's defaults the
ConvNet extraction took 4.2-8.6 s here, varying run to run, instead of 3.9-4.3 s),
and the scores of (c) run on one BLAS thread (``--blas-threads``), as ``rank``
runs them beside torch: on 2 cores two threads made H-score's median 40% slower
and its spread 2.5 times the fastest call, for a best case 7% faster.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

from transferlab._linalg import gram
from transferlab._malloc import keep_freed_memory
from transferlab.scores._registry import available, spec

#: Scores whose method builds N x N matrices, or solves an exact transport problem between the
#: source and target samples (OTCE and its variants, O(n^3)): run on at most --cap samples per class.
NXN_SCORES = frozenset({"parc", "rsa", "otce", "f_otce", "jc_otce", "tmi"})
#: Compositions timed besides the registered scores (not listed by ``available()``).
COMPOSITES = ("ped+logme",)
#: Scores exempt from the <= 10% of extraction goal (issue 3).
#: The kNN and linear-probe baselines too: an exact leave-one-out over all N^2 pairs and a
#: 5-fold cross-validated logistic regression are the baselines as published, not scores
#: built to be cheap (issue 16 sets no cost goal for them).
#: NLEEP and PACTran's Dirichlet and Gamma variants fit a Gaussian mixture by EM (2-7 s here since
#: issue 20, about half the extraction: its own goal, <= 15 s, is in bench/scale_nleep.py), and the
#: Gaussian variant fits a softmax head by L-BFGS (about 0.15 of extraction here): inherently heavier
#: than a closed form.
NO_GOAL = frozenset({"rsa", "nleep", "knn", "linear_probe", "pactran_dirichlet", "pactran_gamma",
                     "pactran_gaussian"})


def _timed(fn, *, memory: bool = False):
    """``(result, seconds, peak_bytes or None)`` of one call (peak: tracemalloc, NumPy included)."""
    gc.collect()
    if memory:
        tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = None
    if memory:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, seconds, peak


def _best_of(fn, repeats: int, *, quick_below: float = 2.0):
    """``(result, seconds)``: the fastest of ``repeats`` calls after one untimed warm-up.

    The minimum is the time least disturbed by other processes (the machine may
    be shared). A call slower than ``quick_below`` seconds is timed once, warm-up
    included, so slow baselines do not dominate the bench's run time.
    """
    result, first, _ = _timed(fn)
    if first >= quick_below:
        return result, first
    times = []
    for _ in range(repeats):
        result, seconds, _ = _timed(fn)
        times.append(seconds)
    return result, min(times)


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f}"


def _informative(rng, labels: np.ndarray, d: int, strength: float) -> np.ndarray:
    """Class means (standard normal, times ``strength``) plus unit noise: (N, d)."""
    means = rng.normal(size=(int(labels.max()) + 1, d))
    return strength * means[labels] + rng.normal(size=(labels.shape[0], d))


def _class_data(rng, n: int, d: int, c: int, *, strength: float = 1.0):
    labels = np.arange(n) % c
    rng.shuffle(labels)
    return _informative(rng, labels, d, strength), labels


# --------------------------------------------------------------------------- (a) LFC


def _naive_lfc(features: np.ndarray, labels: np.ndarray) -> float:
    """Pearson correlation of the entries of K = Fc Fc^T and Y (+1 same class, -1 otherwise), N x N."""
    F = features - features.mean(axis=0)
    K = gram(F)  # F F^T without OpenBLAS 0.3.31's SYRK, which crashes here with two threads
    Y = np.where(labels[:, None] == labels[None, :], 1.0, -1.0)
    K -= K.mean()
    Y -= Y.mean()
    k, y = K.ravel(), Y.ravel()
    return float(np.dot(k, y) / np.sqrt(np.dot(k, k) * np.dot(y, y)))


def bench_lfc(n: int, d: int, c: int, seed: int, repeats: int) -> None:
    lfc = spec("lfc").func
    features, labels = _class_data(np.random.default_rng(seed), n, d, c, strength=0.3)
    _, _, fast_peak = _timed(lambda: lfc(features, labels), memory=True)
    fast, fast_s = _best_of(lambda: lfc(features, labels), repeats)
    # The naive form runs once (tens of seconds), with tracemalloc on for its peak.
    naive, naive_s, naive_peak = _timed(lambda: _naive_lfc(features, labels), memory=True)
    print(f"# (a) lfc, N={n}, D={d}, C={c}; fast: best of {repeats} after a warm-up, naive: one run")
    print(f"lfc_fast_seconds: {fast_s:.3f}")
    print(f"lfc_naive_seconds: {naive_s:.3f}")
    print(f"lfc_fast_peak_mib: {_mib(fast_peak)}")
    print(f"lfc_naive_peak_mib: {_mib(naive_peak)}")
    print(f"lfc_abs_difference: {abs(fast - naive):.2e} (fast {fast:.12f}, naive {naive:.12f})")
    print(f"lfc_speedup: {naive_s / fast_s:.1f} (goal: >= 20)")


# --------------------------------------------------------------------------- (b) LogME


def _naive_logme(features: np.ndarray, labels: np.ndarray, *, max_iter: int = 1000, tol: float = 1e-6) -> float:
    """LogME with a per-class loop; the residual ||F m - y||^2 is recomputed in sample space each iteration.

    The eigendecomposition of F^T F (D x D) is shared by the classes, as in the
    reference implementation; m = beta (alpha I + beta F^T F)^-1 F^T y is formed in
    feature space from it. Stops when the relative change of alpha and beta is
    at most ``tol`` (the rule of :func:`transferlab.scores._logme.logme`).
    """
    F = np.asarray(features, dtype=np.float64)
    n, d = F.shape
    s, V = np.linalg.eigh(gram(F.T))
    s = np.clip(s, 0.0, None)
    evidences = []
    for k in np.unique(labels):
        y = (labels == k).astype(np.float64)
        Fty = V.T @ (F.T @ y)  # F^T y in the eigenbasis
        alpha, beta = 1.0, 1.0
        for _ in range(max_iter):
            m = V @ (beta * Fty / (alpha + beta * s))
            residual = float(np.sum((F @ m - y) ** 2))
            gamma = float(np.sum(beta * s / (alpha + beta * s)))
            new_alpha = gamma / float(m @ m)
            new_beta = (n - gamma) / residual
            done = abs(new_alpha - alpha) <= tol * abs(alpha) and abs(new_beta - beta) <= tol * abs(beta)
            alpha, beta = new_alpha, new_beta
            if done:
                break
        m = V @ (beta * Fty / (alpha + beta * s))
        residual = float(np.sum((F @ m - y) ** 2))
        evidence = (
            d / 2 * np.log(alpha)
            + n / 2 * np.log(beta)
            - n / 2 * np.log(2 * np.pi)
            - beta / 2 * residual
            - alpha / 2 * float(m @ m)
            - 0.5 * float(np.sum(np.log(alpha + beta * s)))
        )
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def bench_logme(n: int, d: int, c: int, seed: int, repeats: int) -> None:
    logme = spec("logme").func
    features, labels = _class_data(np.random.default_rng(seed + 1), n, d, c, strength=0.5)
    ours, ours_s = _best_of(lambda: logme(features, labels), repeats)
    naive, naive_s = _best_of(lambda: _naive_logme(features, labels), repeats, quick_below=10.0)
    rel = abs(ours - naive) / abs(naive)
    print(f"# (b) logme, N={n}, D={d}, C={c}; each the best of {repeats} after a warm-up")
    print(f"logme_seconds: {ours_s:.3f}")
    print(f"logme_naive_seconds: {naive_s:.3f}")
    print(f"logme_max_relative_difference: {rel:.2e} (ours {ours:.12f}, naive {naive:.12f}) (goal: <= 1e-6)")
    print(f"logme_values_match: {'yes' if rel <= 1e-6 else 'no'}")
    print(f"logme_speedup: {naive_s / ours_s:.1f} (goal: >= 2)")


# --------------------------------------------------------------------------- (c) every score vs extraction


def _extraction_seconds(n: int, seed: int, device: str, repeats: int) -> tuple[float, int]:
    import torch

    from transferlab.features._extract import extract
    from transferlab.models._registry import build

    torch.manual_seed(seed)
    model = build("convnet", seed=seed, in_channels=1, widths=[64, 128, 512], num_classes=10)
    images = np.random.default_rng(seed).integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8)
    extract(model, images[:256], device=device)  # warm-up
    times = []
    for _ in range(repeats):
        feats, seconds, _ = _timed(lambda: extract(model, images, device=device))
        times.append(seconds)
    return min(times), feats.shape[1]


def _score_inputs(rng, n: int, d: int, c: int) -> dict:
    """Inputs for every need at the bench size; labels balanced, shuffled."""
    features, labels = _class_data(rng, n, d, c, strength=0.5)
    z = 10
    logits = 2.0 * rng.normal(size=(c, z))[labels] + rng.normal(size=(n, z))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    gradients = _informative(rng, labels, 1024, 0.3)  # the default projection dimension
    source_features, source_labels = _class_data(rng, 100 * z, d, z, strength=0.5)
    probe = _informative(rng, labels, 128, 0.5)
    return {
        "labels": labels,
        "source_accuracy": 0.9,  # the priors' inputs (target-blind)
        "n_parameters": 11_000_000,
        "features": features,
        "source_probs": probs,
        "gradients": gradients,
        "source_features": source_features,
        "source_labels": source_labels,
        "probe_features": probe,
    }


def _cap_per_class(inputs: dict, cap: int, seed: int) -> dict:
    labels = inputs["labels"]
    rng = np.random.default_rng(seed)
    rows = np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(labels == k))[:cap] for k in np.unique(labels)])
    )
    out = dict(inputs, labels=labels[rows])
    for key in ("features", "source_probs", "gradients", "probe_features"):
        out[key] = inputs[key][rows]
    return out


def bench_scores(n: int, d: int, c: int, cap: int, seed: int, device: str, names, repeats: int,
                 blas_threads: int | None = 1) -> None:
    extraction_s, dim = _extraction_seconds(n, seed, device, max(1, repeats - 1))
    print(
        f"# (c) every per-model score, N={n}, D={d}, C={c}; {', '.join(sorted(NXN_SCORES))} on at most {cap} "
        "samples per class; "
        f"best of {repeats} after a warm-up (a score over 2 s: one run); "
        f"BLAS threads: {'default' if blas_threads is None else blas_threads}"
    )
    limits = threadpool_limits(limits=blas_threads, user_api="blas") if blas_threads else contextlib.nullcontext()
    with limits:
        _time_scores(extraction_s, dim, n, d, c, cap, seed, device, names, repeats)


def _time_scores(extraction_s: float, dim: int, n: int, d: int, c: int, cap: int, seed: int, device: str, names,
                 repeats: int) -> None:
    print(
        f"extraction_seconds: {extraction_s:.3f} (convnet widths 64,128,512 -> D={dim}, {n} images 28x28, "
        f"{device}, best of {max(1, repeats - 1)})"
    )
    inputs = _score_inputs(np.random.default_rng(seed + 2), n, d, c)
    capped = _cap_per_class(inputs, cap, seed)
    missed = []
    for name in names:
        arrays = capped if name in NXN_SCORES else inputs
        extra = {}
        if "classes" not in spec(name).targets:  # e.g. linear_mse: real-valued targets of the same size
            arrays = dict(arrays, labels=np.random.default_rng(seed).normal(size=arrays["labels"].shape[0]))
            extra = {"target_kind": "regression"}
        try:
            value, seconds = _best_of(functools.partial(spec(name).compute, **arrays, **extra), repeats)
        except Exception as exc:  # noqa: BLE001 - report and go on: one broken score must not hide the others
            print(f"{name}_vs_extraction: failed ({type(exc).__name__}: {exc})")
            missed.append(name)
            continue
        ratio = seconds / extraction_s
        n_used = arrays["labels"].shape[0]
        goal = "(no goal)" if name in NO_GOAL else "(goal: <= 0.1)"
        print(f"{name}_seconds: {seconds:.3f} (N={n_used}, value {value:.6g})")
        print(f"{name}_vs_extraction: {ratio:.4f} {goal}")
        if name not in NO_GOAL and ratio > 0.1:
            missed.append(name)
    print(f"scores_missing_goal: {', '.join(missed) if missed else 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Small sizes: a smoke test in seconds.")
    parser.add_argument("--only", choices=["lfc", "logme", "scores"], action="append",
                        help="Run only these parts (repeatable); default all.")
    parser.add_argument("--scores", default=None, help="Comma-separated scores for (c); default every registered one.")
    parser.add_argument("--lfc-n", type=int, default=20000)
    parser.add_argument("--lfc-d", type=int, default=256)
    parser.add_argument("--logme-n", type=int, default=10000)
    parser.add_argument("--logme-d", type=int, default=512)
    parser.add_argument("--logme-c", type=int, default=100)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--c", type=int, default=10)
    parser.add_argument("--cap", type=int, default=100, help="Samples per class for the capped scores (NXN_SCORES).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="Timed repeats (the fastest is kept).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads for the scores of (c), as rank runs them (0: the library's default).")
    args = parser.parse_args()
    keep_freed_memory()  # as the command line does
    if args.quick:
        args.lfc_n, args.logme_n, args.logme_c, args.n = 2000, 1000, 10, 1000
    parts = args.only or ["lfc", "logme", "scores"]
    names = [*available(), *COMPOSITES] if args.scores is None else [
        spec(s).name for s in args.scores.split(",") if s.strip()]
    if "lfc" in parts:
        bench_lfc(args.lfc_n, args.lfc_d, 10, args.seed, args.repeats)
    if "logme" in parts:
        bench_logme(args.logme_n, args.logme_d, args.logme_c, args.seed, args.repeats)
    if "scores" in parts:
        bench_scores(args.n, args.d, args.c, args.cap, args.seed, args.device, names, args.repeats,
                     args.blas_threads or None)


if __name__ == "__main__":
    main()
