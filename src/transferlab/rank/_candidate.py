"""The one interface the ranker reads: a candidate model and the arrays its scores need.

A :class:`Candidate` is whatever can be ranked: a member of a built-in zoo
(:class:`~transferlab.rank.ZooCandidate`), a practitioner's model
(:class:`~transferlab.rank.ModelCandidate`), or plain arrays computed elsewhere
(:class:`ArrayCandidate`). The ranker never sees a model: it asks each
candidate for the arrays a score needs, by the keyword through which they reach
the score (:data:`~transferlab.scores.NEED_ARGUMENTS`), and hands them to the
pure score functions.
"""

from __future__ import annotations

import abc

import numpy as np

from transferlab.scores import NEED_ARGUMENTS, NEEDS

#: Every array a candidate may be asked for: the keywords of the score functions.
ARGUMENTS = tuple(argument for need in sorted(NEEDS) for argument in NEED_ARGUMENTS[need])


class Candidate(abc.ABC):
    """A model to rank: its name, its descriptive columns and the arrays scores read.

    Subclasses set the attributes below (in ``__init__`` or as properties) and
    implement :meth:`array`. The ranker (:func:`~transferlab.rank.rank`) reads
    them in this order: ``name``, ``provides`` and ``fingerprint`` up front;
    :meth:`array` for each input of each score, once per input; ``info`` when the
    candidate's row is written (after its arrays, so it may describe them);
    then :meth:`close`.

    Attributes
    ----------
    name : str
        The ``model`` column of the ranking.
    provides : frozenset of str
        The inputs it can give, a subset of :data:`~transferlab.scores.NEEDS`
        (``"features"``, ``"source_probs"``, ``"gradients"``,
        ``"source_features"``, ``"probe"``, and the model-only
        ``"source_accuracy"`` and ``"parameters"`` the priors read). A score
        that needs anything else gets ``None`` in this candidate's row.
    fingerprint : str or None
        Names the candidate *and* the target data, e.g. ``"name@<target
        fingerprint>"``. Scores whose spec says ``per_member_seed`` (the random
        baseline) get a seed derived from it and the ranking's seed, so each
        candidate draws its own numbers, the same on every run and different on
        every target. ``None``: the candidate has no identity to seed from (a lone
        set of precomputed features); such scores get the ranking's seed itself.
    info : dict
        The descriptive columns of its row, between ``model`` and the scores
        (e.g. ``arch``, ``source``, ``source_accuracy`` of a zoo member); JSON-ready
        values. Default: none.
    """

    name: str
    provides: frozenset[str]
    fingerprint: str | None = None

    @property
    def info(self) -> dict:
        """The descriptive columns of the candidate's row (none by default)."""
        return {}

    @abc.abstractmethod
    def array(self, argument: str) -> np.ndarray:
        """The array that reaches a score as the keyword ``argument``.

        ``argument`` is one of :data:`ARGUMENTS`: ``"features"`` (N, D),
        ``"source_probs"`` (N, Z), ``"gradients"`` (N, P), ``"source_features"``
        (M, D) with ``"source_labels"`` (M,), ``"probe_features"`` (N, E); the
        rows of the per-sample arrays follow the ranking's ``labels``. Two are
        scalars, facts about the model: ``"source_accuracy"`` (a float in
        [0, 1]) and ``"n_parameters"`` (an int >= 1). It is asked
        only for arguments of the needs in :attr:`provides`. An implementation
        computes each array at most once (through the feature cache where a
        model runs).
        """

    def close(self) -> None:
        """Let go of what the candidate holds (a loaded model, its arrays) once it is scored."""


class ArrayCandidate(Candidate):
    """A candidate whose arrays are already computed: no model runs.

    Parameters
    ----------
    name : str
        The ``model`` column.
    arrays : dict of str to array-like
        Keyed by score keyword (:data:`ARGUMENTS`): ``features``,
        ``source_probs``, ``gradients``, ``source_features`` with
        ``source_labels``, ``probe_features`` (arrays), and the scalars
        ``source_accuracy`` (a float in [0, 1]) and ``n_parameters`` (an int),
        which the priors read. The candidate provides every need whose keywords
        are all present. Values are passed to the scores as they are: each
        score validates its own inputs.
    info : dict, optional
        Descriptive columns of its row.
    fingerprint : str, optional
        See :class:`Candidate`; default ``None`` (per-member-seed scores get the
        ranking's seed).

    Raises
    ------
    ValueError
        If ``name`` is not a non-empty string, ``arrays`` is not a dict, has a key
        that is not a score keyword, or provides no complete need.

    Examples
    --------
    >>> import numpy as np
    >>> c = ArrayCandidate("pixels", {"features": np.eye(4)})
    >>> sorted(c.provides), c.array("features").shape
    (['features'], (4, 4))
    >>> sorted(ArrayCandidate("net", {"features": np.eye(4), "n_parameters": 1200}).provides)
    ['features', 'parameters']
    """

    def __init__(self, name: str, arrays: dict, *, info: dict | None = None, fingerprint: str | None = None):
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string; got {name!r}")
        if not isinstance(arrays, dict):
            raise ValueError(f"arrays must be a dict of score keyword -> array; got {type(arrays).__name__}")
        unknown = sorted(set(arrays) - set(ARGUMENTS))
        if unknown:
            raise ValueError(f"arrays has unknown key {unknown[0]!r}; keys are score keywords: {', '.join(ARGUMENTS)}")
        provides = frozenset(need for need, args in NEED_ARGUMENTS.items() if all(a in arrays for a in args))
        if not provides:
            raise ValueError(
                f"arrays must hold every keyword of at least one need ({dict(NEED_ARGUMENTS)}); got {sorted(arrays)}"
            )
        if info is not None and not isinstance(info, dict):
            raise ValueError(f"info must be a dict of column -> value; got {type(info).__name__}")
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise ValueError(f"fingerprint must be a string or None; got {fingerprint!r}")
        self.name = name
        self.provides = provides
        self.fingerprint = fingerprint
        self._arrays = dict(arrays)
        self._info = dict(info or {})

    @property
    def info(self) -> dict:
        return dict(self._info)

    def array(self, argument: str) -> np.ndarray:
        if argument not in self._arrays:
            raise ValueError(f"candidate {self.name!r} has no {argument!r}; it has {sorted(self._arrays)}")
        return self._arrays[argument]
