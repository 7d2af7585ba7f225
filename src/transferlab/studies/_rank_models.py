"""Rank a practitioner's models for a practitioner's data (``transferlab rank --models ... --data ...``).

Each model is loaded in turn (:func:`~transferlab.models._hub.load_model`), its
features of the training images (and its source-head softmax, when it has a
head) are extracted once in batches with its own preprocessing and cached on
disk, keyed by the model's weights, the preprocessing and the data's
fingerprint; a second run with other scores reads the cache and only scores.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from transferlab._progress import progress_bar
from transferlab.data._external import ImageData, load_data
from transferlab.features._cache import FeatureCache
from transferlab.models._hub import ExternalModel, load_model, parse_spec
from transferlab.scores._registry import spec
from transferlab.studies._rank import (
    _PER_MEMBER_SEED,
    Ranking,
    _compute,
    default_scores,
    _member_seed,
    _one_blas_thread_beside_torch,
    split_score_names,
)

#: The inputs a ranking of outside models can give: no gradients, source tasks or probes.
MODEL_INPUTS = frozenset({"features", "source_probs"})


def _extract(model: ExternalModel, images, *, batch_size: int, device: str, progress: bool) -> tuple:
    """``(features, source_probs or None)`` of ``images``, in batches."""
    model.to(device)
    feats, probs = [], []
    with progress_bar(f"extracting {model.name}", len(images), enabled=progress) as advance:
        for lo in range(0, len(images), batch_size):
            x = model.preprocessing(images[lo: lo + batch_size]).to(device)
            z, logits = model.features_and_logits(x)
            feats.append(z.double().cpu().numpy())
            if model.has_head:
                probs.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
            advance(x.shape[0])
    features = np.concatenate(feats)
    if not np.isfinite(features).all():
        raise ValueError(f"the features of {model.name!r} contain NaN or Inf; check its weights")
    return features, (np.concatenate(probs) if model.has_head else None)


def rank_models(models, data, scores=None, *, shots: int | None = None, seed: int = 0,
                cache: FeatureCache | None = None, device: str = "cpu", batch_size: int = 64,
                progress: bool = True, **data_options) -> Ranking:
    """Score every model on the train split of ``data``; rows sorted by the first score, best first.

    Parameters
    ----------
    models : sequence of str, torch.nn.Module or ExternalModel
        Specs as :func:`~transferlab.models._hub.load_model` reads them.
    data : ImageData or path
        An image folder, a ``.csv``, an ``.npz`` (see :func:`~transferlab.data._external.load_data`).
        Precomputed features in an ``.npz`` are scored as they are, with ``models`` empty.
    scores : sequence of str, optional
        Default: every score computable from features and, when every model has
        a source head, source probabilities (LEEP, NCE, ...).
    shots : int, optional
        Score on ``shots`` training images per class (seeded, as :func:`~transferlab.data.k_shot`).
    seed : int, default 0
    cache : FeatureCache, optional
    device : str, default "cpu"
    batch_size : int, default 64
    progress : bool, default True
    data_options
        ``test_fraction``, ``strict`` for :func:`~transferlab.data._external.load_data`.
    """
    for m in models or ():  # a malformed spec fails before any data is read
        if isinstance(m, str):
            parse_spec(m)
    data = data if isinstance(data, ImageData) else load_data(data, seed=seed, **data_options)
    if shots is not None:
        data = data.k_shot(shots, seed=seed)
    if data.kind == "features":
        if models:
            raise ValueError("the data are precomputed features: give no models (they are the features of one)")
        per_model, _ = split_score_names(scores, have={"features"})
        row = {"model": data.name, "has_head": False, "feature_dim": int(data.x_train.shape[1])}
        for name in per_model:
            row[name] = _compute(spec(name), data.y_train, {"features": data.x_train}, seed, data.name)
        return Ranking(target=data.name, scores=per_model, rows=(row,))
    if not models:
        raise ValueError("give at least one model (e.g. hf:microsoft/resnet-18, timm:resnet18, file:m.safetensors)")
    loaded = [load_model(m) for m in models]
    have = MODEL_INPUTS if all(m.has_head for m in loaded) else frozenset({"features"})
    if scores is None:
        per_model = default_scores(have)
    else:
        per_model, pooled = split_score_names(scores, have=MODEL_INPUTS)
        if pooled:
            raise ValueError(f"pool-level scores {list(pooled)} are for zoo rankings; name per-model scores here")
    cache = cache or FeatureCache()
    rows, seconds = [], {"extract": 0.0}
    with _one_blas_thread_beside_torch(device):
        for model in loaded:
            start = time.perf_counter()
            # Keyed by the weights, the feature layer, the preprocessing and the data's fingerprint.
            keys = {kind: cache.key(model.module, kind=kind, task=data, split="train", stage=model.feature_layer,
                                    options={"preprocessing": model.preprocessing.to_dict()})
                    for kind in ("features", "source_probs")}
            features, probs = cache.get(keys["features"]), cache.get(keys["source_probs"])
            if features is None or (model.has_head and probs is None):
                features, probs = _extract(model, data.x_train, batch_size=batch_size, device=device,
                                           progress=progress)
                cache.put(keys["features"], features)
                if probs is not None:
                    cache.put(keys["source_probs"], probs)
            seconds["extract"] += time.perf_counter() - start
            size = model.preprocessing.size
            row = {"model": model.name, "has_head": model.has_head, "input_size": f"{size[0]}x{size[1]}",
                   "feature_dim": int(features.shape[1])}
            for name in per_model:
                score = spec(name)
                if "source_probs" in score.needs and probs is None:
                    row[name] = None  # no source head: LEEP and NCE do not apply
                    continue
                arrays = {"features": features} if "features" in score.needs else {}
                if "source_probs" in score.needs:
                    arrays["source_probs"] = probs
                start = time.perf_counter()
                # the random baseline needs a seed of its own per model (as in zoo rankings)
                score_seed = _member_seed(seed, f"{model.name}@{data.fingerprint}") if name in _PER_MEMBER_SEED else seed
                row[name] = _compute(score, data.y_train, arrays, score_seed, model.name)
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            rows.append(row)
            model.to("cpu")
    first = per_model[0]
    rows.sort(key=lambda r: np.inf if r[first] is None else -r[first])  # no value: last
    return Ranking(target=data.name, scores=per_model, rows=tuple(rows), seconds=seconds)
