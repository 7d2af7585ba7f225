"""On-disk, content-addressed cache of extracted features.

An entry is keyed by a digest of everything that determines the array: the
model's weights and architecture, the stage, what is computed (features,
source probabilities, projected per-sample gradients), the options that change
the result (the projection dimension and seed of the gradients), the task
fingerprint and split, and the preprocessing. Probe features depend on the
target alone (a probe network trained on it) and are keyed by the task
fingerprint and the probe's options.
Entries are ``.npy`` files written atomically (see :mod:`transferlab._atomic`),
so a crash mid-write never leaves a readable partial entry, and a corrupt entry
is treated as a miss and rewritten.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from transferlab._atomic import atomic_write
from transferlab._paths import home
from transferlab.data import Task
from transferlab.features._extract import extract, source_probabilities
from transferlab.models import PREPROCESSING, StagedModel


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
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached array, or ``None`` on a miss (a corrupt entry counts as a miss)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            path.unlink(missing_ok=True)
            return None

    def put(self, key: str, array: np.ndarray) -> Path:
        array = np.ascontiguousarray(array)
        return atomic_write(self.path(key), lambda tmp: _save_npy(tmp, array))

    def get_or_compute(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        cached = self.get(key)
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
        return self.get_or_compute(key, lambda: extract(model, images, stage=stage, **kwargs))

    def source_probabilities(self, model: StagedModel, task: Task, *, split: str = "train", **kwargs) -> np.ndarray:
        """Cached :func:`~transferlab.features.source_probabilities` of ``task``'s ``split``."""
        images, _ = task.split(split)
        key = self.key(model, kind="source_probs", task=task, split=split)
        return self.get_or_compute(key, lambda: source_probabilities(model, images, **kwargs))

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
            key, lambda: per_sample_gradients(model, images, stage=stage, dim=dim, seed=seed, **kwargs)
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
        key = self.key(None, kind="probe", task=task, split=split, options={"seed": int(seed)})
        return self.get_or_compute(key, lambda: probe_features(task, seed=seed, **kwargs))


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
