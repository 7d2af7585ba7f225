"""Configuration of the correlation study: presets read from TOML, unknown and missing keys refused."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.studies._config import StudyConfig, load_preset, setting
from transferlab.train import TrainConfig


@dataclass(frozen=True, kw_only=True)
class ToySettings(StudyConfig):
    """Part 1, the linear toy: ``x = [a; b]`` in ``R^{2k}``, feature correlations ``alphas``, task ones ``betas``."""

    k: int = setting(min_val=1)
    alphas: tuple[float, ...] = setting(min_val=-1, max_val=1, min_len=1)
    betas: tuple[float, ...] = setting(min_val=0, max_val=1, min_len=1)
    decays: tuple[float, ...] = setting(min_val=0, min_len=1)
    n_train: int = setting(min_val=2)
    n_test: int = setting(min_val=1)
    steps: int = setting(min_val=1)


@dataclass(frozen=True, kw_only=True)
class LayerwiseSettings(StudyConfig):
    """Part 3: freeze Alice's first ``l - 1`` stages, fine-tune the rest; ``archs`` is ``{arch: options}``."""

    pair: tuple[str, str]
    archs: dict
    train: TrainConfig = setting(default_factory=TrainConfig)


@dataclass(frozen=True, kw_only=True)
class AttributionSettings(StudyConfig):
    """Part 4: integrated gradients on ``n`` test images with ``steps`` quadrature points."""

    n: int = setting(min_val=1)
    steps: int = setting(min_val=2)


@dataclass(frozen=True, kw_only=True)
class SemanticSettings(StudyConfig):
    """Part 5: Alice on one grouping of the classes of ``source``; Bob on a related and an unrelated one.

    Bob has ``bob_shots`` training images per group (all when unset).
    """

    source: str
    train_per_class: int = setting(min_val=2)
    test_per_class: int = setting(min_val=1)
    alice: tuple[tuple[int, ...], ...] = setting(min_val=0, min_len=2)
    related: tuple[tuple[int, ...], ...] = setting(min_val=0, min_len=2)
    unrelated: tuple[tuple[int, ...], ...] = setting(min_val=0, min_len=2)
    bob_shots: int | None = setting(None, min_val=1)

    def _validate(self) -> None:
        for name in ("alice", "related", "unrelated"):
            if not all(getattr(self, name)):
                raise ValueError(f"{name} must list non-empty groups of classes; got {getattr(self, name)}")


@dataclass(frozen=True, kw_only=True)
class CorrelationConfig(StudyConfig):
    """A resolved preset of the correlation study (see ``presets/correlation.toml``); every key is required.

    ``betas`` are kept in increasing order without repeats.
    """

    preset: str
    seeds: tuple[int, ...] = setting(min_val=0, min_len=1)
    betas: tuple[float, ...] = setting(min_val=0, max_val=1, min_len=2)
    toy: ToySettings
    pairs: tuple[tuple[str, str], ...] = setting(min_len=1)
    train_per_class: int = setting(min_val=2)
    test_per_class: int = setting(min_val=1)
    n_train: int = setting(min_val=2)
    n_test: int = setting(min_val=1)
    alice: dict
    train: TrainConfig
    layerwise: LayerwiseSettings
    attribution: AttributionSettings
    semantic: SemanticSettings

    def _validate(self) -> None:
        self._set("betas", tuple(sorted(set(self.betas))))
        if len(self.betas) < 2:
            raise ValueError(f"betas must hold at least two task correlations; got {list(self.betas)}")
        if "arch" not in self.alice:
            raise ValueError("alice must name an arch, e.g. { arch = \"convnet\", widths = [16, 32] }")


def load_correlation_config(preset: str = "small", *, path=None) -> CorrelationConfig:
    """Resolve a preset of the correlation study (built-in, or from a TOML file of the same shape)."""
    return load_preset(CorrelationConfig, preset, path=path, builtin="correlation", study="correlation")
