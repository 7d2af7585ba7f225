"""Configuration of the transfer-bound study: presets read from TOML, unknown keys refused."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab._checks import check_int, check_nonnegative
from transferlab.studies._presets import preset_table
from transferlab.studies._selection_config import TargetSpec, parse_targets
from transferlab.zoo._recipe import ROLES

_KEYS = {
    "zoo", "zoo_preset", "roles", "targets", "train_per_class", "test_per_class", "source_per_class",
    "source_eval_per_class", "head", "transform", "probe_weight_decay", "seed",
}  # fmt: skip
_HEAD_KEYS = {"tau", "penalty", "steps", "lr"}
_TRANSFORM_KEYS = {"steps", "batch_size", "lr", "prior_lr", "prior_weight", "invertibility_weight", "init"}


@dataclass(frozen=True)
class BoundConfig:
    """A resolved preset of the transfer-bound study (see ``presets/bound.toml``)."""

    preset: str
    zoo: str
    zoo_preset: str
    roles: tuple[str, ...]
    targets: tuple[TargetSpec, ...]
    train_per_class: int
    test_per_class: int
    source_per_class: int
    source_eval_per_class: int
    head: dict
    transform: dict
    probe_weight_decay: float
    seed: int

    def to_dict(self) -> dict:
        return {
            "preset": self.preset, "zoo": self.zoo, "zoo_preset": self.zoo_preset, "roles": list(self.roles),
            "targets": [t.to_dict() for t in self.targets], "train_per_class": self.train_per_class,
            "test_per_class": self.test_per_class, "source_per_class": self.source_per_class,
            "source_eval_per_class": self.source_eval_per_class, "head": self.head, "transform": self.transform,
            "probe_weight_decay": self.probe_weight_decay, "seed": self.seed,
        }  # fmt: skip


def _table(value, keys: set[str], name: str) -> dict:
    table = dict(value)
    if set(table) != keys:
        raise ValueError(f"{name} must have exactly the keys {sorted(keys)}; got {sorted(table)}")
    return table


def load_bound_config(preset: str = "small", *, path=None) -> BoundConfig:
    """Resolve a preset of the transfer-bound study (built-in, or a TOML file of the same shape)."""
    t, _ = preset_table(path, "bound", preset, _KEYS, "bound")
    roles = tuple(str(r) for r in t["roles"])
    if not roles or any(r not in ROLES for r in roles):
        raise ValueError(f"roles must be a non-empty list of {sorted(ROLES)}; got {list(t['roles'])}")
    head = _table(t["head"], _HEAD_KEYS, "head")
    head = {"tau": check_nonnegative(head["tau"], "head.tau"), "penalty": check_nonnegative(head["penalty"], "head.penalty"),
            "steps": check_int(head["steps"], "head.steps"), "lr": check_nonnegative(head["lr"], "head.lr")}
    tr = _table(t["transform"], _TRANSFORM_KEYS, "transform")
    if tr["init"] not in ("transport", "random"):
        raise ValueError(f"transform.init must be 'transport' or 'random'; got {tr['init']!r}")
    transform = {"steps": check_int(tr["steps"], "transform.steps"),
                 "batch_size": check_int(tr["batch_size"], "transform.batch_size", 2),
                 **{k: check_nonnegative(tr[k], f"transform.{k}")
                    for k in ("lr", "prior_lr", "prior_weight", "invertibility_weight")},
                 "init": str(tr["init"])}
    return BoundConfig(
        preset=preset,
        zoo=str(t["zoo"]),
        zoo_preset=str(t["zoo_preset"]),
        roles=roles,
        targets=parse_targets(t["targets"], f"preset {preset!r}"),
        train_per_class=check_int(t["train_per_class"], "train_per_class", 2),
        test_per_class=check_int(t["test_per_class"], "test_per_class"),
        source_per_class=check_int(t["source_per_class"], "source_per_class", 2),
        source_eval_per_class=check_int(t["source_eval_per_class"], "source_eval_per_class"),
        head=head,
        transform=transform,
        probe_weight_decay=check_nonnegative(t["probe_weight_decay"], "probe_weight_decay"),
        seed=check_int(t["seed"], "seed", 0),
    )
