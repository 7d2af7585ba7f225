"""One ranker: candidates -> arrays -> scores -> a :class:`Ranking`.

:func:`rank` asks each candidate (:class:`~transferlab.rank.Candidate`) for the
arrays the requested scores need, each once, hands them to the pure score
functions through the registry (:meth:`~transferlab.scores.ScoreSpec.compute`),
and computes the pool-level scores (NCTI, ETran: normalised across the
candidates) once over the whole pool, in their own columns. What a score needs,
whether it takes a seed and whether every candidate needs a seed of its own all
come from its :class:`~transferlab.scores.ScoreSpec`.
"""

from __future__ import annotations

import contextlib
import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from transferlab._progress import progress_bar
from transferlab._validation import check_seed
from transferlab.rank._candidate import Candidate
from transferlab.scores import NEED_ARGUMENTS, NEEDS, available, spec


@dataclass(frozen=True)
class Ranking:
    """Scores of every candidate for one target.

    Attributes
    ----------
    target : str
        The target's name.
    scores : tuple of str
        The per-model scores, in the order asked; ``rows`` are sorted by the
        first of them (or by the first pool score when none), best first, a
        candidate without a value (``None``) last.
    rows : tuple of dict
        One per candidate: ``model``, the candidate's descriptive columns (a zoo
        member's ``arch``, ``source``, ``source_accuracy``; a model's
        ``has_head``, ``input_size``, ``feature_dim``), then one column per score
        (Python floats; ``None`` where the candidate cannot give the score's
        input, e.g. LEEP for a model without a source head), then the pool-level
        scores.
    pool_scores : tuple of str
        The pool-level scores (their values depend on the whole pool).
    seconds : dict
        Wall time per input (``features``, ``source_probs``, ``gradients``,
        ``source_features``, ``probe_features``) and per score, summed over the
        candidates.
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
        """The values of one column, in row order (``None`` reads as NaN)."""
        if self.rows and name not in self.rows[0]:
            raise ValueError(f"no column {name!r} in the ranking; columns are {list(self.rows[0])}")
        return np.array([np.nan if row[name] is None else row[name] for row in self.rows], dtype=float)

    def to_dict(self) -> dict:
        """A JSON-ready dict: target, score names, the rows and the timings."""
        return {
            "target": self.target,
            "scores": list(self.scores),
            "pool_scores": list(self.pool_scores),
            "rows": [dict(row) for row in self.rows],
            "seconds": dict(self.seconds),
        }


# --------------------------------------------------------------------------- score names


def default_scores(have=NEEDS) -> tuple[str, ...]:
    """Every per-model score whose inputs are all among ``have``: LogME first, then by name.

    LogME leads because a ranking is sorted by its first score, and LogME is the
    most widely used reference score.

    Parameters
    ----------
    have : str or iterable of str
        The inputs that can be computed, a subset of
        :data:`~transferlab.scores.NEEDS`; by default all of them (a zoo ranking
        computes every input).

    Examples
    --------
    >>> "logme" in default_scores({"features"}), "leep" in default_scores({"features"})
    (True, False)
    """
    names = available(have, kind="model")
    return tuple(sorted(names, key=lambda name: (name != "logme", name)))


def split_score_names(scores, have=NEEDS) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validate score names; return ``(per_model, pool_level)`` in the order given.

    ``None`` means :func:`default_scores` (no pool-level score). Names are
    normalised like the registry does (case, ``-`` for ``_``); duplicates are
    dropped. Which list a name joins is its spec's ``kind``.

    Parameters
    ----------
    scores : str, sequence of str or None
    have : str or iterable of str
        The inputs that can be computed (see :func:`default_scores`).

    Raises
    ------
    ValueError
        If no name is given, a name is not registered (the message lists the
        valid names and the closest match), or a score needs an input outside
        ``have``.

    Examples
    --------
    >>> split_score_names(["LogME", "ncti", "logme"])
    (('logme',), ('ncti',))
    """
    have = frozenset([have] if isinstance(have, str) else have)
    if scores is None:
        return default_scores(have), ()
    names = [scores] if isinstance(scores, str) else [str(s) for s in scores]
    if not names:
        raise ValueError(
            "scores must name at least one score; available: " + ", ".join(available(kind=None))
        )
    per_model: list[str] = []
    pooled: list[str] = []
    for raw in names:
        score = spec(raw)
        missing = sorted(score.needs - have)
        if missing:
            raise ValueError(
                f"score {score.name!r} needs {missing}, which are not available here; "
                f"scores computable from {sorted(have)}: {', '.join(available(have, kind=None))}"
            )
        chosen = pooled if score.kind == "pool" else per_model
        if score.name not in chosen:
            chosen.append(score.name)
    return tuple(per_model), tuple(pooled)


# --------------------------------------------------------------------------- the ranker


def rank(
    candidates: Sequence[Candidate],
    labels,
    scores=None,
    *,
    target: str = "target",
    seed: int = 0,
    device: str | None = "cpu",
    progress: bool = True,
) -> Ranking:
    """Score every candidate on the same target samples; rows sorted by the first score, best first.

    For each candidate in turn: each per-model score gets the arrays it needs
    (each asked of the candidate once), with ``labels``; then, once every
    candidate is scored, each pool-level score gets every candidate's
    ``features``. A seeded score gets ``seed``, except the scores whose spec says
    ``per_member_seed`` (the random baseline): they get a seed derived from
    ``seed`` and the candidate's ``fingerprint``.

    Parameters
    ----------
    candidates : sequence of Candidate
        Zoo members (:func:`~transferlab.rank.zoo_candidates`), external models
        (:func:`~transferlab.rank.model_candidates`), precomputed arrays
        (:class:`~transferlab.rank.ArrayCandidate`) or your own subclass. Names
        must be unique.
    labels : array-like of shape (n_samples,)
        Target labels; the rows of every candidate's per-sample arrays.
    scores : str or sequence of str, optional
        Per-model and pool-level score names (see
        :func:`transferlab.scores.available`). Default: :func:`default_scores`
        of the inputs every candidate provides. A named score may need an input
        that only some candidates provide: the others get ``None``.
    target : str, default "target"
        The target's name, for the :class:`Ranking`.
    seed : int, default 0
        Seed of every seeded score.
    device : str or None, default "cpu"
        The device the candidates run their models on. On the CPU, NumPy's BLAS
        runs single-threaded while ranking (see below); ``None`` when no model
        runs (precomputed arrays) leaves BLAS alone.
    progress : bool, default True
        A progress bar over the candidates.

    Returns
    -------
    Ranking

    Raises
    ------
    ValueError
        If ``candidates`` is empty, holds something that is not a
        :class:`Candidate` or repeats a name; a score name is unknown or needs an
        input no candidate provides; a pool-level score meets a candidate
        without features; or a score rejects a candidate's arrays (the message
        names the candidate and the score).

    Examples
    --------
    >>> import numpy as np
    >>> from transferlab.rank import ArrayCandidate
    >>> y = np.repeat([0, 1], 10)
    >>> good = ArrayCandidate("good", {"features": np.eye(2)[y] + 0.1 * np.cos(np.arange(20))[:, None]})
    >>> noise = ArrayCandidate("noise", {"features": np.sin(np.arange(40.0)).reshape(20, 2)})
    >>> [row["model"] for row in rank([noise, good], y, ["hscore"], progress=False).rows]
    ['good', 'noise']
    """
    candidates = _check_candidates(candidates)
    seed = check_seed(seed)
    provided = [c.provides for c in candidates]
    if scores is None:
        per_model, pooled = default_scores(frozenset.intersection(*provided)), ()
    else:
        per_model, pooled = split_score_names(scores, have=frozenset.union(*provided))
    for name in pooled:
        lacking = [c.name for c in candidates if not spec(name).needs <= c.provides]
        if lacking:
            raise ValueError(f"pool-level score {name!r} needs the features of every candidate; {lacking} have none")
    seconds: dict[str, float] = {}
    rows: list[dict] = []
    pool: list[np.ndarray] = []  # per candidate, the target features the pool-level scores read
    with _one_blas_thread_beside_torch(device), \
            progress_bar(f"ranking for {target}", total=len(candidates), enabled=progress) as advance:
        for candidate in candidates:
            try:
                arrays: dict[str, np.ndarray] = {}
                values: dict[str, float | None] = {}
                for name in per_model:
                    score = spec(name)
                    if not score.needs <= candidate.provides:
                        values[name] = None  # e.g. LEEP for a model without a source head
                        continue
                    inputs = _inputs(candidate, score.needs, arrays, seconds)
                    score_seed = _member_seed(seed, candidate.fingerprint) if _own_seed(score, candidate) else seed
                    values[name] = _timed(seconds, name, _compute, score, labels, inputs, score_seed, candidate.name)
                if pooled:
                    pool.append(_inputs(candidate, {"features"}, arrays, seconds)["features"])
                rows.append({"model": candidate.name, **candidate.info, **values})
            finally:
                candidate.close()
            advance(1, model=candidate.name)
    for name in pooled:
        pool_values = _timed(seconds, name, _compute_pool, spec(name), pool, labels)
        for row, value in zip(rows, pool_values):
            row[name] = value
    first = (per_model or pooled)[0]
    rows.sort(key=lambda r: math.inf if r[first] is None else -r[first])  # no value: last
    return Ranking(target=target, scores=per_model, rows=tuple(rows), pool_scores=pooled, seconds=seconds)


def _check_candidates(candidates) -> list[Candidate]:
    if isinstance(candidates, Candidate) or not isinstance(candidates, Sequence):
        raise ValueError(
            f"candidates must be a sequence (list, tuple) of Candidate; got {type(candidates).__name__}"
        )
    items = list(candidates)
    if not items:
        raise ValueError("candidates is empty: nothing to rank")
    seen: set[str] = set()
    for i, c in enumerate(items):
        if not isinstance(c, Candidate):
            raise ValueError(
                f"candidates[{i}] must be a transferlab.rank.Candidate (e.g. ArrayCandidate); "
                f"got {type(c).__name__}"
            )
        name = getattr(c, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError(f"candidates[{i}].name must be a non-empty string; got {name!r}")
        provides = getattr(c, "provides", None)
        if not isinstance(provides, frozenset) or not provides or not provides <= NEEDS:
            raise ValueError(
                f"candidates[{i}] ({name!r}).provides must be a non-empty frozenset, a subset of "
                f"{sorted(NEEDS)}; got {provides!r}"
            )
        fingerprint = getattr(c, "fingerprint", None)
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise ValueError(f"candidates[{i}] ({name!r}).fingerprint must be a string or None; got {fingerprint!r}")
        if c.name in seen:
            raise ValueError(f"candidates repeat the name {c.name!r}; every candidate needs its own")
        seen.add(c.name)
    return items


def _inputs(candidate: Candidate, needs, arrays: dict, seconds: dict) -> dict:
    """The arrays of ``needs``, each asked of the candidate once (timed under its first keyword)."""
    for need in sorted(needs):
        keywords = NEED_ARGUMENTS[need]
        if keywords[0] not in arrays:
            _timed(seconds, keywords[0], _fetch, candidate, keywords, arrays)
    return {keyword: arrays[keyword] for need in sorted(needs) for keyword in NEED_ARGUMENTS[need]}


def _fetch(candidate: Candidate, keywords, arrays: dict) -> None:
    for keyword in keywords:
        arrays[keyword] = candidate.array(keyword)


def _timed(seconds: dict, key: str, fn, *args):
    """``fn(*args)``, its wall time added to ``seconds[key]``."""
    start = time.perf_counter()
    try:
        return fn(*args)
    finally:
        seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - start


def _one_blas_thread_beside_torch(device):
    """On the CPU, NumPy's BLAS runs single-threaded while candidates alternate torch and NumPy work.

    OpenBLAS worker threads keep spinning after each call and starve torch's
    threads when the two alternate, candidate after candidate: on 2 cores that
    made extraction about 5 times slower. The score matrices here are small
    enough that one BLAS thread loses nothing.
    """
    if device is not None and str(device).startswith("cpu"):
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


def _own_seed(score, candidate: Candidate) -> bool:
    """Whether ``score`` gets a seed of this candidate's own (its spec's ``per_member_seed``)."""
    return score.per_member_seed and candidate.fingerprint is not None


def _member_seed(seed: int, fingerprint: str) -> int:
    """A seed of its own from a candidate's fingerprint (not from its position among the candidates)."""
    return (int(seed) * 1_000_003 + zlib.crc32(fingerprint.encode())) % (2**31)


def _compute(score, labels, arrays: dict, seed: int, candidate: str) -> float:
    options = {"seed": seed} if score.seeded else {}
    try:
        value = score.compute(labels, **arrays, **options)
    except ValueError as exc:
        raise ValueError(f"score {score.name!r} failed for member {candidate!r}: {exc}") from exc
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"score {score.name!r} returned {value} for member {candidate!r}; expected a finite float")
    return value


def _compute_pool(score, pool: list[np.ndarray], labels) -> list[float]:
    """A pool-level score on every candidate's target features (one array per candidate, same samples)."""
    try:
        return score.compute_pool(pool, labels)
    except ValueError as exc:
        raise ValueError(f"pool-level score {score.name!r} failed: {exc}") from exc
