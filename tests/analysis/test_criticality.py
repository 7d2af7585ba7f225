"""Module criticality: the grid score and the per-stage measurement."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tests.helpers import tiny_task
from transferlab.analysis import criticality_from_grid, module_criticality
from transferlab.models._mlp import MLP
from transferlab.train._config import TrainConfig
from transferlab.train._fit import evaluate, fit


def test_grid_score_golden():
    alphas, sigmas = [0.5, 1.0], [0.1, 0.2]
    errors = np.array([[[0.3, 0.5], [0.9, 0.9]], [[0.0, 0.1], [0.2, 0.2]]])  # cell means .4 .9 / .05 .2
    r = criticality_from_grid(alphas, sigmas, errors, distance_sq=4.0, epsilon=0.25)
    assert r == {"criticality": pytest.approx(1.0 * 4.0 / 0.04), "alpha": 1.0, "sigma": 0.2}
    r = criticality_from_grid(alphas, sigmas, errors, distance_sq=4.0, epsilon=0.45)
    assert r["criticality"] == pytest.approx(0.25 * 4.0 / 0.01) and r["alpha"] == 0.5
    assert criticality_from_grid(alphas, sigmas, errors, 4.0, 0.01)["criticality"] == float("inf")
    with pytest.raises(ValueError, match="shape"):
        criticality_from_grid(alphas, sigmas, errors[0], 4.0, 0.1)


@pytest.fixture(scope="module")
def pair():
    task = tiny_task(3, 20, seed=0)
    initial = MLP(in_shape=task.x_train.shape[1:], hidden=(16, 8), num_classes=3)
    final = copy.deepcopy(initial)
    fit(final, task, TrainConfig(epochs=10, batch_size=16, lr=0.1), progress=False)
    return initial, final, task


def test_criticality_is_finite_and_monotone_in_the_error_budget(pair):
    initial, final, task = pair
    train_error = 1.0 - evaluate(final, task.split("train"))[1]
    kwargs = dict(alphas=[0.0, 0.5, 1.0], sigmas=[0.01, 0.1, 1.0], n_samples=2, seed=0)
    tight = module_criticality(initial, final, task, epsilon=0.05, **kwargs)
    loose = module_criticality(initial, final, task, epsilon=0.3, **kwargs)
    assert [r["stage"] for r in tight] == ["fc1", "fc2"]
    for t, l in zip(tight, loose):
        assert np.isfinite(t["criticality"]) and t["criticality"] >= 0
        assert t["bound"] == pytest.approx(train_error + 0.05) and l["bound"] == pytest.approx(train_error + 0.3)
        assert l["criticality"] <= t["criticality"]  # a larger budget admits more cells
        assert t["errors"] == l["errors"]  # the same seeded noise whatever the budget
        errors = np.array(t["errors"])
        assert errors.shape == (3, 3, 2)
        # the un-noised end point (alpha = 1, the smallest sigma) is nearly the final model
        assert errors[2, 0].mean() <= train_error + 0.05
        for eps in np.linspace(0.0, 1.0, 11):  # monotone over a whole sweep of budgets
            scores = [criticality_from_grid(kwargs["alphas"], kwargs["sigmas"], errors, t["distance"] ** 2, e)
                      ["criticality"] for e in (eps, eps + 0.1)]
            assert scores[1] <= scores[0]
    before = evaluate(final, task)[0]
    assert evaluate(final, task)[0] == before  # the model itself is restored


def test_bad_input(pair):
    initial, final, task = pair
    with pytest.raises(ValueError, match="epsilon"):
        module_criticality(initial, final, task, epsilon=2.0)
    with pytest.raises(ValueError, match="no parameters"):
        module_criticality(initial, final, task, epsilon=0.1, stages=["conv9"], alphas=[1.0], sigmas=[0.1])
