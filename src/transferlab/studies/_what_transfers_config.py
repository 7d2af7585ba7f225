"""Configuration of the what-transfers study: presets read from TOML, unknown keys refused."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab._checks import check_int
from transferlab.studies._presets import preset_table
from transferlab.train._config import TrainConfig

_KEYS = {
    "seeds", "source", "targets", "block_sizes", "train_per_class", "test_per_class", "arch", "pretrain",
    "checkpoint_epochs", "finetune", "interpolation_points", "criticality",
}  # fmt: skip
_CRITICALITY_KEYS = {"alphas", "sigmas", "n_samples", "epsilon"}


@dataclass(frozen=True)
class WhatTransfersConfig:
    """A resolved preset of the what-transfers study (see ``presets/what_transfers.toml``)."""

    preset: str
    seeds: tuple[int, ...]
    source: str
    targets: tuple[str, ...]
    block_sizes: tuple[int, ...]
    train_per_class: int
    test_per_class: int
    arch: dict
    pretrain: TrainConfig
    checkpoint_epochs: tuple[int, ...]
    finetune: TrainConfig
    interpolation_points: int
    criticality: dict

    def to_dict(self) -> dict:
        return {
            "preset": self.preset, "seeds": list(self.seeds), "source": self.source, "targets": list(self.targets),
            "block_sizes": list(self.block_sizes), "train_per_class": self.train_per_class,
            "test_per_class": self.test_per_class, "arch": self.arch, "pretrain": self.pretrain.to_dict(),
            "checkpoint_epochs": list(self.checkpoint_epochs), "finetune": self.finetune.to_dict(),
            "interpolation_points": self.interpolation_points, "criticality": self.criticality,
        }  # fmt: skip


def load_what_transfers_config(preset: str = "small", *, path=None) -> WhatTransfersConfig:
    """Resolve a preset of the what-transfers study (built-in, or a TOML file of the same shape)."""
    t, _ = preset_table(path, "what_transfers", preset, _KEYS, "what-transfers")
    crit = dict(t["criticality"])
    if set(crit) != _CRITICALITY_KEYS:
        raise ValueError(f"criticality must have exactly the keys {sorted(_CRITICALITY_KEYS)}; got {sorted(crit)}")
    if not 0 <= float(crit["epsilon"]) <= 1:
        raise ValueError(f"criticality.epsilon is an error in [0, 1]; got {crit['epsilon']}")
    pretrain = TrainConfig().replace(**t["pretrain"])
    epochs = tuple(sorted({check_int(e, "checkpoint_epochs", 0) for e in t["checkpoint_epochs"]}))
    if not epochs or epochs[-1] > pretrain.epochs:
        raise ValueError(f"checkpoint_epochs must lie in 0..{pretrain.epochs}; got {list(t['checkpoint_epochs'])}")
    blocks = tuple(check_int(b, "block_sizes") for b in t["block_sizes"])
    if any(28 % b for b in blocks):
        raise ValueError(f"block sizes must divide 28 (1, 2, 4, 7, 14, 28); got {list(blocks)}")
    if "arch" not in t["arch"]:
        raise ValueError("arch must name an architecture, e.g. { arch = \"convnet\", widths = [16, 32] }")
    return WhatTransfersConfig(
        preset=preset,
        seeds=tuple(check_int(s, "seeds", 0) for s in t["seeds"]),
        source=str(t["source"]),
        targets=tuple(str(x) for x in t["targets"]),
        block_sizes=tuple(sorted(set(blocks), reverse=True)),
        train_per_class=check_int(t["train_per_class"], "train_per_class", 2),
        test_per_class=check_int(t["test_per_class"], "test_per_class"),
        arch=dict(t["arch"]),
        pretrain=pretrain,
        checkpoint_epochs=epochs,
        finetune=TrainConfig().replace(**t["finetune"]),
        interpolation_points=check_int(t["interpolation_points"], "interpolation_points", 2),
        criticality={"alphas": [float(a) for a in crit["alphas"]], "sigmas": [float(s) for s in crit["sigmas"]],
                     "n_samples": check_int(crit["n_samples"], "criticality.n_samples"),
                     "epsilon": float(crit["epsilon"])},
    )
