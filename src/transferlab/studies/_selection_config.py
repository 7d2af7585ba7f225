"""Configuration of the model-selection benchmark: presets read from TOML.

A preset names the zoo preset, the target tasks (a task spec, optionally the
first ``classes`` classes and a block shuffle), the data regimes (``full`` and
``k-shot``), the sizes, the fine-tuning grid and the scores. Unknown keys are
rejected so a typo never silently changes the benchmark.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from transferlab._checks import check_int
from transferlab.studies._presets import read_presets
from transferlab.data._ops import k_shot, subset_classes
from transferlab.data._shuffle import block_shuffle
from transferlab.data._sized import load_sized
from transferlab.data._task import Task
from transferlab.train._config import TrainConfig
from transferlab.train._fine_tune import _stratified_split

_PRESET_KEYS = {
    "zoo_preset", "targets", "regimes", "train_per_class", "test_per_class", "score_per_class",
    "lrs", "train", "steps", "scores", "val_fraction", "seed", "zoo",
}  # fmt: skip
_TARGET_KEYS = {"spec", "classes", "block_shuffle"}
_REGIME = re.compile(r"^(full|(\d+)-shot)$")


@dataclass(frozen=True)
class TargetSpec:
    """One target task: a source spec, optionally its first ``classes`` classes, optionally block-shuffled."""

    spec: str
    classes: int | None = None
    block_shuffle: int | None = None

    @property
    def name(self) -> str:
        name = self.spec
        if self.classes is not None:
            name += f"[:{self.classes}]"
        if self.block_shuffle is not None:
            name += f"/shuffle{self.block_shuffle}"
        return name

    def to_dict(self) -> dict:
        return {"spec": self.spec, "classes": self.classes, "block_shuffle": self.block_shuffle}


@dataclass(frozen=True)
class SelectionConfig:
    """A resolved preset of the selection benchmark."""

    preset: str
    zoo: str
    zoo_preset: str
    targets: tuple[TargetSpec, ...]
    regimes: tuple[str, ...]
    train_per_class: int
    test_per_class: int
    score_per_class: int
    lrs: tuple[float, ...]
    train: TrainConfig
    steps: int | None
    scores: tuple[str, ...] | None
    val_fraction: float
    seed: int

    def to_dict(self) -> dict:
        return {
            "preset": self.preset,
            "zoo": self.zoo,
            "zoo_preset": self.zoo_preset,
            "targets": [t.to_dict() for t in self.targets],
            "regimes": list(self.regimes),
            "train_per_class": self.train_per_class,
            "test_per_class": self.test_per_class,
            "score_per_class": self.score_per_class,
            "lrs": list(self.lrs),
            "train": self.train.to_dict(),
            "steps": self.steps,
            "scores": None if self.scores is None else list(self.scores),
            "val_fraction": self.val_fraction,
            "seed": self.seed,
        }


def regime_shots(regime: str) -> int | None:
    """``None`` for ``"full"``, ``k`` for ``"k-shot"``; ValueError otherwise."""
    match = _REGIME.match(str(regime))
    if not match:
        raise ValueError(f"regime must be 'full' or '<k>-shot' (e.g. '5-shot'); got {regime!r}")
    return None if match.group(2) is None else check_int(int(match.group(2)), "shots")


def _reject_unknown(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; allowed keys are {sorted(allowed)}")


def parse_targets(items, where: str) -> tuple[TargetSpec, ...]:
    """The ``targets`` list of a preset as TargetSpecs (unknown keys and an empty list refused)."""
    targets = []
    for i, t in enumerate(items):
        _reject_unknown(t, _TARGET_KEYS, f"target {i} of {where}")
        if "spec" not in t:
            raise ValueError(f"target {i} of {where} needs a 'spec' (a task spec such as 'glyphs:greek')")
        targets.append(
            TargetSpec(
                spec=str(t["spec"]),
                classes=None if t.get("classes") is None else check_int(t["classes"], "classes", 2),
                block_shuffle=None if t.get("block_shuffle") is None else check_int(t["block_shuffle"], "block_shuffle"),
            )
        )
    if not targets:
        raise ValueError(f"{where} lists no targets")
    return tuple(targets)


def _read(path) -> tuple[dict, str]:
    return read_presets(path, "selection")


def available_presets(path: str | Path | None = None) -> list[str]:
    data, _ = _read(path)
    return sorted(data.get("presets", {}))


def load_selection_config(preset: str = "small", *, path: str | Path | None = None, **overrides) -> SelectionConfig:
    """Resolve a preset of the selection benchmark (built-in, or from a TOML file of the same shape)."""
    data, where = _read(path)
    presets = data.get("presets", {})
    if preset not in presets:
        raise ValueError(f"unknown selection preset {preset!r}; presets in {where} are {sorted(presets)}")
    table = {**presets[preset], **overrides}
    _reject_unknown(table, _PRESET_KEYS, f"preset {preset!r} of {where}")
    targets = parse_targets(table.get("targets", []), f"preset {preset!r}")
    regimes = tuple(str(r) for r in table.get("regimes", ["full"]))
    for regime in regimes:
        regime_shots(regime)
    lrs = tuple(float(v) for v in table.get("lrs", [0.05, 0.01]))
    if not lrs or any(not v > 0 for v in lrs):
        raise ValueError(f"lrs must be positive learning rates; got {list(lrs)}")
    scores = table.get("scores")
    return SelectionConfig(
        preset=preset,
        zoo=str(table.get("zoo", "builtin")),
        zoo_preset=str(table.get("zoo_preset", preset)),
        targets=targets,
        regimes=regimes,
        train_per_class=check_int(table.get("train_per_class", 50), "train_per_class", 2),
        test_per_class=check_int(table.get("test_per_class", 30), "test_per_class"),
        score_per_class=check_int(table.get("score_per_class", 100), "score_per_class", 2),
        lrs=lrs,
        train=TrainConfig().replace(**table.get("train", {})),
        steps=None if table.get("steps") is None else check_int(table["steps"], "steps"),
        scores=None if scores is None else tuple(str(s) for s in scores),
        val_fraction=float(table.get("val_fraction", 0.2)),
        seed=check_int(table.get("seed", 0), "seed", 0),
    )


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
    fit_idx, _, _ = _stratified_split(task.y_train, config.val_fraction, config.seed, task.class_names)
    per_epoch = math.ceil(len(fit_idx) / config.train.batch_size)
    return config.train.replace(epochs=math.ceil(config.steps / per_epoch))


def build_target(target: TargetSpec, regime: str, config) -> Task:
    """The target task of one (target, regime): full train split or a k-shot one; the test split stays full.

    ``config`` is any study config with ``train_per_class``, ``test_per_class`` and ``seed``.
    """
    task = load_sized(
        target.spec, train_per_class=config.train_per_class, test_per_class=config.test_per_class, seed=config.seed
    )
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
