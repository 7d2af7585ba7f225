"""Module criticality of every stage of a trained network (runs the model)."""

from __future__ import annotations

import copy
import numbers

import numpy as np
import torch

from transferlab._validation import check_int, check_scalar, check_seed
from transferlab.analysis._barrier import criticality_from_grid
from transferlab.train import as_arrays, evaluate

#: Default grid: the fraction of the way from initial to final weights, and the noise scale.
DEFAULT_ALPHAS = tuple(np.linspace(0.0, 1.0, 11).tolist())
DEFAULT_SIGMAS = tuple(np.geomspace(1e-3, 1.0, 10).tolist())


def module_criticality(
    initial: torch.nn.Module,
    final: torch.nn.Module,
    train,
    *,
    epsilon: float,
    stages=None,
    alphas=DEFAULT_ALPHAS,
    sigmas=DEFAULT_SIGMAS,
    n_samples: int = 3,
    seed: int = 0,
    batch_size: int = 512,
    device: str = "cpu",
) -> list[dict]:
    """Criticality of each stage: how far toward its initial value, and how noisy, it may be.

    For each stage ``i`` of ``final`` (a :class:`~transferlab.models.StagedModel`)
    and each cell of the grid, the stage's parameters are set to
    ``(1 - alpha) theta_i^0 + alpha theta_i^F + u`` with ``u ~ N(0, sigma^2 I)``,
    the other stages keep their final values, and the training error is
    measured for each of ``n_samples`` noise draws (every draw evaluated; draws
    are seeded per cell, so the grid is the same for any ``epsilon``). Then
    :func:`~transferlab.analysis.criticality_from_grid` gives the score
    (Chatterji, Neyshabur & Sedghi, ICLR 2020) with the feasibility bound
    ``err(final) + epsilon``: ``epsilon`` is an absolute (not relative) rise of
    the mean training error over that of the trained network, so a network that
    does not fit its data perfectly still has feasible cells. Batch-norm
    statistics stay those of ``final``.

    Returns
    -------
    list of dict
        One per stage: ``stage``, ``criticality``, ``alpha``, ``sigma``,
        ``distance`` (``||theta_i^F - theta_i^0||``) and ``errors`` (the
        ``(alphas, sigmas, n_samples)`` grid, nested lists).
    """
    epsilon = check_scalar(epsilon, "epsilon", numbers.Real, min_val=0, max_val=1)
    n_samples = check_int(n_samples, "n_samples")
    seed = check_seed(seed)
    state0, state_f = initial.state_dict(), final.state_dict()
    if state0.keys() != state_f.keys() or any(state0[k].shape != state_f[k].shape for k in state0):
        raise ValueError("initial and final must have the same architecture (same state names and shapes)")
    data = as_arrays(train, "train", "train", None)
    names = list(stages) if stages is not None else list(final.stage_names)
    model = copy.deepcopy(final).to(device).eval()
    bound = 1.0 - evaluate(model, data, batch_size=batch_size, device=device)[1] + float(epsilon)
    params = dict(model.named_parameters())
    rows = []
    for s, stage in enumerate(names):
        prefix = f"stages.{stage}."
        keys = [k for k in params if k.startswith(prefix)]
        if not keys:
            raise ValueError(f"stage {stage!r} has no parameters; stages are {list(final.stage_names)}")
        start = {k: state0[k].to(device) for k in keys}
        end = {k: state_f[k].to(device) for k in keys}
        distance_sq = float(sum(torch.sum((end[k].double() - start[k].double()) ** 2) for k in keys))
        errors = np.empty((len(alphas), len(sigmas), n_samples))
        for i, alpha in enumerate(alphas):
            for j, sigma in enumerate(sigmas):
                for r in range(n_samples):
                    cell_seed = np.random.SeedSequence([seed, s, i, j, r]).generate_state(1)[0]
                    generator = torch.Generator().manual_seed(int(cell_seed))
                    with torch.no_grad():
                        for k in keys:
                            noise = torch.randn(end[k].shape, generator=generator).to(device)
                            params[k].copy_((1 - alpha) * start[k] + alpha * end[k] + sigma * noise)
                    errors[i, j, r] = 1.0 - evaluate(model, data, batch_size=batch_size, device=device)[1]
        with torch.no_grad():
            for k in keys:
                params[k].copy_(end[k])
        result = criticality_from_grid(alphas, sigmas, errors, distance_sq, bound)
        rows.append({"stage": stage, **result, "bound": bound, "distance": float(np.sqrt(distance_sq)), "errors": errors.tolist()})
    return rows
