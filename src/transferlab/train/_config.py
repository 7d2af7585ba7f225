"""The training configuration: one frozen, validated, serialisable dataclass."""

from __future__ import annotations

import dataclasses
import difflib
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transferlab._validation import check_int, check_nonnegative, check_scalar, check_seed


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`~transferlab.train._fit.fit`.

    SGD with (Nesterov) momentum and L2 weight decay on the cross-entropy, with
    a step decay of the learning rate, the schedule of the fine-tuning protocol
    of Deshpande et al. (2021), "A linearized framework and a new benchmark for
    model selection for fine-tuning".

    Parameters
    ----------
    epochs : int, default 10
        Passes over the training set.
    batch_size : int, default 128
    lr : float, default 0.05
        Initial learning rate :math:`\\eta_0`.
    momentum : float, default 0.9
        In ``[0, 1)``.
    nesterov : bool, default True
        Nesterov momentum; needs ``momentum > 0``.
    weight_decay : float, default 5e-4
        L2 coefficient added to the gradient by :class:`torch.optim.SGD`.
    lr_step : int or None, default None
        Multiply the learning rate by ``lr_gamma`` every ``lr_step`` epochs:
        :math:`\\eta_e = \\eta_0 \\gamma^{\\lfloor e / s \\rfloor}` for the
        0-based epoch :math:`e`. ``None`` decays at 50% and 75% of the epochs
        (epochs ``epochs // 2`` and ``3 * epochs // 4``, 0-based; a milestone at
        epoch 0 or duplicated is dropped), the common step schedule of ResNet
        training (He et al., 2016) used in the fine-tuning benchmarks.
        :meth:`milestones` lists the resulting decay epochs.
    lr_gamma : float, default 0.1
        Decay factor, in ``(0, 1]``.
    seed : int, default 0
        Seeds the order of the batches (and any dropout) of a run.
    device : str, default "cpu"
        A :class:`torch.device` string, e.g. ``"cuda"`` or ``"cuda:1"``.
    eval_every : int, default 1
        Evaluate on the evaluation data every ``eval_every`` epochs (and after
        the last epoch).
    steps : int or None, default None
        A budget in optimiser steps (batches) instead of epochs. When set it
        replaces ``epochs``: a run over ``b`` batches per epoch takes
        :math:`E = \\lceil \\text{steps} / b \\rceil` epochs, and the last one is
        cut after the ``steps - (E - 1) b`` batches left (its permutation is
        still drawn whole, so the batches before the cut are those of an
        uncut run). The learning-rate milestones count epochs, as without a
        step budget, over those :math:`E` epochs; the result of
        :func:`~transferlab.train.fit` records the resolved ``epochs``.
        Left out of :meth:`to_dict` when ``None``, so the dictionaries (and the
        digests and job keys built from them) of configs without a step
        budget are those of the configs before this field existed.

    Examples
    --------
    >>> config = TrainConfig(epochs=8)
    >>> config.milestones()
    (4, 6)
    >>> config.replace(lr_step=3).milestones()
    (3, 6)
    >>> TrainConfig.from_dict(config.to_dict()) == config
    True
    >>> "steps" in config.to_dict(), config.replace(steps=5).to_dict()["steps"]
    (False, 5)
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    lr_step: int | None = None
    lr_gamma: float = 0.1
    seed: int = 0
    device: str = "cpu"
    eval_every: int = 1
    steps: int | None = dataclasses.field(default=None, metadata={"omit_if_default": True})

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every"):
            object.__setattr__(self, name, check_int(getattr(self, name), name))
        object.__setattr__(self, "seed", check_seed(self.seed))
        real = numbers.Real
        object.__setattr__(self, "lr", check_scalar(self.lr, "lr", real, min_val=0, include_boundaries="neither"))
        momentum = check_scalar(self.momentum, "momentum", real, min_val=0, max_val=1, include_boundaries="left")
        object.__setattr__(self, "momentum", momentum)
        object.__setattr__(self, "weight_decay", check_nonnegative(self.weight_decay, "weight_decay"))
        lr_gamma = check_scalar(self.lr_gamma, "lr_gamma", real, min_val=0, max_val=1, include_boundaries="right")
        object.__setattr__(self, "lr_gamma", lr_gamma)
        object.__setattr__(self, "nesterov", check_scalar(self.nesterov, "nesterov", bool))
        lr_step = check_scalar(self.lr_step, "lr_step", (numbers.Integral, type(None)), min_val=1)
        object.__setattr__(self, "lr_step", lr_step)
        object.__setattr__(self, "steps", check_scalar(self.steps, "steps", (numbers.Integral, type(None)), min_val=1))
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be a non-empty string such as 'cpu' or 'cuda'; got {self.device!r}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True requires momentum > 0; got momentum=0.0 (set nesterov=False)")

    # -- schedule ----------------------------------------------------------------------
    def milestones(self) -> tuple[int, ...]:
        """0-based epochs at whose start the learning rate is multiplied by ``lr_gamma``."""
        if self.lr_step is not None:
            return tuple(range(self.lr_step, self.epochs, self.lr_step))
        return tuple(sorted({m for m in (self.epochs // 2, 3 * self.epochs // 4) if 0 < m < self.epochs}))

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain ``{field: value}`` dictionary (JSON- and TOML-friendly but for ``lr_step=None``).

        A field marked ``omit_if_default`` (``steps``) is left out while it has
        its default, so adding it kept the dictionaries of existing configs.
        """
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if not (f.metadata.get("omit_if_default") and getattr(self, f.name) == f.default)
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build a config from a mapping; missing keys take their defaults, unknown keys raise."""
        if not isinstance(values, Mapping):
            raise ValueError(f"values must be a mapping of field names to values; got {type(values).__name__}")
        _check_keys(values)
        return cls(**dict(values))

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with ``overrides`` applied; unknown names and wrong types raise ``ValueError``."""
        _check_keys(overrides)
        return dataclasses.replace(self, **overrides)


def _field_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(TrainConfig))


def _check_keys(values: Mapping[str, Any]) -> None:
    known = _field_names()
    unknown = [k for k in values if k not in known]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), known, n=1)
            hints.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
        raise ValueError(f"unknown TrainConfig keys: {', '.join(hints)}; valid keys are {list(known)}")
