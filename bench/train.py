"""Throughput of `fit` against a bare training loop doing the same work.

Goal: fit_vs_bare_throughput >= 0.9. Both sides convert the same uint8 images
to one float tensor on the device, draw the same per-epoch permutations, and
run the same SGD (Nesterov momentum, weight decay) steps on the cross-entropy
with the same step scheduler. `fit` adds its bookkeeping (running loss and
accuracy, non-finite checks, the Rich progress bar, history); evaluation and
checkpoints are off. Runs are interleaved (fit, bare, fit, bare, ...) after a
short warm-up, and the median throughput of each side is compared.
Torch's thread count is left at its default.

On a shared machine (other jobs competing for the cores) single runs vary by
2-3x; use more, shorter repeats there (e.g. ``--n 2048 --repeats 15``) so
that both sides see the same load.

    .venv/bin/python bench/train.py [--epochs 1] [--batch-size 128] [--n 8192] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transferlab.models._base import StagedModel, to_input
from transferlab.train._config import TrainConfig
from transferlab.train import fit
from transferlab.train._loop import _batch_bounds, _derived_seeds

N_CLASSES = 10


class _FallbackConvNet(StagedModel):
    """ConvNet-sized stand-in (3 conv-BN-ReLU stages, 32/64/128 channels) if the registry is missing."""

    def __init__(self, num_classes: int = N_CLASSES, widths=(32, 64, 128)):
        stages = nn.ModuleDict()
        channels = 1
        for i, width in enumerate(widths):
            layers = OrderedDict(
                conv=nn.Conv2d(channels, width, 3, padding=1, bias=False), bn=nn.BatchNorm2d(width), relu=nn.ReLU()
            )
            if i < len(widths) - 1:
                layers["pool"] = nn.MaxPool2d(2)
            stages[f"conv{i + 1}"] = nn.Sequential(layers)
            channels = width
        super().__init__({"widths": list(widths)}, stages, widths[-1], num_classes)


def _build_model() -> StagedModel:
    try:
        from transferlab.models._registry import build
    except ImportError:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return _FallbackConvNet()
    return build("convnet", in_channels=1, num_classes=N_CLASSES, seed=0)


def _bare(model: nn.Module, x: np.ndarray, y: np.ndarray, config: TrainConfig) -> None:
    """The same work as `fit`, with nothing else: no bookkeeping, no progress bar."""
    device = torch.device(config.device)
    model.to(device)
    xt = to_input(x).to(device)
    yt = torch.from_numpy(y).to(device)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.milestones()), gamma=config.lr_gamma)
    generator = torch.Generator().manual_seed(_derived_seeds(config.seed)[0])  # fit's batch order
    bounds = _batch_bounds(xt.shape[0], config.batch_size)
    model.train()
    for _ in range(config.epochs):
        perm = torch.randperm(xt.shape[0], generator=generator).to(device)
        for start, stop in bounds:
            idx = perm[start:stop]
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()


def _timed(fn, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(args.n, 1, 28, 28), dtype=np.uint8)
    y = rng.integers(0, N_CLASSES, size=args.n).astype(np.int64)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.01, device=args.device)
    warm = TrainConfig(epochs=1, batch_size=args.batch_size, lr=0.01, device=args.device)
    n_warm = min(args.n, 4 * args.batch_size)

    # warm-up (kernel selection, allocator) outside the timings, both code paths
    fit(_build_model(), (x[:n_warm], y[:n_warm]), warm, progress=True)
    _bare(_build_model(), x[:n_warm], y[:n_warm], warm)

    def run_fit() -> float:
        model = _build_model()
        return _timed(lambda: fit(model, (x, y), config, progress=True), args.device)

    def run_bare() -> float:
        model = _build_model()
        return _timed(lambda: _bare(model, x, y, config), args.device)

    fit_times, bare_times = [], []
    for rep in range(args.repeats):  # interleaved, alternating which side goes first
        first, second = (run_fit, run_bare) if rep % 2 == 0 else (run_bare, run_fit)
        a, b = first(), second()
        fit_times.append(a if first is run_fit else b)
        bare_times.append(b if first is run_fit else a)

    images = args.n * args.epochs
    fit_rate = images / statistics.median(fit_times)
    bare_rate = images / statistics.median(bare_times)
    print(
        f"fit: {fit_rate:.1f} images/s, bare loop: {bare_rate:.1f} images/s "
        f"(median of {args.repeats}; n={args.n}, epochs={args.epochs}, batch_size={args.batch_size}, "
        f"device={args.device}, torch threads={torch.get_num_threads()})"
    )
    print(f"fit_vs_bare_throughput: {fit_rate / bare_rate:.3f} (goal: >= 0.9)")


if __name__ == "__main__":
    main()
