"""The one training loop: seeded minibatch SGD over one or more streams of batches.

:func:`~transferlab.train._fit.fit` trains a model on one stream (its training
set) and :func:`~transferlab.train._multidomain.fit_multidomain` a joint model on
one stream per domain (that domain's training set and forward pass). Everything
else is :func:`run_epochs`: the optimiser and its step schedule, the seeded
batch order, the finite-loss checks, the evaluations, the history, the
checkpoints and the progress bar. With one stream the interleaving of
:func:`interleave_batches` is the plain batch order, so a single-domain run and
a one-domain joint run take the same steps.

The training set lives in memory as one float tensor on the device; each epoch
draws a permutation of every stream from a local, seeded
:class:`torch.Generator` and slices batches from it. No
:class:`~torch.utils.data.DataLoader`: the images are small and already in RAM,
so workers and collation would only add overhead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transferlab._progress import progress_bar
from transferlab._validation import check_int, check_scalar
from transferlab.train._config import TrainConfig

#: Batch size of the evaluation passes inside the loop.
_EVAL_BATCH_SIZE = 512
#: Seconds between two read-outs of the running loss (a device sync) during an epoch.
_READOUT_INTERVAL = 0.5


class NonFiniteLossError(FloatingPointError, ValueError):
    """The training loss became NaN or infinite; catchable as either parent class."""


@dataclass(frozen=True)
class Stream:
    """One source of batches: images and labels on the device, and the forward pass they go through.

    Attributes
    ----------
    images : torch.Tensor of shape (N, C, H, W)
        Float images on the training device.
    labels : torch.Tensor of shape (N,)
        ``int64`` labels on the same device.
    forward : callable
        Maps a batch of images to ``(batch, n_classes)`` logits: the model
        itself, or a joint model's forward pass for one domain.
    """

    images: torch.Tensor
    labels: torch.Tensor
    forward: Callable[[torch.Tensor], torch.Tensor]

    @property
    def n_samples(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class Epochs:
    """What :func:`run_epochs` returns; the trained weights are in the model itself.

    Attributes
    ----------
    history : list of dict
        One dict per epoch: ``epoch``, ``lr``, ``train_loss``, ``train_accuracy``,
        ``eval_loss``, ``eval_accuracy`` (the last two pooled over every
        evaluation stream, ``None`` in an epoch without evaluation).
    checkpoints : list of Path
        Files written by the ``checkpoint`` callback, in epoch order.
    last_evaluation : list of (float, float)
        ``(loss, accuracy)`` of each evaluation stream at the last evaluation
        (at the best epoch's when its weights were restored); empty when
        nothing was evaluated.
    best_epoch : int or None
        With early stopping: the evaluated epoch of the lowest evaluation loss.
    stopped_epoch : int or None
        With early stopping: the epoch after which the patience ran out;
        ``None`` when the whole budget ran.
    """

    history: list[dict[str, Any]]
    checkpoints: list[Path]
    last_evaluation: list[tuple[float, float]]
    best_epoch: int | None = None
    stopped_epoch: int | None = None


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters with ``requires_grad``, in ``model.parameters()`` order; ValueError if there are none."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (all have requires_grad=False); unfreeze a stage or the head")
    return params


def interleave_batches(n_batches: list[int]) -> list[tuple[int, int]]:
    """The order of one epoch's batches across domains: ``(domain, batch)`` pairs.

    Size-proportional interleaving: batch ``r`` of domain ``d`` (out of
    ``n_d``) is placed at the fraction ``(r + 1/2) / n_d`` of the epoch (ties in
    domain order). Every batch of every domain comes once per epoch; domains of
    equal size alternate round-robin, and a domain with three times the batches
    comes three times as often, spread over the whole epoch (so no domain has
    the last steps, and the batch-norm statistics, to itself). One domain keeps
    its batches in order.

    Parameters
    ----------
    n_batches : list of int
        Batches per epoch of each domain.

    Returns
    -------
    list of (int, int)

    Examples
    --------
    >>> interleave_batches([2, 2])
    [(0, 0), (1, 0), (0, 1), (1, 1)]
    >>> interleave_batches([1, 3])
    [(1, 0), (0, 0), (1, 1), (1, 2)]
    """
    steps = [((r + 0.5) / n, d, r) for d, n in enumerate(n_batches) for r in range(n)]
    return [(d, r) for _, d, r in sorted(steps)]


def _batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each batch; the last partial batch is kept, but a last batch of
    one sample joins the one before it (batch norm cannot normalise a single sample)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if batch_size > 1 and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def resolve_budget(config: TrainConfig, n_samples: Sequence[int]) -> TrainConfig:
    """``config`` with ``epochs`` set from its step budget: ``ceil(steps / b)`` for ``b`` batches per epoch.

    ``n_samples`` holds the training-set size of each stream; ``b`` counts the
    batches of all of them as :func:`_batch_bounds` cuts them. Without
    ``steps`` the config is returned as it is; resolving twice changes nothing.

    Examples
    --------
    >>> resolve_budget(TrainConfig(batch_size=10, steps=5), [40]).epochs
    2
    """
    if config.steps is None:
        return config
    per_epoch = sum(len(_batch_bounds(int(n), config.batch_size)) for n in n_samples)
    return config.replace(epochs=math.ceil(config.steps / per_epoch))


class _EarlyStopping:
    """Patience on the evaluation loss, and the weights of the best evaluated epoch (a copy on the CPU).

    An evaluation improves on the best loss :math:`L^*` so far (initially
    :math:`+\\infty`) when :math:`L < L^* (1 - 10^{-12})`; training stops after ``patience``
    evaluations in a row without improvement (Prechelt, 1998, "Early stopping
    - but when?", the rule with patience). The relative margin keeps a loss
    equal to the best up to rounding from counting as progress.
    """

    rtol = 1e-12

    def __init__(self, model: nn.Module, patience: int) -> None:
        self.model = model
        self.patience = patience
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_evaluation: list[tuple[float, float]] = []
        self.bad = 0

    def update(self, epoch: int, loss: float, evaluation: list[tuple[float, float]]) -> bool:
        """Record one evaluation; True when the patience has run out."""
        if loss < self.best_loss * (1.0 - self.rtol):  # the first evaluation improves on inf
            self.best_loss, self.best_epoch, self.best_evaluation, self.bad = loss, epoch, evaluation, 0
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        else:
            self.bad += 1
        return self.bad >= self.patience

    def restore(self) -> None:
        """Load the best epoch's weights (and buffers) back into the model."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)


def _derived_seeds(seed: int) -> tuple[int, int]:
    """Two independent 63-bit seeds from one (batch order, stochastic layers)."""
    a, b = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
    return int(a >> np.uint64(1)), int(b >> np.uint64(1))


def _check_finite_loss(value: float, epoch: int, config: TrainConfig, lr: float) -> None:
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"training loss became {value} in epoch {epoch} of {config.epochs} (lr={lr:g}); "
            f"the learning rate is probably too high: try a lower lr (e.g. lr={lr / 10:g})"
        )


def _make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    if config.lr_step is not None:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.milestones()), gamma=config.lr_gamma)


def _fork_rng(device: torch.device):
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


@torch.inference_mode()
def _evaluation_sums(stream: Stream, batch_size: int) -> tuple[float, int]:
    """Summed cross-entropy (accumulated in float64) and number of correct predictions; the caller sets eval mode."""
    x, y = stream.images, stream.labels
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, x.shape[0], batch_size):
        logits = stream.forward(x[start : start + batch_size])
        labels = y[start : start + batch_size]
        loss_sum += F.cross_entropy(logits.double(), labels, reduction="sum")
        correct += (logits.argmax(dim=1) == labels).sum()
    return loss_sum.item(), correct.item()


def evaluate_stream(stream: Stream, batch_size: int = _EVAL_BATCH_SIZE) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``stream.forward`` on the stream; the caller sets eval mode."""
    loss_sum, correct = _evaluation_sums(stream, batch_size)
    return loss_sum / stream.n_samples, correct / stream.n_samples


def run_epochs(
    model: nn.Module,
    streams: Sequence[Stream],
    config: TrainConfig,
    *,
    params: Sequence[nn.Parameter],
    eval_streams: Sequence[Stream] = (),
    eval_epochs: Collection[int] = (),
    checkpoint: Callable[[int, dict[str, Any] | None], Path] | None = None,
    checkpoint_epochs: Collection[int] = (),
    description: str = "training",
    progress: bool = True,
    patience: int | None = None,
    restore_best: bool = True,
) -> Epochs:
    """Train ``model`` in place for ``config.epochs`` epochs (or ``config.steps`` steps) of SGD over ``streams``.

    Each epoch draws one permutation per stream (in stream order) from a
    :class:`torch.Generator` seeded by ``config.seed``, cuts each into batches
    of ``config.batch_size`` and visits them in the order of
    :func:`interleave_batches`. Each step minimises the mean cross-entropy of
    one batch through its stream's ``forward``:

    .. math::

        g = \\nabla_\\theta \\tfrac{1}{|B|}\\textstyle\\sum_{i\\in B} \\ell(f_\\theta(x_i), y_i) + \\lambda\\theta,
        \\quad v \\leftarrow \\mu v + g, \\quad
        \\theta \\leftarrow \\theta - \\eta_e (g + \\mu v) \\text{ (Nesterov) or } \\theta - \\eta_e v,

    with :class:`torch.optim.SGD` over ``params`` and the step schedule
    :math:`\\eta_e` of :class:`~transferlab.train._config.TrainConfig` stepped
    once per epoch. Gradients are reset to ``None`` before each step, so
    parameters that a batch does not reach (another domain's head) are not
    updated, decayed or given momentum by it. With ``config.steps`` the run
    takes exactly that many steps (:func:`resolve_budget` gives the epochs;
    the last epoch is cut).

    With ``patience``, after each evaluation the loss :math:`L_e` pooled over
    ``eval_streams`` is compared with the best so far, :math:`L^*`: it
    improves when :math:`L_e < L^* (1 - 10^{-12})`, and training stops after
    ``patience`` evaluations in a row without improvement (early stopping,
    Prechelt, 1998, "Early stopping - but when?"). Epochs without an
    evaluation do not count. The weights of the best evaluated epoch are kept
    on the CPU and, with ``restore_best``, loaded back at the end, whether the
    patience ran out or the budget did.

    Parameters
    ----------
    model : torch.nn.Module
        Already on ``config.device``; set to train mode for training and back
        to its original mode at the end.
    streams : sequence of Stream
        The training batches, on ``config.device``.
    config : TrainConfig
    params : sequence of torch.nn.Parameter
        What the optimiser updates (:func:`trainable_parameters`).
    eval_streams : sequence of Stream, default ()
        Evaluated in eval mode after each epoch in ``eval_epochs``; the history
        pools them (sums over every sample of every stream).
    eval_epochs : collection of int, default ()
    checkpoint : callable, optional
        ``checkpoint(epoch, metrics)`` saves the model and returns the file;
        ``metrics`` is that epoch's history row (``None`` for epoch 0).
    checkpoint_epochs : collection of int, default ()
        When to call ``checkpoint``: ``0`` before training, ``e`` after epoch ``e``.
    description : str, default "training"
        Label of the progress bar.
    progress : bool, default True
        One Rich bar over all batches, showing epoch, running loss and the last
        evaluation accuracy.
    patience : int or None, default None
        Early stopping on the evaluation loss (needs ``eval_streams`` and
        ``eval_epochs``); ``None`` trains for the whole budget.
    restore_best : bool, default True
        With ``patience``: end with the weights of the best evaluated epoch.

    Returns
    -------
    Epochs

    Raises
    ------
    ValueError
        When ``patience`` is not an integer >= 1, or is given without
        evaluation streams and epochs.
    NonFiniteLossError
        When the running or the epoch's loss, or a parameter, becomes NaN or
        infinite; the message names the epoch and suggests a lower LR.

    Notes
    -----
    Stochastic layers (dropout) draw from the global generator, seeded inside
    :func:`torch.random.fork_rng` from ``config.seed``; the caller's global
    RNG state is left as it was. Same initialisation and seed give
    bit-identical weights on the CPU. Early stopping draws no random numbers,
    so a run whose patience never runs out takes the same steps as one without
    patience (the same weights unless an earlier epoch is restored).
    """
    if patience is not None:
        patience = check_int(patience, "patience")
        if not eval_streams or not eval_epochs:
            raise ValueError("patience (early stopping on the evaluation loss) needs evaluation data; got none")
    restore_best = check_scalar(restore_best, "restore_best", bool)
    config = resolve_budget(config, [stream.n_samples for stream in streams])
    device = torch.device(config.device)
    was_training = model.training
    optimizer = torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay
    )
    scheduler = _make_scheduler(optimizer, config)
    order_seed, layer_seed = _derived_seeds(config.seed)
    generator = torch.Generator().manual_seed(order_seed)
    bounds = [_batch_bounds(stream.n_samples, config.batch_size) for stream in streams]
    schedule = interleave_batches([len(b) for b in bounds])
    total_steps = config.epochs * len(schedule) if config.steps is None else config.steps
    n_eval = sum(stream.n_samples for stream in eval_streams)

    history: list[dict[str, Any]] = []
    checkpoints: list[Path] = []
    last_evaluation: list[tuple[float, float]] = []
    if 0 in checkpoint_epochs:
        checkpoints.append(Path(checkpoint(0, None)))

    last_eval: dict[str, float] = {}
    stopper = None if patience is None else _EarlyStopping(model, patience)
    stopped_epoch = None
    try:
        with _fork_rng(device), progress_bar(description, total=total_steps, enabled=progress) as advance:
            torch.random.default_generator.manual_seed(layer_seed)
            if device.type == "cuda":
                torch.cuda.manual_seed(layer_seed)
            for epoch in range(1, config.epochs + 1):
                lr = optimizer.param_groups[0]["lr"]
                model.train()
                perms = [torch.randperm(stream.n_samples, generator=generator).to(device) for stream in streams]
                loss_sum = torch.zeros((), dtype=torch.float64, device=device)
                correct = torch.zeros((), dtype=torch.int64, device=device)
                seen = 0
                last_readout = time.monotonic()
                for d, r in schedule[: total_steps - (epoch - 1) * len(schedule)]:
                    start, stop = bounds[d][r]
                    stream = streams[d]
                    idx = perms[d][start:stop]
                    labels = stream.labels[idx]
                    logits = stream.forward(stream.images[idx])
                    loss = F.cross_entropy(logits, labels)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    with torch.no_grad():
                        loss_sum += loss.detach() * (stop - start)
                        correct += (logits.detach().argmax(dim=1) == labels).sum()
                    seen += stop - start
                    now = time.monotonic()
                    if now - last_readout >= _READOUT_INTERVAL:
                        running = loss_sum.item() / seen
                        _check_finite_loss(running, epoch, config, lr)
                        advance(1, epoch=epoch, loss=running, **last_eval)
                        last_readout = now
                    else:
                        advance(1)
                train_loss = loss_sum.item() / seen
                _check_finite_loss(train_loss, epoch, config, lr)
                if not all(bool(torch.isfinite(p).all()) for p in params):
                    _check_finite_loss(math.nan, epoch, config, lr)
                scheduler.step()

                eval_loss = eval_accuracy = None
                if eval_streams and epoch in eval_epochs:
                    model.eval()
                    sums = [_evaluation_sums(stream, _EVAL_BATCH_SIZE) for stream in eval_streams]
                    model.train()
                    last_evaluation = [(s / e.n_samples, c / e.n_samples) for (s, c), e in zip(sums, eval_streams)]
                    eval_loss = sum(s for s, _ in sums) / n_eval
                    eval_accuracy = sum(c for _, c in sums) / n_eval
                    last_eval = {"eval_acc": eval_accuracy}
                history.append(
                    {
                        "epoch": epoch,
                        "lr": lr,
                        "train_loss": train_loss,
                        "train_accuracy": correct.item() / seen,
                        "eval_loss": eval_loss,
                        "eval_accuracy": eval_accuracy,
                    }
                )
                advance(0, epoch=epoch, loss=train_loss, **last_eval)
                if epoch in checkpoint_epochs:
                    checkpoints.append(Path(checkpoint(epoch, history[-1])))
                if stopper is not None and eval_loss is not None and stopper.update(epoch, eval_loss, last_evaluation):
                    stopped_epoch = epoch
                    break
        if stopper is not None and restore_best and stopper.best_epoch != history[-1]["epoch"]:
            stopper.restore()
            last_evaluation = stopper.best_evaluation
    finally:
        model.train(was_training)
    return Epochs(
        history=history,
        checkpoints=checkpoints,
        last_evaluation=last_evaluation,
        best_epoch=None if stopper is None else stopper.best_epoch,
        stopped_epoch=stopped_epoch,
    )
