"""Probe features: a small network trained on the target task, for RSA.

Dwivedi & Roig ("Representation Similarity Analysis for Efficient Task Taxonomy
& Transfer Learning", CVPR 2019) compare a candidate's representation of the
target images with that of a small model trained on the target task itself.
:func:`probe_features` trains that model (a two-stage ConvNet by default) on the
target train split and returns its features of the same images, ready for
:func:`transferlab.scores.rsa` (``probe_features=...``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transferlab._validation import check_int, check_int_sequence, check_seed
from transferlab.data import Task
from transferlab.features._extract import extract
from transferlab.models import build_for
from transferlab.train import TrainConfig, fit

#: Default channel widths of the probe ConvNet's stages.
PROBE_WIDTHS = (16, 32)


def _probe_data(task_or_arrays) -> tuple[np.ndarray, np.ndarray, int]:
    """``(images (N, C, H, W), labels in 0..K-1 (N,), K)`` from a Task's train split or an (images, labels) pair."""
    if isinstance(task_or_arrays, Task):
        x, y = task_or_arrays.split("train")
        return x, np.asarray(y, dtype=np.int64), task_or_arrays.n_classes
    if not (isinstance(task_or_arrays, (tuple, list)) and len(task_or_arrays) == 2):
        raise ValueError(
            "task_or_arrays must be a Task (its train split is used) or an (images, labels) pair; "
            f"got {type(task_or_arrays).__name__}"
        )
    x = np.asarray(task_or_arrays[0])
    labels = np.asarray(task_or_arrays[1])
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(
            f"task_or_arrays images must be (n_samples, channels, height, width) or "
            f"(n_samples, height, width); got shape {x.shape}"
        )
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"task_or_arrays images must be uint8 (0..255) or float in [0, 1]; got dtype {x.dtype}")
    if labels.ndim != 1 or labels.shape[0] != x.shape[0]:
        raise ValueError(
            f"task_or_arrays labels must be 1-D with one entry per image ({x.shape[0]}); got shape {labels.shape}"
        )
    if labels.dtype.kind not in "iuUSO":
        raise ValueError(f"task_or_arrays labels must be integers or strings; got dtype {labels.dtype}")
    classes, y = np.unique(labels, return_inverse=True)
    if classes.shape[0] < 2:
        raise ValueError(f"task_or_arrays labels must contain at least 2 classes; got {classes.shape[0]}")
    return x, np.asarray(y, dtype=np.int64).reshape(-1), int(classes.shape[0])


def probe_features(
    task_or_arrays,
    *,
    epochs: int = 5,
    widths: Sequence[int] = PROBE_WIDTHS,
    batch_size: int = 64,
    lr: float = 0.05,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Features of a small probe network trained on the target train split, on the same images.

    A :class:`~transferlab.models._convnet.ConvNet` with stages of ``widths``
    channels (conv 3x3, batch norm, ReLU; 2x2 max pool between stages) and a
    linear head is built for the task's image shape and number of classes,
    initialised from ``seed``, and trained with
    :func:`~transferlab.train._fit.fit` (SGD with Nesterov momentum, weight
    decay 5e-4, step decay at 50 % and 75 % of the epochs; batch order seeded by
    ``seed``) on the train images. Its features (global average pool of the last
    stage) on those same train images, in the same order, are returned: the
    target-specific representation that RSA compares each candidate against.

    Deterministic: the same data, options and ``seed`` give bit-identical
    features on the CPU (the caller's global torch RNG is left alone). About a
    second per epoch for 1000 images of 28x28 on two CPU cores with the
    defaults.

    Parameters
    ----------
    task_or_arrays : Task or (ndarray, array-like)
        A :class:`~transferlab.data._task.Task` (its train split), or images
        ``(N, C, H, W)`` / ``(N, H, W)`` (``uint8`` 0..255 or float in [0, 1])
        with labels ``(N,)`` (integers or strings, at least 2 classes).
    epochs : int, default=5
        Training epochs.
    widths : sequence of int, default=(16, 32)
        Channels of the probe's stages; the features have ``widths[-1]`` dimensions.
    batch_size : int, default=64
    lr : float, default=0.05
        Initial learning rate.
    seed : int, default=0
        Seeds the initialisation and the batch order.
    device : str, default="cpu"
        Torch device for training and extraction, e.g. ``"cuda"``.
    progress : bool, default=False
        Show a progress bar while training.

    Returns
    -------
    ndarray of shape (n_samples, widths[-1]), float32
        The probe's features of the train images.

    Raises
    ------
    ValueError
        If ``task_or_arrays`` is neither a Task nor an (images, labels) pair, the
        images or labels are malformed, or an option is invalid.

    Examples
    --------
    >>> from transferlab.data._task import Task  # doctest: +SKIP
    >>> features = probe_features(task, epochs=3, seed=0)  # doctest: +SKIP
    >>> features.shape  # doctest: +SKIP
    (1000, 32)
    """
    epochs = check_int(epochs, "epochs")
    widths = check_int_sequence(widths, "widths")
    seed = check_seed(seed)
    x, y, n_classes = _probe_data(task_or_arrays)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device)
    model = build_for("convnet", x.shape[1:], n_classes, seed=seed, widths=widths)
    fit(model, (x, y), config, progress=progress)
    return extract(model, x, device=device)
