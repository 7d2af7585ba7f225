"""Stratified bootstrap of the scores over the target samples (pure array code).

Every candidate and every score sees the same resamples (a paired bootstrap),
so that P(best), the within-noise marks and the agreement compare like with
like. Resample ``b`` is drawn from ``numpy.random.default_rng([seed, b])``:

- a score whose function takes ``sample_weight`` (LogME) is recomputed under
  stratified Bayesian-bootstrap weights (Rubin, "The Bayesian bootstrap", Ann.
  Statist. 1981): within each class of ``n_c`` samples, ``n_c`` times a flat
  Dirichlet draw. Every sample keeps a positive weight, so no row is repeated:
  repeated rows make LogME's evidence unbounded when the features interpolate
  the targets (N <= D, the few-shot case);
- every other score is recomputed on a stratified resample with replacement
  (each class keeps its size; rows repeated), Efron's bootstrap.

Both weightings have mean 1 and variance about 1 per sample. The source
features (of the candidate's source data, not of the target) are never
resampled.
"""

from __future__ import annotations

import inspect
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from transferlab._linalg import one_blas_thread

#: Score inputs with one row per target sample (resampled); the others are kept as they are.
PER_SAMPLE = frozenset({"features", "source_probs", "gradients", "probe_features"})


def takes_sample_weight(func) -> bool:
    """Whether a score function accepts a ``sample_weight`` keyword."""
    try:
        return "sample_weight" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def class_index(labels) -> list[np.ndarray]:
    """The sample indices of each class, in order of first appearance."""
    labels = np.asarray(labels)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return [np.flatnonzero(inverse == c) for c in np.argsort(first)]


def draw(classes: list[np.ndarray], n_samples: int, seed: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``b``: ``(indices, weights)``.

    ``indices`` (N,) resamples each class with replacement (class sizes kept);
    ``weights`` (N,) are the stratified Bayesian-bootstrap weights (positive,
    summing to ``n_c`` within each class).
    """
    rng = np.random.default_rng([int(seed), int(b)])
    indices = np.empty(n_samples, dtype=np.int64)
    weights = np.empty(n_samples)
    start = 0
    for members in classes:
        n_c = members.size
        indices[start:start + n_c] = members[rng.integers(0, n_c, size=n_c)]
        start += n_c
        gamma = rng.standard_exponential(n_c)  # Dirichlet(1, ..., 1) = normalised Exp(1)
        weights[members] = n_c * gamma / gamma.sum()
    return np.sort(indices), weights


def resample_arrays(arrays: dict, indices: np.ndarray) -> dict:
    """The per-sample arrays at ``indices``; the others (source features and labels) unchanged."""
    return {key: (value[indices] if key in PER_SAMPLE else value) for key, value in arrays.items()}


def bootstrap_score(score, labels: np.ndarray, arrays: dict, *, seed: int, resamples: int, options: dict,
                    workers: int | None = None) -> np.ndarray:
    """A per-model score on every resample: ``(resamples,)`` values, NaN where a resample is rejected.

    A resample that the score rejects (a ``ValueError``, e.g. a class whose
    resampled rows are all equal) or that gives a non-finite value counts as
    NaN; the caller drops such resamples for every candidate alike.

    Parameters
    ----------
    score : ScoreSpec
    labels : ndarray of shape (n_samples,)
    arrays : dict
        The score's inputs, as passed to ``score.compute``.
    seed, resamples : int
    options : dict
        Extra keywords (``seed`` of a seeded score).
    workers : int, optional
        Threads over the resamples (NumPy's BLAS is held to one thread each, so
        they never spin against each other); default: the CPU count, at most 8.
    """
    labels = np.asarray(labels)
    classes = class_index(labels)
    weighted = takes_sample_weight(score.func)

    def one(b: int) -> float:
        indices, weights = draw(classes, labels.shape[0], seed, b)
        try:
            if weighted:
                value = score.compute(labels, **arrays, **options, sample_weight=weights)
            else:
                value = score.compute(labels[indices], **resample_arrays(arrays, indices), **options)
        except ValueError:
            return np.nan
        value = float(value)
        return value if np.isfinite(value) else np.nan

    return _map(one, resamples, workers)


def bootstrap_pool(score, labels: np.ndarray, pool: list, *, seed: int, resamples: int,
                   workers: int | None = None) -> np.ndarray:
    """A pool score on every resample (rows repeated): ``(resamples, n_candidates)``, NaN rows where rejected."""
    labels = np.asarray(labels)
    classes = class_index(labels)

    def one(b: int) -> np.ndarray:
        indices, _ = draw(classes, labels.shape[0], seed, b)
        try:
            values = np.asarray(score.compute_pool([f[indices] for f in pool], labels[indices]), dtype=float)
        except ValueError:
            return np.full(len(pool), np.nan)
        return np.where(np.isfinite(values), values, np.nan)

    return np.array(_map(one, resamples, workers, scalar=False)).reshape(resamples, len(pool))


def _map(fn, resamples: int, workers: int | None, *, scalar: bool = True):
    workers = workers or min(8, os.cpu_count() or 1)
    with one_blas_thread():
        if workers <= 1 or resamples <= 1:
            out = [fn(b) for b in range(resamples)]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                out = list(pool.map(fn, range(resamples)))
    return np.array(out, dtype=float) if scalar else out
