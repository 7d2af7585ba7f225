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
import dataclasses
import math
import numbers
import warnings
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from transferlab._progress import progress_bar
from transferlab._validation import check_scalar, check_seed, check_target_kind
from transferlab.rank import _decision
from transferlab.rank._bootstrap import bootstrap_pool, bootstrap_score, weights_kind
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
        ``source_features``, ``probe_features``), per score and for the
        ``bootstrap``, summed over the candidates.
    groups : dict
        Each column's group: ``"prior"`` (target-blind), ``"baseline"`` or
        ``"score"`` (a transferability score).
    ranks : dict
        Each column's rank of every row (1 = best, ties share the mean rank,
        NaN without a value), aligned with ``rows``.
    uncertainty : dict
        For each bootstrapped column: ``low``, ``high`` (the 95% interval),
        ``p_best`` (probability of being first), ``within_noise`` (cannot be told
        apart from the column's first model) and ``bias`` (the median of the
        model's replicates minus its full-sample value; the replicates are
        re-centred by it, so the interval always holds the value), each aligned
        with ``rows``.
    bootstrap : dict
        ``resamples``, ``seed``, ``level``, ``kept`` (resamples kept per column),
        ``skipped`` (column -> why it has no interval), ``primary`` and, from
        :func:`rank_models`, ``weights``: ``"bayesian"`` or ``"counts"``, what the
        scores that take ``sample_weight`` got (see ``rank._bootstrap``).
    agreement : dict
        ``scores`` and ``tau``: Kendall's tau-b between the rankings of every
        pair of transferability-score columns (``None`` where undefined).
    recommendation : dict
        ``text`` (print it first), ``model`` (None when undecided),
        ``within_noise``, ``decided`` and the ``rule`` (:data:`rank._decision.RULE`).
    target_kind : {"classes", "regression", "multilabel"}, default "classes"
        The kind of target the scores were computed for.
    notes : tuple of str
        Visible notes on the columns (e.g. default scores left out because
        they do not support the kind of target); print them with the ranking.
    """

    target: str
    scores: tuple[str, ...]
    rows: tuple[dict, ...]
    pool_scores: tuple[str, ...] = ()
    seconds: dict = field(default_factory=dict)
    groups: dict = field(default_factory=dict)
    ranks: dict = field(default_factory=dict)
    uncertainty: dict = field(default_factory=dict)
    bootstrap: dict = field(default_factory=dict)
    agreement: dict = field(default_factory=dict)
    recommendation: dict = field(default_factory=dict)
    target_kind: str = "classes"
    notes: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Every score column: the per-model scores, then the pool-level ones."""
        return (*self.scores, *self.pool_scores)

    def column(self, name: str) -> np.ndarray:
        """The values of one column, in row order (``None`` reads as NaN)."""
        if self.rows and name not in self.rows[0]:
            raise ValueError(f"no column {name!r} in the ranking; columns are {list(self.rows[0])}")
        return _column(self.rows, name)

    def table(self) -> list[dict]:
        """Flat rows for a CSV: each row's columns, then per score its ``_rank``, ``_low``, ``_high``, ``_p_best``."""
        out = []
        for i, row in enumerate(self.rows):
            flat = dict(row)
            for name in self.columns:
                r = self.ranks.get(name)
                flat[f"{name}_rank"] = None if r is None or math.isnan(r[i]) else float(r[i])
                u = self.uncertainty.get(name)
                for key in ("low", "high", "p_best"):
                    flat[f"{name}_{key}"] = None if u is None else float(u[key][i])
                flat[f"{name}_within_noise"] = None if u is None else bool(u["within_noise"][i])
            out.append(flat)
        return out

    def to_dict(self) -> dict:
        """A JSON-ready dict: target, score names, rows, groups, ranks, intervals, agreement, recommendation, timings."""
        return {
            "target": self.target,
            "scores": list(self.scores),
            "pool_scores": list(self.pool_scores),
            "groups": dict(self.groups),
            "rows": [dict(row) for row in self.rows],
            "ranks": {k: _json_list(v) for k, v in self.ranks.items()},
            "uncertainty": {k: {m: _json_list(x) for m, x in u.items()} for k, u in self.uncertainty.items()},
            "bootstrap": dict(self.bootstrap),
            "agreement": dict(self.agreement),
            "recommendation": dict(self.recommendation),
            "seconds": dict(self.seconds),
            "target_kind": self.target_kind,
            "notes": list(self.notes),
        }


def _json_list(values) -> list:
    """A list of Python numbers or bools, NaN as None."""
    out = []
    for v in np.asarray(values).tolist():
        out.append(None if isinstance(v, float) and math.isnan(v) else v)
    return out


# --------------------------------------------------------------------------- score names


#: The default columns of a ranking, in this order: the transferability scores that the
#: re-evaluations found most dependable and that are cheap enough to bootstrap (LogME, then
#: LEEP and NCE where the model has a source head), the target-aware baselines every score
#: must beat (leave-one-out kNN, a cross-validated linear probe) and the target-blind priors
#: (source accuracy, model size). ``scores="all"`` asks for every registered score.
DEFAULT_SCORES = ("logme", "leep", "nce", "knn", "linear_probe", "source_accuracy", "parameters")


def default_scores(have=NEEDS) -> tuple[str, ...]:
    """The default columns whose inputs are all among ``have``: :data:`DEFAULT_SCORES`, in order.

    LogME leads because a ranking's recommendation uses the first score as its
    primary (its bootstrap decides whether the top model is separated).

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
    have = frozenset([have] if isinstance(have, str) else have)
    registered = set(available(have, kind="model"))
    return tuple(name for name in DEFAULT_SCORES if name in registered)


def all_scores(have=NEEDS, target_kind: str = "classes") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Every registered score whose inputs are among ``have`` and that supports ``target_kind``.

    Returns ``(per_model, pool_level)``, LogME first.
    """
    have = frozenset([have] if isinstance(have, str) else have)
    target_kind = check_target_kind(target_kind)

    def kept(names):
        return [n for n in names if target_kind in spec(n).targets]

    per_model = tuple(sorted(kept(available(have, kind="model")), key=lambda name: (name != "logme", name)))
    pooled = tuple(kept(available(have, kind="pool"))) if "features" in have else ()
    return per_model, pooled


def split_score_names(scores, have=NEEDS, target_kind: str = "classes") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validate score names; return ``(per_model, pool_level)`` in the order given.

    ``None`` means :func:`default_scores` (no pool-level score); ``"all"``
    means every registered score the inputs and ``target_kind`` allow (:func:`all_scores`). Names are
    normalised like the registry does (case, ``-`` for ``_``); duplicates are
    dropped. Which list a name joins is its spec's ``kind``.

    Parameters
    ----------
    scores : str, sequence of str or None
    have : str or iterable of str
        The inputs that can be computed (see :func:`default_scores`).
    target_kind : {"classes", "regression", "multilabel"}, default "classes"
        The kind of target ``"all"`` is scoped to (names given one by one are
        checked against it by :func:`rank`).

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
    if [n.strip().lower() for n in names] == ["all"]:
        return all_scores(have, target_kind)
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
    bootstrap: int = 100,
    target_kind: str = "classes",
) -> Ranking:
    """Score every candidate on the same target samples, bootstrap the scores and decide.

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
    labels : array-like of shape (n_samples,), or (n_samples, n_targets)
        Target labels; the rows of every candidate's per-sample arrays. Class
        labels (integers or strings), real-valued regression targets, or a
        multi-label 0/1 matrix, as ``target_kind`` says.
    scores : str or sequence of str, optional
        Per-model and pool-level score names (see
        :func:`transferlab.scores.available`). Default: :func:`default_scores`
        (:data:`DEFAULT_SCORES`) of the inputs some candidate provides, ``"all"``
        every registered one. A score may need an input that only some
        candidates provide: the others get ``None``.
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
    bootstrap : int, default 100
        Stratified bootstrap resamples of the target samples (seeded by
        ``seed``; see :mod:`transferlab.rank._bootstrap`); 0 turns it off.
        Every score whose spec allows it (``resample``) is recomputed on each
        resample, for every candidate on the same resamples; the others are
        listed in ``Ranking.bootstrap["skipped"]`` with the reason. Class
        labels are resampled within each class; regression and multi-label
        targets by a plain (unstratified) resample of all samples.
    target_kind : {"classes", "regression", "multilabel"}, default "classes"
        What ``labels`` are. Each score's spec says which kinds it supports
        (:attr:`~transferlab.scores.ScoreSpec.targets`); a score that supports
        ``target_kind`` gets it as its ``target_kind`` keyword. A score asked
        by name that does not support it is refused; the default scores (and
        ``"all"``) leave such scores out with a note in ``Ranking.notes``. For
        regression the defaults add ``linear_mse`` after LogME.

    Returns
    -------
    Ranking
        Rows sorted by the consensus rank (the mean rank over the
        transferability scores; ties by the first column), with ``ranks``,
        ``uncertainty`` (95% intervals, P(best), within-noise marks),
        ``agreement`` (Kendall tau between scores) and the ``recommendation``
        (:data:`transferlab.rank._decision.RULE`).

    Raises
    ------
    ValueError
        If ``candidates`` is empty, holds something that is not a
        :class:`Candidate` or repeats a name; a score name is unknown or needs an
        input no candidate provides; a score asked by name does not support
        ``target_kind`` (one line naming both); a pool-level score meets a candidate
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
    resamples = check_scalar(bootstrap, "bootstrap", numbers.Integral, min_val=0)
    target_kind = check_target_kind(target_kind)
    labels = _target_labels(labels, target_kind)
    provided = [c.provides for c in candidates]
    notes: list[str] = []
    if scores is None:
        # transferability scores every candidate can give (a consensus over the same columns);
        # baselines and priors any candidate can give (a prior only some carry shows as None)
        everyone = default_scores(frozenset.intersection(*provided))
        per_model = tuple(n for n in default_scores(frozenset.union(*provided))
                          if n in everyone or spec(n).group != "score")
        if target_kind == "regression" and spec("linear_mse").needs <= frozenset.intersection(*provided):
            at = 1 if per_model[:1] == ("logme",) else 0
            per_model = (*per_model[:at], "linear_mse", *per_model[at:])
        pooled = ()
        per_model = _supported(per_model, target_kind, notes, "the default scores")
    else:
        per_model, pooled = split_score_names(scores, have=frozenset.union(*provided), target_kind=target_kind)
        for name in (*per_model, *pooled):
            spec(name).supports(target_kind)  # a score asked by name: refused in one line
        if not per_model and not pooled:
            raise ValueError(f"no score asked supports {target_kind} targets")
    for name in pooled:
        lacking = [c.name for c in candidates if not spec(name).needs <= c.provides]
        if lacking:
            raise ValueError(f"pool-level score {name!r} needs the features of every candidate; {lacking} have none")
    seconds: dict[str, float] = {}
    rows: list[dict] = []
    boot: dict[str, dict[str, np.ndarray]] = {}  # score -> candidate -> (resamples,) values
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
                    kind_option = {} if target_kind == "classes" else {"target_kind": target_kind}
                    values[name] = _timed(seconds, name, _compute, score, labels, inputs, score_seed, candidate.name,
                                          kind_option)
                    if resamples and _resampled(score):
                        options = {**({"seed": score_seed} if score.seeded else {}), **kind_option}
                        boot.setdefault(name, {})[candidate.name] = _timed(
                            seconds, "bootstrap", bootstrap_score, score, labels, inputs,
                            seed=seed, resamples=resamples, options=options,
                        )
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
        if resamples and _resampled(spec(name)):
            matrix = _timed(seconds, "bootstrap", bootstrap_pool, spec(name), labels, pool, seed=seed,
                            resamples=resamples)
            boot[name] = {row["model"]: matrix[:, i] for i, row in enumerate(rows)}
    notes += _capped(per_model + tuple(pooled), labels.shape[0])
    ranking = _decide(target, per_model, pooled, rows, boot, seconds, resamples=resamples, seed=seed)
    return dataclasses.replace(ranking, target_kind=target_kind, notes=tuple(notes),
                               bootstrap={**ranking.bootstrap, "weights": weights_kind(labels.shape[0])})


def _target_labels(labels, target_kind: str) -> np.ndarray:
    """``labels`` as an array; integral float class labels as integers (the bootstrap stratifies integers)."""
    labels = np.asarray(labels)
    if target_kind == "classes" and labels.dtype.kind == "f" and labels.size and np.isfinite(labels).all() \
            and np.array_equal(labels, np.round(labels)):
        return labels.astype(np.int64)
    if target_kind == "regression" and labels.dtype.kind in "biu":  # real values: the bootstrap does not stratify
        return labels.astype(np.float64)
    return labels


def _asks_all(scores) -> bool:
    names = [scores] if isinstance(scores, str) else [str(s) for s in scores]
    return [n.strip().lower() for n in names] == ["all"]


def _capped(names, n_samples: int) -> list[str]:
    """A note for each score that reads a seeded subset of the ``n_samples`` (its ``max_samples`` cap)."""
    notes = []
    for name in names:
        cap = spec(name).max_samples
        if cap is not None and n_samples > cap:
            notes.append(f"{name} read about {cap:,} of the {n_samples:,} target samples (its max_samples cap, "
                         "a seeded stratified subset; the others read them all)")
    return notes


def _supported(names, target_kind: str, notes: list, what: str) -> tuple[str, ...]:
    """The ``names`` whose spec supports ``target_kind``; a note in ``notes`` names the others."""
    kept = tuple(n for n in names if target_kind in spec(n).targets)
    dropped = [n for n in names if n not in kept]
    if dropped:
        notes.append(f"left out of {what}: {', '.join(dropped)} (they do not support {target_kind} targets)")
    return kept


def _resampled(score) -> bool:
    """Whether the bootstrap recomputes ``score`` (its spec's ``resample`` trait)."""
    return score.resample


def _skip_reason(name: str) -> str:
    score = spec(name)
    if score.group == "prior":
        return "target-blind: it reads no target data, so resampling the target cannot move it"
    return ("its spec says the bootstrap does not recompute it (resample=False: too costly per resample, "
            "or meaningless on repeated rows)")


def _decide(target, per_model, pooled, rows, boot, seconds, *, resamples: int, seed: int) -> Ranking:
    """Ranks, intervals, P(best), agreement and the recommendation; rows sorted by consensus."""
    columns = (*per_model, *pooled)
    groups = {name: spec(name).group for name in columns}
    rank_of = {name: _decision.ranks(_column(rows, name)) for name in columns}
    evidence = [n for n in columns if groups[n] == "score" and not np.isnan(rank_of[n]).all()]
    if not evidence:  # only baselines or priors were asked: they are the evidence
        evidence = [n for n in columns if not np.isnan(rank_of[n]).all()]
    consensus = (_decision.consensus([rank_of[n] for n in evidence]) if evidence
                 else np.full(len(rows), np.nan))
    first_value = _column(rows, columns[0])
    order = sorted(range(len(rows)), key=lambda i: (
        math.inf if math.isnan(consensus[i]) else consensus[i],
        math.inf if math.isnan(first_value[i]) else -first_value[i]))
    rows = [rows[i] for i in order]
    consensus = consensus[order]
    rank_of = {n: r[order] for n, r in rank_of.items()}
    for row, c in zip(rows, consensus):
        row["consensus_rank"] = None if math.isnan(c) else float(c)
    models = [r["model"] for r in rows]

    uncertainty, kept, skipped, matrices = {}, {}, {}, {}
    for name in columns:
        if not resamples:
            continue
        if name not in boot:
            if not np.isnan(rank_of[name]).all():
                skipped[name] = _skip_reason(name)
            continue
        matrix = np.column_stack([boot[name].get(m, np.full(resamples, np.nan)) for m in models])
        has_value = ~np.isnan(rank_of[name])
        good = ~np.isnan(matrix[:, has_value]).any(axis=1)  # a resample counts for every candidate or none
        kept[name] = int(good.sum())
        if kept[name] < max(2, resamples // 2):
            skipped[name] = f"only {kept[name]} of {resamples} resamples were valid for every model"
            continue
        matrix = np.where(has_value[None, :], matrix[good], np.nan)
        # Re-centre each model's replicates on its full-sample value: a maximised evidence or a
        # plug-in entropy is biased on a resample (the shift is the bootstrap's estimate of that
        # bias); the spread and the pairing across models are what the decision reads.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a model without values: all-NaN column
            bias = np.nanmedian(matrix, axis=0) - _column(rows, name)
        matrix = matrix - bias[None, :]
        matrices[name] = matrix
        low, high = _decision.intervals(matrix)
        best = int(np.nanargmin(rank_of[name]))
        uncertainty[name] = {
            "low": low, "high": high, "p_best": _decision.p_best(matrix),
            "within_noise": _decision.within_noise(matrix, best), "bias": bias,
        }
    names, tau = _decision.kendall_matrix({n: _column(rows, n) for n in columns if groups[n] == "score"})
    primary = next((n for n in evidence if n in matrices), None)
    top = int(np.argmin(np.where(np.isnan(consensus), np.inf, consensus))) if len(rows) else 0
    recommendation = _decision.recommend(
        models, {n: rank_of[n] for n in evidence}, consensus, primary=primary,
        primary_p_best=uncertainty[primary]["p_best"] if primary else None,
        primary_within_noise=_decision.within_noise(matrices[primary], top) if primary else None,
        baselines={n: rank_of[n] for n in columns if groups[n] == "baseline" and n not in evidence},
    )
    return Ranking(
        target=target, scores=per_model, rows=tuple(rows), pool_scores=pooled, seconds=seconds, groups=groups,
        ranks=rank_of, uncertainty=uncertainty,
        bootstrap={"resamples": resamples, "seed": seed, "level": _decision.LEVEL, "kept": kept,
                   "skipped": skipped, "primary": primary},
        agreement={"scores": names, "tau": tau}, recommendation=recommendation,
    )


def _column(rows, name: str) -> np.ndarray:
    """One column of ``rows`` as floats (``None`` as NaN)."""
    return np.array([np.nan if r[name] is None else r[name] for r in rows], dtype=float)


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


def _timed(seconds: dict, key: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, its wall time added to ``seconds[key]``."""
    start = time.perf_counter()
    try:
        return fn(*args, **kwargs)
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


def _compute(score, labels, arrays: dict, seed: int, candidate: str, kind_option: dict | None = None) -> float:
    options = {**({"seed": seed} if score.seeded else {}), **(kind_option or {})}
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
