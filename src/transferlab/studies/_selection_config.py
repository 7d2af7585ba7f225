"""Configuration of the model-selection benchmark: presets read from TOML.

A preset names the zoo preset, the target tasks (a task spec, optionally the
first ``classes`` classes and a block shuffle), the data regimes (``full`` and
``k-shot``), the sizes, the fine-tuning grid and the scores. Unknown keys are
rejected so a typo never silently changes the benchmark.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path

from transferlab._validation import check_int
from transferlab.data import Task, block_shuffle, k_shot, load_sized, parse_spec, subset_classes
from transferlab.studies._config import StudyConfig, load_preset, preset_names, setting
from transferlab.train import TrainConfig, stratified_split

_REGIME = re.compile(r"^(full|(\d+)-shot)$")


@dataclass(frozen=True)
class TargetSpec(StudyConfig):
    """One target task: a source spec, optionally its first ``classes`` classes, optionally block-shuffled."""

    spec: str
    classes: int | None = setting(None, min_val=2)
    block_shuffle: int | None = setting(None, min_val=1)

    def _validate(self) -> None:
        parse_spec(self.spec)  # a malformed spec or option value fails when the preset loads, not mid-run

    @property
    def name(self) -> str:
        name = self.spec
        if self.classes is not None:
            name += f"[:{self.classes}]"
        if self.block_shuffle is not None:
            name += f"/shuffle{self.block_shuffle}"
        return name


@dataclass(frozen=True, kw_only=True)
class SelectionConfig(StudyConfig):
    """A resolved preset of the selection benchmark (see ``presets/selection.toml``).

    Every key but ``targets`` is optional; ``zoo_preset`` defaults to the preset's name.
    """

    preset: str
    zoo: str = "builtin"
    zoo_preset: str | None = None
    targets: tuple[TargetSpec, ...] = setting(min_len=1)
    regimes: tuple[str, ...] = ("full",)
    train_per_class: int = setting(50, min_val=2)
    test_per_class: int = setting(30, min_val=1)
    score_per_class: int = setting(100, min_val=2)
    lrs: tuple[float, ...] = setting((0.05, 0.01), min_val=0, include_boundaries="neither", min_len=1)
    train: TrainConfig = setting(default_factory=TrainConfig)
    steps: int | None = setting(None, min_val=1)
    scores: tuple[str, ...] | None = None
    val_fraction: float = setting(0.2, min_val=0, max_val=1, include_boundaries="left")
    seed: int = setting(0, min_val=0)
    #: Setup stability of the scoring (extra scoring jobs): other budgets K per class, and other
    #: seeds of the scoring sample and of the scores, each varied alone, in ``setup_regimes``
    #: (default: every regime).
    setup_score_per_class: tuple[int, ...] = setting((), min_val=2)
    setup_seeds: tuple[int, ...] = setting((), min_val=0)
    setup_regimes: tuple[str, ...] | None = None
    #: Ground-truth sensitivity (extra fine-tuning jobs): the budget times ``truth_factor`` on the
    #: targets numbered ``truth_targets`` (0-based; default: every target) in ``truth_regimes``
    #: (default: every regime). None: no check.
    truth_factor: int | None = setting(None, min_val=2)
    truth_targets: tuple[int, ...] = setting((), min_val=0)
    truth_regimes: tuple[str, ...] | None = None

    def _validate(self) -> None:
        if self.zoo_preset is None:
            self._set("zoo_preset", self.preset)
        for regime in self.regimes:
            regime_shots(regime)
        for key in ("setup_regimes", "truth_regimes"):
            unknown = [r for r in getattr(self, key) or () if r not in self.regimes]
            if unknown:
                raise ValueError(f"{key} {unknown} are not among the preset's regimes {list(self.regimes)}")
        beyond = [i for i in self.truth_targets if i >= len(self.targets)]
        if beyond:
            raise ValueError(f"truth_targets {beyond} are beyond the {len(self.targets)} targets (numbered from 0)")
        if self.setup_score_per_class and self.score_per_class in self.setup_score_per_class:
            raise ValueError(f"setup_score_per_class repeats the preset's own score_per_class "
                             f"({self.score_per_class}); list only the other budgets")
        if self.seed in self.setup_seeds:
            raise ValueError(f"setup_seeds repeats the preset's own seed ({self.seed}); list only the other seeds")


def long_budget(config: SelectionConfig) -> SelectionConfig:
    """``config`` with its fine-tuning budget times ``truth_factor`` (steps, else epochs)."""
    factor = config.truth_factor
    if config.steps is not None:
        return dataclasses.replace(config, steps=config.steps * factor)
    return dataclasses.replace(config, train=config.train.replace(epochs=config.train.epochs * factor))


def regime_shots(regime: str) -> int | None:
    """``None`` for ``"full"``, ``k`` for ``"k-shot"``; ValueError otherwise."""
    match = _REGIME.match(str(regime))
    if not match:
        raise ValueError(f"regime must be 'full' or '<k>-shot' (e.g. '5-shot'); got {regime!r}")
    return None if match.group(2) is None else check_int(int(match.group(2)), "shots")


def available_presets(path: str | Path | None = None) -> list[str]:
    """The presets of ``path`` (or of the built-in ``presets/selection.toml``), sorted."""
    return preset_names(path, "selection")


def load_selection_config(preset: str = "small", *, path: str | Path | None = None, **overrides) -> SelectionConfig:
    """Resolve a preset of the selection benchmark (built-in, or from a TOML file of the same shape).

    ``overrides`` replace keys of the preset's table (checked like them).
    """
    return load_preset(SelectionConfig, preset, path=path, builtin="selection", study="selection",
                       overrides=overrides)


def fine_tune_config(config: SelectionConfig, task: Task) -> TrainConfig:
    """The training config of one fine-tuning run on ``task``.

    Without ``steps`` it is the preset's ``train`` as is (a number of epochs).
    With ``steps``, every run takes at least that many SGD steps, whatever the
    regime: ``epochs = ceil(steps / ceil(n_fit / batch_size))``, where ``n_fit``
    is what is left of the train split after the validation hold-out. A fixed
    step budget (as in VTAB's protocol) keeps a 5-shot run from stopping after
    a handful of updates, and the step decay still falls at 50% and 75% of it.
    """
    if config.steps is None:
        return config.train
    fit_idx, _, _ = stratified_split(task.y_train, config.val_fraction, config.seed, task.class_names)
    per_epoch = math.ceil(len(fit_idx) / config.train.batch_size)
    return config.train.replace(epochs=math.ceil(config.steps / per_epoch))


def build_target(target: TargetSpec, regime: str, config) -> Task:
    """The target task of one (target, regime): full train split or a k-shot one; the test split stays full.

    ``config`` is any study config with ``train_per_class``, ``test_per_class`` and ``seed``: they are
    the study-wide defaults of every target, and an option of the target's own spec wins over them
    (``"glyphs:greek,n_train_per_class=20"`` renders 20 per class whatever ``train_per_class`` is;
    ``"shapes,seed=3"`` renders with seed 3; the shuffle and the k-shot draw still use ``config.seed``).
    """
    task = load_sized(target.spec, defaults={"train_per_class": config.train_per_class,
                                             "test_per_class": config.test_per_class, "seed": config.seed})
    if target.classes is not None:
        if target.classes > task.n_classes:
            raise ValueError(f"target {target.spec!r} has {task.n_classes} classes; cannot keep {target.classes}")
        task = subset_classes(task, list(range(target.classes)))
    if target.block_shuffle is not None:
        task = block_shuffle(task, target.block_shuffle, seed=config.seed)
    shots = regime_shots(regime)
    if shots is not None:
        task = k_shot(task, shots, seed=config.seed)
    return task
