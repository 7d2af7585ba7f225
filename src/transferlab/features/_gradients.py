"""Per-sample gradients of the network output, randomly projected: the input of LGC.

Deshpande et al. (2021), "A linearized framework and a new benchmark for model
selection for fine-tuning", linearise the network around its pre-trained
weights, ``f(x; w) ~ f(x; w0) + g(x) . (w - w0)`` with ``g(x) = d f(x) / d w``,
and score a model by how well the kernel ``g(x_i) . g(x_j)`` agrees with the
labels (:func:`transferlab.scores._lfc.lgc`). This module computes ``g(x_i)``
for ``f(x) = log sum_z exp(logit_z(x))`` with respect to the parameters of one
stage, one gradient per sample (``torch.func``), and compresses it with a
seeded Gaussian random projection that never exists in full in memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from transferlab._progress import progress_bar
from transferlab._validation import check_images, check_int, check_seed
from transferlab.features._extract import _check_batch_size
from transferlab.models import StagedModel, to_input

#: Rows of the ``P x dim`` projection generated at once (one seeded generator each).
_BLOCK_ROWS = 4096
#: Most bytes of raw float32 gradients held before they are projected.
_CHUNK_BYTES = 2**28
#: Generated projection blocks kept between calls, least recently used dropped first:
#: scoring a zoo projects every member's gradients with the same seed, and drawing
#: the Gaussian blocks again for each member costs more than the gradients themselves.
_CACHE_BYTES = 2**29
_BLOCKS: OrderedDict = OrderedDict()
_BLOCKS_LOCK = threading.Lock()


def _block_seed(seed: int, block: int) -> int:
    """A 64-bit seed for projection block ``block`` of ``seed`` (independent streams)."""
    state = np.random.SeedSequence([seed, block]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 32 | int(state[1])


def _projection_block(seed: int, block: int, n_params: int, dim: int) -> torch.Tensor:
    """Rows ``[block * B, min((block + 1) * B, P))`` of the projection, float32 on the CPU.

    Entries are ``N(0, 1) / sqrt(dim)``, drawn on the CPU from a generator seeded
    with ``(seed, block)``, so each block is the same whatever the batch size, the
    device and the order in which the blocks are needed.
    """
    start = block * _BLOCK_ROWS
    rows = min(_BLOCK_ROWS, n_params - start)
    generator = torch.Generator(device="cpu").manual_seed(_block_seed(seed, block))
    return torch.randn(rows, dim, generator=generator, dtype=torch.float32).div_(float(np.sqrt(dim)))


def _cached_block(seed: int, block: int, n_params: int, dim: int, device: torch.device) -> torch.Tensor:
    """:func:`_projection_block` on ``device``, from the process-wide LRU cache when there.

    The key holds the block's row count, so members with different parameter
    counts share every full block and never a truncated last one.
    """
    rows = min(_BLOCK_ROWS, n_params - block * _BLOCK_ROWS)
    key = (seed, block, rows, dim, str(device))
    with _BLOCKS_LOCK:
        if key in _BLOCKS:
            _BLOCKS.move_to_end(key)
            return _BLOCKS[key]
    R = _projection_block(seed, block, n_params, dim).to(device)
    size = R.numel() * R.element_size()
    with _BLOCKS_LOCK:
        if size <= _CACHE_BYTES:
            _BLOCKS[key] = R
            held = sum(t.numel() * t.element_size() for t in _BLOCKS.values())
            while held > _CACHE_BYTES:
                _, dropped = _BLOCKS.popitem(last=False)
                held -= dropped.numel() * dropped.element_size()
    return R


def _project(grads: torch.Tensor, dim: int, seed: int) -> torch.Tensor:
    """``grads @ R`` for the seeded ``(P, dim)`` projection ``R``, one row block at a time.

    ``grads`` is ``(n, P)`` float32 on any device; the result is ``(n, dim)``
    float64 on the same device, accumulated over blocks in float64. The blocks
    come from a bounded process-wide cache (:data:`_CACHE_BYTES`).
    """
    n_params = grads.shape[1]
    out = torch.zeros(grads.shape[0], dim, dtype=torch.float64, device=grads.device)
    for b in range((n_params + _BLOCK_ROWS - 1) // _BLOCK_ROWS):
        R = _cached_block(seed, b, n_params, dim, grads.device)
        start = b * _BLOCK_ROWS
        out += (grads[:, start : start + R.shape[0]] @ R).to(torch.float64)
    return out


def _stage_name(model: StagedModel, stage: str | int | None) -> str:
    """The name of ``stage`` (default: the last), validated by the model."""
    return model.stage_names[model._stage_index(stage)]


def _output_gradient_fn(model: StagedModel, names: list[str]):
    """``x -> d logsumexp(model(x)) / d params`` for one sample, a pure function of ``params``."""

    def output(params: dict, others: dict, x: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, {**others, **params}, (x.unsqueeze(0),))
        return torch.logsumexp(logits, dim=1).squeeze(0)

    per_sample = vmap(grad(output), in_dims=(None, None, 0))

    def gradients(params: dict, others: dict, x: torch.Tensor) -> torch.Tensor:
        g = per_sample(params, others, x)
        return torch.cat([g[name].reshape(x.shape[0], -1) for name in names], dim=1)

    return gradients


def per_sample_gradients(
    model: StagedModel,
    images: np.ndarray,
    *,
    stage: str | int | None = None,
    dim: int = 1024,
    seed: int = 0,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Per-sample gradients of the log-sum-exp of the logits w.r.t. one stage, randomly projected.

    For each image ``x_i`` this computes

    .. math::

        g_i = \\frac{\\partial}{\\partial w}\\, \\log\\sum_z \\exp\\big(\\mathrm{logit}_z(x_i; w)\\big)
            \\in \\mathbb{R}^P, \\qquad
        \\tilde g_i = R^\\top g_i \\in \\mathbb{R}^{\\mathrm{dim}}, \\quad
        R_{pk} \\sim \\mathcal{N}(0, 1/\\mathrm{dim})\\ \\text{i.i.d.},

    where ``w`` are the ``P`` parameters of ``stage`` (default: the last stage),
    in the order of ``model.named_parameters()``, flattened. ``E[R R^T] = I``, so
    inner products are preserved in expectation and, by the Johnson-Lindenstrauss
    lemma, within a factor ``1 +- O(sqrt(log N / dim))`` for all pairs with high
    probability: the gradient kernel that
    :func:`~transferlab.scores._lfc.lgc` reads survives the compression.

    The gradients come from ``torch.func`` (``vmap`` of ``grad`` of a
    ``functional_call``), with the model in eval mode, so batch norm uses its
    running statistics and every sample's gradient is independent of the others
    in its batch. ``R`` is generated in blocks of rows, each from a CPU
    ``torch.Generator`` seeded with ``(seed, block index)``: the projection is the
    same for any ``batch_size`` and ``device``, and memory stays bounded (raw
    gradients are projected in chunks of at most about 256 MiB; generated blocks
    are kept, across calls, in a least-recently-used cache of at most 512 MiB).
    The cost is ``O(N P dim)`` for the projection.

    Parameters
    ----------
    model : StagedModel
        Any built-in architecture. Its parameters, buffers, device, mode and
        ``requires_grad`` flags are left as they were.
    images : ndarray of shape (N, C, H, W)
        ``uint8`` pixels (scaled by 1/255) or floats in [0, 1]; ``(N, H, W)`` is
        read as one channel.
    stage : str or int, optional
        The stage whose parameters the gradient is taken with respect to
        (name or index); default the last stage.
    dim : int, default 1024
        Projected dimension. If the stage has ``P <= dim`` parameters the raw
        gradients ``(N, P)`` are returned unprojected (a projection could only
        distort them).
    seed : int, default 0
        Seed of the projection.
    batch_size : int, default 64
        Samples per vectorised gradient computation (memory ``~ batch_size * P``
        floats plus the activations).
    device : str, default "cpu"
        Where the gradients and the projection are computed; the model itself is
        not moved (a copy of its tensors is used).
    progress : bool, default False
        Show a progress bar.

    Returns
    -------
    gradients : ndarray of shape (N, min(dim, P)), float32

    Raises
    ------
    ValueError
        If ``model`` is not a :class:`StagedModel`, ``images`` is not a non-empty
        ``(N, C, H, W)`` array of finite values, ``stage`` is unknown or has no
        parameters, or ``dim``, ``seed`` or ``batch_size`` is not a valid integer.

    References
    ----------
    A. Deshpande et al. A linearized framework and a new benchmark for model
    selection for fine-tuning. arXiv:2102.00084, 2021. W. B. Johnson, J.
    Lindenstrauss. Extensions of Lipschitz mappings into a Hilbert space. 1984.

    Examples
    --------
    >>> import numpy as np
    >>> from transferlab.models._convnet import ConvNet
    >>> model = ConvNet(widths=(4, 8), num_classes=3)
    >>> images = np.zeros((5, 1, 8, 8), dtype=np.uint8)
    >>> per_sample_gradients(model, images, dim=16).shape  # conv2: 4*8*9 + 8 + 8 = 304 > 16
    (5, 16)
    >>> per_sample_gradients(model, images, stage="conv1", dim=1024).shape  # 36 + 4 + 4 raw
    (5, 44)
    """
    if not isinstance(model, StagedModel):
        raise ValueError(  # noqa: TRY004 -- the house rule: every input check raises ValueError
            f"model must be a StagedModel (a transferlab architecture); got {type(model).__name__}"
        )
    images = check_images(images)
    batch_size = _check_batch_size(batch_size)
    dim = check_int(dim, "dim")
    seed = check_seed(seed)
    name = _stage_name(model, stage)
    prefix = f"stages.{name}."
    device = torch.device(device)

    params, others = {}, {}
    for key, tensor in [*model.named_parameters(), *model.named_buffers()]:
        target = params if key.startswith(prefix) and isinstance(tensor, torch.nn.Parameter) else others
        target[key] = tensor.detach().to(device)
    if not params:
        raise ValueError(f"stage {name!r} has no parameters; choose a stage with weights")
    names = list(params)
    n_params = sum(p.numel() for p in params.values())
    project = n_params > dim
    out_dim = dim if project else n_params

    n = images.shape[0]
    chunk_rows = max(batch_size, _CHUNK_BYTES // (4 * n_params))
    gradients_of = _output_gradient_fn(model, names)
    result = np.empty((n, out_dim), dtype=np.float32)

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with progress_bar("per-sample gradients", total=n, enabled=progress) as advance:
            pending, start = [], 0
            for lo in range(0, n, batch_size):
                x = to_input(images[lo : lo + batch_size]).to(device)
                with torch.no_grad():  # torch.func.grad differentiates on its own
                    pending.append(gradients_of(params, others, x))
                advance(x.shape[0])
                rows = sum(g.shape[0] for g in pending)
                if rows >= chunk_rows or lo + batch_size >= n:
                    chunk = torch.cat(pending)
                    pending = []
                    done = _project(chunk, dim, seed) if project else chunk
                    result[start : start + rows] = done.to("cpu", torch.float32).numpy()
                    start += rows
    finally:
        for module, mode in modes:
            module.training = mode
    return result
