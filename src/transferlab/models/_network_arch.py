"""Any network as a :class:`StagedModel`: the ``"hub"`` (timm, torchvision) and ``"module"`` architectures.

A candidate from :func:`~transferlab.models.load_model` reads its features
with a forward hook (:class:`~transferlab.models.ExternalModel`): the input of
its last ``nn.Linear``, or the output of a named ``feature_layer``, globally
average-pooled when spatial. :class:`HookedBackbone` runs the same network and
returns exactly those features, so one stage ``"backbone"`` followed by a new
head fine-tunes the candidate on its own feature layer (a source classifier
``nn.Linear`` whose input is the features becomes ``nn.Identity``; any layer
after a named feature layer still runs but feeds nothing).

Two registered architectures hold such a backbone:

- ``"hub"`` (:class:`HubClassifier`): a timm or torchvision network, rebuilt
  from JSON ``{"library": "timm", "name": "resnet18", "options": {...}, ...}``
  with ``pretrained=False`` (``weights=None``): no download, the weights come
  from the checkpoint. timm and torchvision are optional extras.
- ``"module"`` (:class:`ModuleClassifier`): any ``nn.Module`` wrapped with
  :func:`~transferlab.models.wrap_module`. Python code cannot be rebuilt from
  JSON, so loading its checkpoint takes an instance of the same network:
  ``load_model("file:<checkpoint>", module=MyNet())``, which provides it
  through :func:`provided_module` while the checkpoint is rebuilt.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from typing import Any

import torch
from torch import nn

from transferlab._validation import check_int
from transferlab.models._base import StagedModel
from transferlab.models._registry import register_arch

#: The libraries the ``"hub"`` architecture rebuilds networks from.
HUB_LIBRARIES = ("timm", "torchvision")
_TAKES = ("input", "output")

#: The network a ``"module"`` checkpoint is rebuilt around (see :func:`provided_module`).
_PROVIDED: contextvars.ContextVar[nn.Module | None] = contextvars.ContextVar("transferlab_module", default=None)


@contextlib.contextmanager
def provided_module(module: nn.Module | None):
    """While open, a ``"module"`` architecture built without ``module`` copies this one."""
    token = _PROVIDED.set(module)
    try:
        yield
    finally:
        _PROVIDED.reset(token)


class HookedBackbone(nn.Module):
    """A network's features as its output: ``(N, C, H, W) -> (N, D)``.

    Runs ``network`` and returns what the hooked layer received (``take="input"``,
    the last ``nn.Linear`` when ``feature_layer`` is None) or produced
    (``take="output"``), averaged over space when 4-D and flattened: the features
    :class:`~transferlab.models.ExternalModel` reads from the same network.
    """

    def __init__(self, network: nn.Module, feature_layer: str | None, take: str):
        super().__init__()
        if take not in _TAKES:
            raise ValueError(f"take must be 'input' or 'output'; got {take!r}")
        modules = dict(network.named_modules())
        if feature_layer is None:
            linears = [name for name, m in modules.items() if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError(f"{type(network).__name__} has no nn.Linear whose input could be the features; "
                                 "name a feature_layer")
            feature_layer = linears[-1]
        elif feature_layer not in modules:
            raise ValueError(f"{type(network).__name__} has no module {feature_layer!r}; e.g. {list(modules)[-5:]}")
        if take == "input" and isinstance(modules[feature_layer], nn.Linear):
            # The features are that Linear's input: it needs no weights (nor to be saved).
            parent, _, child = feature_layer.rpartition(".")
            setattr(network.get_submodule(parent) if parent else network, child, nn.Identity())
        self.network = network
        self.feature_layer = feature_layer
        self.take = take

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        caught = {}

        def hook(_module, inputs, output):
            caught["z"] = inputs[0] if self.take == "input" else output

        handle = self.network.get_submodule(self.feature_layer).register_forward_hook(hook)
        try:
            self.network(x)
        finally:
            handle.remove()
        if "z" not in caught:
            raise ValueError(f"layer {self.feature_layer!r} did not run in the forward pass")
        z = caught["z"]
        if z.ndim == 4:
            z = z.mean(dim=(2, 3))
        return z.reshape(z.shape[0], -1)


class _NetworkClassifier(StagedModel):
    """One stage ``"backbone"`` (a :class:`HookedBackbone`) and a linear head; ``freeze_stages(1)`` is a linear probe."""

    def __init__(self, config: dict[str, Any], network: nn.Module, feature_layer: str | None, take: str,
                 feature_dim: int, num_classes: int):
        feature_dim = check_int(feature_dim, "feature_dim")
        backbone = HookedBackbone(network, feature_layer, take)
        super().__init__({**config, "feature_layer": feature_layer, "take": take,
                          "feature_dim": feature_dim}, nn.ModuleDict({"backbone": backbone}), feature_dim, num_classes)


@register_arch("hub")
class HubClassifier(_NetworkClassifier):
    """A timm or torchvision network's features (one stage, ``"backbone"``) and a linear head.

    Parameters
    ----------
    library : {"timm", "torchvision"}
    name : str
        The model name (``timm.create_model(name)``, ``torchvision.models.get_model(name)``).
    options : dict
        Further JSON keyword arguments of that call (e.g. ``{"in_chans": 1}`` for timm).
    feature_layer : str or None
        The hooked module (None: the last ``nn.Linear``).
    take : {"input", "output"}
        Whether the features are the hooked module's input or output.
    feature_dim : int
        Width of the features (the head's input).
    num_classes : int, default 10
    in_channels : int, default 3

    Raises
    ------
    MissingExtraError
        If the library is not installed (``pip install 'transferlab[timm]'``).
    ValueError
        For another library or a name the library does not know.
    """

    def __init__(self, library: str, name: str, options: dict, feature_layer: str | None, take: str,
                 feature_dim: int, num_classes: int = 10, in_channels: int = 3):
        from transferlab.models._hub import _require

        if library not in HUB_LIBRARIES:
            raise ValueError(f"library must be one of {HUB_LIBRARIES}; got {library!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string; got {name!r}")
        if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
            raise ValueError(f"options must be a dict with string keys; got {type(options).__name__}")
        in_channels = check_int(in_channels, "in_channels")
        try:
            if library == "timm":
                network = _require("timm", "timm").create_model(name, pretrained=False, **options)
            else:
                network = _require("torchvision", "torchvision").models.get_model(name, weights=None, **options)
        except (RuntimeError, KeyError) as err:  # an unknown name
            raise ValueError(f"{library} cannot build {name!r}: {str(err).splitlines()[0] if str(err) else err!r}") \
                from None
        super().__init__({"library": library, "name": name, "options": dict(options), "in_channels": in_channels},
                         network, feature_layer, take, feature_dim, num_classes)


@register_arch("module")
class ModuleClassifier(_NetworkClassifier):
    """A wrapped ``nn.Module``'s features (one stage, ``"backbone"``) and a linear head.

    Parameters
    ----------
    feature_layer, take, feature_dim, num_classes, in_channels
        As :class:`HubClassifier`.
    module_class : str
        The network's class name (recorded to say which network a checkpoint needs).

    The network itself is not JSON: it is a copy of the one given to
    :func:`provided_module` while the model is built (``to_finetunable`` gives
    the candidate's; ``load_model("file:...", module=...)`` the user's).

    Raises
    ------
    ValueError
        Without a network, or with one of another class.
    """

    def __init__(self, feature_layer: str | None, take: str, feature_dim: int, module_class: str,
                 num_classes: int = 10, in_channels: int = 3):
        module = _PROVIDED.get()
        if not isinstance(module, nn.Module):
            raise ValueError(
                f"this checkpoint holds a fine-tuned wrapped network of class {module_class!r}, which cannot be "
                "rebuilt from the file alone; load it in Python with "
                "load_model('file:<checkpoint>', module=<an instance of that network>)")
        if type(module).__qualname__ != module_class:
            raise ValueError(f"the checkpoint holds a {module_class!r} network; module is a "
                             f"{type(module).__qualname__!r}")
        in_channels = check_int(in_channels, "in_channels")
        super().__init__({"module_class": module_class, "in_channels": in_channels},
                         copy.deepcopy(module), feature_layer, take, feature_dim, num_classes)
