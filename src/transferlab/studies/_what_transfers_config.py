"""Configuration of the what-transfers study: presets read from TOML, unknown and missing keys refused."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.studies._config import StudyConfig, load_preset, setting
from transferlab.train import TrainConfig


@dataclass(frozen=True, kw_only=True)
class CriticalitySettings(StudyConfig):
    """The grid of module criticality; ``epsilon`` is the allowed absolute rise of the mean training error."""

    alphas: tuple[float, ...] = setting(min_len=1)
    sigmas: tuple[float, ...] = setting(min_val=0, include_boundaries="neither", min_len=1)
    n_samples: int = setting(min_val=1)
    epsilon: float = setting(min_val=0, max_val=1)


@dataclass(frozen=True, kw_only=True)
class WhatTransfersConfig(StudyConfig):
    """A resolved preset of the what-transfers study (see ``presets/what_transfers.toml``); every key is required.

    ``block_sizes`` are kept largest first and ``checkpoint_epochs`` in increasing order, each without repeats.
    """

    preset: str
    seeds: tuple[int, ...] = setting(min_val=0, min_len=1)
    source: str
    targets: tuple[str, ...] = setting(min_len=1)
    block_sizes: tuple[int, ...] = setting(min_val=1, min_len=1)
    train_per_class: int = setting(min_val=2)
    test_per_class: int = setting(min_val=1)
    arch: dict
    pretrain: TrainConfig
    checkpoint_epochs: tuple[int, ...] = setting(min_val=0, min_len=1)
    finetune: TrainConfig
    interpolation_points: int = setting(min_val=2)
    criticality: CriticalitySettings

    def _validate(self) -> None:
        self._set("checkpoint_epochs", tuple(sorted(set(self.checkpoint_epochs))))
        if self.checkpoint_epochs[-1] > self.pretrain.epochs:
            raise ValueError(
                f"checkpoint_epochs must lie in 0..{self.pretrain.epochs}; got {list(self.checkpoint_epochs)}"
            )
        if any(28 % b for b in self.block_sizes):
            raise ValueError(f"block sizes must divide 28 (1, 2, 4, 7, 14, 28); got {list(self.block_sizes)}")
        self._set("block_sizes", tuple(sorted(set(self.block_sizes), reverse=True)))
        if "arch" not in self.arch:
            raise ValueError("arch must name an architecture, e.g. { arch = \"convnet\", widths = [16, 32] }")


def load_what_transfers_config(preset: str = "small", *, path=None) -> WhatTransfersConfig:
    """Resolve a preset of the what-transfers study (built-in, or a TOML file of the same shape)."""
    return load_preset(WhatTransfersConfig, preset, path=path, builtin="what_transfers", study="what-transfers")
