"""Candidates from elsewhere as :class:`StagedModel` checkpoints: the ``"hf"`` architecture and
:func:`to_finetunable`.

A model from :func:`~transferlab.models.load_model` is fine-tuned with a new
head on its feature layer and then saved; only a registered
:class:`StagedModel` can be saved and rebuilt from JSON
(:func:`~transferlab.models.save_checkpoint`). :func:`to_finetunable` turns a
candidate into one:

- ``file:`` (one of our checkpoints): a copy of its :class:`StagedModel` with a
  new head;
- ``hf:`` (a Hugging Face image classifier): an :class:`HFClassifier`, the
  ``"hf"`` architecture, whose one stage ``"backbone"`` is the Hugging Face
  model with its classifier's last ``nn.Linear`` replaced by ``nn.Identity``
  (so the stage's output is exactly what that Linear received: the features
  :class:`~transferlab.models.ExternalModel` reads), holding the pretrained
  weights, followed by a new seeded head.

The ``"hf"`` architecture's config is JSON::

    {"model_type": "resnet",              # a transformers model type (AutoConfig.for_model)
     "hf_config": {"hidden_sizes": [...]},  # the other config entries that shape the network
     "in_channels": 3,                     # the config's num_channels
     "num_classes": 6}                     # the new head's outputs

and rebuilds with ``AutoModelForImageClassification.from_config`` (no download,
no remote code, nothing unpickled), on the ``meta`` device too, so
:func:`~transferlab.models.load_checkpoint` checks a file's shapes before
allocating. transformers is the optional extra ``hf``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import torch
from torch import nn

from transferlab._validation import check_int
from transferlab.models._base import StagedModel
from transferlab.models._hub import ExternalModel, _require
from transferlab.models._registry import register_arch

#: Entries of a Hugging Face config that do not shape the backbone (labels, bookkeeping, dtype)
#: or that the "hf" config holds elsewhere (model_type, num_channels as in_channels).
_DROPPED_KEYS = frozenset({
    "model_type", "num_channels", "transformers_version", "architectures", "id2label", "label2id", "num_labels",
    "_name_or_path", "dtype", "torch_dtype", "return_dict", "output_hidden_states", "output_attentions",
})
#: The candidate kinds :func:`to_finetunable` converts (and any network through ``wrap_module``).
FINETUNABLE_KINDS = ("file", "hf", "timm", "torchvision")


class _Logits(nn.Module):
    """A Hugging Face image classifier as a plain ``(N, C, H, W) -> (N, D)`` module (its ``logits``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x, return_dict=True).logits


def _last_linear(module: nn.Module) -> tuple[str, nn.Linear]:
    """``(qualified name, module)`` of the last ``nn.Linear``: the layer whose input ExternalModel reads."""
    linears = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(module).__name__} has no nn.Linear classifier whose input could be the features")
    return linears[-1]


def _replace_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


def hf_config_entries(config) -> dict[str, Any]:
    """The JSON entries of a Hugging Face ``PretrainedConfig`` that shape its network.

    ``config.to_diff_dict()`` (the values that differ from the class defaults)
    less :data:`_DROPPED_KEYS` and any entry that is not JSON; what
    ``AutoConfig.for_model(model_type, **entries)`` needs to rebuild the same
    architecture.
    """
    entries = {}
    for key, value in config.to_diff_dict().items():
        if key in _DROPPED_KEYS or key.startswith("_"):
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        entries[key] = value
    return entries


@register_arch("hf")
class HFClassifier(StagedModel):
    """A Hugging Face image classifier's backbone (one stage, ``"backbone"``) and a linear head.

    The backbone is ``AutoModelForImageClassification.from_config(AutoConfig.for_model(model_type,
    **hf_config, num_channels=in_channels))`` with the last ``nn.Linear`` of its classifier
    replaced by ``nn.Identity``: its output, shape ``(N, feature_dim)``, is what that Linear read.
    ``freeze_stages(1)`` freezes the whole backbone (a linear probe).

    Parameters
    ----------
    model_type : str
        A transformers model type with an image-classification model (``"resnet"``, ``"vit"``, ...).
    hf_config : dict
        Further config entries (JSON), e.g. from :func:`hf_config_entries`.
    num_classes : int, default 10
        Outputs of the head.
    in_channels : int, default 3
        Input channels (the config's ``num_channels``).

    Raises
    ------
    MissingExtraError
        If transformers is not installed (``pip install 'transferlab[hf]'``).
    ValueError
        For an unknown model type, one without an image classifier, or a bad config.
    """

    def __init__(self, model_type: str, hf_config: dict, num_classes: int = 10, in_channels: int = 3):
        if not isinstance(model_type, str) or not model_type:
            raise ValueError(f"model_type must be a non-empty string (e.g. 'resnet'); got {model_type!r}")
        if not isinstance(hf_config, dict) or not all(isinstance(k, str) for k in hf_config):
            raise ValueError(f"hf_config must be a dict with string keys; got {type(hf_config).__name__}")
        in_channels = check_int(in_channels, "in_channels")
        channels = hf_config.get("num_channels", in_channels)
        if channels != in_channels:
            raise ValueError(f"hf_config's num_channels ({channels!r}) differs from in_channels ({in_channels})")
        transformers = _require("transformers", "hf")
        try:
            config = transformers.AutoConfig.for_model(model_type, **{**hf_config, "num_channels": in_channels})
            model = transformers.AutoModelForImageClassification.from_config(config)
        except (KeyError, ValueError) as err:
            raise ValueError(f"cannot build a Hugging Face image classifier of model_type {model_type!r}: "
                             f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
        name, linear = _last_linear(model)
        _replace_module(model, name, nn.Identity())
        super().__init__({"model_type": model_type, "hf_config": dict(hf_config), "in_channels": in_channels},
                         nn.ModuleDict({"backbone": _Logits(model)}), linear.in_features, num_classes)
        #: Where the replaced classifier Linear was, relative to the Hugging Face model.
        self.replaced_layer = name

    @classmethod
    def input_config(cls, image_shape: tuple[int, int, int]) -> dict[str, Any]:
        return {"in_channels": int(image_shape[0])}


def _check_default_feature_layer(model: ExternalModel, expected: str) -> None:
    if model.feature_layer != expected or model._take != "input":
        raise ValueError(
            f"model {model.name!r} reads its features at {model.feature_layer!r}; to_finetunable keeps the "
            f"default feature layer (the input of the last nn.Linear, {expected!r}), so load it without "
            "feature_layer")


def to_finetunable(model: ExternalModel, n_classes: int, *, seed: int = 0) -> StagedModel:
    """A candidate as a :class:`StagedModel` with a new head: fine-tuned, it saves with ``save_checkpoint``.

    The new model's features (``forward_features``) are the candidate's
    ``features`` (the input of its classifier's last ``nn.Linear``) on the same
    preprocessed batch, and its head is a fresh ``nn.Linear(feature_dim,
    n_classes)`` drawn from ``seed``. The candidate is not changed.

    Parameters
    ----------
    model : ExternalModel
        From :func:`~transferlab.models.load_model`: a ``file:`` checkpoint (a
        copy of its model), an ``hf:`` image classifier (an
        :class:`HFClassifier` holding its weights; the default feature layer),
        a ``timm:`` or ``torchvision:`` network (a
        :class:`~transferlab.models.HubClassifier`, rebuilt from its library by
        name) or any network from :func:`~transferlab.models.wrap_module` (a
        :class:`~transferlab.models.ModuleClassifier`, a copy of it); these two
        read the candidate's own feature layer.
    n_classes : int
        Classes of the target task.
    seed : int, default 0
        Seed of the head's initialisation (the global RNG is left as it was).

    Returns
    -------
    model : StagedModel
        In eval mode, on the candidate's device and dtype; the checkpoint's
        stages for ``file:``, one stage ``"backbone"`` otherwise.

    Raises
    ------
    ValueError
        For a model that cannot be rebuilt (an ``ExternalModel`` built by hand,
        a timm model loaded with options that are not JSON), a weights mismatch,
        or a bad ``n_classes``.
    """
    if not isinstance(model, ExternalModel):
        raise ValueError(f"model must be an ExternalModel (from load_model); got {type(model).__name__}")
    n_classes = check_int(n_classes, "n_classes")
    seed = check_int(seed, "seed", minimum=0)
    kind = model.name.partition(":")[0]
    module = model.module
    if kind == "file" and isinstance(module, StagedModel):
        _check_default_feature_layer(model, _last_linear(module)[0])
        staged = copy.deepcopy(module)
        staged.replace_head(n_classes, seed=seed)
        return staged.eval()
    if kind == "hf" and isinstance(getattr(getattr(module, "config", None), "model_type", None), str):
        return _from_hf(model, n_classes, seed)
    origin = getattr(model, "origin", None)
    if origin is not None:
        return _from_network(model, origin, n_classes, seed)
    raise ValueError(
        f"model {model.name!r} cannot be saved and rebuilt: fine-tuned candidates are saved for the kinds "
        f"{', '.join(k + ':' for k in FINETUNABLE_KINDS)} and networks wrapped with wrap_module (load them "
        "with load_model; a timm model needs JSON keyword options)")


def _from_network(model: ExternalModel, origin: dict, n_classes: int, seed: int) -> StagedModel:
    """A timm, torchvision or wrapped network as a ``"hub"`` or ``"module"`` model with a new head."""
    from transferlab.models._network_arch import HubClassifier, ModuleClassifier, provided_module

    module = model.module
    reference = next(module.parameters(), None)
    layer = None if model._take == "input" else model.feature_layer
    shape = (1, model.preprocessing.channels, *model.preprocessing.size)
    with torch.no_grad():  # the width of the features: one forward pass on a blank image
        blank = torch.zeros(shape, device=getattr(reference, "device", None), dtype=getattr(reference, "dtype", None))
        feature_dim = int(model.features_and_logits(blank)[0].shape[1])
    common = dict(feature_layer=layer, take=model._take, feature_dim=feature_dim, num_classes=n_classes,
                  in_channels=model.preprocessing.channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if origin["library"] == "module":
            with provided_module(module):
                staged = ModuleClassifier(module_class=type(module).__qualname__, **common)
        else:
            staged = HubClassifier(origin["library"], origin["name"], origin["options"], **common)
            dropped = staged.stages["backbone"].feature_layer + "."  # a source Linear made Identity
            weights = {k: v for k, v in module.state_dict().items()
                       if not (model._take == "input" and k.startswith(dropped))}
            try:
                staged.stages["backbone"].network.load_state_dict(weights, strict=True)
            except RuntimeError as err:
                raise ValueError(f"model {model.name!r}: {origin['library']} does not rebuild the same network "
                                 f"from its name and options: {str(err).splitlines()[0]}") from None
        staged.replace_head(n_classes, seed=seed)
    if reference is not None:
        staged = staged.to(device=reference.device, dtype=reference.dtype)
    return staged.eval()


def _from_hf(model: ExternalModel, n_classes: int, seed: int) -> HFClassifier:
    module = model.module
    layer, _ = _last_linear(module)
    _check_default_feature_layer(model, layer)
    config = module.config
    reference = next(module.parameters())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        staged = HFClassifier(config.model_type, hf_config_entries(config), num_classes=n_classes,
                              in_channels=int(getattr(config, "num_channels", 3)))
        staged.replace_head(n_classes, seed=seed)
    weights = {name: tensor for name, tensor in module.state_dict().items()
               if not name.startswith(layer + ".")}
    backbone = staged.stages["backbone"].model
    try:
        backbone.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise ValueError(f"model {model.name!r}: its config does not rebuild its own network (the weights do "
                         f"not fit): {str(err).splitlines()[0]}") from None
    return staged.to(device=reference.device, dtype=reference.dtype).eval()
