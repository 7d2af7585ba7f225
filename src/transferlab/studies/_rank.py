"""Rank the members of a zoo for a target task with transferability scores.

Models run here and only here. For each member, every input the requested
scores need is computed once and cached on disk (:class:`FeatureCache`):

- ``features``: the member's features of the target train images;
- ``source_probs``: its source-head softmax on the same images;
- ``gradients``: per-sample gradients of its output with respect to the last
  stage, randomly projected (seeded) to ``gradient_dim`` dimensions;
- ``source_features``: its features of (at most ``source_per_class`` images per
  class of) the source task it was trained on, with their labels;
- ``probe``: features of a small probe network trained on the target, computed
  once per target (it does not depend on the member).

The arrays are then handed to the pure score functions through
:meth:`~transferlab.scores._registry.ScoreSpec.compute`. Pool-level scores
(NCTI, ETran: normalised across the candidates) are computed once over the
whole pool and kept in their own columns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import inspect
import math
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from transferlab._progress import progress_bar
from transferlab.data._sized import load_sized
from transferlab.data._task import Task
from transferlab.features._cache import FeatureCache
from transferlab.scores._pool import POOL_SCORES, available_pool_scores
from transferlab.scores._registry import NEED_ARGUMENTS, NEEDS, available, spec
from transferlab.zoo._build import Zoo, ZooMember, load_member_task
from transferlab.zoo._recipe import MemberRecipe

#: The inputs a zoo ranking can compute for every member: all of them.
ZOO_INPUTS = NEEDS

#: Default cap on the source images per class read for ``source_features``.
SOURCE_PER_CLASS = 100

#: Scores that must get a different seed for every member: the random baseline
#: gives every candidate the same number for the same seed (see its docstring).
#: Every other seeded score gets the same seed for every member, so that the
#: members are compared under the same random choices.
_PER_MEMBER_SEED = frozenset({"random"})


@dataclass(frozen=True)
class Ranking:
    """Scores of every member of a zoo for one target.

    Attributes
    ----------
    target : str
        The target task's name.
    scores : tuple of str
        The per-model scores, in the order asked; ``rows`` are sorted by the
        first of them (or by the first pool score when none), best first.
    rows : tuple of dict
        One per member: ``model``, ``arch``, ``source``, ``source_accuracy``, then
        one column per score (Python floats).
    pool_scores : tuple of str
        The pool-level scores (their values depend on the whole pool).
    seconds : dict
        Wall time per input kind and per score, summed over the members.
    """

    target: str
    scores: tuple[str, ...]
    rows: tuple[dict, ...]
    pool_scores: tuple[str, ...] = ()
    seconds: dict = field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every score column: the per-model scores, then the pool-level ones."""
        return (*self.scores, *self.pool_scores)

    def column(self, name: str) -> np.ndarray:
        """The values of one column, in row order."""
        if self.rows and name not in self.rows[0]:
            raise ValueError(f"no column {name!r} in the ranking; columns are {list(self.rows[0])}")
        return np.array([row[name] for row in self.rows], dtype=float)

    def to_dict(self) -> dict:
        """A JSON-ready dict: target, score names and the rows."""
        return {
            "target": self.target,
            "scores": list(self.scores),
            "pool_scores": list(self.pool_scores),
            "rows": [dict(row) for row in self.rows],
            "seconds": dict(self.seconds),
        }


# --------------------------------------------------------------------------- score names


def default_scores(have=ZOO_INPUTS) -> tuple[str, ...]:
    """Every per-model score whose inputs are all among ``have``: LogME first, then by name.

    LogME leads because a ranking is sorted by its first score, and LogME is the
    most widely used reference score.

    Parameters
    ----------
    have : str or iterable of str
        The inputs that can be computed, a subset of
        :data:`~transferlab.scores._registry.NEEDS`; by default all of them (a zoo
        ranking computes every input).

    Examples
    --------
    >>> "logme" in default_scores({"features"}), "leep" in default_scores({"features"})
    (True, False)
    """
    names = available(have)
    return tuple(sorted(names, key=lambda name: (name != "logme", name)))


def split_score_names(scores, have=ZOO_INPUTS) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validate score names; return ``(per_model, pool_level)`` in the order given.

    ``None`` means :func:`default_scores` (no pool-level score). Names are
    normalised like the registry does (case, ``-`` for ``_``); duplicates are
    dropped.

    Raises
    ------
    ValueError
        If no name is given, a name is neither a registered nor a pool-level
        score (the message lists the valid names and the closest match), or a
        score needs an input outside ``have``.
    """
    if scores is None:
        return default_scores(have), ()
    if isinstance(scores, str):
        scores = [scores]
    names = [str(s) for s in scores]
    if not names:
        raise ValueError("scores must name at least one score; available: " + ", ".join(_all_names()))
    pool = POOL_SCORES
    per_model: list[str] = []
    pooled: list[str] = []
    have = frozenset([have] if isinstance(have, str) else have)
    for raw in names:
        key = raw.strip().lower().replace("-", "_")
        if key in pool:
            if key not in pooled:
                pooled.append(key)
            continue
        try:
            score = spec(raw)
        except ValueError:
            raise ValueError(_unknown_message(raw)) from None
        missing = sorted(score.needs - have)
        if missing:
            raise ValueError(
                f"score {score.name!r} needs {missing}, which are not available here; "
                f"scores computable from {sorted(have)}: {', '.join(available(have))}"
            )
        if score.name not in per_model:
            per_model.append(score.name)
    return tuple(per_model), tuple(pooled)


def _all_names() -> list[str]:
    return sorted({*available(), *POOL_SCORES})


def _unknown_message(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    close = difflib.get_close_matches(key, _all_names(), n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"unknown score {name!r}.{hint} Available scores: {', '.join(available())}; "
        f"pool-level: {', '.join(available_pool_scores())}"
    )


# --------------------------------------------------------------------------- inputs


class _MemberInputs:
    """Computes each input of one member at most once (through the on-disk cache)."""

    def __init__(self, ranker: _Ranker, member: ZooMember):
        self.ranker = ranker
        self.member = member
        self.model = member.load(ranker.device)
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, argument: str) -> np.ndarray:
        if argument not in self.arrays:
            self.ranker.timed(argument, self._compute, argument)
        return self.arrays[argument]

    def _compute(self, argument: str) -> None:
        r = self.ranker
        common = {"device": r.device, "progress": r.progress}
        if argument == "features":
            self.arrays[argument] = r.cache.features(self.model, r.target, split="train", **common)
        elif argument == "source_probs":
            self.arrays[argument] = r.cache.source_probabilities(self.model, r.target, split="train", **common)
        elif argument == "gradients":
            self.arrays[argument] = r.cache.gradients(
                self.model, r.target, split="train", dim=r.gradient_dim, seed=r.seed, **common
            )
        elif argument in ("source_features", "source_labels"):
            source = r.source_task(self.member)
            self.arrays["source_features"] = r.cache.features(self.model, source, split="train", **common)
            self.arrays["source_labels"] = source.y_train
        elif argument == "probe_features":
            self.arrays[argument] = r.probe_features()
        else:  # pragma: no cover - NEED_ARGUMENTS and this list are kept in step
            raise ValueError(f"unknown score input {argument!r}")

    def inputs_for(self, needs) -> dict:
        return {arg: self.get(arg) for need in sorted(needs) for arg in NEED_ARGUMENTS[need]}


class _Ranker:
    """State shared by the members of one ranking: target, cache, memoised tasks, timings."""

    def __init__(self, target, cache, device, progress, source_per_class, gradient_dim, seed):
        self.target = target
        self.cache = cache
        self.device = device
        self.progress = progress
        self.source_per_class = source_per_class
        self.gradient_dim = gradient_dim
        self.seed = seed
        self.seconds: dict[str, float] = {}
        self._sources: dict[tuple, Task] = {}
        self._probe: np.ndarray | None = None

    def timed(self, key: str, fn, *args):
        """``fn(*args)``, its wall time added to ``seconds[key]``."""
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - start

    def source_task(self, member: ZooMember) -> Task:
        """The member's source task, at most ``source_per_class`` train images per class."""
        recipe = member.metadata.get("member", {})
        spec_text = recipe.get("source", member.source)
        train_per_class = recipe.get("train_per_class")
        per_class = self.source_per_class if train_per_class is None else min(int(train_per_class), self.source_per_class)
        seed = int(recipe.get("train", {}).get("seed", 0))
        key = (spec_text, per_class, seed)
        if key not in self._sources:
            # test_per_class=1: only the train split is read; keeps generated sources cheap.
            if recipe.get("role") == "generic":  # the union of the sources it was trained on
                sized = dataclasses.replace(MemberRecipe.from_dict(recipe), train_per_class=per_class, test_per_class=1)
                self._sources[key] = load_member_task(sized)
            else:
                self._sources[key] = load_sized(spec_text, train_per_class=per_class, test_per_class=1, seed=seed)
        return self._sources[key]

    def probe_features(self) -> np.ndarray:
        if self._probe is None:
            self._probe = self.cache.probe(self.target, seed=self.seed, device=self.device, progress=self.progress)
        return self._probe


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- ranking


def rank_zoo(
    zoo: Zoo,
    target: Task,
    scores=None,
    *,
    cache: FeatureCache | None = None,
    device: str = "cpu",
    progress: bool = True,
    source_per_class: int = SOURCE_PER_CLASS,
    gradient_dim: int = 1024,
    seed: int = 0,
) -> Ranking:
    """Score every member of ``zoo`` on the train split of ``target``.

    Parameters
    ----------
    zoo : Zoo
        Built by :func:`~transferlab.zoo.build_zoo`.
    target : Task
        The target task; scores read its train split (subsample it first to
        score on at most K samples per class).
    scores : sequence of str, optional
        Registry names (see :func:`transferlab.scores.available`) and pool-level
        names (see :func:`~transferlab.scores.available_pool_scores`); default :func:`default_scores`,
        every per-model score.
    cache : FeatureCache, optional
        Default: the cache under ``$TRANSFERLAB_HOME``.
    device : str, default "cpu"
    progress : bool, default True
        Progress bars for the members and the extractions.
    source_per_class : int, default 100
        At most this many source images per class for ``source_features``.
    gradient_dim : int, default 1024
        Random-projection dimension of the per-sample gradients.
    seed : int, default 0
        Seed of the gradient projection, the probe network and every seeded score.

    Returns
    -------
    Ranking
        Rows sorted by the first score, best first.

    Raises
    ------
    ValueError
        On an unknown score name, or when a score rejects a member's arrays
        (the message names the member and the score).
    """
    per_model, pooled = split_score_names(scores)
    source_per_class = _check_positive_int(source_per_class, "source_per_class")
    gradient_dim = _check_positive_int(gradient_dim, "gradient_dim")
    if len(zoo) == 0:
        raise ValueError("zoo has no members: nothing to rank")
    cache = cache or FeatureCache()
    labels = target.y_train
    ranker = _Ranker(target, cache, device, progress, source_per_class, gradient_dim, seed)
    pool = POOL_SCORES
    rows = []
    pool_features: list[np.ndarray] = []  # per member, the target features the pool-level scores read
    with _one_blas_thread_beside_torch(device), progress_bar("scoring zoo", total=len(zoo), enabled=progress) as advance:
        for member in zoo:
            inputs = _MemberInputs(ranker, member)
            row = {
                "model": member.name,
                "arch": member.arch,
                "source": member.source,
                "source_accuracy": member.source_accuracy,
            }
            for name in per_model:
                score = spec(name)
                arrays = inputs.inputs_for(score.needs)
                # Per member and per target: a random baseline must not repeat one ranking on every target.
                score_seed = (
                    _member_seed(seed, f"{member.name}@{target.fingerprint}") if name in _PER_MEMBER_SEED else seed
                )
                row[name] = ranker.timed(name, _compute, score, labels, arrays, score_seed, member.name)
            if pooled:
                pool_features.append(inputs.get("features"))
            rows.append(row)
            advance(1, model=member.name)
    for name in pooled:
        values = ranker.timed(name, _compute_pool, name, pool[name], pool_features, labels)
        for row, value in zip(rows, values):
            row[name] = value
    order = per_model or pooled
    rows.sort(key=lambda r: -r[order[0]])
    return Ranking(target=target.name, scores=per_model, rows=tuple(rows), pool_scores=pooled, seconds=ranker.seconds)


def _one_blas_thread_beside_torch(device: str):
    """On the CPU, NumPy's BLAS runs single-threaded while members alternate torch and NumPy work.

    OpenBLAS worker threads keep spinning after each call and starve torch's
    threads when the two alternate, member after member: on 2 cores that made
    extraction about 5 times slower. The score matrices here are small enough
    that one BLAS thread loses nothing.
    """
    if str(device).startswith("cpu"):
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


def _member_seed(seed: int, name: str) -> int:
    """A seed of its own from a name (a member's, not its position in the zoo)."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**31)


def _accepts_seed(func) -> bool:
    try:
        return "seed" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def _compute(score, labels, arrays: dict, seed: int, member: str) -> float:
    options = {"seed": seed} if _accepts_seed(score.func) else {}
    try:
        value = score.compute(labels, **arrays, **options)
    except ValueError as exc:
        raise ValueError(f"score {score.name!r} failed for member {member!r}: {exc}") from exc
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"score {score.name!r} returned {value} for member {member!r}; expected a finite float")
    return value


def _compute_pool(name: str, func, pool: list[np.ndarray], labels) -> list[float]:
    """Call a pool-level score on every member's target features (one array per member, same samples)."""
    try:
        values = np.asarray(func(pool, labels), dtype=float).reshape(-1)
    except ValueError as exc:
        raise ValueError(f"pool-level score {name!r} failed: {exc}") from exc
    if values.shape[0] != len(pool) or not np.all(np.isfinite(values)):
        raise ValueError(f"pool-level score {name!r} returned {values!r}; expected {len(pool)} finite values")
    return [float(v) for v in values]
