"""Configuration of the correlation study: presets read from TOML, unknown keys refused."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab._checks import check_int
from transferlab.studies._presets import read_presets
from transferlab.data._pairs import _check_beta
from transferlab.train._config import TrainConfig

_KEYS = {
    "seeds", "betas", "toy", "pairs", "train_per_class", "test_per_class", "n_train", "n_test",
    "alice", "train", "layerwise", "attribution", "semantic",
}  # fmt: skip
_TOY_KEYS = {"k", "alphas", "betas", "decays", "n_train", "n_test", "steps"}
_LAYERWISE_KEYS = {"pair", "archs", "train"}
_ATTRIBUTION_KEYS = {"n", "steps"}
_SEMANTIC_KEYS = {"source", "train_per_class", "test_per_class", "alice", "related", "unrelated", "bob_shots"}


@dataclass(frozen=True)
class CorrelationConfig:
    """A resolved preset of the correlation study (see ``presets/correlation.toml``)."""

    preset: str
    seeds: tuple[int, ...]
    betas: tuple[float, ...]
    toy: dict
    pairs: tuple[tuple[str, str], ...]
    train_per_class: int
    test_per_class: int
    n_train: int
    n_test: int
    alice: dict
    train: TrainConfig
    layerwise: dict
    attribution: dict
    semantic: dict

    def to_dict(self) -> dict:
        return {
            "preset": self.preset,
            "seeds": list(self.seeds),
            "betas": list(self.betas),
            "toy": self.toy,
            "pairs": [list(p) for p in self.pairs],
            "train_per_class": self.train_per_class,
            "test_per_class": self.test_per_class,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "alice": self.alice,
            "train": self.train.to_dict(),
            "layerwise": {**self.layerwise, "train": self.layerwise["train"].to_dict()},
            "attribution": self.attribution,
            "semantic": self.semantic,
        }


def _read(path) -> tuple[dict, str]:
    return read_presets(path, "correlation")


def _table(value, allowed: set[str], where: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a table; got {value!r}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; allowed keys are {sorted(allowed)}")
    missing = sorted(allowed - set(value) - {"train", "bob_shots"})
    if missing:
        raise ValueError(f"{where} lacks {missing}")
    return dict(value)


def _pair(value, where: str) -> tuple[str, str]:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise ValueError(f"{where} must be [left source, right source]; got {value!r}")
    return value[0], value[1]


def _groups(value, where: str) -> list[list[int]]:
    if not (isinstance(value, list) and len(value) >= 2 and all(isinstance(g, list) and g for g in value)):
        raise ValueError(f"{where} must list at least two non-empty groups of classes; got {value!r}")
    return [[check_int(c, f"a class of {where}", 0) for c in g] for g in value]


def load_correlation_config(preset: str = "small", *, path=None) -> CorrelationConfig:
    """Resolve a preset of the correlation study (built-in, or from a TOML file of the same shape)."""
    data, where = _read(path)
    presets = data.get("presets", {})
    if preset not in presets:
        raise ValueError(f"unknown correlation preset {preset!r}; presets in {where} are {sorted(presets)}")
    t = _table(presets[preset], _KEYS, f"preset {preset!r} of {where}")
    seeds = tuple(check_int(s, "seeds", 0) for s in t["seeds"])
    if not seeds:
        raise ValueError("seeds must list at least one seed")
    betas = tuple(sorted({_check_beta(b) for b in t["betas"]}))
    if len(betas) < 2:
        raise ValueError(f"betas must hold at least two task correlations; got {t['betas']}")
    toy = _table(t["toy"], _TOY_KEYS, "toy")
    for name in ("alphas", "betas"):
        for v in toy[name]:
            if not -1.0 <= float(v) <= 1.0 or (name == "betas" and float(v) < 0):
                raise ValueError(f"toy {name} must lie in [-1, 1] (betas in [0, 1]); got {v}")
    layerwise = _table(t["layerwise"], _LAYERWISE_KEYS, "layerwise")
    layerwise["pair"] = list(_pair(layerwise["pair"], "layerwise.pair"))
    layerwise["train"] = TrainConfig().replace(**layerwise.get("train", {}))
    attribution = _table(t["attribution"], _ATTRIBUTION_KEYS, "attribution")
    semantic = _table(t["semantic"], _SEMANTIC_KEYS, "semantic")
    for name in ("alice", "related", "unrelated"):
        semantic[name] = _groups(semantic[name], f"semantic.{name}")
    if semantic.get("bob_shots") is not None:
        semantic["bob_shots"] = check_int(semantic["bob_shots"], "semantic.bob_shots")
    alice = dict(t["alice"])
    if "arch" not in alice:
        raise ValueError("alice must name an arch, e.g. { arch = \"convnet\", widths = [16, 32] }")
    return CorrelationConfig(
        preset=preset,
        seeds=seeds,
        betas=betas,
        toy=toy,
        pairs=tuple(_pair(p, "pairs") for p in t["pairs"]),
        train_per_class=check_int(t["train_per_class"], "train_per_class", 2),
        test_per_class=check_int(t["test_per_class"], "test_per_class"),
        n_train=check_int(t["n_train"], "n_train", 2),
        n_test=check_int(t["n_test"], "n_test"),
        alice=alice,
        train=TrainConfig().replace(**t["train"]),
        layerwise=layerwise,
        attribution={"n": check_int(attribution["n"], "attribution.n"),
                     "steps": check_int(attribution["steps"], "attribution.steps", 2)},
        semantic=semantic,
    )
