"""Configuration of the transfer-bound study: presets read from TOML, unknown and missing keys refused."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.studies._config import StudyConfig, load_preset, setting
from transferlab.studies._selection_config import TargetSpec
from transferlab.zoo import ROLES


@dataclass(frozen=True, kw_only=True)
class HeadSettings(StudyConfig):
    """The smooth source head (:func:`~transferlab.analysis.fit_smooth_head`): gradient-norm penalty beyond ``tau``."""

    tau: float = setting(min_val=0)
    penalty: float = setting(min_val=0)
    steps: int = setting(min_val=1)
    lr: float = setting(min_val=0)


@dataclass(frozen=True, kw_only=True)
class TransformSettings(StudyConfig):
    """The fit of the transforms of the source task (:func:`~transferlab.analysis.fit_transforms`)."""

    steps: int = setting(min_val=1)
    batch_size: int = setting(min_val=2)
    lr: float = setting(min_val=0)
    prior_lr: float = setting(min_val=0)
    prior_weight: float = setting(min_val=0)
    invertibility_weight: float = setting(min_val=0)
    init: str = setting(choices=("transport", "random"))


@dataclass(frozen=True, kw_only=True)
class BoundConfig(StudyConfig):
    """A resolved preset of the transfer-bound study (see ``presets/bound.toml``); every key is required."""

    preset: str
    zoo: str
    zoo_preset: str
    roles: tuple[str, ...] = setting(choices=ROLES, min_len=1)
    targets: tuple[TargetSpec, ...] = setting(min_len=1)
    train_per_class: int = setting(min_val=2)
    test_per_class: int = setting(min_val=1)
    source_per_class: int = setting(min_val=2)
    source_eval_per_class: int = setting(min_val=1)
    head: HeadSettings
    transform: TransformSettings
    probe_weight_decay: float = setting(min_val=0)
    seed: int = setting(min_val=0)


def load_bound_config(preset: str = "small", *, path=None) -> BoundConfig:
    """Resolve a preset of the transfer-bound study (built-in, or a TOML file of the same shape)."""
    return load_preset(BoundConfig, preset, path=path, builtin="bound", study="bound")
