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


def criticality_from_grid(alphas, sigmas, errors, distance_sq: float, epsilon: float) -> dict:
    """Module criticality from the training errors measured on an ``(alpha, sigma)`` grid.

    Chatterji, Neyshabur & Sedghi, "The intriguing role of module criticality in
    the generalization of deep networks" (ICLR 2020):

    .. math:: \\mu_{i,\\epsilon} = \\min_{\\alpha, \\sigma} \\Big\\{
              \\frac{\\alpha^2 \\lVert \\theta_i^F - \\theta_i^0 \\rVert^2}{\\sigma^2} :
              \\mathbb{E}_{u \\sim N(0, \\sigma^2 I)}
              \\mathrm{err}\\big(\\theta_i^\\alpha + u\\big) \\le \\epsilon \\Big\\},
              \\quad \\theta_i^\\alpha = (1 - \\alpha)\\theta_i^0 + \\alpha \\theta_i^F,

    with the expectation estimated by the mean over the noise samples of each
    cell. ``errors`` has shape ``(len(alphas), len(sigmas), n_samples)``.

    Returns
    -------
    dict
        ``criticality`` (``inf`` when no cell is feasible), and the minimising
        ``alpha`` and ``sigma`` (``None`` when none is feasible).
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 3 or errors.shape[:2] != (alphas.size, sigmas.size) or errors.shape[2] == 0:
        raise ValueError(f"errors must have shape (len(alphas), len(sigmas), n_samples); got {errors.shape}")
    if np.any(alphas < 0) or np.any(alphas > 1) or np.any(sigmas <= 0):
        raise ValueError("alphas must lie in [0, 1] and sigmas be > 0")
    if not (np.all(np.isfinite(errors)) and np.isfinite(distance_sq) and distance_sq >= 0):
        raise ValueError("errors and distance_sq must be finite (distance_sq >= 0)")
    feasible = errors.mean(axis=2) <= epsilon
    scores = np.where(feasible, alphas[:, None] ** 2 * distance_sq / sigmas[None, :] ** 2, np.inf)
    i, j = np.unravel_index(np.argmin(scores), scores.shape)
    if not np.isfinite(scores[i, j]):
        return {"criticality": float("inf"), "alpha": None, "sigma": None}
    return {"criticality": float(scores[i, j]), "alpha": float(alphas[i]), "sigma": float(sigmas[j])}
