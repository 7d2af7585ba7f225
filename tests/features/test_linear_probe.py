"""Tests of linear_probe (features -> fit_linear_probe): separable features, a scikit-learn reference, shapes."""

import math

import numpy as np
import pytest
import torch
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression
from torch import nn

from tests.helpers import TINY_SIZE, TinyMLP, tiny_task
from transferlab.features import extract, linear_probe
from transferlab.models import StagedModel
from transferlab.train import ProbeResult


class PixelModel(StagedModel):
    """One stage that flattens the image: the features are the pixels themselves."""

    def __init__(self, num_classes: int = 3):
        super().__init__({}, nn.ModuleDict({"pixels": nn.Flatten()}), TINY_SIZE * TINY_SIZE, num_classes)


@pytest.fixture(scope="module")
def task():
    return tiny_task(n_classes=4, n_per_class=15, seed=3)


def _mean_cross_entropy(features, labels, result):
    z = (features.astype(np.float64) - result.mean) / result.scale
    logp = log_softmax(z @ result.weight.T + result.bias, axis=1)
    return -logp[np.arange(labels.size), labels].mean(), logp


def test_probe_on_linearly_separable_pixels(task):
    result = linear_probe(PixelModel(), task)
    assert isinstance(result, ProbeResult)
    # each class is a fixed bright pattern over dim noise: pixel templates separate them
    assert result.test_accuracy == 1.0
    assert result.train_loss < math.log(task.n_classes)
    assert result.test_loss < math.log(task.n_classes)
    assert result.weight.shape == (4, TINY_SIZE * TINY_SIZE) and result.bias.shape == (4,)
    assert result.weight.dtype == np.float64 and result.mean.shape == result.scale.shape == (144,)
    # the reported losses are the mean cross-entropy of the returned head (recomputed here in NumPy)
    train_loss, _ = _mean_cross_entropy(extract(PixelModel(), task.x_train), task.y_train, result)
    test_loss, logp = _mean_cross_entropy(extract(PixelModel(), task.x_test), task.y_test, result)
    np.testing.assert_allclose(result.train_loss, train_loss, rtol=1e-10)
    np.testing.assert_allclose(result.test_loss, test_loss, rtol=1e-10)
    assert result.test_accuracy == np.mean(logp.argmax(1) == task.y_test)


def test_probe_matches_scikit_learn_logistic_regression(task):
    # scikit-learn minimises C * sum CE + ||W||^2 / 2 (intercept unpenalised with lbfgs);
    # divided by C * N it is our mean CE + lambda / 2 ||W||^2 with lambda = 1 / (C * N).
    # A strong penalty keeps the problem well conditioned so both solvers converge tightly.
    lam = 0.05
    model = TinyMLP(num_classes=7, seed=4)
    result = linear_probe(model, task, stage="fc1", weight_decay=lam, max_iter=1000)
    assert result.converged
    train = extract(model, task.x_train, stage="fc1").astype(np.float64)
    test = extract(model, task.x_test, stage="fc1").astype(np.float64)
    mean, std = train.mean(0), train.std(0)
    scale = np.where(std < 1e-12, 1.0, std)
    np.testing.assert_allclose(result.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(result.scale, scale, rtol=1e-12)
    n = train.shape[0]
    reference = LogisticRegression(C=1.0 / (lam * n), tol=1e-12, max_iter=10_000).fit((train - mean) / scale, task.y_train)
    _, logp = _mean_cross_entropy(test, task.y_test, result)
    np.testing.assert_allclose(np.exp(logp), reference.predict_proba((test - mean) / scale), atol=1e-5)
    np.testing.assert_allclose(result.weight, reference.coef_, atol=1e-4)


def test_probe_leaves_the_model_alone(task):
    model = TinyMLP(num_classes=4, seed=5)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = linear_probe(model, task, stage=0)
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    second = linear_probe(model, task, stage="fc1")  # the same stage by name: same result
    np.testing.assert_array_equal(first.weight, second.weight)
    assert first.test_loss == second.test_loss


def test_constant_features_are_not_scaled():
    constant = tiny_task(n_classes=2, n_per_class=6, seed=0)
    result = linear_probe(PixelModel(num_classes=2), constant)
    # no pixel is constant over the noisy train images, so nothing was left unscaled ...
    assert np.all(result.scale > 1e-3)
    blank = constant.derive("blank", {"op": "zero first row"}, x_train=_zero_row(constant.x_train))
    result = linear_probe(PixelModel(num_classes=2), blank)
    # ... and a constant (all-zero) row keeps scale 1 instead of dividing by 0
    np.testing.assert_array_equal(result.scale[:TINY_SIZE], 1.0)
    assert np.all(np.isfinite(result.weight)) and np.isfinite(result.test_loss)


def _zero_row(images):
    images = np.array(images)
    images[:, :, 0, :] = 0
    return images


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weight_decay": -1.0}, "weight_decay must be a finite number >= 0"),
        ({"weight_decay": math.inf}, "weight_decay must be a finite number >= 0"),
        ({"max_iter": 0}, "max_iter must be a positive integer"),
        ({"stage": "fc9"}, "unknown stage 'fc9'"),
    ],
)
def test_probe_validates_its_arguments(task, kwargs, match):
    with pytest.raises(ValueError, match=match):
        linear_probe(TinyMLP(num_classes=4), task, **kwargs)


def test_probe_needs_a_staged_model_and_a_task(task):
    with pytest.raises(ValueError, match="model must be a StagedModel"):
        linear_probe(nn.Flatten(), task)
    with pytest.raises(ValueError, match="task must be a transferlab Task"):
        linear_probe(PixelModel(), (task.x_train, task.y_train))


def test_probe_rejects_non_finite_features(task):
    model = TinyMLP(num_classes=4)
    with torch.no_grad():
        model.stages["fc1"][1].bias.fill_(math.nan)
    with pytest.raises(ValueError, match="contain NaN or Inf"):
        linear_probe(model, task)


def test_probe_reports_an_exhausted_iteration_budget(task):
    result = linear_probe(PixelModel(num_classes=4), task, max_iter=2)
    assert result.n_iter == 2 and not result.converged
