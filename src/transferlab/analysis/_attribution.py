"""Integrated gradients through Captum, batched so that memory stays bounded."""

from __future__ import annotations

import numpy as np
import torch

from transferlab._validation import check_images, check_int
from transferlab.models import to_input


def integrated_gradients(
    model: torch.nn.Module,
    images: np.ndarray,
    targets: np.ndarray,
    *,
    n_steps: int = 32,
    batch_size: int = 64,
    device: str = "cpu",
) -> np.ndarray:
    """Integrated gradients of the target logit with respect to the input pixels.

    Sundararajan, Taly & Yan, "Axiomatic attribution for deep networks" (ICML 2017):

    .. math:: \\mathrm{IG}_j(x) = (x_j - x'_j) \\int_0^1
              \\frac{\\partial f_t(x' + s (x - x'))}{\\partial x_j}\\, ds,

    with the black image as the baseline ``x'`` and the integral taken by
    Captum's Gauss-Legendre rule with ``n_steps`` points. Samples go through
    ``batch_size`` at a time and Captum's ``internal_batch_size`` caps the
    interpolated inputs held at once, so memory does not grow with ``N`` or
    ``n_steps``. By completeness, each sample's attributions sum to
    ``f_t(x) - f_t(x')`` up to the quadrature error.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(N, C, H, W)`` float images to logits; used in eval mode and left
        in the mode it was in.
    images : ndarray of shape (N, C, H, W)
        ``uint8`` (scaled by 1/255) or float in [0, 1].
    targets : ndarray of shape (N,)
        The logit attributed for each sample (e.g. its label or prediction).
    n_steps : int, default 32
    batch_size : int, default 64
    device : str, default "cpu"

    Returns
    -------
    ndarray of shape (N, C, H, W), float32
    """
    from captum.attr import IntegratedGradients  # lazy: Captum imports much

    images = check_images(images)
    targets = np.asarray(targets)
    if targets.shape != (images.shape[0],) or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be {images.shape[0]} integer class indices; got shape {targets.shape}, dtype {targets.dtype}")
    n_steps = check_int(n_steps, "n_steps", 2)
    batch_size = check_int(batch_size, "batch_size")
    was_training = model.training
    model.eval()
    ig = IntegratedGradients(model)
    out = np.empty(images.shape, dtype=np.float32)
    try:
        for lo in range(0, images.shape[0], batch_size):
            x = to_input(images[lo : lo + batch_size]).to(device)
            t = torch.from_numpy(np.array(targets[lo : lo + batch_size], dtype=np.int64)).to(device)
            attr = ig.attribute(x, baselines=torch.zeros_like(x), target=t, n_steps=n_steps,
                                internal_batch_size=batch_size * 4)
            out[lo : lo + x.shape[0]] = attr.detach().cpu().numpy()
    finally:
        model.train(was_training)
    return out
