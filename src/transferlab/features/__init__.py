"""Batched feature extraction, per-sample gradients, probe features, linear probes, and their on-disk cache."""

from transferlab.features._cache import FeatureCache, model_digest
from transferlab.features._extract import extract, source_probabilities
from transferlab.features._gradients import per_sample_gradients
from transferlab.features._linear_probe import linear_probe
from transferlab.features._probe import probe_features

__all__ = [
    "extract",
    "source_probabilities",
    "per_sample_gradients",
    "probe_features",
    "linear_probe",
    "FeatureCache",
    "model_digest",
]
