"""Transferability scores: pure NumPy functions of arrays, one registry.

Higher always means better predicted transfer. Per-model scores take arrays
(``features``, ``source_probs``, ``gradients``, ``source_features`` with
``source_labels``, ``probe_features``) and ``labels`` and return a float;
``get(name)`` returns one, ``spec(name)`` says what it needs and computes it from
whatever inputs you have, ``available()`` lists them. Pool-level scores (NCTI,
ETran) normalise across candidate models and return one value per model; they
are in the same registry with ``kind="pool"`` (``available(kind="pool")``,
``spec(name).compute_pool(pool, labels)``). Each spec also carries the score's
direction, its ``group`` (``"prior"``: target-blind, such as the model's source
accuracy or size; ``"baseline"``: kNN accuracy, a linear probe, random
selection; ``"score"``: the transferability scores) and :class:`Traits`
(invariances, seeding, whether a bootstrap may ``resample`` it), which the
common tests check. To add a score, see CONTRIBUTING.md: one module, one decorator.
``"ped+<score>"`` (PED's potential-energy decline of the features, then the score)
works for every per-model feature score, e.g. ``spec("ped+logme")``; such compositions
are built on lookup and not listed by ``available()``.

Nothing here imports torch.
"""

from transferlab._validation import check_features, check_features_labels, check_source_features, check_source_probs
from transferlab.scores._domain_similarity import domain_similarity
from transferlab.scores._etran import etran
from transferlab.scores._feature_metrics import feature_metrics
from transferlab.scores._gbc import gbc
from transferlab.scores._hscore import hscore, regularized_hscore
from transferlab.scores._knn import knn
from transferlab.scores._leep import leep
from transferlab.scores._lfc import lfc, lgc
from transferlab.scores._linear_mse import linear_mse
from transferlab.scores._linear_probe import linear_probe
from transferlab.scores._logme import logme
from transferlab.scores._ncti import ncti
from transferlab.scores._nce import nce
from transferlab.scores._nleep import nleep
from transferlab.scores._otce import f_otce, jc_otce, otce
from transferlab.scores._pactran import pactran_dirichlet, pactran_gamma, pactran_gaussian
from transferlab.scores._parc import parc
from transferlab.scores._ped import ped_transform
from transferlab.scores._pool import POOL_SCORES, available_pool_scores, get_pool_score
from transferlab.scores._priors import parameters, source_accuracy
from transferlab.scores._random import random
from transferlab.scores._registry import (
    GROUPS,
    MODEL_ONLY_NEEDS,
    NEED_ARGUMENTS,
    NEEDS,
    TARGET_KINDS,
    ScoreSpec,
    Traits,
    available,
    check_target_kind,
    get,
    register_composition,
    register_score,
    spec,
)
from transferlab.scores._rsa import rsa
from transferlab.scores._sfda import sfda
from transferlab.scores._tmi import tmi
from transferlab.scores._transrate import transrate

__all__ = [
    # per-model scores
    "domain_similarity",
    "feature_metrics",
    "gbc",
    "hscore",
    "leep",
    "lfc",
    "lgc",
    "logme",
    "nce",
    "nleep",
    "otce",
    "f_otce",
    "jc_otce",
    "pactran_dirichlet",
    "pactran_gamma",
    "pactran_gaussian",
    "parc",
    "random",
    "regularized_hscore",
    "rsa",
    "sfda",
    "tmi",
    "transrate",
    # PED's transform of the features ("ped+<score>" composes it with any feature score)
    "ped_transform",
    # baselines every score must beat: target-aware (group "baseline") and target-blind priors
    "knn",
    "linear_probe",
    "linear_mse",
    "parameters",
    "source_accuracy",
    # pool-level scores
    "ncti",
    "etran",
    "POOL_SCORES",
    "available_pool_scores",
    "get_pool_score",
    # registry
    "get",
    "spec",
    "available",
    "register_score",
    "register_composition",
    "ScoreSpec",
    "Traits",
    "NEEDS",
    "NEED_ARGUMENTS",
    "MODEL_ONLY_NEEDS",
    "GROUPS",
    "TARGET_KINDS",
    "check_target_kind",
    # validation
    "check_features",
    "check_features_labels",
    "check_source_features",
    "check_source_probs",
]
