"""Integrated gradients (Captum, batched) and the share of attribution mass per half."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import TinyConvNet, tiny_task
from transferlab.analysis import half_shares, integrated_gradients


def test_half_shares_golden():
    a = np.zeros((2, 1, 2, 4))
    a[0, 0, 0, :2] = [1.0, -2.0]  # 3 on the left
    a[0, 0, 1, 3] = 1.0  # 1 on the right
    a[1, 0, :, 2:] = -0.5  # all on the right
    np.testing.assert_allclose(half_shares(a), [0.75, 0.0])
    np.testing.assert_allclose(half_shares(a, split=3), [0.75, 0.5])


@pytest.mark.parametrize(
    "array, kwargs, match",
    [
        (np.zeros((2, 4)), {}, "N, C, H, W"),
        (np.full((1, 1, 2, 4), np.nan), {}, "NaN"),
        (np.zeros((1, 1, 2, 4)), {}, "no attribution mass"),
        (np.ones((1, 1, 2, 4)), {"split": 4}, "split"),
    ],
)
def test_half_shares_refuses_bad_input(array, kwargs, match):
    with pytest.raises(ValueError, match=match):
        half_shares(array, **kwargs)


def test_completeness_and_batching():
    # Sundararajan et al.'s completeness axiom: attributions sum to f_t(x) - f_t(baseline).
    model = TinyConvNet(num_classes=3, seed=1).eval()
    task = tiny_task(3, 3, seed=2)
    x, y = task.x_train, task.y_train
    one = integrated_gradients(model, x, y, n_steps=64, batch_size=len(y))
    batched = integrated_gradients(model, x, y, n_steps=64, batch_size=2)
    np.testing.assert_allclose(batched, one, rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        inputs = torch.from_numpy((x / 255.0 if x.dtype == np.uint8 else x).astype(np.float32))
        gap = (model(inputs) - model(torch.zeros_like(inputs)))[torch.arange(len(y)), torch.from_numpy(y.copy())]
    np.testing.assert_allclose(one.reshape(len(y), -1).sum(axis=1), gap.numpy(), rtol=0.05, atol=1e-3)
    assert model.training is False


def test_targets_are_checked():
    model = TinyConvNet(num_classes=3, seed=1)
    task = tiny_task(3, 2, seed=2)
    with pytest.raises(ValueError, match="targets"):
        integrated_gradients(model, task.x_train, task.y_train[:-1])
