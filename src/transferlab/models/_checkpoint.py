"""Checkpoints: a model's tensors in safetensors, with the metadata to rebuild it.

A checkpoint is one ``.safetensors`` file. Its tensors are the model's
``state_dict`` (parameters and buffers, batch-norm statistics included). Its
``__metadata__`` header holds one entry, ``"transferlab"``, a JSON document::

    {"format_version": 1,
     "arch": "convnet",
     "config": {"in_channels": 1, "widths": [32, 64, 128], "num_classes": 10},
     "tensors_sha256": "...",
     "metadata": {... the caller's metadata ...}}

Loading never unpickles anything: the header is JSON, the tensors are raw
bytes read by ``safetensors``, and the model is rebuilt from ``arch`` and
``config`` with :func:`~transferlab.models._registry.build`. Nothing is
allocated before the file has been checked against its architecture: the
architecture is first built on PyTorch's ``meta`` device (shapes, no storage),
under a cap of :data:`MAX_PARAMETERS` values, and the tensor shapes recorded
in the safetensors header must match it; only then are the tensors read,
their SHA-256 verified, and the model built for real.

A joint multi-domain network (:func:`~transferlab.models._multidomain.save_multidomain`)
is the same file under another header key and without ``arch``. Both kinds are
written by :func:`_save` and read by :func:`_read`; :func:`_load` is the one
function that opens a checkpoint, verifies it and rebuilds its model, for
:func:`load_checkpoint`, :func:`~transferlab.models._multidomain.load_multidomain`,
the ``file:`` models of :func:`~transferlab.models._hub.load_model` and the zoo.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from transferlab._atomic import atomic_write
from transferlab.models._base import StagedModel
from transferlab.models._registry import available_archs, build, get_arch

#: Version of the metadata document; bumped on incompatible changes.
FORMAT_VERSION = 1
#: Key of our JSON document in the safetensors ``__metadata__`` header.
METADATA_KEY = "transferlab"
#: Most values (parameters and buffers, all tensors together) a checkpoint may hold or
#: its architecture may describe: 2**30, 4 GiB in float32. The loader refuses a larger one
#: before allocating anything; the built-in zoo's largest members hold under a million.
MAX_PARAMETERS = 2**30
#: safetensors dtype names of the floating dtypes the loader accepts (what save_checkpoint writes).
_FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint.

    Attributes
    ----------
    model : StagedModel
        The rebuilt model with the saved tensors, in eval mode, on the requested device.
    metadata : dict
        The caller's metadata as saved (JSON types: tuples came back as lists).
    arch : str
        Registry name of the architecture.
    config : dict
        Constructor arguments, ``build(arch, **config)`` rebuilds the architecture.
    path : pathlib.Path
        The file that was read.
    tensors_sha256 : str
        The SHA-256 of the tensors recorded in the file (and verified on loading).
    """

    model: StagedModel
    metadata: dict[str, Any]
    arch: str
    config: dict[str, Any]
    path: Path
    tensors_sha256: str


@dataclass(frozen=True)
class _Format:
    """One kind of checkpoint file: where its document lives and how its model is rebuilt.

    Attributes
    ----------
    key : str
        Key of the JSON document in the safetensors ``__metadata__`` header.
    version : int
        Newest ``format_version`` this code reads and the one it writes.
    fields : mapping of str to type
        What the document holds besides ``format_version``, ``tensors_sha256``
        and ``metadata``.
    kind : str
        What to call such a file in messages ("checkpoint", ...).
    saved_by : str
        The function that writes it, named in messages.
    rebuild : callable
        ``rebuild(document)`` builds the (untrained) model of the document.
    describe : callable
        ``describe(document)`` names the architecture in messages.
    """

    key: str
    version: int
    fields: Mapping[str, type]
    kind: str
    saved_by: str
    rebuild: Callable[[dict[str, Any]], nn.Module]
    describe: Callable[[dict[str, Any]], str]


#: A single model of a registered architecture.
_MODEL_FORMAT = _Format(
    key=METADATA_KEY,
    version=FORMAT_VERSION,
    fields={"arch": str, "config": dict},
    kind="checkpoint",
    saved_by="save_checkpoint",
    rebuild=lambda document: build(document["arch"], **document["config"]),
    describe=lambda document: f"arch {document['arch']!r} with config {document['config']}",
)


# -- saving -----------------------------------------------------------------------------


def save_checkpoint(
    path: str | os.PathLike[str], model: StagedModel, *, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model`` and ``metadata`` to a safetensors file, atomically.

    The tensors go to a temporary file in the destination folder, which is then
    renamed over ``path`` (``os.replace``): a reader sees the old file or the
    complete new one, never a partial write. Missing parent folders are created.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, conventionally ending in ``.safetensors``.
    model : StagedModel
        A model of a registered architecture (``model.arch`` in
        :func:`~transferlab.models._registry.available_archs`).
    metadata : mapping with str keys, optional
        Anything JSON-serialisable: the source task fingerprint, the training
        config, final metrics, ... NumPy scalars are stored as Python numbers;
        tuples come back as lists.

    Returns
    -------
    path : pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If ``model`` is not a registered :class:`StagedModel`, or ``metadata``
        is not a mapping with string keys of JSON-serialisable values.

    Notes
    -----
    safetensors refuses tensors that share memory (tied weights). Every tensor is
    copied before writing, so tied parameters are stored once per name and
    loaded back into each name (``strict=True`` still holds); the file is larger
    by the size of the tied tensors.
    """
    path = Path(path)
    if not isinstance(model, StagedModel):
        raise ValueError(f"model must be a StagedModel; got {type(model).__name__}")
    if model.arch not in available_archs() or get_arch(model.arch) is not type(model):
        raise ValueError(
            f"model must be an instance of a registered architecture {available_archs()} so that "
            f"the checkpoint can be rebuilt; got {type(model).__name__} with arch {model.arch!r} "
            "(register its class with register_arch)"
        )
    return _save(path, _MODEL_FORMAT, model, {"arch": model.arch, "config": model.config}, metadata)


def _save(
    path: str | os.PathLike[str],
    fmt: _Format,
    model: nn.Module,
    fields: Mapping[str, Any],
    metadata: Mapping[str, Any] | None,
) -> Path:
    """Write ``model``'s ``state_dict`` with the document ``fields`` + checksum + ``metadata``, atomically.

    The one writer of checkpoint files; creates missing parent folders.
    """
    path = Path(path)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise ValueError(f"metadata must be a mapping (dict) or None; got {type(metadata).__name__}")
    tensors = {
        name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in model.state_dict().items()
    }
    document = {
        "format_version": fmt.version,
        **{key: _jsonable(value, f"model.{key}") for key, value in fields.items()},
        "tensors_sha256": _tensors_digest(tensors),
        "metadata": _jsonable(dict(metadata), "metadata"),
    }
    header = {fmt.key: json.dumps(document, sort_keys=True)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))
    return path


def _jsonable(value: Any, name: str) -> Any:
    """``value`` as plain JSON types (NumPy scalars unwrapped); ValueError naming the culprit."""

    def convert(obj: Any, where: str) -> Any:
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, np.generic) and isinstance(obj.item(), (bool, int, float, str)):
            return obj.item()
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, Mapping):
            out = {}
            for key, item in obj.items():
                if not isinstance(key, str):
                    raise ValueError(
                        f"{name} must have string keys to survive JSON; got key {key!r} "
                        f"({type(key).__name__}) at {where}"
                    )
                out[key] = convert(item, f"{where}[{key!r}]")
            return out
        if isinstance(obj, (list, tuple)):
            return [convert(item, f"{where}[{i}]") for i, item in enumerate(obj)]
        raise ValueError(
            f"{name} must be JSON-serialisable (dict, list, str, int, float, bool, None); "
            f"got {type(obj).__name__} at {where}"
        )

    return convert(value, name)


def _tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over name, dtype, shape and raw bytes of every tensor, in sorted name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# -- loading ----------------------------------------------------------------------------


def read_checkpoint_metadata(path: str | os.PathLike[str], *, verify: bool = False) -> dict[str, Any]:
    """The checkpoint's metadata document, read from the header only (no tensors) unless ``verify``.

    Parameters
    ----------
    path : str or os.PathLike
    verify : bool, default False
        Also read the tensors and check them against their recorded SHA-256
        (a flipped bit in the tensor data is found; no model is built). Costs
        one read of the file.

    Returns
    -------
    document : dict
        ``{"format_version", "arch", "config", "tensors_sha256", "metadata"}``;
        ``document["metadata"]`` is the caller's metadata.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a readable safetensors file, or carries no (or an
        unreadable, or a newer) transferlab metadata document; with ``verify``,
        also if its tensors do not match their recorded SHA-256.
    """
    if verify:
        return _verify(path, _MODEL_FORMAT)
    return _read(path, _MODEL_FORMAT, tensors=False)[0]


def load_checkpoint(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model saved by :func:`save_checkpoint` and load its tensors.

    The architecture is rebuilt with ``build(arch, **config)`` from the header
    and the tensors are loaded with ``load_state_dict(strict=True)``. Nothing is
    unpickled, and nothing is allocated before the tensor shapes recorded in the
    header match the architecture (built first on the ``meta`` device) and the
    file holds at most :data:`MAX_PARAMETERS` values.

    Every floating dtype :func:`save_checkpoint` writes loads: the model takes
    the widest floating dtype among the tensors, float32 at least. A float16 or
    bfloat16 checkpoint therefore loads as a float32 model holding exactly the
    saved values (every half-precision value is a float32 value), which runs on
    every device and takes the float32 images the feature extractors feed it; a
    float64 checkpoint loads as a float64 model.

    Parameters
    ----------
    path : str or os.PathLike
    device : str or torch.device, default "cpu"
        Where the model goes after loading.

    Returns
    -------
    checkpoint : Checkpoint
        The model is in eval mode.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is corrupt or truncated, is not a transferlab checkpoint,
        names an unknown architecture or an invalid config, describes or holds
        more than :data:`MAX_PARAMETERS` values, or holds tensors that do not
        match the architecture (missing, unexpected, wrong shape or kind of
        dtype) or their recorded checksum.
    """
    model, document, path = _load(path, _MODEL_FORMAT, device=device)
    return Checkpoint(
        model=model,
        metadata=document["metadata"],
        arch=document["arch"],
        config=document["config"],
        path=path,
        tensors_sha256=document["tensors_sha256"],
    )


def _load(
    path: str | os.PathLike[str], fmt: _Format, *, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any], Path]:
    """Read, verify and rebuild a checkpoint of kind ``fmt``: ``(model in eval mode on device, document, path)``.

    The one loader of checkpoint files, in an order that allocates nothing
    before the file is known to describe itself:

    1. the header: the document, and each tensor's name, shape and dtype;
    2. the architecture that ``fmt.rebuild`` makes of the document, built on
       the ``meta`` device under the :data:`MAX_PARAMETERS` cap, must have
       exactly those names and shapes (:func:`_check_architecture`);
    3. the tensors are read and must match the recorded SHA-256;
    4. the model is built and takes the tensors.

    The model's floating dtype is the widest one among the tensors, float32 at
    least: float16 and bfloat16 tensors load into a float32 model (exactly:
    every such value is a float32 value), float64 ones into a float64 model.
    Every failure is a ``ValueError`` naming the file (``FileNotFoundError``
    for a missing one).
    """
    document, tensors, path = _read(path, fmt, tensors=True, check=_check_architecture)
    if _tensors_digest(tensors) != document["tensors_sha256"]:
        raise ValueError(f"checkpoint {path} is corrupt: its tensors do not match their recorded SHA-256")
    model = _rebuild(fmt, document, path)
    model = model.to(_model_dtype(tensors))
    model.load_state_dict(tensors, strict=True)
    model.eval().to(device)
    return model, document, path


def _model_dtype(tensors: Mapping[str, torch.Tensor]) -> torch.dtype:
    """The widest floating dtype among ``tensors``, float32 at least (half precision is widened)."""
    floats = {t.dtype for t in tensors.values() if t.is_floating_point()} | {torch.float32}
    return max(floats, key=lambda dtype: torch.finfo(dtype).bits)


def _read(
    path: str | os.PathLike[str],
    fmt: _Format,
    *,
    tensors: bool,
    check: Callable[[_Format, dict[str, Any], dict[str, tuple[tuple[int, ...], str]], Path], None] | None = None,
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None, Path]:
    """``(document, tensors or None, path)`` of a checkpoint file of kind ``fmt``: the one place that opens one.

    ``check(fmt, document, recorded, path)``, if given, sees the header's
    ``{name: (shape, safetensors dtype name)}`` before any tensor is read.
    """
    path = _existing_file(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            document = _parse_document(fh.metadata() or {}, path, fmt)
            if check is not None:
                recorded = {}
                for name in fh.keys():
                    view = fh.get_slice(name)
                    recorded[name] = (tuple(int(n) for n in view.get_shape()), str(view.get_dtype()))
                check(fmt, document, recorded, path)
            loaded = {name: fh.get_tensor(name) for name in fh.keys()} if tensors else None
    except SafetensorError as err:
        raise ValueError(f"checkpoint {path} is not a valid safetensors file (corrupt or truncated?): {err}") from err
    return document, loaded, path


def _verify(path: str | os.PathLike[str], fmt: _Format) -> dict[str, Any]:
    """The document of a checkpoint whose tensors match their recorded SHA-256; ValueError otherwise.

    Reads and hashes the tensors (no model is built): the check of a cached
    file that :func:`_load` would accept, at the cost of reading it once.
    """
    document, tensors, path = _read(path, fmt, tensors=True)
    if _tensors_digest(tensors) != document["tensors_sha256"]:
        raise ValueError(f"checkpoint {path} is corrupt: its tensors do not match their recorded SHA-256")
    return document


class _TooLarge(Exception):
    """Raised inside a constructor watched by :class:`_SizeGuard`; never escapes :func:`_check_architecture`."""


class _SizeGuard:
    """Stops a model's constructor (in this thread) once it registers too many tensors or values.

    A crafted document can describe a model of 10**15 parameters, or of a
    million layers: even on the ``meta`` device the second costs minutes of
    Python. The guard counts every parameter and buffer registered in this
    thread while it is active and raises :class:`_TooLarge` past a limit.
    """

    def __init__(self, max_values: int, max_tensors: int):
        self.max_values, self.max_tensors = max_values, max_tensors
        self.values = self.tensors = 0
        self._thread = threading.get_ident()
        self._handles: list[Any] = []

    def _count(self, module: nn.Module, name: str, tensor: torch.Tensor | None) -> None:
        if tensor is None or threading.get_ident() != self._thread:
            return None
        self.tensors += 1
        self.values += tensor.numel()
        if self.values > self.max_values:
            raise _TooLarge(f"it describes a model of more than {self.max_values:,} values, the most transferlab loads")
        if self.tensors > self.max_tensors:
            raise _TooLarge(f"it describes a model of more than {self.max_tensors:,} tensors")
        return None

    def __enter__(self) -> _SizeGuard:
        registry = nn.modules.module
        self._handles = [
            registry.register_module_parameter_registration_hook(self._count),
            registry.register_module_buffer_registration_hook(self._count),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()


def _rebuild(fmt: _Format, document: dict[str, Any], path: Path) -> nn.Module:
    """``fmt.rebuild(document)``, its ValueError or TypeError as a ValueError naming the file."""
    try:
        return fmt.rebuild(document)
    except (ValueError, TypeError) as err:
        raise ValueError(f"checkpoint {path} cannot be rebuilt ({_describe(fmt, document)}): {err}") from err


def _describe(fmt: _Format, document: dict[str, Any], limit: int = 300) -> str:
    """``fmt.describe(document)``, cut to ``limit`` characters (a crafted config can be megabytes)."""
    text = fmt.describe(document)
    return text if len(text) <= limit else text[: limit - 5] + " ...}"


def _check_architecture(
    fmt: _Format, document: dict[str, Any], recorded: Mapping[str, tuple[tuple[int, ...], str]], path: Path
) -> None:
    """ValueError unless the header's tensors are, by name, shape and kind of dtype, the document's architecture.

    Checks, in order and without allocating: the file's total number of values
    against :data:`MAX_PARAMETERS`; the architecture, built on the ``meta``
    device under a :class:`_SizeGuard` (at most :data:`MAX_PARAMETERS` values
    and ``2 * len(recorded) + 64`` tensors); then the names, shapes and dtypes.
    """
    total = sum(math.prod(shape) for shape, _ in recorded.values())
    if total > MAX_PARAMETERS:
        raise ValueError(
            f"checkpoint {path} holds {total:,} values, more than the {MAX_PARAMETERS:,} transferlab loads "
            "(transferlab.models._checkpoint.MAX_PARAMETERS); it is not a model of this library"
        )
    described = _describe(fmt, document)
    try:
        with torch.device("meta"), _SizeGuard(MAX_PARAMETERS, 2 * len(recorded) + 64):
            skeleton = _rebuild(fmt, document, path)
    except _TooLarge as err:
        raise ValueError(
            f"checkpoint {path} cannot be rebuilt ({described}): {err}, and the file holds {len(recorded)} "
            f"tensors of {total:,} values; its metadata is crafted or corrupt: save the model again with "
            f"{fmt.saved_by}"
        ) from None
    except (RuntimeError, NotImplementedError) as err:
        raise ValueError(
            f"checkpoint {path} cannot be checked ({described}): its architecture cannot be built on the meta "
            f"device ({err}); transferlab checks a checkpoint's shapes there before allocating, so the "
            "constructor must not compute with its tensors' values"
        ) from err
    expected = {name: (tuple(t.shape), t.dtype) for name, t in skeleton.state_dict().items()}
    _check_tensors_match(expected, recorded, path, described)


def _existing_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise ValueError(f"checkpoint path must be a file; {path} is not")
    return path


def _parse_document(header: Mapping[str, str], path: Path, fmt: _Format) -> dict[str, Any]:
    key = fmt.key
    if key not in header:
        raise ValueError(
            f"{path} is a safetensors file but not a transferlab {fmt.kind}: its metadata has no "
            f"{key!r} entry (keys: {sorted(header)}); save it with {fmt.saved_by}"
        )
    try:
        document = json.loads(header[key])
    except json.JSONDecodeError as err:
        raise ValueError(f"checkpoint {path} has unreadable {key!r} metadata (not JSON): {err}") from err
    expected = {"format_version": int, **fmt.fields, "tensors_sha256": str, "metadata": dict}
    if not isinstance(document, dict):
        raise ValueError(f"checkpoint {path}: {key!r} metadata must be a JSON object; got {document!r}")
    for name, kind in expected.items():
        if not isinstance(document.get(name), kind):
            raise ValueError(
                f"checkpoint {path}: {key!r} metadata must hold {name!r} of type {kind.__name__}; "
                f"got {document.get(name)!r}"
            )
    if document["format_version"] > fmt.version:
        raise ValueError(
            f"checkpoint {path} has format_version {document['format_version']}, newer than this "
            f"transferlab reads ({fmt.version}); upgrade transferlab"
        )
    return document


def _check_tensors_match(
    expected: Mapping[str, tuple[tuple[int, ...], torch.dtype]],
    recorded: Mapping[str, tuple[tuple[int, ...], str]],
    path: Path,
    described: str,
) -> None:
    """ValueError listing the missing, unexpected, wrongly shaped and wrongly typed tensors, if any.

    ``expected`` maps names to ``(shape, torch dtype)`` of the model, ``recorded``
    to ``(shape, safetensors dtype name)`` of the file. A floating tensor of the
    model takes any floating dtype the saver writes (F16, BF16, F32, F64); any
    other (batch-norm counters) takes any dtype that is not floating.
    """
    problems = []
    missing = sorted(set(expected) - set(recorded))
    unexpected = sorted(set(recorded) - set(expected))
    if missing:
        problems.append(f"missing tensors {_abbreviate(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors {_abbreviate(unexpected)}")
    common = sorted(set(expected) & set(recorded))
    wrong = [
        f"{name}: expected {expected[name][0]}, got {recorded[name][0]}"
        for name in common
        if expected[name][0] != recorded[name][0]
    ]
    if wrong:
        problems.append(f"wrong shapes ({_abbreviate(wrong)})")
    kinds = {True: "one of " + "/".join(_FLOAT_DTYPES), False: "a dtype that is not floating"}
    typed = [
        f"{name}: expected {kinds[expected[name][1].is_floating_point]}, got {recorded[name][1]}"
        for name in common
        if not _dtype_fits(expected[name][1], recorded[name][1])
    ]
    if typed:
        problems.append(f"wrong dtypes ({_abbreviate(typed)})")
    if problems:
        raise ValueError(f"checkpoint {path}: tensors do not match {described}: " + "; ".join(problems))


def _dtype_fits(expected: torch.dtype, recorded: str) -> bool:
    """Whether a file tensor of safetensors dtype ``recorded`` loads into a model tensor of dtype ``expected``."""
    if expected.is_floating_point:
        return recorded in _FLOAT_DTYPES
    return not recorded.startswith(("F", "BF"))  # F8_E4M3, F16, BF16, ...: floating


def _abbreviate(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
