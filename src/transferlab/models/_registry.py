"""The architecture registry: names to :class:`StagedModel` classes, and :func:`build`.

Architectures register themselves with the :func:`register_arch` decorator.
The built-in ones live in modules that the registry imports the first time it
is asked for a name, so ``build("resnet", ...)`` works without importing
``_resnet`` first. The argument checks every architecture shares
(:func:`_check_int`, :func:`_check_int_sequence`) live here too.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from transferlab._validation import check_int
from transferlab.models._base import StagedModel

#: Modules that define the built-in architectures; imported on first use.
_BUILTIN_MODULES = (
    "transferlab.models._mlp",
    "transferlab.models._convnet",
    "transferlab.models._resnet",
    "transferlab.models._adapters",
)

_REGISTRY: dict[str, type[StagedModel]] = {}
_builtins_loaded = False

_M = TypeVar("_M", bound=type[StagedModel])


def register_arch(name: str) -> Callable[[_M], _M]:
    """Class decorator: register a :class:`StagedModel` subclass under ``name``.

    Sets the class attribute ``arch = name``, which checkpoints record so that
    :func:`build` can rebuild the model. Registering a name twice is an error.

    Parameters
    ----------
    name : str
        Lower-case identifier, e.g. ``"convnet"``.

    Raises
    ------
    ValueError
        If ``name`` is empty or already registered, or the decorated object is
        not a subclass of :class:`StagedModel`.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string; got {name!r}")

    def decorator(cls: _M) -> _M:
        if not (isinstance(cls, type) and issubclass(cls, StagedModel)):
            raise ValueError(f"register_arch({name!r}) must decorate a StagedModel subclass; got {cls!r}")
        if name in _REGISTRY:
            raise ValueError(
                f"architecture {name!r} is already registered (by {_REGISTRY[name].__qualname__}); "
                "pick another name"
            )
        cls.arch = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


def available_archs() -> list[str]:
    """Sorted names of every registered architecture (``["convnet", "mlp", "resnet"]`` built in)."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_arch(arch: str) -> type[StagedModel]:
    """The class registered under ``arch``.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names and the closest match.
    """
    _load_builtins()
    if arch in _REGISTRY:
        return _REGISTRY[arch]
    names = sorted(_REGISTRY)
    close = difflib.get_close_matches(str(arch), names, n=1, cutoff=0.0)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown arch {arch!r}; available archs are {names}{hint}")


def build(arch: str, *, seed: int | None = None, **config: Any) -> StagedModel:
    """Build a fresh model of architecture ``arch`` from its constructor arguments.

    ``build(model.arch, **model.config)`` rebuilds an architecture with the same
    parameter shapes as ``model`` (fresh weights): this is how checkpoints are
    loaded.

    Parameters
    ----------
    arch : str
        A name from :func:`available_archs`.
    seed : int, optional
        Seed for the weight initialisation. The global torch RNG is left as it
        was; without a seed the global RNG is used (and advanced).
    **config
        Constructor arguments of the architecture, e.g. ``widths=[32, 64]``.

    Returns
    -------
    model : StagedModel
        In training mode, on the CPU.

    Raises
    ------
    ValueError
        For an unknown ``arch`` (with the closest valid name), an unknown or
        missing constructor argument, or an invalid value.

    Examples
    --------
    >>> model = build("convnet", widths=[8, 16], num_classes=3, seed=0)
    >>> model.stage_names, model.feature_dim, model.num_classes
    (['conv1', 'conv2'], 16, 3)
    """
    cls = get_arch(arch)
    _check_config_keys(cls, arch, config)
    if seed is None:
        return cls(**config)
    seed = check_int(seed, "seed", minimum=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(**config)


def build_for(arch: str, image_shape, num_classes: int, *, seed: int | None = None, **config: Any) -> StagedModel:
    """:func:`build` with the input arguments derived from ``image_shape`` ``(C, H, W)``.

    Each architecture says which constructor arguments describe its input
    (``in_channels`` for convolutional nets, ``in_shape`` for the MLP).
    """
    shape = tuple(int(v) for v in image_shape)
    if len(shape) != 3:
        raise ValueError(f"image_shape must be (channels, height, width); got {image_shape!r}")
    inputs = get_arch(arch).input_config(shape)
    return build(arch, seed=seed, num_classes=num_classes, **inputs, **config)


def build_for_spec(spec: dict[str, Any], image_shape, num_classes: int, *, seed: int | None = None) -> StagedModel:
    """:func:`build_for` from one table ``{"arch": name, **options}``, as the study presets write it."""
    if "arch" not in spec:
        raise ValueError(f"an architecture table needs an 'arch' key (e.g. {{arch = \"convnet\"}}); got {spec!r}")
    options = {k: v for k, v in spec.items() if k != "arch"}
    return build_for(spec["arch"], image_shape, num_classes, seed=seed, **options)


def _check_config_keys(cls: type[StagedModel], arch: str, config: dict[str, Any]) -> None:
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items() if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = sorted(set(config) - set(valid))
    if unknown:
        raise ValueError(f"unknown config keys {unknown} for arch {arch!r}; valid keys are {valid}")
    missing = [
        n for n in valid if params[n].default is inspect.Parameter.empty and n not in config
    ]
    if missing:
        raise ValueError(f"missing config keys {missing} for arch {arch!r}; valid keys are {valid}")


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model`` (buffers such as batch-norm statistics excluded).

    Parameters shared between modules are counted once.

    Parameters
    ----------
    model : torch.nn.Module
    trainable_only : bool, default False
        Count only parameters with ``requires_grad`` (e.g. after :meth:`StagedModel.freeze_stages`).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# -- argument checks shared by the architectures ------------------------------------------
