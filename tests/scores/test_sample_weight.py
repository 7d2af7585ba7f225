"""Scores that take ``sample_weight``: integer weights equal the data with rows repeated.

The ranker's bootstrap hands such scores Bayesian-bootstrap weights instead of
repeated rows (``transferlab.rank._bootstrap``), so the weighted form must be the
score of the weighted empirical distribution. The independent reference is the
unweighted score on the rows repeated ``w_i`` times.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferlab.rank._bootstrap import takes_sample_weight
from transferlab.scores import available, spec

WEIGHTED = [name for name in available(kind="model") if takes_sample_weight(spec(name).func)]


def _inputs(seed: int, n: int = 24, d: int = 5, c: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % c
    logits = rng.normal(size=(n, 4)) + labels[:, None]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return {"labels": labels, "features": rng.normal(size=(n, d)) + labels[:, None], "source_probs": probs}


def _call(name: str, inputs: dict, **extra) -> float:
    needs = {"features": "features", "source_probs": "source_probs"}
    arrays = {needs[k]: inputs[k] for k in spec(name).needs}
    return spec(name).compute(inputs["labels"], **arrays, **extra)


def test_the_scores_the_bootstrap_weights():
    assert {"logme", "leep", "nce"} <= set(WEIGHTED)


@pytest.mark.parametrize("name", WEIGHTED)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_integer_weights_equal_repeated_rows(name, seed):
    inputs = _inputs(seed)
    rng = np.random.default_rng(seed + 1)
    weights = rng.integers(0, 4, size=inputs["labels"].size)
    weights[:3] = 1  # every class keeps a sample
    rows = np.repeat(np.arange(weights.size), weights)
    repeated = {k: v[rows] for k, v in inputs.items()}
    np.testing.assert_allclose(_call(name, inputs, sample_weight=weights), _call(name, repeated), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", WEIGHTED)
def test_unit_weights_change_nothing(name):
    inputs = _inputs(3)
    ones = np.ones(inputs["labels"].size)
    assert _call(name, inputs, sample_weight=ones) == pytest.approx(_call(name, inputs), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("name", WEIGHTED)
@pytest.mark.parametrize(
    "weights, match",
    [
        (np.full(24, np.nan), "sample_weight must be finite"),
        (-np.ones(24), "sample_weight must be non-negative"),
        (np.zeros(24), "sample_weight is all zeros"),
        (np.ones(23), r"sample_weight must have shape \(24,\)"),
    ],
)
def test_bad_weights(name, weights, match):
    with pytest.raises(ValueError, match=match):
        _call(name, _inputs(0), sample_weight=weights)


def test_logme_repeated_rows_that_interpolate_are_refused():
    # N = 6 rows in D = 10: the targets are interpolated, so repeating a row makes the
    # evidence unbounded (beta -> inf); positive weights summing to N stay finite.
    rng = np.random.default_rng(0)
    F, y = rng.normal(size=(6, 10)), np.array([0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="unbounded"):
        spec("logme").compute(y, features=F, sample_weight=np.array([2, 1, 1, 1, 1, 1]))
    w = rng.dirichlet(np.ones(6)) * 6
    assert np.isfinite(spec("logme").compute(y, features=F, sample_weight=w))


# ------------------------------------------------- stacked weightings: one value per row (issue 16)


@pytest.mark.parametrize("name", WEIGHTED)
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), b=st.integers(1, 6))
def test_stacked_weights_equal_each_row_alone(name, seed, b):
    inputs = _inputs(seed)
    rng = np.random.default_rng(seed + 1)
    W = rng.dirichlet(np.ones(24), size=b) * 24
    W[0, rng.choice(24, size=5, replace=False)] = 0.0  # some rows left out of one weighting
    got = _call(name, inputs, sample_weight=W)
    assert isinstance(got, np.ndarray) and got.shape == (b,)
    expected = [_call(name, inputs, sample_weight=w) for w in W]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", WEIGHTED)
def test_stacked_integer_weights_equal_repeated_rows(name):
    # Independent reference: the unweighted score of the data with row i repeated w_bi times.
    inputs = _inputs(7)
    W = np.random.default_rng(8).integers(0, 4, size=(4, 24))
    W[:, :3] = 1  # every class keeps a sample
    got = _call(name, inputs, sample_weight=W)
    for b, weights in enumerate(W):
        rows = np.repeat(np.arange(24), weights)
        repeated = {k: v[rows] for k, v in inputs.items()}
        np.testing.assert_allclose(got[b], _call(name, repeated), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", WEIGHTED)
@pytest.mark.parametrize(
    "row, match",
    [
        (np.full(24, np.nan), "sample_weight must be finite"),
        (-np.ones(24), "sample_weight must be non-negative"),
        (np.zeros(24), r"sample_weight is all zeros in row 1"),
    ],
)
def test_bad_stacked_weights(name, row, match):
    with pytest.raises(ValueError, match=match):
        _call(name, _inputs(0), sample_weight=np.vstack([np.ones(24), row]))


@pytest.mark.parametrize("name", WEIGHTED)
@pytest.mark.parametrize("shape", [(2, 23), (2, 24, 1), (0, 24)])
def test_stacked_weights_of_the_wrong_shape(name, shape):
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(24,\)"):
        _call(name, _inputs(0), sample_weight=np.ones(shape))
