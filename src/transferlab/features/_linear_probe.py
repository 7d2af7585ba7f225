"""Linear probe of a model: extract its frozen features, then fit a linear softmax head on them."""

from __future__ import annotations

import numpy as np

from transferlab.data import Task
from transferlab.features._extract import extract
from transferlab.models import StagedModel
from transferlab.train import ProbeResult, fit_linear_probe


def linear_probe(
    model: StagedModel,
    task: Task,
    *,
    stage: str | int | None = None,
    weight_decay: float = 1e-4,
    max_iter: int = 500,
    device: str = "cpu",
    batch_size: int = 256,
) -> ProbeResult:
    """Fit a linear softmax classifier on the frozen features of ``model`` after ``stage``.

    Features of both splits are extracted once (:func:`extract`) and handed to
    :func:`transferlab.train.fit_linear_probe`, which standardises them with the
    train mean and standard deviation and minimises the L2-regularised mean
    cross-entropy by full-batch L-BFGS in float64 (the standard linear-evaluation
    protocol; see there for the objective).

    Parameters
    ----------
    model : StagedModel
        Frozen: used in eval mode, not modified.
    task : Task
        Trained on its train split, scored on its test split.
    stage : str or int, optional
        Where the features are taken; default the last stage.
    weight_decay : float, default 1e-4
        The L2 penalty :math:`\\lambda \\ge 0` on the head's weights.
    max_iter : int, default 500
        L-BFGS iterations.
    device : str, default "cpu"
    batch_size : int, default 256
        Extraction batch size.

    Returns
    -------
    ProbeResult
        ``train_loss`` and ``test_loss`` are unpenalised mean cross-entropies.
    """
    if not isinstance(model, StagedModel):
        raise ValueError(f"model must be a StagedModel; got {type(model).__name__}")
    if not isinstance(task, Task):
        raise ValueError(f"task must be a transferlab Task; got {type(task).__name__}")
    train_features = extract(model, task.x_train, stage=stage, batch_size=batch_size, device=device)
    test_features = extract(model, task.x_test, stage=stage, batch_size=batch_size, device=device)
    if not (np.all(np.isfinite(train_features)) and np.all(np.isfinite(test_features))):
        raise ValueError(f"the features of model after stage {stage!r} contain NaN or Inf; check the model's weights")
    return fit_linear_probe(train_features, task.y_train, test_features, task.y_test, n_classes=task.n_classes,
                            weight_decay=weight_decay, max_iter=max_iter, device=device)
