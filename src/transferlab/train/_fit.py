"""Supervised training of one model: SGD with (Nesterov) momentum, weight decay and a step LR schedule.

:func:`fit` checks its arguments, moves the data to the device and hands one
stream of batches to :func:`~transferlab.train._loop.run_epochs`, the loop it
shares with :func:`~transferlab.train._multidomain.fit_multidomain`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from transferlab._validation import check_int, check_scalar
from transferlab.data import Task
from transferlab.models import save_checkpoint, to_input
from transferlab.train._config import TrainConfig
from transferlab.train._loop import (  # _batch_bounds: re-exported for the tests
    NonFiniteLossError,
    Stream,
    _batch_bounds,  # noqa: F401
    evaluate_stream,
    resolve_budget,
    run_epochs,
    trainable_parameters,
)

__all__ = ["FitResult", "NonFiniteLossError", "as_arrays", "evaluate", "fit"]


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns; the trained weights are in the model itself.

    Attributes
    ----------
    history : tuple of dict
        One dict per epoch run: ``epoch`` (1-based), ``lr`` (the learning rate
        used in that epoch), ``train_loss`` and ``train_accuracy`` (running
        means over the epoch's batches, in train mode, while the weights
        change; over the batches taken when a step budget cuts the epoch),
        ``eval_loss`` and ``eval_accuracy`` (``None`` when not evaluated).
    final_eval_accuracy : float or None
        Evaluation accuracy of the weights the model ends with (after the last
        epoch, or of the best epoch when early stopping restored it); ``None``
        without ``eval_data``.
    seconds : float
        Wall time of the whole call.
    checkpoints : tuple of Path
        Files written, in epoch order.
    config : TrainConfig
        The resolved configuration (with a step budget, ``epochs`` is the
        number of epochs it took).
    best_epoch : int or None
        With ``patience``: the evaluated epoch of the lowest evaluation loss
        (the weights restored with ``restore_best``); ``None`` otherwise.
    stopped_epoch : int or None
        With ``patience``: the epoch after which training stopped early;
        ``None`` when the whole budget ran (or without ``patience``).
    """

    history: tuple[dict[str, Any], ...]
    final_eval_accuracy: float | None
    seconds: float
    checkpoints: tuple[Path, ...]
    config: TrainConfig
    best_epoch: int | None = None
    stopped_epoch: int | None = None

    @property
    def final_train_loss(self) -> float:
        """Mean training loss of the last epoch."""
        return self.history[-1]["train_loss"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary (paths as strings, config as a dict)."""
        return {
            "history": [dict(row) for row in self.history],
            "final_eval_accuracy": self.final_eval_accuracy,
            "seconds": self.seconds,
            "checkpoints": [str(p) for p in self.checkpoints],
            "config": self.config.to_dict(),
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
        }


# -- input checks -------------------------------------------------------------------------
def as_arrays(
    data: Any, split: str = "train", name: str = "data", num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of a Task's split or of an ``(images, labels)`` pair, validated for training.

    Parameters
    ----------
    data : Task or (images, labels)
        Images ``(N, C, H, W)`` or ``(N, H, W)``, ``uint8`` or finite float in
        [0, 1] (NumPy arrays or torch tensors); labels ``(N,)`` integer class
        indices.
    split : {"train", "test"}, default "train"
        The split taken from a Task (a pair is used as it is).
    name : str, default "data"
        The argument name used in error messages.
    num_classes : int, optional
        The labels must lie in ``0..num_classes-1`` (the model's head).

    Returns
    -------
    images : ndarray of shape (N, C, H, W)
        A channel axis is added to 3-D images; the dtype is kept.
    labels : ndarray of shape (N,)

    Raises
    ------
    ValueError
        If ``data`` is neither, the images are empty, not 4-D (or 3-D), of another
        dtype or hold NaN/Inf, or the labels do not match them or lie outside
        ``0..num_classes-1``.
    """
    if isinstance(data, Task):
        x, y = data.split(split)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for v in data)
    else:
        raise ValueError(f"{name} must be a Task or an (images, labels) pair; got {type(data).__name__}")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"{name} images must be (n_samples, channels, height, width); got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.floating):  # other integers would skip the 1/255 scaling
            raise ValueError(f"{name} images must be uint8 (0..255) or float in [0, 1]; got dtype {x.dtype}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} images contain NaN or Inf")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name} labels must be 1-D with {x.shape[0]} entries (one per image); got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} labels must be integers in 0..n_classes-1; got dtype {y.dtype}")
    if y.min() < 0 or (num_classes is not None and y.max() >= num_classes):
        raise ValueError(
            f"{name} labels must lie in 0..{'n_classes-1' if num_classes is None else num_classes - 1} "
            f"(the model's head has {num_classes} outputs); got range {y.min()}..{y.max()}; "
            "call model.replace_head(n_classes) for a new label set"
        )
    return x, y


def _to_tensors(x: np.ndarray, y: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # A writable copy only when needed: torch warns on read-only arrays (Task arrays are read-only).
    images = to_input(x if x.flags.writeable else x.copy()).to(device)
    labels = torch.from_numpy(np.array(y, dtype=np.int64)).to(device)
    return images, labels


def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module (a StagedModel); got {type(model).__name__}")
    return model


def _check_batch_size(batch_size: Any) -> int:
    return check_int(batch_size, "batch_size")


def _check_checkpoints(epochs: Iterable[int], directory: Any, metadata: Any, n_epochs: int) -> tuple[int, ...]:
    try:
        chosen = sorted({int(e) for e in epochs})
    except (TypeError, ValueError):
        raise ValueError(f"checkpoint_epochs must be an iterable of ints; got {epochs!r}") from None
    bad = [e for e in chosen if not 0 <= e <= n_epochs]
    if bad:
        raise ValueError(f"checkpoint_epochs must lie in 0..{n_epochs} (0 = before training); got {bad}")
    if chosen and directory is None:
        raise ValueError("checkpoint_dir is required when checkpoint_epochs is not empty")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ValueError(f"checkpoint_metadata must be a dict or None; got {type(metadata).__name__}")
    return tuple(chosen)


# -- public ---------------------------------------------------------------------------------
def evaluate(model: nn.Module, data: Any, *, batch_size: int = 512, device: str = "cpu") -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``data``, in eval mode.

    Parameters
    ----------
    model : StagedModel
        Any module mapping ``(N, C, H, W)`` float images to ``(N, n_classes)`` logits.
    data : Task or (ndarray (N, C, H, W), ndarray (N,))
        A task (its test split is used) or images (``uint8`` or float in [0, 1])
        and integer labels in ``0..n_classes-1``.
    batch_size : int, default 512
    device : str, default "cpu"
        The model is moved there (and stays).

    Returns
    -------
    loss : float
        :math:`-\\frac1N \\sum_i \\log \\mathrm{softmax}(f(x_i))_{y_i}`, summed in float64.
    accuracy : float
        Fraction of ``argmax f(x_i) == y_i``.
    """
    model = _check_model(model)
    batch_size = _check_batch_size(batch_size)
    x, y = as_arrays(data, "test", "data", getattr(model, "num_classes", None))
    device_ = torch.device(device)
    was_training = model.training
    model.to(device_).eval()
    try:
        xt, yt = _to_tensors(x, y, device_)
        return evaluate_stream(Stream(xt, yt, model), batch_size)
    finally:
        model.train(was_training)


def fit(
    model: nn.Module,
    train: Any,
    config: TrainConfig = TrainConfig(),
    *,
    eval_data: Any = None,
    checkpoint_epochs: Iterable[int] = (),
    checkpoint_dir: str | Path | None = None,
    checkpoint_metadata: Mapping[str, Any] | None = None,
    progress: bool = True,
    patience: int | None = None,
    restore_best: bool = True,
) -> FitResult:
    """Train ``model`` in place by minibatch SGD on the cross-entropy.

    Each step takes a batch :math:`B` of the shuffled training set and updates
    the trainable parameters with :class:`torch.optim.SGD`:

    .. math::

        g = \\nabla_\\theta \\tfrac{1}{|B|}\\textstyle\\sum_{i\\in B} \\ell(f_\\theta(x_i), y_i) + \\lambda\\theta,
        \\quad v \\leftarrow \\mu v + g, \\quad
        \\theta \\leftarrow \\theta - \\eta_e (g + \\mu v) \\text{ (Nesterov) or } \\theta - \\eta_e v,

    with the step schedule :math:`\\eta_e` of :class:`TrainConfig` (the
    fine-tuning recipe of Deshpande et al., 2021). Only parameters with
    ``requires_grad`` are optimised; frozen stages of a :class:`StagedModel`
    also keep their batch-norm statistics.

    Parameters
    ----------
    model : StagedModel
        Trained in place and moved to ``config.device``. Any module mapping
        ``(N, C, H, W)`` float images to logits works.
    train : Task or (ndarray (N, C, H, W), ndarray (N,))
        A task (its train split) or images (``uint8``, scaled by 1/255, or float
        in [0, 1]) and integer labels in ``0..n_classes-1``.
    config : TrainConfig
        With ``config.steps`` the run takes exactly that many optimiser steps
        (batches): ``ceil(steps / batches_per_epoch)`` epochs, the last one cut.
    eval_data : Task or (images, labels), optional
        Evaluated (a task's test split) every ``config.eval_every`` epochs and
        after the last one, in eval mode. Give a validation split here, not
        the test set, when early stopping selects on it.
    checkpoint_epochs : iterable of int, default ()
        Save the model after these epochs (``0``: before training; epochs after
        an early stop are not reached) as
        ``checkpoint_dir / f"epoch_{e:03d}.safetensors"`` through
        :func:`transferlab.models.save_checkpoint`.
    checkpoint_dir : str or Path, optional
        Created if missing; required with ``checkpoint_epochs``.
    checkpoint_metadata : dict, optional
        Stored with every checkpoint, together with ``epoch``, ``train_config``
        and that epoch's ``metrics`` (these keys win).
    progress : bool, default True
        One Rich bar over all batches, showing epoch, running loss and the last
        evaluation accuracy.
    patience : int or None, default None
        Early stopping on the evaluation loss; needs ``eval_data``. After each
        evaluation the loss :math:`L_e` counts as an improvement on the best so
        far, :math:`L^*`, when :math:`L_e < L^* (1 - 10^{-12})` (strictly
        lower, beyond rounding); training stops after ``patience`` evaluated
        epochs in a row without improvement (Prechelt, 1998, "Early stopping
        - but when?"). ``None`` trains for the whole budget.
    restore_best : bool, default True
        With ``patience``: load back the weights (and buffers) of the
        evaluated epoch of the lowest loss at the end, whether the patience or
        the budget ran out; ``False`` keeps the last epoch's.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        On bad arguments, e.g. ``patience`` below 1 or without ``eval_data``.
    NonFiniteLossError
        (a ``FloatingPointError`` and a ``ValueError``) when the loss becomes
        NaN or infinite; the message names the epoch and suggests a lower LR.

    Notes
    -----
    The batch order comes from a local :class:`torch.Generator` and stochastic
    layers (dropout) from the global generator seeded inside
    :func:`torch.random.fork_rng`, both derived from ``config.seed``; the
    caller's global RNG state is left as it was. Same model initialisation and
    seed give bit-identical weights on the CPU. Early stopping draws no random
    numbers: a run whose patience never runs out takes exactly the steps of a
    run without ``patience``.
    """
    model = _check_model(model)
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig; got {type(config).__name__}")
    num_classes = getattr(model, "num_classes", None)
    x, y = as_arrays(train, "train", "train", num_classes)
    eval_arrays = None if eval_data is None else as_arrays(eval_data, "test", "eval_data", num_classes)
    if patience is not None:
        patience = check_int(patience, "patience")
        if eval_arrays is None:
            raise ValueError(f"patience={patience} (early stopping on the evaluation loss) needs eval_data; "
                             "pass a validation split as eval_data, or patience=None")
    restore_best = check_scalar(restore_best, "restore_best", bool)
    config = resolve_budget(config, [len(x)])
    save_epochs = _check_checkpoints(checkpoint_epochs, checkpoint_dir, checkpoint_metadata, config.epochs)
    params = trainable_parameters(model)

    started = time.perf_counter()
    device = torch.device(config.device)
    model.to(device)
    stream = Stream(*_to_tensors(x, y, device), model)
    eval_streams = () if eval_arrays is None else (Stream(*_to_tensors(*eval_arrays, device), model),)
    eval_epochs = {e for e in range(1, config.epochs + 1) if e % config.eval_every == 0 or e == config.epochs}

    def save(epoch: int, metrics: dict[str, Any] | None) -> Path:
        metadata = dict(checkpoint_metadata or {})
        metadata.update(epoch=epoch, train_config=config.to_dict(), metrics=metrics)
        return save_checkpoint(Path(checkpoint_dir) / f"epoch_{epoch:03d}.safetensors", model, metadata=metadata)

    if save_epochs:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
    run = run_epochs(
        model,
        [stream],
        config,
        params=params,
        eval_streams=eval_streams,
        eval_epochs=eval_epochs,
        checkpoint=save,
        checkpoint_epochs=save_epochs,
        description="training",
        progress=progress,
        patience=patience,
        restore_best=restore_best,
    )
    final = run.history[-1] if run.best_epoch is None or not restore_best else run.history[run.best_epoch - 1]
    return FitResult(
        history=tuple(run.history),
        final_eval_accuracy=final["eval_accuracy"],
        seconds=time.perf_counter() - started,
        checkpoints=tuple(run.checkpoints),
        config=config,
        best_epoch=run.best_epoch,
        stopped_epoch=run.stopped_epoch,
    )
