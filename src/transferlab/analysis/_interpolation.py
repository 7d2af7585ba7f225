"""Linear interpolation between two trained networks, batch norm re-estimated at every point."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from transferlab._validation import check_int
from transferlab.analysis._barrier import loss_barrier
from transferlab.models import to_input
from transferlab.train import as_arrays, evaluate


def _recompute_batch_norm(model: nn.Module, x: np.ndarray, batch_size: int, device: str) -> None:
    """Running statistics of every batch-norm layer re-estimated as exact averages over ``x``."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: the exact mean over the batches
    model.train()
    with torch.no_grad():
        for lo in range(0, x.shape[0], batch_size):
            model(to_input(x[lo : lo + batch_size]).to(device))
    for m, momentum in saved:
        m.momentum = momentum
    model.eval()


def interpolate(
    model_a: nn.Module,
    model_b: nn.Module,
    train,
    test=None,
    *,
    n_points: int = 25,
    batch_size: int = 256,
    device: str = "cpu",
) -> dict:
    """Loss and error along ``theta_t = (1 - t) theta_a + t theta_b`` for ``n_points`` values of ``t``.

    Neyshabur, Sedghi & Zhang, "What is being transferred in transfer learning?"
    (2020), Section 3.4: two networks fine-tuned from the same pre-trained
    weights lie in one basin (no barrier on the straight path between them);
    two trained from random initialisations do not. At every ``t`` (both ends
    included) the parameters are interpolated, integer buffers are taken from
    ``model_a``, the batch-norm statistics are re-estimated on the training
    images (interpolated statistics would not match the interpolated weights),
    and loss and error are measured on ``train`` and, if given, ``test``.

    Parameters
    ----------
    model_a, model_b : nn.Module
        The same architecture; neither is modified.
    train, test : Task or (images, labels)
        A task's train split (``train``) or test split (``test``) is used.
    n_points : int, default 25
    batch_size : int, default 256
    device : str, default "cpu"

    Returns
    -------
    dict
        ``t`` and, per split, ``<split>_loss`` and ``<split>_error`` (lists), and
        ``<split>_barrier``: :func:`~transferlab.analysis.loss_barrier` of the loss.
    """
    n_points = check_int(n_points, "n_points", 2)
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    if state_a.keys() != state_b.keys() or any(state_a[k].shape != state_b[k].shape for k in state_a):
        raise ValueError("model_a and model_b must have the same architecture (same state names and shapes)")
    x_train, y_train = as_arrays(train, "train", "train", None)
    splits = {"train": (x_train, y_train)}
    if test is not None:
        splits["test"] = as_arrays(test, "test", "test", None)
    ts = np.linspace(0.0, 1.0, n_points)
    out: dict = {"t": ts.tolist()}
    for split in splits:
        out[f"{split}_loss"], out[f"{split}_error"] = [], []
    model = copy.deepcopy(model_a).to(device)
    for t in ts:
        mixed = {
            k: (1.0 - t) * state_a[k] + t * state_b[k] if state_a[k].is_floating_point() else state_a[k]
            for k in state_a
        }
        model.load_state_dict(mixed)
        _recompute_batch_norm(model, x_train, batch_size, device)
        for split, data in splits.items():
            loss, accuracy = evaluate(model, data, batch_size=batch_size, device=device)
            out[f"{split}_loss"].append(loss)
            out[f"{split}_error"].append(1.0 - accuracy)
    for split in splits:
        out[f"{split}_barrier"] = loss_barrier(ts, out[f"{split}_loss"])
    return out
