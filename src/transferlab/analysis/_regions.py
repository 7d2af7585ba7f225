"""Where an attribution map puts its mass: pure NumPy."""

from __future__ import annotations

import numbers
import numpy as np

from transferlab._validation import check_scalar


def half_shares(attributions: np.ndarray, split: int | None = None) -> np.ndarray:
    """Share of absolute attribution mass on the left part of each image.

    .. math:: s_i = \\frac{\\sum_{c,h,w<\\mathrm{split}} |A_{i,c,h,w}|}{\\sum_{c,h,w} |A_{i,c,h,w}|}

    The right part's share is ``1 - s_i``. Used on concatenated images
    ``[x_left | x_right]`` (Mohamud & Brink): which half a model looks at.

    Parameters
    ----------
    attributions : ndarray of shape (N, C, H, W)
    split : int, optional
        First column of the right part; default ``W // 2``.

    Returns
    -------
    ndarray of shape (N,), float64
        ``NaN``-free: a sample with no attribution mass at all raises.

    Examples
    --------
    >>> a = np.zeros((1, 1, 2, 4)); a[0, 0, :, 0] = 3.0; a[0, 0, 0, 3] = -1.0
    >>> half_shares(a)
    array([0.85714286])
    """
    a = np.asarray(attributions, dtype=np.float64)
    if a.ndim != 4 or a.shape[0] == 0:
        raise ValueError(f"attributions must be a non-empty (N, C, H, W) array; got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("attributions contain NaN or Inf")
    width = a.shape[3]
    if split is None:
        split = width // 2
    else:
        split = check_scalar(split, "split", numbers.Integral, min_val=1, max_val=width - 1)
    mass = np.abs(a).sum(axis=(1, 2))  # (N, W)
    total = mass.sum(axis=1)
    if np.any(total == 0):
        raise ValueError(f"{int(np.sum(total == 0))} sample(s) have no attribution mass; shares are undefined")
    return mass[:, :split].sum(axis=1) / total
