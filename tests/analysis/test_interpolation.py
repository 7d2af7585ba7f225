"""Linear interpolation between solutions and the loss barrier."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tests.helpers import TinyConvNet, tiny_task
from transferlab.analysis import interpolate, loss_barrier
from transferlab.models._mlp import MLP
from transferlab.train._config import TrainConfig
from transferlab.train._fit import evaluate, fit


@pytest.fixture(scope="module")
def trained_mlp():
    task = tiny_task(3, 20, seed=0)
    # Seeded: the global generator's state here depends on the tests before (hypothesis draws vary),
    # and for some initialisations the permuted twin's barrier is below the test's threshold.
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = MLP(in_shape=task.x_train.shape[1:], hidden=(16,), num_classes=3)
    fit(model, task, TrainConfig(epochs=15, batch_size=16, lr=0.1), progress=False)
    return model, task


def test_loss_barrier_golden_and_checks():
    assert loss_barrier([0.0, 0.25, 1.0], [2.0, 2.0, 1.0]) == pytest.approx(0.25)  # line at 0.25: 1.75
    assert loss_barrier([0.0, 1.0], [5.0, 1.0]) == 0.0
    with pytest.raises(ValueError, match="increase"):
        loss_barrier([0.0, 0.6, 0.5, 1.0], [1, 1, 1, 1])
    with pytest.raises(ValueError, match="same length"):
        loss_barrier([0.0, 1.0], [1.0])


def test_identical_endpoints_have_no_barrier_even_with_batch_norm():
    task = tiny_task(3, 10, seed=1)
    model = TinyConvNet(num_classes=3, seed=2)
    fit(model, task, TrainConfig(epochs=2, batch_size=8), progress=False)
    before = copy.deepcopy(model.state_dict())
    curves = interpolate(model, model, task, task, n_points=5)
    assert len(curves["t"]) == 5 and curves["t"][0] == 0.0 and curves["t"][-1] == 1.0
    assert curves["train_barrier"] == pytest.approx(0.0, abs=1e-6)
    assert np.ptp(curves["test_loss"]) < 1e-6
    for k, v in model.state_dict().items():  # the model itself is untouched
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_endpoints_reproduce_the_endpoint_models(trained_mlp):
    model, task = trained_mlp
    other = MLP(in_shape=task.x_train.shape[1:], hidden=(16,), num_classes=3)
    curves = interpolate(model, other, task, task)
    assert len(curves["t"]) == 25  # the default
    assert curves["test_error"][0] == pytest.approx(1.0 - evaluate(model, task)[1])
    assert curves["test_error"][-1] == pytest.approx(1.0 - evaluate(other, task)[1])
    assert curves["test_loss"][0] == pytest.approx(evaluate(model, task)[0])


def test_two_basins_of_the_same_function_have_a_barrier(trained_mlp):
    # Permuting the hidden units gives the same function in another basin: equal endpoint
    # losses, and the straight path between them averages unrelated units.
    model, task = trained_mlp
    twin = copy.deepcopy(model)
    perm = torch.from_numpy(np.random.default_rng(0).permutation(16))
    fc1 = twin.stages["fc1"].linear
    with torch.no_grad():
        fc1.weight.copy_(fc1.weight[perm])
        fc1.bias.copy_(fc1.bias[perm])
        twin.head.weight.copy_(twin.head.weight[:, perm])
    assert evaluate(twin, task)[0] == pytest.approx(evaluate(model, task)[0], rel=1e-5)
    curves = interpolate(model, twin, task, n_points=9)
    assert curves["train_loss"][0] == pytest.approx(curves["train_loss"][-1], rel=1e-5)
    midpoint = curves["train_loss"][4]
    assert curves["train_barrier"] == pytest.approx(max(curves["train_loss"]) - curves["train_loss"][0], rel=1e-4)
    assert midpoint > curves["train_loss"][0] + 0.005 and curves["train_barrier"] > 0.005


def test_different_architectures_are_refused(trained_mlp):
    model, task = trained_mlp
    with pytest.raises(ValueError, match="same architecture"):
        interpolate(model, MLP(in_shape=task.x_train.shape[1:], hidden=(8,), num_classes=3), task)
