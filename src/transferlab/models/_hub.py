"""Models from elsewhere: Hugging Face, timm, torchvision, our own checkpoints, any ``nn.Module``.

Every adapter gives the same four things (:class:`ExternalModel`): the module, its
preprocessing (input size, mean and std: a wrong input size collapses a
ranking, so it comes from the model's own config), its feature layer (the
input of the classifier's last linear layer, or a named module's output), and
its source head when it has one (for LEEP and NCE).

The libraries are optional extras, imported when a spec needs them; a missing
one raises :class:`MissingExtraError` naming the extra to install. Weights load
through each library's own offline-aware path (``HF_HUB_OFFLINE``, the local
cache, a local folder); nothing here downloads on its own. Hugging Face weights
are read from safetensors only: a folder or hub model with only a pickled
``pytorch_model.bin`` is refused with the way to convert it, never unpickled.
"""

from __future__ import annotations

import importlib
import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from transferlab.models._checkpoint import load_checkpoint

#: ImageNet statistics: the default for models that do not state theirs.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SPEC_KINDS = ("hf", "timm", "torchvision", "file")


class MissingExtraError(ValueError):
    """An optional dependency is not installed; the message says which extra brings it."""


def _require(module: str, extra: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"{module} is not installed; install the extra: pip install 'transferlab[{extra}]'"
        ) from None


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its images: ``size`` (H, W), ``channels``, and per-channel ``mean`` and ``std``
    applied to pixels scaled to [0, 1]."""

    size: tuple[int, int]
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    channels: int = 3

    def __post_init__(self):
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"input size must be (height, width) >= 1; got {self.size}")
        if self.channels not in (1, 3) or len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean and std need one value per channel ({self.channels}); got {self.mean}, {self.std}")
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive; got {self.std}")

    def __call__(self, images: list[np.ndarray]) -> torch.Tensor:
        """``(N, C, H, W)`` float32: each ``(h, w, c)`` uint8 image resized (bilinear) and normalised."""
        height, width = self.size
        out = np.empty((len(images), self.channels, height, width), dtype=np.float32)
        self.fill(images, out)
        return torch.from_numpy(out)

    def fill(self, images, out: np.ndarray) -> None:
        """Write the preprocessed ``images`` into ``out``, ``(len(images), C, H, W)`` float32, in place.

        What :meth:`__call__` returns, written into an array the caller holds:
        threads can each fill their rows of one batch, one image at a time
        (``images`` may be any sequence, such as
        :class:`~transferlab.data.ImageFiles`, which decode when read). Each
        image becomes ``(resize(x) / 255 - mean) / std`` per channel.
        """
        from PIL import Image

        height, width = self.size
        if out.dtype != np.float32 or out.shape != (len(images), self.channels, height, width):
            raise ValueError(f"out must be float32 of shape {(len(images), self.channels, height, width)}; "
                             f"got {out.dtype} {out.shape}")
        mode = "L" if self.channels == 1 else "RGB"
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        for i, image in enumerate(images):
            pil = Image.fromarray(image[:, :, 0] if image.shape[-1] == 1 else image)
            array = np.asarray(pil.convert(mode).resize((width, height), Image.BILINEAR), dtype=np.float32) / 255.0
            out[i] = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
            out[i] -= mean
            out[i] /= std

    def to_dict(self) -> dict:
        return {"size": list(self.size), "mean": list(self.mean), "std": list(self.std), "channels": self.channels}

    @classmethod
    def from_dict(cls, data) -> Preprocessing:
        """The inverse of :meth:`to_dict`: ``{"size": [h, w], "mean": [...], "std": [...], "channels": c}``.

        Raises
        ------
        ValueError
            Naming the key that is missing, unknown or wrong: ``size`` must be two
            positive integers, ``channels`` 1 or 3, ``mean`` and ``std`` one finite
            number per channel, ``std`` positive.
        """
        if not isinstance(data, dict):
            raise ValueError(f"preprocessing must be a dict with keys size, mean, std, channels; got {data!r}")
        keys = ("size", "mean", "std", "channels")
        missing, unknown = [k for k in keys if k not in data], sorted(set(data) - set(keys))
        if missing or unknown:
            raise ValueError(f"preprocessing must have exactly the keys {list(keys)}; missing {missing}, "
                             f"unknown {unknown}")
        size, channels = data["size"], data["channels"]
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(_is_int(v) and v >= 1 for v in size)):
            raise ValueError(f"preprocessing 'size' must be [height, width], two positive integers; got {size!r}")
        if not _is_int(channels) or channels not in (1, 3):
            raise ValueError(f"preprocessing 'channels' must be 1 or 3; got {channels!r}")
        stats = {}
        for key in ("mean", "std"):
            values = data[key]
            if (not isinstance(values, (list, tuple)) or len(values) != channels
                    or not all(_is_number(v) and math.isfinite(v) for v in values)):
                raise ValueError(f"preprocessing {key!r} must be {channels} finite number(s), one per channel; "
                                 f"got {values!r}")
            stats[key] = tuple(float(v) for v in values)
        if min(stats["std"]) <= 0:
            raise ValueError(f"preprocessing 'std' must be positive; got {data['std']!r}")
        return cls((int(size[0]), int(size[1])), stats["mean"], stats["std"], int(channels))


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class ExternalModel:
    """A model with its preprocessing, its features and (maybe) its source head.

    ``features(x)`` and ``logits(x)`` take preprocessed batches; by default the
    features are what the last ``nn.Linear`` (the classifier) receives, caught by
    a forward hook, so they are exactly what the source head reads.
    ``source_classes`` is the number of source classes and ``class_names`` their
    names (a tuple, one per head output) when known, e.g. from a checkpoint's
    ``"class_names"`` metadata. ``origin`` says how the network was made, so
    that :func:`~transferlab.models.to_finetunable` can rebuild it: ``{"library":
    "timm" or "torchvision", "name": ..., "options": {...}}`` or ``{"library":
    "module"}`` (:func:`wrap_module`); None otherwise.
    """

    def __init__(self, name: str, module: nn.Module, preprocessing: Preprocessing, *, forward=None,
                 feature_layer: str | None = None, has_head: bool = True, source_classes: int | None = None,
                 class_names: tuple[str, ...] | None = None, origin: dict | None = None):
        if not isinstance(module, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module; got {type(module).__name__}")
        if class_names is not None:
            class_names = tuple(class_names)
            if not all(isinstance(c, str) for c in class_names) or (
                    source_classes is not None and len(class_names) != source_classes):
                raise ValueError(f"class_names must be {source_classes} strings, one per source class; "
                                 f"got {list(class_names)[:12]!r}")
        self.name = name
        #: How the network was made (see above), or None.
        self.origin = origin
        #: Names of the source classes (the head's outputs, in order), when known.
        self.class_names = class_names
        self.module = module.eval()
        self.preprocessing = preprocessing
        self._forward = forward or module
        self.has_head = bool(has_head)
        self.source_classes = source_classes
        modules = dict(module.named_modules())
        if feature_layer is not None:
            if feature_layer not in modules:
                raise ValueError(f"model {name!r} has no module {feature_layer!r}; e.g. {list(modules)[-5:]}")
            self._hooked, self._take = modules[feature_layer], "output"
        else:
            linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError(f"model {name!r} has no nn.Linear classifier; name its feature layer "
                                 "(feature_layer=...)")
            self._hooked, self._take = linears[-1], "input"
        self.feature_layer = feature_layer or next(k for k, m in modules.items() if m is self._hooked)

    @torch.no_grad()
    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass: the features (pooled when spatial) and the model's output."""
        caught = {}

        def hook(_module, inputs, output):
            caught["z"] = inputs[0] if self._take == "input" else output

        handle = self._hooked.register_forward_hook(hook)
        try:
            out = self._forward(x)
        finally:
            handle.remove()
        logits = out if isinstance(out, torch.Tensor) else getattr(out, "logits", out[0])
        z = caught["z"]
        if z.ndim == 4:  # spatial maps: global average pooling
            z = z.mean(dim=(2, 3))
        return z.reshape(z.shape[0], -1), logits

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[0]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_head:
            raise ValueError(f"model {self.name!r} has no source head (LEEP and NCE need one)")
        return self.features_and_logits(x)[1]

    def to(self, device) -> ExternalModel:
        self.module.to(device)
        return self

    def describe(self) -> dict:
        return {"model": self.name, "feature_layer": self.feature_layer, "has_head": self.has_head,
                "preprocessing": self.preprocessing.to_dict()}


def wrap_module(module: nn.Module, *, name: str = "module", input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                channels: int = 3, feature_layer: str | None = None, has_head: bool = True) -> ExternalModel:
    """Any ``torch.nn.Module`` taking ``(N, C, H, W)`` float images.

    ``input_size`` is an int or (H, W); ``feature_layer`` names the module whose
    output are the features (default: the input of the last ``nn.Linear``);
    ``has_head=False`` when the output is not a classifier over source classes.
    """
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    return ExternalModel(name, module, Preprocessing(size, tuple(mean), tuple(std), channels),
                         feature_layer=feature_layer, has_head=has_head, origin={"library": "module"})


# --------------------------------------------------------------------------- adapters


#: Weight files of a Hugging Face folder that are pickles (loading them runs the unpickler).
_PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth", "model.ckpt")


def _check_hf_folder(folder: Path) -> None:
    """Refuse a local model folder whose only weights are pickled: they are never unpickled here."""
    if any(folder.glob("*.safetensors")) or (folder / "model.safetensors.index.json").is_file():
        return
    pickled = sorted(p.name for p in folder.iterdir() if p.name in _PICKLED_WEIGHTS
                     or (p.name.startswith("pytorch_model-") and p.suffix == ".bin"))
    if pickled:
        raise ValueError(
            f"Hugging Face folder {str(folder)!r} has only pickled weights ({', '.join(pickled)}), which transferlab "
            "never unpickles (a pickle can run code); convert them to safetensors once, where you trust the file: "
            "AutoModelForImageClassification.from_pretrained(folder).save_pretrained(folder) writes model.safetensors"
        )


def _hf(ref: str, **kwargs) -> ExternalModel:
    transformers = _require("transformers", "hf")
    transformers.logging.disable_progress_bar()  # our own bars report the work
    if kwargs.get("use_safetensors", True) is not True:
        raise ValueError("use_safetensors must be True: transferlab loads safetensors weights only and never "
                         "unpickles a pytorch_model.bin")
    if Path(ref).is_dir():
        _check_hf_folder(Path(ref))
    try:
        model, info = transformers.AutoModelForImageClassification.from_pretrained(
            ref, output_loading_info=True, **{**kwargs, "use_safetensors": True})
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = ("; only safetensors weights are loaded, a pickled pytorch_model.bin never is" if "safetensors"
                in reason else "")
        raise ValueError(f"cannot load Hugging Face model {ref!r}: {reason}{hint} (a hub id needs the network or "
                         "the local cache; a local folder needs its config.json and weights)") from None
    # A backbone saved without a classifier gets a random one: its features are still right, its head is not.
    has_head = not any("classifier" in k or "head" in k for k in info.get("missing_keys", []))
    config = model.config
    size = getattr(config, "image_size", None)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    processor = _hf_processor_file(ref, kwargs)
    if processor is not None and processor.is_file():
        pre = json.loads(processor.read_text())
        crop = pre.get("crop_size") if pre.get("do_center_crop") else None
        given = crop or pre.get("size")
        if isinstance(given, dict):
            given = given.get("height") or given.get("shortest_edge")
        size = given or size
        mean, std = tuple(pre.get("image_mean", mean)), tuple(pre.get("image_std", std))
    size = int(size or 224)
    channels = int(getattr(config, "num_channels", 3))
    if channels == 1:
        mean, std = mean[:1], std[:1]
    return ExternalModel(f"hf:{ref}", model, Preprocessing((size, size), tuple(mean), tuple(std), channels),
                         forward=lambda x: model(pixel_values=x).logits, has_head=has_head,
                         source_classes=int(config.num_labels))


def _hf_processor_file(ref: str, kwargs: dict) -> Path | None:
    """The model's ``preprocessor_config.json``: in its folder, or from the hub cache (never a download
    when the model is a local folder; otherwise as ``HF_HUB_OFFLINE`` and ``local_files_only`` say)."""
    if Path(ref).is_dir():
        local = Path(ref) / "preprocessor_config.json"
        return local if local.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        options = {k: v for k, v in kwargs.items() if k in ("revision", "cache_dir", "local_files_only")}
        return Path(hf_hub_download(ref, "preprocessor_config.json", **options))
    except Exception:  # noqa: BLE001 -- no processor file: the config's size and ImageNet statistics
        return None


def _timm(name: str, pretrained: bool = True, **kwargs) -> ExternalModel:
    timm = _require("timm", "timm")
    model = timm.create_model(name, pretrained=pretrained, **kwargs)
    cfg = timm.data.resolve_model_data_config(model)
    channels, height, width = cfg["input_size"]
    mean, std = tuple(cfg["mean"]), tuple(cfg["std"])
    if "in_chans" in kwargs and int(kwargs["in_chans"]) != channels:
        # The data config is the pretrained one (RGB); timm averages it over channels the same way
        # when it adapts the first convolution to another channel count.
        channels = int(kwargs["in_chans"])
        mean, std = (float(np.mean(mean)),) * channels, (float(np.mean(std)),) * channels
    has_head = getattr(model, "num_classes", 0) > 0
    head = model.get_classifier() if has_head else None
    return ExternalModel(f"timm:{name}", model,
                        Preprocessing((height, width), mean, std, channels),
                        feature_layer=None if isinstance(head, nn.Linear) else _timm_pool(model),
                        has_head=has_head, source_classes=getattr(model, "num_classes", None),
                        origin=_origin("timm", name, kwargs))


def _origin(library: str, name: str, options: dict) -> dict | None:
    """How to rebuild a library's network (``pretrained`` aside), or None when an option is not JSON."""
    try:
        json.dumps(options)
    except (TypeError, ValueError):
        return None
    return {"library": library, "name": name, "options": dict(options)}


def _timm_pool(model) -> str:
    # Heads that are not one nn.Linear (e.g. ConvNeXt's norm + fc): read the pooled pre-logits instead.
    names = [k for k, _ in model.named_modules()]
    for candidate in ("head.global_pool", "global_pool", "head.flatten", "fc_norm", "norm"):
        if candidate in names:
            return candidate
    raise ValueError("cannot find the pooled features of this timm model; wrap it with wrap_module(feature_layer=...)")


def _torchvision(name: str, pretrained: bool = True) -> ExternalModel:
    tv = _require("torchvision", "torchvision")
    weights = tv.models.get_model_weights(name).DEFAULT if pretrained else None
    model = tv.models.get_model(name, weights=weights)
    size, mean, std = (224, 224), IMAGENET_MEAN, IMAGENET_STD
    if weights is not None:
        preset = weights.transforms()
        crop = getattr(preset, "crop_size", [224])
        size = (crop[0], crop[-1])
        mean, std = tuple(preset.mean), tuple(preset.std)
    return ExternalModel(f"torchvision:{name}", model, Preprocessing(size, mean, std, 3),
                         source_classes=len(weights.meta["categories"]) if weights is not None else None,
                         origin=_origin("torchvision", name, {}))


def _file(path: str, module: nn.Module | None = None) -> ExternalModel:
    # Through load_checkpoint, the one loader of checkpoint files (verified, never unpickled).
    from transferlab.models._network_arch import provided_module

    if not Path(path).is_file():
        raise ValueError(f"checkpoint {path!r} does not exist")
    if module is not None and not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module (the network a wrapped checkpoint holds); "
                         f"got {type(module).__name__}")
    with provided_module(module):
        checkpoint = load_checkpoint(path)
    model, metadata = checkpoint.model, checkpoint.metadata
    if "preprocessing" in metadata:  # a fine-tuned candidate (to_finetunable) records its own
        try:
            preprocessing = Preprocessing.from_dict(metadata["preprocessing"])
        except ValueError as err:
            raise ValueError(f"checkpoint {path!r} has unusable metadata 'preprocessing': {err}") from None
        expected = (model.config.get("in_shape") or [model.config.get("in_channels", preprocessing.channels)])[0]
        if preprocessing.channels != expected:
            raise ValueError(f"checkpoint {path!r} has unusable metadata 'preprocessing': it makes "
                             f"{preprocessing.channels}-channel images for a model of {expected} input channels")
    else:
        # Built-in sources are 28 x 28; an MLP states its input shape, the others their input channels.
        channels, height, width = model.config.get("in_shape") or (model.config.get("in_channels", 1), 28, 28)
        # Our architectures scale uint8 pixels to [0, 1] and normalise nothing else.
        preprocessing = Preprocessing((height, width), (0.0,) * channels, (1.0,) * channels, channels)
    class_names = metadata.get("class_names")
    if class_names is not None and (not isinstance(class_names, list) or len(class_names) != model.num_classes
                                    or not all(isinstance(c, str) for c in class_names)):
        raise ValueError(f"checkpoint {path!r} has unusable metadata 'class_names': it must list "
                         f"{model.num_classes} strings, one per output of the head; got {class_names!r:.200}")
    return ExternalModel(f"file:{path}", model, preprocessing, source_classes=int(model.num_classes),
                         class_names=class_names)


def parse_spec(spec) -> tuple[str, str]:
    """``(kind, reference)`` of a ``KIND:NAME`` model spec; ValueError on anything else."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"model spec must look like KIND:NAME with KIND one of {', '.join(SPEC_KINDS)}; got {spec!r}")
    kind, _, ref = spec.partition(":")
    if kind not in SPEC_KINDS or not ref:
        raise ValueError(f"unknown model kind {kind!r} in {spec!r}; kinds: {', '.join(SPEC_KINDS)}")
    return kind, ref


def load_model(spec, **kwargs) -> ExternalModel:
    """A model from a spec: ``hf:<id or folder>``, ``timm:<name>``, ``torchvision:<name>``,
    ``file:<path>.safetensors``, or a ``torch.nn.Module`` / :class:`ExternalModel` as is.

    ``kwargs`` go to the library's loader (e.g. ``pretrained=False`` for timm and
    torchvision, ``local_files_only=True`` for Hugging Face).

    A ``file:`` checkpoint whose metadata holds ``"preprocessing"``
    (:meth:`Preprocessing.to_dict`, as a candidate fine-tuned through
    :func:`~transferlab.models.to_finetunable` is saved) is read with it;
    otherwise with our sources' ``uint8 / 255`` at 28 x 28 (or the MLP's
    ``in_shape``). Its ``"class_names"`` metadata, when present, becomes
    :attr:`ExternalModel.class_names`. A checkpoint of a fine-tuned wrapped
    ``nn.Module`` (the ``"module"`` architecture) needs an instance of the same
    network: ``load_model("file:<checkpoint>", module=MyNet())``.
    """
    if isinstance(spec, ExternalModel):
        return spec
    if isinstance(spec, nn.Module):
        return wrap_module(spec, **kwargs)
    kind, ref = parse_spec(spec)
    if kind == "hf":
        return _hf(ref, **kwargs)
    if kind == "timm":
        return _timm(ref, **kwargs)
    if kind == "torchvision":
        return _torchvision(ref, **kwargs)
    unknown = sorted(set(kwargs) - {"module"})
    if unknown:
        raise ValueError(f"a file: checkpoint takes only module=... (for a fine-tuned wrapped network); "
                         f"got {', '.join(unknown)}")
    return _file(ref, **kwargs)
