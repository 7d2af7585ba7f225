"""The bootstrap of a score that takes ``sample_weight`` calls it on stacks of weightings.

``bootstrap_score`` builds the ``(resamples, N)`` weights once (Bayesian-bootstrap
weights of ``draw`` below ``COUNTS_MIN_SAMPLES`` samples, the Efron counts of its
indices from there on) and hands each worker thread one chunk as a 2-D ``sample_weight``
(issue 16: the bootstrap must cost at most the feature extraction). The
reference is the row-by-row loop: ``score.compute(..., sample_weight=w_b)`` with
``w_b = draw(classes, N, seed, b)[1]``, NaN where that call is rejected.
"""

from __future__ import annotations

import numpy as np
import pytest

from transferlab.rank._bootstrap import bootstrap_score, class_index, draw
from transferlab.scores import spec


def _inputs(seed: int, n: int = 30, d: int = 6, c: int = 3) -> tuple[np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % c
    logits = rng.normal(size=(n, 5)) + labels[:, None]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, {"features": rng.normal(size=(n, d)) + labels[:, None], "source_probs": probs}


def _row_by_row(score, labels, arrays, seed, resamples):
    classes = class_index(labels)
    out = []
    for b in range(resamples):
        try:
            value = float(score.compute(labels, **arrays, sample_weight=draw(classes, labels.size, seed, b)[1]))
        except ValueError:
            value = np.nan
        out.append(value if np.isfinite(value) else np.nan)
    return np.array(out)


@pytest.mark.parametrize("name", ["logme", "leep", "nce"])
@pytest.mark.parametrize("workers, resamples", [(1, 5), (2, 7), (3, 10), (8, 3)])
def test_stacked_bootstrap_equals_row_by_row(name, workers, resamples):
    labels, inputs = _inputs(workers + resamples)
    score = spec(name)
    arrays = {k: v for k, v in inputs.items() if k in {"features", "source_probs"} and k in _needs(score)}
    got = bootstrap_score(score, labels, arrays, seed=5, resamples=resamples, options={}, workers=workers)
    assert got.shape == (resamples,)
    np.testing.assert_allclose(got, _row_by_row(score, labels, arrays, 5, resamples), rtol=1e-10)


def test_logme_with_more_features_than_samples():
    # N < D: the features interpolate the targets; Bayesian weights (summing to N) keep it bounded.
    labels, inputs = _inputs(1, n=12, d=40)
    got = bootstrap_score(spec("logme"), labels, {"features": inputs["features"]}, seed=2, resamples=6,
                          options={}, workers=2)
    expected = _row_by_row(spec("logme"), labels, {"features": inputs["features"]}, 2, 6)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_zero_resamples():
    labels, inputs = _inputs(0)
    assert bootstrap_score(spec("logme"), labels, {"features": inputs["features"]}, seed=0, resamples=0,
                           options={}).shape == (0,)


class _Picky:
    """A weighted score stub: ``sum_i w_i x_i``, rejecting (ValueError) a weighting whose first weight is above 1.

    Like the real scores it validates a stack at once, so one bad row rejects the
    whole stack; ``stacks`` False makes it take 1-D weights only; a weighting whose
    second weight is above 1.5 gives ``inf``.
    """

    def __init__(self, stacks: bool = True):
        self.stacks = stacks

    def func(self, features, labels, *, sample_weight=None):
        w = np.asarray(sample_weight)
        if w.ndim == 2 and not self.stacks:
            raise ValueError("sample_weight must have shape (n_samples,)")
        if np.any(np.atleast_2d(w)[:, 0] > 1.0):
            raise ValueError("first weight above 1")
        values = np.where(np.atleast_2d(w)[:, 1] > 1.5, np.inf, np.atleast_2d(w) @ features[:, 0])
        return values if w.ndim == 2 else float(values[0])

    def compute(self, labels, **kwargs):
        return self.func(labels=labels, **kwargs)


@pytest.mark.parametrize("stacks", [True, False])
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_rejected_rows_are_nan_and_the_others_kept(stacks, workers):
    labels, inputs = _inputs(4)
    features = inputs["features"]
    resamples = 12
    got = bootstrap_score(_Picky(stacks), labels, {"features": features}, seed=9, resamples=resamples, options={},
                          workers=workers)
    classes = class_index(labels)
    weights = np.array([draw(classes, labels.size, 9, b)[1] for b in range(resamples)])
    expected = np.where((weights[:, 0] > 1.0) | (weights[:, 1] > 1.5), np.nan, weights @ features[:, 0])
    assert np.isnan(expected).any() and np.isfinite(expected).any()  # the draw exercises both
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["logme", "leep", "nce"])
def test_large_targets_get_the_efron_resample_as_counts(monkeypatch, name):
    # From COUNTS_MIN_SAMPLES on, a weighted score sees exactly the rows that every other score's
    # resample draws (the bootstrap stays paired across scores): its value on the repeated rows.
    monkeypatch.setattr("transferlab.rank._bootstrap.COUNTS_MIN_SAMPLES", 30)
    labels, inputs = _inputs(3, n=30)
    score = spec(name)
    arrays = {k: v for k, v in inputs.items() if k in _needs(score)}
    got = bootstrap_score(score, labels, arrays, seed=4, resamples=6, options={}, workers=2)
    classes = class_index(labels)
    expected = []
    for b in range(6):
        indices, _ = draw(classes, labels.size, 4, b)
        expected.append(score.compute(labels[indices], **{k: v[indices] for k, v in arrays.items()}))
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_small_targets_keep_bayesian_weights(monkeypatch):
    # Below the threshold the few-shot LogME stays bounded: positive weights, no repeated rows.
    labels, inputs = _inputs(1, n=12, d=40)
    arrays = {"features": inputs["features"]}
    bayes = bootstrap_score(spec("logme"), labels, arrays, seed=2, resamples=6, options={})
    assert np.isfinite(bayes).all()
    monkeypatch.setattr("transferlab.rank._bootstrap.COUNTS_MIN_SAMPLES", 12)
    counts = bootstrap_score(spec("logme"), labels, arrays, seed=2, resamples=6, options={})
    assert np.isnan(counts).all()  # repeated rows that the features interpolate: rejected, never a value


def _needs(score) -> set:
    from transferlab.scores import NEED_ARGUMENTS

    return {a for need in score.needs for a in NEED_ARGUMENTS[need]}
