"""Learn the transforms of a source task that minimise the transfer bound (torch and POT)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.special import log_softmax

from transferlab._validation import check_int, check_nonnegative, check_seed
from transferlab._denormals import flush_denormals
from transferlab._progress import progress_bar
from transferlab.analysis._bound import (
    TaskTransform,
    _check_pair,
    _atom_masses,
    _check_head,
    _ground_cost,
    _label_cost,
    _per_class_loss,
)

_HISTORY = ("objective", "source_loss", "conditional_entropy", "wasserstein", "prior_gap", "invertibility")


@dataclass(frozen=True)
class TransformFit:
    """What :func:`fit_transforms` returns: the transforms and the objective along the way.

    Attributes
    ----------
    transform : TaskTransform
        ``A, b, B, D`` after the last step.
    history : dict of str to ndarray of shape (steps,)
        Per step: ``objective`` and its parts ``source_loss``,
        ``conditional_entropy``, ``wasserstein`` (on the mini-batches),
        ``prior_gap`` (:math:`\\lVert P_T - BD\\rVert^2`) and ``invertibility``.
    """

    transform: TaskTransform
    history: dict = field(default_factory=dict)


def _stratified_batch(by_class: list[np.ndarray], per_class: int, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([rng.choice(idx, size=min(per_class, idx.size), replace=False) for idx in by_class])


def _transport_label_map(zs, ys, zt, yt, k_s, k_t, n_max, smoothing, rng) -> np.ndarray:
    """``P(t | s)`` under the feature-only OT plan at ``A = I, b = 0``, mixed with the uniform map.

    The label coupling of an optimal feature transport (as in OTCE, Tan, Li &
    Huang, CVPR 2021): with the same extractor on both tasks, target samples near
    the samples of a source class tell which target labels that class maps to.
    """
    import ot

    src = rng.choice(ys.size, size=min(n_max, ys.size), replace=False)
    tgt = rng.choice(yt.size, size=min(n_max, yt.size), replace=False)
    plan = ot.emd(np.full(src.size, 1.0 / src.size), np.full(tgt.size, 1.0 / tgt.size),
                  ot.dist(zs[src], zt[tgt], metric="euclidean"), numItermax=50_000_000)
    joint = np.zeros((k_t, k_s))
    np.add.at(joint, (yt[tgt][None, :].repeat(src.size, 0), ys[src][:, None].repeat(tgt.size, 1)), plan)
    column = joint.sum(axis=0, keepdims=True)
    conditional = np.divide(joint, column, out=np.full_like(joint, 1.0 / k_t), where=column > 0)
    return (1.0 - smoothing) * conditional + smoothing / k_t


def fit_transforms(
    source_features,
    source_labels,
    target_features,
    target_labels,
    *,
    head_weight,
    head_bias,
    steps: int = 300,
    batch_size: int = 256,
    lr: float = 0.01,
    prior_lr: float = 0.001,
    prior_weight: float = 1.0,
    invertibility_weight: float = 1.0,
    init: str = "transport",
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> TransformFit:
    """Learn ``A, b, B, D`` that minimise the transfer bound (Mehra, Zhang & Hamm 2023).

    Minimises by Adam, over mini-batches,

    .. math::

        \\mathcal{L}_S^D + H_{B,D}(Y_T \\mid Y_S) + W_c(P_{S'}, P_T)
        + \\mu\\,\\lVert P_T - B D\\rVert_2^2
        + \\nu\\,\\big(\\lVert A\\bar A - I\\rVert_F^2 + \\lVert \\bar A A - I\\rVert_F^2\\big)

    with ``B = softmax`` of free logits over its rows (column-stochastic),
    ``D = softmax`` of free logits, :math:`\\bar A` a learned inverse of ``A``
    (the penalty keeps ``A`` invertible; the feature constant is
    :math:`L = \\sqrt2\\,\\sigma_{\\max}(C_K W \\bar A)`), and :math:`P_T` the
    target class frequencies. The source loss per class is computed once on
    all source samples (the head is fixed), so :math:`\\mathcal{L}_S^D` is
    exact. The Wasserstein term is exact optimal transport (``ot.emd2``, float64)
    between a class-stratified source batch, re-weighted to ``D`` and split into
    one atom per target label with mass :math:`D_s B_{ts}/n_s`, and a random
    target batch, under the ground cost :math:`L\\lVert A z + b - z'\\rVert +
    \\lambda_{tt'}` of :func:`~transferlab.analysis.transfer_wasserstein`: the
    same cost gives the plan and, through POT's differentiable ``emd2``, the
    gradient (the public code of the paper used a label cost scaled by 1e8 for
    the plan and another for the gradient). ``A`` starts at the identity, ``b``
    at 0, ``D`` at the source class frequencies and the logits of ``B`` at
    seeded uniform draws in [0, 1) (as in the paper's code).

    Parameters
    ----------
    source_features : array of shape (n, D)
    source_labels : array of shape (n,)
        Source class indices ``0..K_S-1`` (the rows of ``head_weight``); each class needs a sample.
    target_features : array of shape (m, D)
    target_labels : array of shape (m,)
        Target class indices ``0..K_T-1``; ``K_T`` is ``max + 1``.
    head_weight : array of shape (K_S, D)
    head_bias : array of shape (K_S,)
        The source head (e.g. :func:`~transferlab.analysis.fit_smooth_head`).
    steps : int, default 300
    batch_size : int, default 256
        Source samples per step (spread evenly over the classes) and target samples per step.
    lr : float, default 0.01
        Adam step for ``A``, its inverse, ``b`` and the logits of ``B``.
    prior_lr : float, default 0.001
        Adam step for the logits of ``D`` (the paper moves the prior slowly).
    prior_weight, invertibility_weight : float, default 1.0
        ``mu`` and ``nu``.
    init : {"transport", "random"}, default "transport"
        How ``B`` starts (see above).
    seed : int, default 0
        Seeds the initial ``B`` and the batches.
    device : str, default "cpu"
    progress : bool, default True

    Returns
    -------
    TransformFit
    """
    W, c = _check_head(head_weight, head_bias)
    k_s, d = W.shape
    yt_raw = np.asarray(target_labels)
    if yt_raw.ndim != 1 or yt_raw.size == 0 or yt_raw.dtype.kind not in "iu":
        raise ValueError("target_labels must be a non-empty 1-D array of integer class indices")
    k_t = int(yt_raw.max()) + 1
    zs, ys, zt, yt = _check_pair(source_features, source_labels, target_features, target_labels, k_s, k_t)
    if zs.shape[1] != d:
        raise ValueError(f"features have {zs.shape[1]} columns but head_weight has {d}")
    counts_s = np.bincount(ys, minlength=k_s)
    if (counts_s == 0).any():
        raise ValueError(f"source class {int(np.flatnonzero(counts_s == 0)[0])} has no sample")
    steps = check_int(steps, "steps")
    batch_size = check_int(batch_size, "batch_size", 2)
    lr, prior_lr = check_nonnegative(lr, "lr"), check_nonnegative(prior_lr, "prior_lr")
    mu, nu = check_nonnegative(prior_weight, "prior_weight"), check_nonnegative(invertibility_weight, "invertibility_weight")
    if init not in ("transport", "random"):
        raise ValueError(f"init must be 'transport' or 'random'; got {init!r}")
    rng = np.random.default_rng(check_seed(seed))

    import ot

    dev = torch.device(device)

    def tensor(a):
        return torch.as_tensor(a, dtype=torch.float64, device=dev)

    # Fixed pieces: the head's loss per source class, the target prior, the centred head.
    log_p = log_softmax(zs @ W.T + c, axis=1)
    class_loss = tensor(_per_class_loss(-log_p[np.arange(ys.size), ys], ys, k_s, np.full(k_s, 1.0 / k_s)))
    target_prior = tensor(np.bincount(yt, minlength=k_t) / yt.size)
    centred_head = tensor(W - W.mean(axis=0, keepdims=True))
    eye = torch.eye(d, dtype=torch.float64, device=dev)

    A = eye.clone().requires_grad_(True)
    A_inv = eye.clone().requires_grad_(True)
    b = torch.zeros(d, dtype=torch.float64, device=dev, requires_grad=True)
    if init == "random":
        B_start = rng.uniform(0.0, 1.0, size=(k_t, k_s))
    else:
        B_start = np.log(_transport_label_map(zs, ys, zt, yt, k_s, k_t, 1000, 0.1, rng))
    B_logits = tensor(B_start).requires_grad_(True)
    D_logits = tensor(np.log(counts_s / counts_s.sum())).requires_grad_(True)
    optimizer = torch.optim.Adam([{"params": [A, A_inv, b, B_logits], "lr": lr}, {"params": [D_logits], "lr": prior_lr}])

    by_class = [np.flatnonzero(ys == s) for s in range(k_s)]
    per_class = max(1, batch_size // k_s)
    zs_t, zt_t = tensor(zs), tensor(zt)
    ys_t, yt_t = torch.as_tensor(ys, device=dev), torch.as_tensor(yt, device=dev)
    history = {name: np.empty(steps) for name in _HISTORY}
    with flush_denormals(), progress_bar("transforms", steps, enabled=progress) as advance:
        for step in range(steps):
            src = torch.as_tensor(_stratified_batch(by_class, per_class, rng), device=dev)
            tgt = torch.as_tensor(rng.choice(yt.size, size=min(batch_size, yt.size), replace=False), device=dev)
            log_B = torch.log_softmax(B_logits, dim=0)
            B, D = log_B.exp(), torch.softmax(D_logits, dim=0)

            entropy = -(D * (B * log_B).sum(dim=0)).sum()
            source_loss = (D * class_loss).sum()
            lipschitz = math.sqrt(2.0) * torch.linalg.matrix_norm(centred_head @ A_inv, ord=2)
            labels_b = ys_t[src]
            cost = _ground_cost(zs_t[src] @ A.T + b, zt_t[tgt], yt_t[tgt], lipschitz, _label_cost(log_B))
            masses = _atom_masses(B, D, labels_b, torch.bincount(labels_b, minlength=k_s).to(torch.float64))
            target_mass = torch.full((tgt.numel(),), 1.0 / tgt.numel(), dtype=torch.float64, device=dev)
            wasserstein = ot.emd2(masses.reshape(-1), target_mass, cost.reshape(-1, tgt.numel()),
                                  numItermax=50_000_000)
            prior_gap = (target_prior - B @ D).pow(2).sum()
            invertibility = (A @ A_inv - eye).pow(2).sum() + (A_inv @ A - eye).pow(2).sum()
            objective = source_loss + entropy + wasserstein + mu * prior_gap + nu * invertibility

            optimizer.zero_grad()
            objective.backward()
            optimizer.step()
            for name, value in zip(_HISTORY, (objective, source_loss, entropy, wasserstein, prior_gap, invertibility)):
                history[name][step] = value.item()
            advance(1, bound=history["objective"][step] - mu * prior_gap.item() - nu * invertibility.item())

    with torch.no_grad():
        transform = TaskTransform(
            feature_map=A.detach().cpu().numpy(),
            feature_shift=b.detach().cpu().numpy(),
            label_map=torch.softmax(B_logits, dim=0).cpu().numpy(),
            prior=torch.softmax(D_logits, dim=0).cpu().numpy(),
        )
    return TransformFit(transform=transform, history=history)
