"""Stratified bootstrap of the scores over the target samples (pure array code).

Every candidate and every score sees the same resamples (a paired bootstrap),
so that P(best), the within-noise marks and the agreement compare like with
like. Resample ``b`` is drawn from ``numpy.random.default_rng([seed, b])``:

- every score is recomputed on a stratified resample with replacement (each
  class keeps its size; rows repeated), Efron's bootstrap; a score whose
  function takes ``sample_weight`` (LogME, LEEP, NCE) gets the same resample as
  integer counts (the value of the repeated rows, at the cost of the ~63%
  distinct ones);
- except on small targets (fewer than :data:`COUNTS_MIN_SAMPLES` samples),
  where a score that takes ``sample_weight`` is recomputed under stratified
  Bayesian-bootstrap weights instead (Rubin, "The Bayesian bootstrap", Ann.
  Statist. 1981): within each class of ``n_c`` samples, ``n_c`` times a flat
  Dirichlet draw. Every sample keeps a positive weight, so no row is repeated:
  repeated rows make LogME's evidence unbounded when the features interpolate
  the kept rows (distinct rows <= D, the few-shot case). From
  ``COUNTS_MIN_SAMPLES`` on, a resample keeps about 0.63 N >= 2,589 distinct
  rows, more than the feature width of common models (<= 2048), so counts are
  bounded; a wider model whose resample its features interpolate has that
  resample rejected (NaN, dropped for every candidate alike), never a wrong
  value. The choice depends on N alone, so every candidate of a ranking sees
  the same kind of resample (the bootstrap stays paired).

A weighted score is called on stacks of weightings (a 2-D ``sample_weight``, one
value per row; LogME, LEEP and NCE compute a stack in one pass), one stack per
worker thread, so the per-call cost (validation, the Python loops of LogME's
fixed point) is paid once per thread rather than once per resample.

Both weightings have mean 1 and variance about 1 per sample. The source
features (of the candidate's source data, not of the target) are never
resampled.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from transferlab._linalg import one_blas_thread

#: From this many target samples on, scores that take ``sample_weight`` get Efron counts, below it
#: Bayesian-bootstrap weights (see the module docstring).
COUNTS_MIN_SAMPLES = 4096

#: Score inputs with one row per target sample (resampled); the others are kept as they are.
PER_SAMPLE = frozenset({"features", "source_probs", "gradients", "probe_features"})


def takes_sample_weight(func) -> bool:
    """Whether a score function accepts a ``sample_weight`` keyword."""
    try:
        return "sample_weight" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def class_index(labels) -> list[np.ndarray]:
    """The sample indices of each class, in order of first appearance: the strata of :func:`draw`.

    Class labels are integers or strings (1-D). Real-valued (float) regression
    targets and 2-D targets (multi-label 0/1 matrices, several regression
    columns) have no classes to stratify by: they give one stratum of every
    sample, so :func:`draw` makes a plain (unstratified) resample of all ``N``
    samples and plain Bayesian-bootstrap weights (``N`` times a flat Dirichlet).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind == "f":
        return [np.arange(labels.shape[0])]
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return [np.flatnonzero(inverse == c) for c in np.argsort(first)]


def draw(classes: list[np.ndarray], n_samples: int, seed: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``b``: ``(indices, weights)``.

    ``indices`` (N,) resamples each class with replacement (class sizes kept);
    ``weights`` (N,) are the stratified Bayesian-bootstrap weights (positive,
    summing to ``n_c`` within each class). With one stratum of every sample
    (regression and multi-label targets, see :func:`class_index`) both are the
    plain, unstratified bootstrap.
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


def weights_kind(n_samples: int) -> str:
    """The resample a score that takes ``sample_weight`` gets on ``n_samples`` targets: ``"counts"`` or ``"bayesian"``."""
    return "counts" if n_samples >= COUNTS_MIN_SAMPLES else "bayesian"


def _weighting(classes: list[np.ndarray], n_samples: int, seed: int, b: int) -> np.ndarray:
    """Resample ``b`` as sample weights: Efron counts from ``COUNTS_MIN_SAMPLES`` samples on, else Bayesian."""
    indices, weights = _draw(classes, n_samples, seed, b)
    if weights_kind(n_samples) == "counts":
        return np.bincount(indices, minlength=n_samples).astype(np.float64)
    return weights


#: The last draws made, keyed by the strata, N, seed and resample: every score of every
#: candidate of a ranking asks for the same resamples, so each is drawn once. Bounded.
_DRAWS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_DRAWS_MAX = 1000


def _draw(classes: list[np.ndarray], n_samples: int, seed: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`draw`, remembered (read-only arrays; the cache is dropped whole when full)."""
    digest = hashlib.blake2b(digest_size=16)
    for members in classes:
        digest.update(members.tobytes() + b"|")
    strata = digest.digest()
    key = (strata, int(n_samples), int(seed), int(b))
    hit = _DRAWS.get(key)
    if hit is None:
        if len(_DRAWS) >= _DRAWS_MAX:
            _DRAWS.clear()
        hit = draw(classes, n_samples, seed, b)
        for array in hit:
            array.flags.writeable = False
        _DRAWS[key] = hit
    return hit


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
    if takes_sample_weight(score.func):
        return _bootstrap_weighted(score, labels, classes, arrays, seed=seed, resamples=resamples,
                                   options=options, workers=workers)

    def one(b: int) -> float:
        indices, _ = _draw(classes, labels.shape[0], seed, b)
        return float(_or_nan(lambda: score.compute(labels[indices], **resample_arrays(arrays, indices), **options)))

    return _map(one, resamples, workers)


def _bootstrap_weighted(score, labels: np.ndarray, classes: list[np.ndarray], arrays: dict, *, seed: int,
                        resamples: int, options: dict, workers: int | None) -> np.ndarray:
    """:func:`bootstrap_score` for a score that takes ``sample_weight``: the weightings in stacks.

    The ``(resamples, N)`` weights (counts or Bayesian, see the module docstring) are built once and split into
    one contiguous chunk per worker thread; each chunk is one call of the score
    with a 2-D ``sample_weight`` (one value per row: the features are validated
    once per chunk and, for LogME, the fixed point runs over the whole chunk at
    once). A chunk that the score rejects (a ``ValueError``: one of its rows is
    invalid, or the score takes only 1-D weights) is recomputed row by row, so
    only the rows that fail are NaN; the values are those of the row-by-row calls.
    """
    if resamples == 0:
        return np.zeros(0)
    weights = np.stack([_weighting(classes, labels.shape[0], seed, b) for b in range(resamples)])
    n_chunks = min(resamples, _workers(workers))
    chunks = np.array_split(np.arange(resamples), n_chunks)

    def one(w: np.ndarray) -> float:
        return float(_or_nan(lambda: score.compute(labels, **arrays, **options, sample_weight=w)))

    def chunk(c: int) -> np.ndarray:
        rows = weights[chunks[c]]
        try:
            values = np.asarray(score.compute(labels, **arrays, **options, sample_weight=rows), dtype=float)
        except ValueError:
            values = None
        if values is None or values.shape != (rows.shape[0],):
            return np.array([one(w) for w in rows])
        return np.where(np.isfinite(values), values, np.nan)

    return np.concatenate(_map(chunk, n_chunks, n_chunks, scalar=False))


def bootstrap_pool(score, labels: np.ndarray, pool: list, *, seed: int, resamples: int,
                   workers: int | None = None) -> np.ndarray:
    """A pool score on every resample (rows repeated): ``(resamples, n_candidates)``, NaN rows where rejected."""
    labels = np.asarray(labels)
    classes = class_index(labels)

    def one(b: int) -> np.ndarray:
        indices, _ = _draw(classes, labels.shape[0], seed, b)
        return _or_nan(lambda: score.compute_pool([f[indices] for f in pool], labels[indices]), len(pool))

    return np.array(_map(one, resamples, workers, scalar=False)).reshape(resamples, len(pool))


def _or_nan(call, shape=()) -> np.ndarray:
    """``call()`` as floats, NaN where it is not finite; all NaN (of ``shape``) when it raises ValueError.

    A resample the score rejects (e.g. a class whose resampled rows are all equal)
    counts as missing, not as an error: the caller drops it for every candidate.
    """
    try:
        values = np.asarray(call(), dtype=float)
    except ValueError:
        return np.full(shape, np.nan)
    return np.where(np.isfinite(values), values, np.nan)


def _workers(workers: int | None) -> int:
    """Threads over the resamples: as given, else the CPU count, at most 8."""
    return workers or min(8, os.cpu_count() or 1)


def _map(fn, resamples: int, workers: int | None, *, scalar: bool = True):
    workers = _workers(workers)
    with one_blas_thread():
        if workers <= 1 or resamples <= 1:
            out = [fn(b) for b in range(resamples)]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                out = list(pool.map(fn, range(resamples)))
    return np.array(out, dtype=float) if scalar else out
