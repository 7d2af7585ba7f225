"""The loss barrier of a path between two solutions: pure NumPy."""

from __future__ import annotations

import numpy as np


def loss_barrier(t, losses) -> float:
    """Height of the loss barrier along a path sampled at ``t`` in ``[0, 1]``.

    Neyshabur, Sedghi & Zhang (2020), after Frankle et al. (2020):

    .. math:: B = \\max_t \\big[ L(\\theta_t) - ((1 - t) L(\\theta_0) + t L(\\theta_1)) \\big],

    the largest rise of the loss above the straight line joining the endpoints.
    ``t`` must start at 0 and end at 1, strictly increasing. ``B >= 0`` since the
    endpoints contribute 0.

    Examples
    --------
    >>> loss_barrier([0.0, 0.5, 1.0], [1.0, 3.0, 2.0])
    1.5
    """
    t = np.asarray(t, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if t.ndim != 1 or t.shape != losses.shape or t.shape[0] < 2:
        raise ValueError(f"t and losses must be 1-D of the same length >= 2; got {t.shape} and {losses.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(losses))):
        raise ValueError("t and losses must be finite")
    if t[0] != 0.0 or t[-1] != 1.0 or np.any(np.diff(t) <= 0):
        raise ValueError("t must increase strictly from 0 to 1")
    line = (1.0 - t) * losses[0] + t * losses[-1]
    return float(np.max(losses - line))
