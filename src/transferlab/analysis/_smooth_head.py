"""A linear softmax head trained with a gradient-norm penalty (the source head of the transfer bound)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from transferlab._denormals import flush_denormals
from transferlab._progress import progress_bar
from transferlab._validation import check_features, check_int, check_nonnegative, check_seed
from transferlab.analysis._bound import feature_lipschitz


@dataclass(frozen=True)
class SmoothHead:
    """What :func:`fit_smooth_head` returns.

    Attributes
    ----------
    weight : ndarray of shape (K, D), float64
    bias : ndarray of shape (K,), float64
        ``logits = features @ weight.T + bias``.
    train_loss : float
        Mean cross-entropy on the training features (no penalty).
    train_accuracy : float
    max_gradient_norm : float
        The largest :math:`\\lVert\\nabla_z \\ell\\rVert_2` over the training
        samples and every label (what the penalty holds near ``tau``).
    lipschitz : float
        :math:`\\sqrt 2\\,\\sigma_{\\max}(C_K W)`: a bound on that gradient norm at
        every point and for every label (see
        :func:`~transferlab.analysis.feature_lipschitz`).
    """

    weight: np.ndarray
    bias: np.ndarray
    train_loss: float
    train_accuracy: float
    max_gradient_norm: float
    lipschitz: float


def _input_gradient_norms(weight, bias, z, labels) -> torch.Tensor:
    """``||grad_z CE(z_i, y_i)||`` per sample, differentiable in the head (closed form of autograd's)."""
    p = torch.softmax(z @ weight.T + bias, dim=1)
    residual = p - F.one_hot(labels, p.shape[1]).to(p.dtype)
    return (residual @ weight).norm(dim=1)


def _fit(z, y, k, tau, penalty, steps, lr, generator, device, progress):
    dev = torch.device(device)
    zt = torch.from_numpy(z).to(dev)
    yt = torch.from_numpy(y.astype(np.int64)).to(dev)
    weight = torch.zeros(k, z.shape[1], dtype=torch.float64, device=dev, requires_grad=True)
    bias = torch.zeros(k, dtype=torch.float64, device=dev, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=lr)
    with progress_bar("smooth head", steps, enabled=progress) as advance:
        for _ in range(steps):
            random_labels = torch.randint(0, k, (z.shape[0],), generator=generator).to(dev)
            optimizer.zero_grad()
            loss = F.cross_entropy(zt @ weight.T + bias, yt)
            if penalty > 0:
                excess = torch.cat([_input_gradient_norms(weight, bias, zt, yt),
                                    _input_gradient_norms(weight, bias, zt, random_labels)]) - tau
                loss = loss + penalty * 2 * excess.clamp(min=0).pow(2).mean()
            loss.backward()
            optimizer.step()
            advance(1)
    with torch.no_grad():
        logits = zt @ weight.T + bias
        train_loss = F.cross_entropy(logits, yt).item()
        accuracy = (logits.argmax(1) == yt).double().mean().item()
        norms = torch.cat([_input_gradient_norms(weight, bias, zt, torch.full_like(yt, c)) for c in range(k)])
    return weight.detach(), bias, train_loss, accuracy, float(norms.max())


def fit_smooth_head(
    features,
    labels,
    *,
    n_classes: int | None = None,
    tau: float = 1.0,
    penalty: float = 10.0,
    steps: int = 500,
    lr: float = 0.05,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> SmoothHead:
    """Fit a linear softmax head whose input gradients stay near ``tau``.

    Minimises, by full-batch Adam in float64 from zero,

    .. math::

        \\frac{1}{n}\\sum_i \\ell(z_i, y_i)
        + \\rho\\, \\frac{1}{n}\\sum_i \\Big[
          \\big(\\lVert\\nabla_z \\ell(z_i, y_i)\\rVert - \\tau\\big)_+^2
        + \\big(\\lVert\\nabla_z \\ell(z_i, \\tilde y_i)\\rVert - \\tau\\big)_+^2\\Big]

    with :math:`\\ell` the cross-entropy of ``softmax(W z + c)`` and
    :math:`\\tilde y_i` a random label drawn afresh each step, so that the
    penalty holds the gradient for labels other than the true one too. This is
    the source head of Mehra, Zhang & Hamm, "Analysis of Task Transferability in
    Large Pre-trained Classifiers" (2023), whose bound needs a head with a known
    smoothness constant; their code weighted the penalty by 1e10, here it is a
    moderate ``rho`` (the constant the bound uses is computed exactly from the
    weights afterwards, see ``SmoothHead.lipschitz``). For a linear head the
    input gradient has the closed form :math:`W^\\top(p - e_y)`.

    Parameters
    ----------
    features : array of shape (n, D)
    labels : array of shape (n,)
        Integer class indices in ``0..n_classes-1``.
    n_classes : int, optional
        Default ``labels.max() + 1``.
    tau : float, default 1.0
        The gradient norm allowed without penalty.
    penalty : float, default 10.0
        ``rho >= 0``; 0 trains a plain softmax head.
    steps : int, default 500
        Full-batch Adam steps.
    lr : float, default 0.05
    seed : int, default 0
        Seeds the random labels.
    device : str, default "cpu"
    progress : bool, default False
    """
    z = check_features(features)
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != z.shape[0] or y.dtype.kind not in "iu":
        raise ValueError(f"labels must be 1-D integer class indices, one per row of features ({z.shape[0]})")
    k = int(y.max()) + 1 if n_classes is None else check_int(n_classes, "n_classes", 2)
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"labels must lie in 0..{k - 1}; got {int(y.min())}..{int(y.max())}")
    tau, penalty, lr = (check_nonnegative(v, name) for v, name in ((tau, "tau"), (penalty, "penalty"), (lr, "lr")))
    steps = check_int(steps, "steps")
    generator = torch.Generator().manual_seed(check_seed(seed))

    with flush_denormals():
        weight, bias, train_loss, accuracy, max_norm = _fit(z, y, k, tau, penalty, steps, lr, generator, device,
                                                            progress)
    W = weight.cpu().numpy()
    return SmoothHead(
        weight=W,
        bias=bias.detach().cpu().numpy(),
        train_loss=train_loss,
        train_accuracy=accuracy,
        max_gradient_norm=max_norm,
        lipschitz=feature_lipschitz(W),
    )
