"""Batched feature extraction: models in, ``(N, D)`` arrays out."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from transferlab._progress import progress_bar
from transferlab._validation import check_images, check_int
from transferlab.models import StagedModel, to_input


def _check_batch_size(batch_size: int) -> int:
    return check_int(batch_size, "batch_size")


@torch.inference_mode()
def _run_batches(fn, images: np.ndarray, batch_size: int, device: str, description: str, progress: bool):
    chunks = []
    n = images.shape[0]
    with progress_bar(description, total=n, enabled=progress) as advance:
        for start in range(0, n, batch_size):
            x = to_input(images[start : start + batch_size]).to(device, non_blocking=True)
            chunks.append(fn(x).to("cpu", torch.float32))
            advance(x.shape[0])
    return torch.cat(chunks).numpy()


def extract(
    model: StagedModel,
    images: np.ndarray,
    *,
    stage: str | int | None = None,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Features of ``images`` after ``stage`` of ``model``.

    Parameters
    ----------
    model : StagedModel
        Any built-in architecture (or a subclass of :class:`StagedModel`).
    images : ndarray of shape (N, C, H, W)
        ``uint8`` pixels (scaled by 1/255) or floats in [0, 1].
    stage : str or int, optional
        Stage name or index; default the last stage. Spatial activations are
        global-average pooled.
    batch_size : int, default 256
    device : str, default "cpu"
    progress : bool, default False
        Show a Rich progress bar.

    Returns
    -------
    features : ndarray of shape (N, D), float32
    """
    images = check_images(images)
    batch_size = _check_batch_size(batch_size)
    model._stage_index(stage)  # validate before any work
    was_training = model.training
    model.eval().to(device)
    try:
        return _run_batches(
            lambda x: model.forward_features(x, stage), images, batch_size, device, "extracting", progress
        )
    finally:
        model.train(was_training)


def source_probabilities(
    model: nn.Module,
    images: np.ndarray,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Softmax of the model's own head on ``images``: ``(N, C_source)`` float64 rows summing to 1.

    These are the source-label predictions that LEEP and NCE read.
    """
    images = check_images(images)
    batch_size = _check_batch_size(batch_size)
    was_training = model.training
    model.eval().to(device)
    try:
        logits = _run_batches(model, images, batch_size, device, "source predictions", progress)
    finally:
        model.train(was_training)
    logits = logits.astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs
