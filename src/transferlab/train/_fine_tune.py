"""Fine-tuning with a fresh head over a grid of initial learning rates (the benchmark ground truth)."""

from __future__ import annotations

import copy
import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transferlab._validation import check_scalar
from transferlab.data import Task
from transferlab.models import StagedModel
from transferlab.train._config import TrainConfig
from transferlab.train._fit import evaluate, fit

_SELECT_RULES = ("test", "val")


@dataclass(frozen=True)
class FineTuneResult:
    """What :func:`fine_tune` returns.

    Attributes
    ----------
    best_lr : float
        The initial LR with the highest test accuracy.
    best_test_accuracy : float
        ``max`` over the grid of the test accuracy: the protocol of Deshpande et al.
    val_selected_lr : float or None
        The initial LR with the highest validation accuracy (``None`` without a
        validation split).
    val_selected_test_accuracy : float or None
        Test accuracy of the run at ``val_selected_lr``.
    per_lr : tuple of dict
        One dict per LR, in grid order: ``lr``, ``test_accuracy``, ``test_loss``,
        ``val_accuracy``, ``val_loss`` (``None`` without validation),
        ``final_train_loss``, ``seconds``.
    model : StagedModel
        The fine-tuned copy chosen by the ``select`` rule.
    config : TrainConfig
        The base configuration (each run used ``config.replace(lr=lr)``).
    freeze : int
        Number of frozen stages.
    select : str
        The rule that chose ``model``: ``"test"`` or ``"val"`` (``"test"`` when
        validation had to be disabled; see ``notes``).
    notes : tuple of str
        Warnings, e.g. validation disabled for a k-shot task.
    n_train, n_val : int
        Samples trained on and held out for validation.
    """

    best_lr: float
    best_test_accuracy: float
    val_selected_lr: float | None
    val_selected_test_accuracy: float | None
    per_lr: tuple[dict[str, Any], ...]
    model: StagedModel = field(repr=False, compare=False)
    config: TrainConfig
    freeze: int
    select: str
    notes: tuple[str, ...]
    n_train: int
    n_val: int


def _check_lrs(lrs: Any) -> tuple[float, ...]:
    if isinstance(lrs, (str, bytes)) or not isinstance(lrs, Sequence) or len(lrs) == 0:
        raise ValueError(f"lrs must be a non-empty sequence of learning rates; got {lrs!r}")
    values = [
        check_scalar(lr, f"lrs[{i}]", numbers.Real, min_val=0, include_boundaries="neither") for i, lr in enumerate(lrs)
    ]
    if len(set(values)) != len(values):
        raise ValueError(f"lrs must not repeat a value; got {values}")
    return tuple(values)


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int, class_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """The seeded train/validation split of :func:`fine_tune`: indices ``(fit, val)`` and a note.

    Of the :math:`n_c` samples of each class :math:`c`,
    :math:`\\min(\\max(\\lfloor f n_c + 1/2 \\rfloor, 1), n_c - 1)` go to
    validation (:math:`f` = ``val_fraction``), drawn by one
    ``numpy.random.default_rng(seed)`` class after class in sorted class order.

    Parameters
    ----------
    labels : ndarray of shape (N,)
        Integer class indices.
    val_fraction : float
        In ``[0, 1)``; ``0`` keeps every sample for fitting.
    seed : int
    class_names : sequence of str
        Names of the classes ``0..C-1``, for the note.

    Returns
    -------
    fit : ndarray of shape (N - n_val,)
        Sorted indices to fit on.
    val : ndarray of shape (n_val,) or None
        Sorted validation indices; ``None`` when ``val_fraction`` is 0 or a class
        has fewer than 2 samples.
    note : str or None
        Why validation was disabled, if it was for lack of samples.

    Examples
    --------
    >>> fit, val, note = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.25, 0, ["a", "b"])
    >>> len(fit), len(val), note
    (6, 2, None)
    """
    all_idx = np.arange(labels.shape[0])
    if val_fraction == 0:
        return all_idx, None, None
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < 2:
        c = int(classes[np.argmin(counts)])
        note = (
            f"validation disabled: class {class_names[c]!r} has {int(counts.min())} training sample(s), "
            "and a validation split needs at least 2 per class (1 to train on, 1 to validate); "
            "all training samples were used and only the test protocol is reported"
        )
        return all_idx, None, note
    rng = np.random.default_rng(seed)
    val_parts = []
    for c, count in zip(classes, counts):
        n_val = min(max(math.floor(val_fraction * count + 0.5), 1), int(count) - 1)
        val_parts.append(rng.permutation(np.flatnonzero(labels == c))[:n_val])
    val_idx = np.sort(np.concatenate(val_parts))
    fit_idx = np.setdiff1d(all_idx, val_idx, assume_unique=True)
    return fit_idx, val_idx, None


#: The private name tests/train/test_fine_tune.py imports.
_stratified_split = stratified_split


def fine_tune(
    model: StagedModel,
    task: Task,
    config: TrainConfig = TrainConfig(),
    *,
    lrs: Sequence[float] = (0.1, 0.03, 0.01),
    freeze: int = 0,
    head_seed: int | None = None,
    select: str = "test",
    val_fraction: float = 0.2,
    progress: bool = True,
) -> FineTuneResult:
    """Fine-tune copies of ``model`` on ``task`` over a grid of initial learning rates.

    The protocol of Deshpande et al. (2021), "A linearized framework and a new
    benchmark for model selection for fine-tuning" (arXiv:2102.00084): for each
    initial LR :math:`\\eta_0` in ``lrs``, a fresh copy of the model gets a new
    linear head for the task's classes, its first ``freeze`` stages are frozen,
    and it is trained with :func:`~transferlab.train._fit.fit` (SGD, Nesterov
    momentum, weight decay, step decay) under ``config.replace(lr=lr)``. The
    fine-tuning accuracy of the model is

    .. math:: \\mathrm{acc}^{\\mathrm{test}} = \\max_{\\eta_0} \\mathrm{acc}_{\\mathrm{test}}(\\eta_0),

    the paper's (optimistic) protocol. With ``val_fraction > 0`` a stratified,
    seeded validation split is held out from the train split and *every* run
    trains on the rest, so both the test-selected accuracy and the
    validation-selected one, :math:`\\mathrm{acc}_{\\mathrm{test}}(\\arg\\max_{\\eta_0}
    \\mathrm{acc}_{\\mathrm{val}}(\\eta_0))`, come from the same runs. With
    ``val_fraction=0`` all training samples are used and only the test
    protocol is available.

    Parameters
    ----------
    model : StagedModel
        The pre-trained model; never modified (each run trains a deep copy).
    task : Task
        Trained on its train split (minus validation), scored on its test split.
    config : TrainConfig
        Everything but the LR; ``config.seed`` also seeds the validation split.
    lrs : sequence of float, default (0.1, 0.03, 0.01)
        The grid of initial learning rates, distinct and > 0.
    freeze : int, default 0
        Freeze the first ``freeze`` stages (weights and batch-norm statistics);
        ``len(model.stage_names)`` trains the head only.
    head_seed : int, optional
        Seed of the new head's initialisation, the same for every LR; default
        ``config.seed``.
    select : {"test", "val"}, default "test"
        Which run's model to return: the best by test or by validation accuracy
        (ties go to the first LR in grid order).
    val_fraction : float, default 0.2
        Fraction of each class held out, rounded, at least 1 and at most
        ``n_c - 1`` per class. If a class has fewer than 2 training samples
        (k-shot with k=1), validation is disabled and ``notes`` says so.
    progress : bool, default True

    Returns
    -------
    FineTuneResult
    """
    if not isinstance(model, StagedModel):
        raise ValueError(f"model must be a StagedModel (with a replaceable head); got {type(model).__name__}")
    if not isinstance(task, Task):
        raise ValueError(f"task must be a transferlab Task; got {type(task).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig; got {type(config).__name__}")
    grid = _check_lrs(lrs)
    n_stages = len(model.stage_names)
    freeze = check_scalar(freeze, "freeze", numbers.Integral, min_val=0, max_val=n_stages)  # 0..the number of stages
    head_seed = check_scalar(head_seed, "head_seed", (numbers.Integral, type(None)), min_val=0)
    if head_seed is None:
        head_seed = config.seed
    if select not in _SELECT_RULES:
        raise ValueError(f"select must be one of {_SELECT_RULES}; got {select!r}")
    val_fraction = check_scalar(
        val_fraction, "val_fraction", numbers.Real, min_val=0, max_val=1, include_boundaries="left"
    )
    if select == "val" and val_fraction == 0:
        raise ValueError("select='val' needs a validation split; got val_fraction=0 (use val_fraction > 0)")

    x, y = task.split("train")
    fit_idx, val_idx, note = stratified_split(y, float(val_fraction), config.seed, task.class_names)
    notes = (note,) if note else ()
    if select == "val" and val_idx is None:
        select = "test"
        notes += ("select='val' fell back to 'test' because validation is disabled",)
    train_data = (x[fit_idx], y[fit_idx])
    val_data = None if val_idx is None else (x[val_idx], y[val_idx])

    per_lr: list[dict[str, Any]] = []
    kept_model, kept_score = None, -math.inf
    for lr in grid:
        started = time.perf_counter()
        candidate = copy.deepcopy(model)
        candidate.replace_head(task.n_classes, seed=int(head_seed))
        candidate.freeze_stages(int(freeze))
        run = fit(candidate, train_data, config.replace(lr=lr), progress=progress)
        test_loss, test_accuracy = evaluate(candidate, task, device=config.device)
        val_loss = val_accuracy = None
        if val_data is not None:
            val_loss, val_accuracy = evaluate(candidate, val_data, device=config.device)
        per_lr.append(
            {
                "lr": lr,
                "test_accuracy": test_accuracy,
                "test_loss": test_loss,
                "val_accuracy": val_accuracy,
                "val_loss": val_loss,
                "final_train_loss": run.final_train_loss,
                "seconds": time.perf_counter() - started,
            }
        )
        score = test_accuracy if select == "test" else val_accuracy
        if score > kept_score:  # strict: ties keep the earlier LR
            kept_model, kept_score = candidate, score
        del candidate

    best = max(range(len(grid)), key=lambda i: per_lr[i]["test_accuracy"])  # max returns the first maximum
    val_best = None if val_data is None else max(range(len(grid)), key=lambda i: per_lr[i]["val_accuracy"])
    return FineTuneResult(
        best_lr=grid[best],
        best_test_accuracy=per_lr[best]["test_accuracy"],
        val_selected_lr=None if val_best is None else grid[val_best],
        val_selected_test_accuracy=None if val_best is None else per_lr[val_best]["test_accuracy"],
        per_lr=tuple(per_lr),
        model=kept_model,
        config=config,
        freeze=int(freeze),
        select=select,
        notes=notes,
        n_train=int(fit_idx.shape[0]),
        n_val=0 if val_idx is None else int(val_idx.shape[0]),
    )
