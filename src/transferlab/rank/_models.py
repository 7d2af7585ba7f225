"""A practitioner's models as candidates, and :func:`rank_models` (``transferlab rank --models ... --data ...``).

Each model (:func:`~transferlab.models.load_model`: ``hf:``, ``timm:``,
``torchvision:``, ``file:``, any ``torch.nn.Module``) gives the features of the
training images and, when it has a source head, its softmax on them (for the
priors, also its number of parameters and, when its ``file:`` checkpoint
records one, its source accuracy). The features and the softmax come
from one pass over the images in batches, with the model's own preprocessing,
and are cached on disk keyed by the model's weights, its feature layer, the
preprocessing and the data's fingerprint: a second run with other scores reads
the cache and only scores.

The pass is the model's own, not :func:`~transferlab.features.extract`: these
models take their own preprocessing of images of any size, and their features
and probabilities are kept in float64 (the built-in extraction returns float32).
It keeps memory flat in the number of images: images read from files are
decoded and resized a batch at a time by a few threads, overlapping the forward
pass, and the features and probabilities are written to the cache batch by
batch and read back memory-mapped (read-only), never gathered in memory.
"""

from __future__ import annotations

import contextlib
import numbers
import os
from collections.abc import Iterator

import numpy as np
import torch

from transferlab._prefetch import prefetched
from transferlab._progress import progress_bar
from transferlab._validation import check_int, check_scalar, check_target_kind
from transferlab.data import ImageData, load_data
from transferlab.features import FeatureCache
from transferlab.models import ExternalModel, check_device, load_model, parse_spec, read_checkpoint_metadata
from transferlab.rank._candidate import ArrayCandidate, Candidate
from transferlab.rank._ranking import Ranking, _asks_all, rank
from transferlab.scores import spec

#: The inputs an outside model can give: its features, its source-head softmax when it has a head,
#: its number of parameters, and its source accuracy when its ``file:`` checkpoint records one.
MODEL_INPUTS = frozenset({"features", "source_probs", "parameters", "source_accuracy"})

#: Where a ``file:`` checkpoint's metadata may record the model's source accuracy, in order:
#: top-level ``source_accuracy`` or ``test_accuracy``, or a zoo member's ``metrics.source_test_accuracy``.
_ACCURACY_KEYS = (("source_accuracy",), ("test_accuracy",), ("metrics", "source_test_accuracy"))


def _recorded_source_accuracy(model: ExternalModel) -> float | None:
    """The source accuracy a ``file:`` checkpoint's metadata records (a number in [0, 1]), else ``None``.

    Nothing else carries one: hub models (``hf:``, ``timm:``, ``torchvision:``) and
    wrapped modules give ``None``, and so does a recorded value that is not a number in
    [0, 1] (e.g. a percentage): no value is guessed.
    """
    if not model.name.startswith("file:"):
        return None
    try:
        metadata = read_checkpoint_metadata(model.name[len("file:"):])["metadata"]
    except (OSError, ValueError):
        return None
    for path in _ACCURACY_KEYS:
        value = metadata
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and 0.0 <= float(value) <= 1.0:
            return float(value)
    return None


def _extract_workers() -> int:
    """Threads that decode and resize images beside the forward pass: one per two cores, at least 1, at most 4.

    The forward pass already uses every core (torch's threads); decoding is a few
    percent of the work, and more threads than that only take cores from it.
    """
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def _prepare(preprocessing, images, out: np.ndarray | None = None) -> torch.Tensor | None:
    """``preprocessing`` of ``images`` (a slice of the data: :class:`~transferlab.data.ImageFiles` decode here).

    With ``out``, the rows are written into it (:meth:`~transferlab.models.Preprocessing.fill`) and
    ``None`` is returned.
    """
    if out is not None:
        preprocessing.fill(images, out)
        return None
    return preprocessing(list(images))


def _batches(preprocessing, images, batch_size: int, *, workers: int, ahead: int = 2) -> Iterator[torch.Tensor]:
    """The preprocessed batches of ``images`` in order, made by ``workers`` threads while the caller computes.

    Each batch is split into ``workers`` consecutive parts, each decoded (when
    ``images`` are files) and resized by one thread; ``ahead`` batches beyond the
    one handed out are in preparation, so decoding overlaps the forward pass and
    at most ``ahead + 1`` batches of pixels are in memory at once. Each batch is
    exactly ``preprocessing(images[lo:hi])``.

    The batch's array is allocated here, in the calling thread, and the threads
    fill their rows of it in place (``preprocessing.fill``, when it has one):
    with each thread's part allocated in that thread (and freed in this one) the
    peak memory measured kept growing with the number of batches.
    """
    n = len(images)
    starts = iter(range(0, n, batch_size))
    if workers < 1:  # no threads: each batch made here, when asked for
        for lo in starts:
            yield _prepare(preprocessing, images[lo: lo + batch_size])
        return
    fills = hasattr(preprocessing, "fill")

    def submit(pool, lo: int) -> tuple:
        hi = min(n, lo + batch_size)
        cuts = np.linspace(lo, hi, min(workers, hi - lo) + 1).round().astype(int)
        out = np.empty((hi - lo, preprocessing.channels, *preprocessing.size), dtype=np.float32) if fills else None
        futures = [pool.submit(_prepare, preprocessing, images[a:b], None if out is None else out[a - lo: b - lo])
                   for a, b in zip(cuts[:-1], cuts[1:])]
        return out, futures

    def resolve(handle: tuple) -> torch.Tensor:
        out, futures = handle
        parts = [future.result() for future in futures]
        return torch.from_numpy(out) if out is not None else parts[0] if len(parts) == 1 else torch.cat(parts)

    yield from prefetched(starts, submit, resolve, workers=workers, ahead=max(1, ahead),
                          name="transferlab-preprocess")


def _extract(model: ExternalModel, images, *, cache: FeatureCache, keys: dict, batch_size: int, device: str,
             progress: bool, workers: int | None = None) -> tuple:
    """``(features, source_probs or None)`` of ``images``, float64, written to ``cache`` as they come.

    One pass in batches: the images are decoded and resized by ``workers``
    threads (default: one per core, at most 4) while the model runs on the
    previous batch (:func:`_batches`), under ``torch.inference_mode``. Each
    batch's features (and softmax, when the model has a head) are written
    straight to the cache entries ``keys["features"]`` and
    ``keys["source_probs"]`` (:meth:`~transferlab.features.FeatureCache.writer`),
    and both arrays are returned memory-mapped from there, read-only: memory
    holds a few batches, whatever the number of images. Features with NaN or Inf
    are refused (ValueError) and nothing is cached.
    """
    model.to(device)
    n = len(images)
    workers = _extract_workers() if workers is None else workers
    with contextlib.ExitStack() as stack:
        feats_out = stack.enter_context(cache.writer(keys["features"], rows=n))
        probs_out = stack.enter_context(cache.writer(keys["source_probs"], rows=n)) if model.has_head else None
        advance = stack.enter_context(progress_bar(f"extracting {model.name}", n, enabled=progress))
        stack.enter_context(torch.inference_mode())
        batches = stack.enter_context(contextlib.closing(
            _batches(model.preprocessing, images, batch_size, workers=workers)))  # its threads stop on an error
        for x in batches:
            z, logits = model.features_and_logits(x.to(device))
            z = z.double().cpu().numpy()
            if not np.isfinite(z).all():
                raise ValueError(f"the features of {model.name!r} contain NaN or Inf; check its weights")
            feats_out.write(z)
            if probs_out is not None:
                probs_out.write(torch.softmax(logits.double(), dim=1).cpu().numpy())
            advance(x.shape[0])
    features = cache.get(keys["features"], rows=n, mmap=True)
    probs = cache.get(keys["source_probs"], rows=n, mmap=True) if model.has_head else None
    if features is None or (model.has_head and probs is None):  # written a moment ago: only a concurrent writer
        raise ValueError(f"the features of {model.name!r} were written to the cache ({cache.root}) but cannot be "
                         "read back; is another process writing to it?")
    return features, probs


class ModelCandidate(Candidate):
    """An outside model, ranked on the train split of a practitioner's images.

    Parameters
    ----------
    model : ExternalModel
        From :func:`~transferlab.models.load_model` (or
        :func:`~transferlab.models.wrap_module`).
    data : ImageData
        Images (``kind="images"``); the candidate's arrays are of ``data.x_train``.
    cache : FeatureCache, optional
        Default: the cache under ``$TRANSFERLAB_HOME``.
    device : str, default "cpu"
    batch_size : int, default 64
    progress : bool, default True
        A progress bar over the batches.

    Attributes
    ----------
    name : str
        The model's name (its spec, e.g. ``"hf:microsoft/resnet-18"``).
    fingerprint : str
        ``"<model name>@<data fingerprint>"``.
    provides : frozenset of str
        ``"features"`` and ``"parameters"`` (the number of parameters of
        ``model.module``); ``"source_probs"`` when the model has a source head;
        ``"source_accuracy"`` when it is a ``file:`` checkpoint whose metadata
        records one (``source_accuracy``, ``test_accuracy`` or a zoo member's
        ``metrics.source_test_accuracy``, a number in [0, 1]). No other model
        records its source accuracy, so the ``source_accuracy`` prior gets
        ``None`` for it.
    info : dict
        ``has_head``, ``input_size`` (``"HxW"`` of its preprocessing) and
        ``feature_dim`` (read from its features).

    Notes
    -----
    The arrays it gives (``array("features")``, ``array("source_probs")``) are
    memory-mapped from the feature cache and read-only; the first call runs the
    model over ``data.x_train`` when the cache has no entry (see :func:`_extract`).
    """

    def __init__(self, model: ExternalModel, data: ImageData, *, cache: FeatureCache | None = None,
                 device: str = "cpu", batch_size: int = 64, progress: bool = True):
        if not isinstance(model, ExternalModel):
            raise ValueError(f"model must be an ExternalModel (see transferlab.models.load_model); "
                             f"got {type(model).__name__}")
        if not isinstance(data, ImageData) or data.kind != "images":
            raise ValueError(f"data must be ImageData of images; got {type(data).__name__}"
                             + (f" of {data.kind}" if isinstance(data, ImageData) else ""))
        batch_size = check_scalar(batch_size, "batch_size", numbers.Integral, min_val=1)
        self.model = model
        self.name = model.name
        self.fingerprint = f"{model.name}@{data.fingerprint}"
        self._source_accuracy = _recorded_source_accuracy(model)
        self.provides = MODEL_INPUTS - {
            need for need, absent in (("source_probs", not model.has_head),
                                      ("source_accuracy", self._source_accuracy is None)) if absent
        }
        self._data = data
        self._cache = cache or FeatureCache()
        self._device = device
        self._batch_size = batch_size
        self._progress = progress
        self._arrays: dict[str, np.ndarray] = {}
        self._feature_dim: int | None = None

    @property
    def info(self) -> dict:
        size = self.model.preprocessing.size
        if self._feature_dim is None:
            self._feature_dim = int(self.array("features").shape[1])
        return {"has_head": self.model.has_head, "input_size": f"{size[0]}x{size[1]}",
                "feature_dim": self._feature_dim}

    def array(self, argument: str) -> np.ndarray:
        if argument == "n_parameters":
            return sum(int(p.numel()) for p in self.model.module.parameters())
        if argument == "source_accuracy" and self._source_accuracy is not None:
            return self._source_accuracy
        if argument not in ("features", "source_probs") or (argument == "source_probs" and not self.model.has_head):
            raise ValueError(f"model {self.name!r} has no {argument!r}; it provides {sorted(self.provides)}")
        if not self._arrays:
            self._load_or_extract()
        return self._arrays[argument]

    def close(self) -> None:
        self.model.to("cpu")
        self._arrays.clear()

    def _load_or_extract(self) -> None:
        """Both arrays from the cache, or from one pass over the images (then cached)."""
        model, data, cache = self.model, self._data, self._cache
        # Keyed by the weights, the feature layer, the preprocessing and the data's fingerprint.
        keys = {kind: cache.key(model.module, kind=kind, task=data, split="train", stage=model.feature_layer,
                                options={"preprocessing": model.preprocessing.to_dict()})
                for kind in ("features", "source_probs")}
        n = len(data.x_train)  # an entry with another number of rows is recomputed
        # Memory-mapped, read-only: the arrays stay on disk until a score reads them.
        features = cache.get(keys["features"], rows=n, mmap=True)
        probs = cache.get(keys["source_probs"], rows=n, mmap=True) if model.has_head else None
        if features is None or (model.has_head and probs is None):
            features, probs = _extract(model, data.x_train, cache=cache, keys=keys, batch_size=self._batch_size,
                                       device=self._device, progress=self._progress)
        self._feature_dim = int(features.shape[1])
        self._arrays["features"] = features
        if model.has_head:
            self._arrays["source_probs"] = probs


def model_candidates(models, data: ImageData, *, cache: FeatureCache | None = None, device: str = "cpu",
                     batch_size: int = 64, progress: bool = True) -> list[ModelCandidate]:
    """Each of ``models`` loaded (:func:`~transferlab.models.load_model`) as a candidate for ``data``.

    Parameters
    ----------
    models : sequence of str, torch.nn.Module or ExternalModel
    data : ImageData
        Images; see :class:`ModelCandidate` for the other parameters.
    """
    cache = cache or FeatureCache()
    return [ModelCandidate(load_model(m), data, cache=cache, device=device, batch_size=batch_size,
                           progress=progress) for m in models]


def rank_models(models, data, scores=None, *, shots: int | None = None, seed: int = 0,
                cache: FeatureCache | None = None, device: str = "cpu", batch_size: int = 64,
                progress: bool = True, bootstrap: int = 100, target_kind: str | None = None,
                **data_options) -> Ranking:
    """Score every model on the train split of ``data``; rows sorted as :func:`~transferlab.rank.rank` sorts them.

    A thin wrapper: read ``data``, keep ``shots`` per class, then
    ``rank(model_candidates(models, data, ...), data.y_train, scores, ...)``.
    Precomputed features (an ``.npz`` with ``features``) are one
    :class:`~transferlab.rank.ArrayCandidate` named after the data.

    Parameters
    ----------
    models : sequence of str, torch.nn.Module or ExternalModel
        Specs as :func:`~transferlab.models.load_model` reads them.
    data : ImageData or path
        An image folder, a ``.csv``, an ``.npz`` (see :func:`~transferlab.data.load_data`).
        Precomputed features in an ``.npz`` are scored as they are, with ``models`` empty.
    scores : sequence of str, optional
        Default: every score computable from features and, when every model has
        a source head, source probabilities (LEEP, NCE, ...). A model without a
        head gets ``None`` for a score that needs source probabilities.
    shots : int, optional
        Score on ``shots`` training images per class (seeded, the draw of
        :func:`~transferlab.data.k_shot`). It must be at most the training
        images of the smallest class: a larger value is an error naming the
        classes that have fewer, raised before any model runs.
    seed : int, default 0
        Seed of the split, the shots and the seeded scores.
    cache : FeatureCache, optional
    device : str, default "cpu"
    batch_size : int, default 64
    progress : bool, default True
    bootstrap : int, default 100
        Bootstrap resamples of the target samples (0: none), seeded by ``seed``;
        see :func:`~transferlab.rank.rank`.
    target_kind : {"classes", "regression", "multilabel"}, optional
        What the data's labels are: read so from a path (default
        ``"classes"``); an :class:`~transferlab.data.ImageData` carries its own
        (a different value is an error). Passed to
        :func:`~transferlab.rank.rank`, which refuses a score asked by name
        that does not support it and leaves such default scores out with a note.
    data_options
        ``test_fraction``, ``strict`` for :func:`~transferlab.data.load_data`.

    Returns
    -------
    Ranking
        Rows ``model``, ``has_head``, ``input_size``, ``feature_dim``, then the
        scores (``model``, ``has_head``, ``feature_dim`` for precomputed features).

    Raises
    ------
    ValueError
        A malformed model spec or ``shots`` value (before any data is read),
        ``shots`` above a class's training images, no models for images,
        models for precomputed features, an unknown score, or a score that
        rejects a model's arrays.
    """
    check_device(device)
    for m in models or ():  # a malformed spec fails before any data is read
        if isinstance(m, str):
            parse_spec(m)
    if shots is not None:  # a bad value fails before the data are read; too many for a class, once they are
        shots = check_int(shots, "shots")
    if target_kind is not None:
        check_target_kind(target_kind)
    if isinstance(data, ImageData):
        if target_kind is not None and target_kind != data.target_kind:
            raise ValueError(f"target_kind={target_kind!r} but the data {data.name!r} hold {data.target_kind} "
                             "targets; give one or the other")
    else:
        data = load_data(data, seed=seed, target_kind=target_kind or "classes", **data_options)
    target_kind = data.target_kind
    if scores is not None and not _asks_all(scores):  # refused before any model runs
        for name in [scores] if isinstance(scores, str) else scores:
            spec(str(name)).supports(target_kind)
    if shots is not None:
        data = data.k_shot(shots, seed=seed)
    if data.kind == "features":
        if models:
            raise ValueError("the data are precomputed features: give no models (they are the features of one)")
        # No fingerprint: the lone candidate's seeded scores get `seed` itself.
        candidate = ArrayCandidate(data.name, {"features": data.x_train},
                                   info={"has_head": False, "feature_dim": int(data.x_train.shape[1])})
        return rank([candidate], data.y_train, scores, target=data.name, seed=seed, device=None, progress=progress,
                    bootstrap=bootstrap, target_kind=target_kind)
    if not models:
        raise ValueError("give at least one model (e.g. hf:microsoft/resnet-18, timm:resnet18, file:m.safetensors)")
    candidates = model_candidates(models, data, cache=cache, device=device, batch_size=batch_size, progress=progress)
    return rank(candidates, data.y_train, scores, target=data.name, seed=seed, device=device, progress=progress,
                bootstrap=bootstrap, target_kind=target_kind)
