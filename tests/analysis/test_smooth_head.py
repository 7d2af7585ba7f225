"""The gradient-penalised source head of the transfer bound."""

from __future__ import annotations

import numpy as np
import pytest

from transferlab.analysis import feature_lipschitz, fit_smooth_head
from transferlab.train import fit_linear_probe


def _blobs(seed=0, n=120, d=5, k=3, spread=4.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    return rng.normal(size=(k, d))[y] * spread + rng.normal(size=(n, d)), y


def test_the_penalty_holds_the_input_gradients_near_tau():
    z, y = _blobs()
    free = fit_smooth_head(z, y, penalty=0.0, steps=300)
    smooth = fit_smooth_head(z, y, tau=0.3, penalty=100.0, steps=300)
    assert free.max_gradient_norm > 1.0
    assert smooth.max_gradient_norm < 0.3 * 1.5
    # a smoother head pays in source loss
    assert smooth.train_loss > free.train_loss


@pytest.mark.parametrize("tau", [0.2, 1.0])
def test_the_analytic_constant_bounds_every_measured_gradient(tau):
    z, y = _blobs(1)
    head = fit_smooth_head(z, y, tau=tau, steps=100)
    assert head.lipschitz == pytest.approx(feature_lipschitz(head.weight))
    assert head.max_gradient_norm <= head.lipschitz + 1e-12


def test_without_penalty_it_is_plain_logistic_regression():
    z, y = _blobs(2, spread=1.0)
    head = fit_smooth_head(z, y, penalty=0.0, steps=2000, lr=0.05)
    probe = fit_linear_probe(z, y, z, y, weight_decay=0.0, max_iter=2000)
    assert head.train_loss == pytest.approx(probe.train_loss, abs=2e-3)


def test_same_seed_same_head():
    z, y = _blobs(3)
    a, b = fit_smooth_head(z, y, steps=20, seed=4), fit_smooth_head(z, y, steps=20, seed=4)
    assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"tau": -1.0}, "tau must be"), ({"steps": 0}, "steps must be"), ({"n_classes": 2}, "labels must lie")],
)
def test_bad_arguments_are_refused(kwargs, message):
    z, y = _blobs()
    with pytest.raises(ValueError, match=message):
        fit_smooth_head(z, y, **kwargs)


def test_nan_features_are_refused():
    z, y = _blobs()
    z[3, 1] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        fit_smooth_head(z, y)
