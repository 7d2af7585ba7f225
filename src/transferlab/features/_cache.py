"""On-disk, content-addressed cache of extracted features.

An entry is keyed by a digest of everything that determines the array: the
model's weights and architecture, the stage, what is computed (features,
source probabilities, projected per-sample gradients), the options that change
the result (the projection dimension and seed of the gradients), the task
fingerprint and split, and the preprocessing. Probe features depend on the
target alone (a probe network trained on it) and are keyed by the task
fingerprint and the probe's options.

Each entry is a plain ``.npy`` file and a small JSON sidecar beside it
(``<key>.json``) that records the array's shape, dtype and the SHA-256 of its
bytes, both written atomically (see :mod:`transferlab._atomic`): the array
first, the sidecar second, so a crash in between leaves an entry without a
sidecar. An entry is used only when its sidecar, its ``.npy`` header, its size,
its checksum and (where the caller knows it) its number of rows all agree;
anything else (another valid ``.npy``, a truncated or unloadable file, a folder
in the entry's place, too few rows, no sidecar, such as the entries of older
versions of transferlab) is reported in one warning, treated as a miss,
recomputed and rewritten. Reading never writes, so a read-only cache serves a
fully cached run.

Large entries need not pass through memory: :meth:`FeatureCache.writer` writes
an entry in chunks of rows as they are computed (the SHA-256 is taken as they
go), and ``get(key, mmap=True)`` verifies an entry by reading it in blocks and
returns it memory-mapped, read-only. Either way the memory used stays that of
one chunk, whatever the number of rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import shutil
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from transferlab._atomic import atomic_path, atomic_write, atomic_write_bytes
from transferlab._paths import home
from transferlab.data import Task
from transferlab.features._extract import extract, source_probabilities
from transferlab.models import PREPROCESSING, StagedModel

#: Version of the sidecar's layout; a sidecar of another version is not trusted.
_SIDECAR_FORMAT = 1
#: A sidecar is a few hundred bytes; anything far larger is not one of ours.
_SIDECAR_MAX_BYTES = 64 * 1024
#: Bytes read at a time when a memory-mapped entry is verified.
_READ_BLOCK = 8 * 1024 * 1024


def model_digest(model: torch.nn.Module) -> str:
    """SHA-256 of a model's architecture, config and every tensor of its state dict."""
    h = hashlib.sha256()
    h.update(type(model).__qualname__.encode())
    h.update(json.dumps(getattr(model, "config", {}), sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class FeatureCache:
    """Cache of ``(N, D)`` arrays under ``root`` (default ``$TRANSFERLAB_HOME/features``).

    Every entry is verified on read against the shape, dtype and SHA-256
    checksum recorded when it was written, and against the number of rows the
    task has; an entry that fails (or has no record, as those written by
    transferlab before entries were verified) is recomputed with a warning.
    Reading a valid entry writes nothing.

    Examples
    --------
    >>> cache = FeatureCache(tmp_path)                           # doctest: +SKIP
    >>> feats = cache.features(model, task, split="train")       # doctest: +SKIP
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else home() / "features"
        self.hits = 0
        self.misses = 0

    def key(
        self, model: StagedModel | None, *, kind: str, task: Task, split: str, stage=None, options: dict | None = None
    ) -> str:
        """Digest naming the entry for ``kind`` ("features", "source_probs", "gradients", "probe").

        ``model`` may be any ``torch.nn.Module`` and ``task`` anything with a
        ``fingerprint`` (a :class:`~transferlab.data.ImageData` of your own data too).

        ``options`` (JSON-serialisable) are the settings that change the array,
        e.g. the projection ``dim`` and ``seed`` of the gradients; ``model`` is
        ``None`` for arrays that depend on the task alone (the probe features).
        """
        parts = {
            "model": None if model is None else model_digest(model),
            "kind": kind,
            "stage": None if stage is None else str(stage),
            "task": task.fingerprint,
            "split": split,
            "preprocessing": PREPROCESSING,
        }
        if options:  # absent when empty, so the keys of features/source_probs never change
            parts["options"] = options
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def path(self, key: str) -> Path:
        """The entry's ``.npy`` file (its sidecar is :meth:`sidecar_path`)."""
        return self.root / key[:2] / f"{key}.npy"

    def sidecar_path(self, key: str) -> Path:
        """The JSON record of the entry's shape, dtype and SHA-256 checksum."""
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str, *, rows: int | None = None, mmap: bool = False) -> np.ndarray | None:
        """The cached array, or ``None`` on a miss; never writes.

        Parameters
        ----------
        key : str
            The entry's digest (:meth:`key`).
        rows : int, optional
            The number of rows the array must have (the task's number of
            images); an entry with another number is not used.
        mmap : bool, default False
            Return the entry memory-mapped and read-only instead of read into
            memory: it is verified by reading it in blocks of 8 MiB, so memory
            does not grow with its size (the checks are the same).

        Returns
        -------
        ndarray or None
            ``None`` when there is no entry, and also (with a warning) when
            the entry fails verification: its ``.npy`` does not match the
            shape, dtype or checksum recorded in its sidecar, is truncated or
            unreadable, is a folder, has no sidecar (an entry of an older
            transferlab: unverified, so recomputed), or has not ``rows`` rows.
        """
        path, sidecar = self.path(key), self.sidecar_path(key)
        if not path.exists() and not path.is_symlink():
            return None
        array, problem = _read_verified(path, sidecar, rows, mmap=mmap)
        if problem is not None:
            warnings.warn(f"feature cache entry {path} {problem}; it is not used and will be recomputed",
                          stacklevel=2)
        return array

    def put(self, key: str, array: np.ndarray) -> Path:
        """Write ``array`` and its sidecar (shape, dtype, SHA-256) atomically; returns the ``.npy`` path.

        Whatever is in the entry's place (a stale or foreign entry, even a
        folder) is replaced.
        """
        array = np.ascontiguousarray(array)
        if array.dtype.hasobject:
            raise ValueError(f"a cache entry must be a numeric array; got dtype {array.dtype}")
        path, sidecar = self.path(key), self.sidecar_path(key)
        record = {
            "format": _SIDECAR_FORMAT,
            "shape": list(array.shape),
            "dtype": array.dtype.str,
            "sha256": hashlib.sha256(array.reshape(-1).view(np.uint8)).hexdigest(),
        }
        for target in (path, sidecar):  # a folder in an entry's place cannot be renamed over
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
        atomic_write(path, lambda tmp: _save_npy(tmp, array))
        atomic_write_bytes(sidecar, json.dumps(record, sort_keys=True).encode())
        return path

    @contextmanager
    def writer(self, key: str, *, rows: int) -> Iterator[EntryWriter]:
        """Write the entry for ``key`` in chunks of rows, as they are computed.

        Inside the ``with`` block, ``write(chunk)`` appends rows (each chunk an
        array of the first one's dtype and trailing shape) to a temporary file
        beside the entry, and the SHA-256 of the bytes is taken as they go; on
        leaving the block the rows must number ``rows``, and the ``.npy`` and its
        sidecar are then put in place as :meth:`put` puts them (the same bytes,
        the same record). An exception inside the block, or too few or too many
        rows, leaves no entry and the previous one (if any) untouched.

        Parameters
        ----------
        key : str
            The entry's digest (:meth:`key`).
        rows : int
            The number of rows the entry will have (written in the header first).

        Yields
        ------
        EntryWriter
            Its :meth:`~EntryWriter.write` takes the chunks; after the block its
            ``path`` is the written entry.

        Examples
        --------
        >>> with cache.writer(key, rows=n) as out:                # doctest: +SKIP
        ...     for chunk in batches:
        ...         out.write(chunk)
        >>> cache.get(key, rows=n, mmap=True)                     # doctest: +SKIP
        """
        if isinstance(rows, bool) or not isinstance(rows, numbers.Integral) or rows < 0:
            raise ValueError(f"rows must be a non-negative int; got {rows!r}")
        rows = int(rows)
        path, sidecar = self.path(key), self.sidecar_path(key)
        for target in (path, sidecar):  # a folder in an entry's place cannot be renamed over
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            out = EntryWriter(fh, rows)
            yield out
            record = out.finish()
        atomic_write_bytes(sidecar, json.dumps(record, sort_keys=True).encode())
        out.path = path

    def get_or_compute(self, key: str, compute: Callable[[], np.ndarray], *, rows: int | None = None) -> np.ndarray:
        """The verified entry for ``key`` (see :meth:`get`), or ``compute()`` stored under it."""
        cached = self.get(key, rows=rows)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        array = compute()
        self.put(key, array)
        return array

    # -- the arrays the scores read -----------------------------------------------------
    def features(self, model: StagedModel, task: Task, *, split: str = "train", stage=None, **kwargs) -> np.ndarray:
        """Cached :func:`~transferlab.features.extract` of ``task``'s ``split``."""
        images, _ = task.split(split)
        key = self.key(model, kind="features", task=task, split=split, stage=stage)
        return self.get_or_compute(key, lambda: extract(model, images, stage=stage, **kwargs), rows=len(images))

    def source_probabilities(self, model: StagedModel, task: Task, *, split: str = "train", **kwargs) -> np.ndarray:
        """Cached :func:`~transferlab.features.source_probabilities` of ``task``'s ``split``."""
        images, _ = task.split(split)
        key = self.key(model, kind="source_probs", task=task, split=split)
        return self.get_or_compute(key, lambda: source_probabilities(model, images, **kwargs), rows=len(images))

    def gradients(
        self,
        model: StagedModel,
        task: Task,
        *,
        split: str = "train",
        stage=None,
        dim: int = 1024,
        seed: int = 0,
        **kwargs,
    ) -> np.ndarray:
        """Cached :func:`~transferlab.features._gradients.per_sample_gradients` of ``task``'s ``split``.

        Keyed like :meth:`features`, plus the projection ``dim`` and ``seed``;
        ``kwargs`` (``batch_size``, ``device``, ``progress``) do not change the
        result and are not part of the key.
        """
        from transferlab.features._gradients import per_sample_gradients

        images, _ = task.split(split)
        key = self.key(
            model, kind="gradients", task=task, split=split, stage=stage, options={"dim": int(dim), "seed": int(seed)}
        )
        return self.get_or_compute(
            key, lambda: per_sample_gradients(model, images, stage=stage, dim=dim, seed=seed, **kwargs),
            rows=len(images),
        )

    def probe(self, task: Task, *, split: str = "train", seed: int = 0, **kwargs) -> np.ndarray:
        """Cached :func:`~transferlab.features._probe.probe_features` of ``task`` (no candidate model).

        The probe is trained on ``task``, so the entry is keyed by the task
        fingerprint, ``split`` and ``seed``; ``kwargs`` (``device``, ``progress``)
        do not change the result. Only the train split is supported: the probe
        features are those of the images the probe was trained on.
        """
        from transferlab.features._probe import probe_features

        if split != "train":
            raise ValueError(f"split must be 'train' for probe features (the probe is trained on it); got {split!r}")
        images, _ = task.split(split)
        key = self.key(None, kind="probe", task=task, split=split, options={"seed": int(seed)})
        return self.get_or_compute(key, lambda: probe_features(task, seed=seed, **kwargs), rows=len(images))


class EntryWriter:
    """The rows of one cache entry, written in chunks (see :meth:`FeatureCache.writer`).

    The ``.npy`` header (shape ``(rows, *chunk.shape[1:])``) is written with the
    first chunk; each chunk's bytes go to the file and into a running SHA-256,
    so the finished file and its record are those :meth:`FeatureCache.put`
    writes for the whole array.
    """

    def __init__(self, fh, rows: int):
        self._fh, self.rows = fh, rows
        self.written = 0
        self._dtype: np.dtype | None = None
        self._tail: tuple[int, ...] = ()
        self._sha = hashlib.sha256()
        #: The entry's ``.npy`` path, once the ``with`` block has put it in place.
        self.path: Path | None = None

    def write(self, chunk) -> None:
        """Append ``chunk`` (``(k, ...)``, the first chunk's dtype and trailing shape) as the next ``k`` rows."""
        chunk = np.ascontiguousarray(chunk)
        if chunk.ndim == 0:
            raise ValueError("a chunk must have rows (ndim >= 1); got a scalar")
        if self._dtype is None:
            if chunk.dtype.hasobject:
                raise ValueError(f"a cache entry must be a numeric array; got dtype {chunk.dtype}")
            self._dtype, self._tail = chunk.dtype, tuple(chunk.shape[1:])
            header = {"descr": np.lib.format.dtype_to_descr(self._dtype), "fortran_order": False,
                      "shape": (self.rows, *self._tail)}
            np.lib.format.write_array_header_1_0(self._fh, header)  # what np.save writes for such an array
        elif chunk.dtype != self._dtype or tuple(chunk.shape[1:]) != self._tail:
            raise ValueError(f"every chunk must be {self._dtype} (k, {', '.join(map(str, self._tail))}) as the "
                             f"first; got {chunk.dtype} {chunk.shape}")
        if self.written + chunk.shape[0] > self.rows:
            raise ValueError(f"the entry has {self.rows} rows; a chunk of {chunk.shape[0]} after {self.written} "
                             "is too many")
        data = chunk.reshape(-1).view(np.uint8)
        self._sha.update(data)
        self._fh.write(data)
        self.written += chunk.shape[0]

    def finish(self) -> dict:
        """The sidecar's record, once exactly ``rows`` rows were written (ValueError otherwise)."""
        if self._dtype is None or self.written != self.rows:
            raise ValueError(f"the entry needs {self.rows} rows; {self.written} were written")
        self._fh.flush()
        return {"format": _SIDECAR_FORMAT, "shape": [self.rows, *self._tail], "dtype": self._dtype.str,
                "sha256": self._sha.hexdigest()}


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def _read_sidecar(sidecar: Path) -> tuple[dict | None, str | None]:
    """The sidecar's record, or ``None`` and what is wrong with it."""
    if not sidecar.exists():
        return None, "has no checksum record (written by an older transferlab, or cut short), so it is unverified"
    try:
        with open(sidecar, "rb") as fh:
            raw = fh.read(_SIDECAR_MAX_BYTES + 1)
        record = json.loads(raw) if len(raw) <= _SIDECAR_MAX_BYTES else None
    except (OSError, ValueError) as err:
        return None, f"has an unreadable checksum record {sidecar.name} ({type(err).__name__})"
    valid = (
        isinstance(record, dict)
        and record.get("format") == _SIDECAR_FORMAT
        and isinstance(record.get("shape"), list)
        and all(type(n) is int and n >= 0 for n in record["shape"])
        and isinstance(record.get("dtype"), str)
        and isinstance(record.get("sha256"), str)
        and len(record["sha256"]) == 64
    )
    if not valid:
        return None, f"has a malformed checksum record {sidecar.name}"
    return record, None


def _read_verified(path: Path, sidecar: Path, rows: int | None,
                   mmap: bool = False) -> tuple[np.ndarray | None, str | None]:
    """The array at ``path`` if it matches ``sidecar`` (and ``rows``), else ``None`` and the reason.

    The ``.npy`` header is checked against the record and the file's size
    before any data is read, so a header claiming a huge array allocates nothing.
    With ``mmap`` the data are hashed in blocks and the array returned is a
    read-only memory map of the same open file (the file that was verified).
    """
    if path.is_dir():
        return None, "is a folder, not a file"
    record, problem = _read_sidecar(sidecar)
    if record is None:
        return None, problem
    shape, dtype_str = tuple(record["shape"]), record["dtype"]
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                header = np.lib.format.read_array_header_2_0(fh)
            else:
                return None, f"has an unsupported .npy format version {version}"
            file_shape, fortran_order, dtype = header
            if fortran_order or tuple(file_shape) != shape or dtype.str != dtype_str or dtype.hasobject:
                order = "Fortran-order " if fortran_order else ""
                return None, (f"holds a {order}{dtype} array of shape {tuple(file_shape)}, but its record says "
                              f"{dtype_str} of shape {shape}")
            nbytes = math.prod(shape) * dtype.itemsize
            size = path.stat().st_size
            offset = fh.tell()
            if size != offset + nbytes:
                return None, f"is {size} bytes, not the {offset + nbytes} its shape and dtype need (truncated?)"
            if mmap and nbytes:
                sha = hashlib.sha256()
                block = bytearray(min(nbytes, _READ_BLOCK))
                left = nbytes
                while left:
                    got = fh.readinto(memoryview(block)[: min(left, len(block))])
                    if not got:
                        return None, "is truncated"
                    sha.update(memoryview(block)[:got])
                    left -= got
                if sha.hexdigest() != record["sha256"]:
                    return None, "does not match its recorded SHA-256 checksum (its content changed)"
                problem = _rows_problem(shape, rows)
                if problem is not None:
                    return None, problem
                return np.memmap(fh, dtype=dtype, mode="r", offset=offset, shape=shape).view(np.ndarray), None
            buf = bytearray(nbytes)
            if fh.readinto(buf) != nbytes:
                return None, "is truncated"
    except (OSError, ValueError, TypeError, SyntaxError, EOFError) as err:
        return None, f"cannot be read as an array ({type(err).__name__}: {err})"
    if hashlib.sha256(buf).hexdigest() != record["sha256"]:
        return None, "does not match its recorded SHA-256 checksum (its content changed)"
    problem = _rows_problem(shape, rows)
    if problem is not None:
        return None, problem
    array = np.frombuffer(buf, dtype=dtype).reshape(shape)
    if mmap:  # an empty entry: nothing to map, read-only all the same
        array.flags.writeable = False
    return array, None


def _rows_problem(shape: tuple, rows: int | None) -> str | None:
    """Why an entry of ``shape`` is not one of ``rows`` rows, or ``None`` when it is (or ``rows`` is not known)."""
    if rows is not None and (len(shape) == 0 or shape[0] != rows):
        got = "no rows (a scalar)" if len(shape) == 0 else f"{shape[0]} rows"
        return f"has {got}, but the data has {rows} images"
    return None
