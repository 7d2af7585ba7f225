"""The score registry: one table of every transferability score and what is known about it.

A score registers itself with the :func:`register_score` decorator in the
module that defines it. The registry imports every module of the
``transferlab.scores`` package the first time it is asked for a name, so adding
a score is one module and one decorator: nothing else lists the modules.
(Helper modules such as ``_linalg`` are imported too; they register nothing.)

Each entry is a :class:`ScoreSpec`: the function, its ``kind``, the inputs it
``needs``, its ``direction`` and its :class:`Traits`, the promises the common
tests in ``tests/scores`` check for every registered score.

- ``kind="model"``: a per-model score, ``score(labels=..., **inputs) -> float``
  (:meth:`ScoreSpec.compute`);
- ``kind="pool"``: a pool-level score (NCTI, ETran) whose terms are normalised
  across the candidates, ``score(pool, labels) -> one value per candidate``
  (:meth:`ScoreSpec.compute_pool`).

:func:`spec` finds either kind, :func:`get` returns the function,
:func:`available` lists the names of one kind (per-model by default).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass, field

import numpy as np

# The kinds of target a score may support (``"classes"``, ``"regression"``, ``"multilabel"``).
from transferlab._validation import TARGET_KINDS, check_target_kind

#: Inputs a score may need; a score declares the subset it reads.
#: ``features``: target features of the candidate model (N, D);
#: ``source_probs``: its source-class probabilities on the target data (N, Z);
#: ``gradients``: per-sample (projected) gradients (N, P); ``source_features``:
#: features of the candidate's source data (M, D) with their labels (M,);
#: ``probe``: features of a probe network trained on the target (N, E).
#: Two needs describe the model alone, not the target (the inputs of the priors):
#: ``source_accuracy``: its accuracy on its own source task, a number in [0, 1];
#: ``parameters``: its number of parameters, an integer >= 1.
NEEDS = frozenset(
    {"features", "source_probs", "gradients", "source_features", "probe", "source_accuracy", "parameters"}
)

#: The keyword arguments through which each need reaches a score function.
NEED_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "features": ("features",),
    "source_probs": ("source_probs",),
    "gradients": ("gradients",),
    "source_features": ("source_features", "source_labels"),
    "probe": ("probe_features",),
    # Scalars, not per-sample arrays: a float (or 0-d array) in [0, 1], and an integer count.
    "source_accuracy": ("source_accuracy",),
    "parameters": ("n_parameters",),
}

#: The needs that read nothing of the target: a score needing only these is a prior.
MODEL_ONLY_NEEDS = frozenset({"source_accuracy", "parameters"})

#: The kinds of score: per-model, or normalised across a pool of candidates.
KINDS = ("model", "pool")

#: What a score is, for the comparisons a study makes: ``"prior"``, target-blind (it reads
#: nothing of the target: source accuracy, model size); ``"baseline"``, a simple target-aware
#: baseline every transferability score must beat (kNN accuracy, a linear probe, random
#: selection); ``"score"``, a transferability score (everything else).
GROUPS = ("prior", "baseline", "score")

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_CONSTANT = ("finite", "raises")


@dataclass(frozen=True)
class Traits:
    """What a score promises beyond its inputs; the common tests check each promise.

    Declared in the score's :func:`register_score` call (every field is a
    keyword of the decorator), each with its reason in a comment beside it.
    The defaults are the house rules every score meets unless it says otherwise,
    and make no invariance claim.

    Attributes
    ----------
    min_per_class : {1, 2}, default=2
        1: a class with a single sample gives a finite value; 2: such a class
        raises a ``ValueError`` naming ``labels``.
    constant : {"finite", "raises"}, default="finite"
        What zero-variance input (every row equal; uniform rows of
        probabilities) gives: a finite value, or a ``ValueError`` naming the
        argument.
    scale_invariant : bool, default=False
        The value is unchanged when every feature-like input (features,
        gradients, source and probe features) is multiplied by one positive
        number (checked at 1e12).
    translation_invariant : bool, default=False
        The value is unchanged when a constant vector is added to every row of
        each feature-like input (one vector for ``features`` and
        ``source_features``, which share a space). Declare False for scores
        that read no features (LEEP, NCE): the property does not apply.
    label_permutation_invariant : bool, default=True
        The value is unchanged when the classes are renamed: any permutation of
        the class ids, written as other integers or as strings (and likewise the
        source classes of ``source_labels``).
    stochastic : bool, default=False
        A seeded random choice makes the value depend on the order of the
        samples (same seed and order, same value). Such a score is exempt from
        the sample-order invariance test, and must be ``seeded``.
    seeded : bool or None, default=None
        The function takes a ``seed`` keyword, which a ranker passes to it.
        ``None`` (the default) derives it from the function's signature; a
        declared value must agree with the signature.
    per_member_seed : bool, default=False
        A ranker must give every candidate its own seed: the value depends on
        the seed alone, so one seed for all would tie every candidate (the
        random baseline). Every other seeded score gets one seed for every
        candidate, so that they are compared under the same random choices.
        Requires ``seeded``.
    resample : bool, default=True
        The ranker's bootstrap may recompute the score on resampled target
        samples. False for a score too costly to resample (a cross-validated
        probe, a mixture fit or an N x N matrix per resample) or meaningless on
        a bootstrap sample with duplicated rows (leave-one-out kNN, where a
        duplicate is its own neighbour), and for a prior (constant: nothing to
        resample); the ranker skips it with a visible note.
    targets : frozenset of str, default=frozenset({"classes"})
        The kinds of target it supports, a non-empty subset of
        :data:`TARGET_KINDS`. A score supporting any other set takes a
        ``target_kind`` keyword (checked at registration), through which a
        ranker passes the kind; the common class-label tests run on the scores
        that support ``"classes"``.
    """

    min_per_class: int = 2
    constant: str = "finite"
    scale_invariant: bool = False
    translation_invariant: bool = False
    label_permutation_invariant: bool = True
    stochastic: bool = False
    seeded: bool | None = None
    per_member_seed: bool = False
    resample: bool = True
    targets: frozenset = frozenset({"classes"})

    def __post_init__(self):
        if isinstance(self.min_per_class, bool) or self.min_per_class not in (1, 2):
            raise ValueError(f"min_per_class must be 1 or 2; got {self.min_per_class!r}")
        if self.constant not in _CONSTANT:
            raise ValueError(f"constant must be one of {_CONSTANT}; got {self.constant!r}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name not in ("min_per_class", "constant", "seeded", "targets") and not isinstance(value, bool):
                raise ValueError(f"{f.name} must be True or False; got {value!r}")
        if self.seeded is not None and not isinstance(self.seeded, bool):
            raise ValueError(f"seeded must be True, False or None (from the signature); got {self.seeded!r}")
        if self.per_member_seed and self.seeded is False:
            raise ValueError("per_member_seed=True needs a seeded score (one that takes a seed); got seeded=False")
        targets = frozenset([self.targets] if isinstance(self.targets, str) else self.targets)
        if not targets or not targets <= set(TARGET_KINDS):
            raise ValueError(f"targets must be a non-empty subset of {TARGET_KINDS}; got {sorted(targets)}")
        object.__setattr__(self, "targets", targets)


def _takes_seed(func) -> bool | None:
    """Whether ``func`` takes a ``seed`` keyword; ``None`` when it cannot say (``**kwargs``, no signature)."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return None
    if "seed" in params and params["seed"].kind is not inspect.Parameter.POSITIONAL_ONLY:
        return True
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return False


def _takes_keyword(func, keyword: str) -> bool:
    """Whether ``func`` takes ``keyword`` by name (or ``**kwargs``); True when it cannot say."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return True
    if keyword in params and params[keyword].kind is not inspect.Parameter.POSITIONAL_ONLY:
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _resolve_traits(name: str, func, traits: Traits) -> Traits:
    """``traits`` with ``seeded`` read from the signature and checked against it."""
    takes = _takes_seed(func)
    seeded = traits.seeded
    if seeded is None:
        seeded = bool(takes)
    elif seeded and takes is False:
        raise ValueError(f"score {name!r} declares seeded=True but its function takes no seed argument")
    elif not seeded and takes:
        raise ValueError(f"score {name!r} declares seeded=False but its function takes a seed argument")
    if traits.per_member_seed and not seeded:
        raise ValueError(f"score {name!r} declares per_member_seed=True but takes no seed argument")
    if traits.targets != frozenset({"classes"}) and not _takes_keyword(func, "target_kind"):
        raise ValueError(
            f"score {name!r} declares targets={sorted(traits.targets)} but its function takes no target_kind "
            "argument, through which a ranker passes the kind of target"
        )
    if traits.stochastic and not seeded:
        raise ValueError(
            f"score {name!r} declares stochastic=True but takes no seed argument; "
            "a random choice must be seeded (same seed, same value)"
        )
    return dataclasses.replace(traits, seeded=seeded)


@dataclass(frozen=True)
class ScoreSpec:
    """What the registry knows about one score: everything about it lives here.

    Attributes
    ----------
    name : str
        Lower-case identifier, e.g. ``"logme"``.
    func : callable
        The score function: a Python float for ``kind="model"``, one value per
        candidate for ``kind="pool"``.
    needs : frozenset of str
        The inputs it reads, a non-empty subset of :data:`NEEDS`. A pool score
        reads the ``features`` of every candidate.
    summary : str
        One line, the first line of the function's docstring by default.
    reference : str
        The paper that defines the score.
    kind : {"model", "pool"}, default="model"
        ``"model"``: a function of one candidate's arrays
        (:meth:`compute`); ``"pool"``: normalised across a pool of candidates
        (:meth:`compute_pool`), so a candidate's value depends on the others.
    direction : int, default=+1
        +1: a higher value means better predicted transfer. It is +1 for every
        score: a paper's distance or entropy is negated inside the function.
    traits : Traits
        Its promises (invariances, seeding, edge cases), with ``seeded``
        resolved from the signature. Each trait is also readable directly, as
        ``spec.scale_invariant`` and so on.
    group : {"prior", "baseline", "score"}, default="score"
        What the score is (:data:`GROUPS`): a target-blind ``"prior"`` (its
        needs are all in :data:`MODEL_ONLY_NEEDS`), a simple target-aware
        ``"baseline"`` every transferability score must beat, or a
        transferability ``"score"``.
    """

    name: str
    func: Callable[..., float]
    needs: frozenset[str]
    summary: str
    reference: str
    kind: str = "model"
    direction: int = 1
    traits: Traits = field(default_factory=Traits)
    group: str = "score"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {self.kind!r}")
        _check_group(self.group)
        if self.group == "prior" and not self.needs <= MODEL_ONLY_NEEDS:
            raise ValueError(
                f"a prior reads nothing of the target: its needs must be a subset of {sorted(MODEL_ONLY_NEEDS)}; "
                f"score {self.name!r} needs {sorted(self.needs)} (use group='baseline' or 'score')"
            )
        if self.group != "prior" and self.needs <= MODEL_ONLY_NEEDS:
            raise ValueError(
                f"score {self.name!r} reads nothing of the target (needs {sorted(self.needs)}): "
                f"declare group='prior'; got group={self.group!r}"
            )
        if isinstance(self.direction, bool) or self.direction != 1:
            raise ValueError(
                f"direction must be +1 (higher is better); got {self.direction!r}. "
                "Negate a distance or an entropy inside the score so that higher means better transfer"
            )
        if self.kind == "pool" and self.needs != frozenset({"features"}):
            raise ValueError(
                f"a pool score reads the features of every candidate: needs must be {{'features'}}; "
                f"got {sorted(self.needs)}"
            )
        if not isinstance(self.traits, Traits):
            raise ValueError(f"traits must be a Traits; got {type(self.traits).__name__}")
        object.__setattr__(self, "traits", _resolve_traits(self.name, self.func, self.traits))

    # The traits, readable directly from the spec (shorthands for ``spec.traits.<name>``).
    @property
    def min_per_class(self) -> int:
        """See :attr:`Traits.min_per_class`."""
        return self.traits.min_per_class

    @property
    def constant(self) -> str:
        """See :attr:`Traits.constant`."""
        return self.traits.constant

    @property
    def scale_invariant(self) -> bool:
        """See :attr:`Traits.scale_invariant`."""
        return self.traits.scale_invariant

    @property
    def translation_invariant(self) -> bool:
        """See :attr:`Traits.translation_invariant`."""
        return self.traits.translation_invariant

    @property
    def label_permutation_invariant(self) -> bool:
        """See :attr:`Traits.label_permutation_invariant`."""
        return self.traits.label_permutation_invariant

    @property
    def stochastic(self) -> bool:
        """See :attr:`Traits.stochastic`."""
        return self.traits.stochastic

    @property
    def seeded(self) -> bool:
        """See :attr:`Traits.seeded` (always resolved to a bool here)."""
        return bool(self.traits.seeded)

    @property
    def per_member_seed(self) -> bool:
        """See :attr:`Traits.per_member_seed`."""
        return self.traits.per_member_seed

    @property
    def resample(self) -> bool:
        """See :attr:`Traits.resample`."""
        return self.traits.resample

    @property
    def targets(self) -> frozenset:
        """See :attr:`Traits.targets`."""
        return self.traits.targets

    @property
    def max_samples(self) -> int | None:
        """The score's default sample cap: the default of its ``max_samples`` keyword, or None.

        A score whose method is quadratic (or worse) in the number of samples
        takes a ``max_samples`` keyword: above it the score reads a seeded
        subset of about that many samples (what the subset is, and how it is
        drawn, is in the score's docstring). A ranker shows the cap whenever
        ``N`` exceeds it. None when the score takes no such keyword (it reads
        every sample) or its default is None.

        Examples
        --------
        >>> spec("knn").max_samples, spec("logme").max_samples
        (10000, None)
        """
        try:
            params = inspect.signature(self.func).parameters
        except (TypeError, ValueError):
            return None
        default = params["max_samples"].default if "max_samples" in params else None
        if isinstance(default, bool) or not isinstance(default, (int, np.integer)):
            return None
        return int(default)

    def supports(self, target_kind: str) -> None:
        """Refuse a kind of target the score does not support: one line naming the score and the kind.

        Raises
        ------
        ValueError
            If ``target_kind`` is not one of :data:`TARGET_KINDS`, or not among
            the score's :attr:`targets`.
        """
        check_target_kind(target_kind)
        if target_kind not in self.targets:
            raise ValueError(
                f"score {self.name!r} does not support {target_kind} targets "
                f"(it supports {', '.join(k for k in TARGET_KINDS if k in self.targets)})"
            )

    def compute(
        self,
        labels,
        *,
        features=None,
        source_probs=None,
        gradients=None,
        source_features=None,
        source_labels=None,
        probe_features=None,
        source_accuracy=None,
        n_parameters=None,
        **options,
    ) -> float:
        """Call a per-model score with the inputs its ``needs`` name, by keyword.

        Inputs the score does not need are ignored, so a caller can hand every
        array it has to every score. Each need reaches the function through the
        keyword arguments of :data:`NEED_ARGUMENTS` (``source_features`` passes
        ``source_features=`` and ``source_labels=``; ``probe`` passes
        ``probe_features=``; ``parameters`` passes ``n_parameters=``).

        Parameters
        ----------
        labels : array-like of shape (n_samples,)
            Target labels.
        features : array-like of shape (n_samples, n_features), optional
        source_probs : array-like of shape (n_samples, n_source_classes), optional
        gradients : array-like of shape (n_samples, n_gradient_dims), optional
        source_features : array-like of shape (n_source_samples, n_features), optional
        source_labels : array-like of shape (n_source_samples,), optional
        probe_features : array-like of shape (n_samples, n_probe_features), optional
        source_accuracy : float, optional
            The model's accuracy on its source task, in [0, 1] (need ``source_accuracy``).
        n_parameters : int, optional
            The model's number of parameters (need ``parameters``).
        **options
            Keyword options of the score (``seed``, ``max_iter``, ...).

        Returns
        -------
        float
            The score; higher = better predicted transfer.

        Raises
        ------
        ValueError
            If the score is pool-level (use :meth:`compute_pool`), an input it
            needs is missing (the message names it and the score), an option is
            not a keyword of the score, or the score rejects its input.

        Examples
        --------
        >>> import numpy as np
        >>> labels = np.array([0, 0, 1, 1])
        >>> spec("leep").compute(labels, source_probs=np.eye(2)[labels], features=None)
        0.0
        """
        if self.kind != "model":
            raise ValueError(
                f"score {self.name!r} is pool-level (its value depends on the other candidates): "
                "call compute_pool(pool, labels) with one features matrix per candidate"
            )
        given = {
            "features": features,
            "source_probs": source_probs,
            "gradients": gradients,
            "source_features": source_features,
            "source_labels": source_labels,
            "probe_features": probe_features,
            "source_accuracy": source_accuracy,
            "n_parameters": n_parameters,
        }
        kwargs = {}
        for need in sorted(self.needs):
            for argument in NEED_ARGUMENTS[need]:
                if given[argument] is None:
                    raise ValueError(
                        f"score {self.name!r} needs {argument} (its needs are {sorted(self.needs)}); "
                        f"got {argument}=None"
                    )
                kwargs[argument] = given[argument]
        self._check_options(options, reserved={"labels", *(a for args in NEED_ARGUMENTS.values() for a in args)})
        return self.func(labels=labels, **kwargs, **options)

    def compute_pool(self, pool, labels, **options) -> list[float]:
        """Call a pool-level score on every candidate's target features; one float per candidate.

        Parameters
        ----------
        pool : sequence of array-like, each of shape (n_samples, n_features_m)
            Target features of each candidate model, all on the same samples in
            the same order (feature dimensions may differ).
        labels : array-like of shape (n_samples,)
            Target labels.
        **options
            Keyword options of the score.

        Returns
        -------
        list of float
            One finite value per candidate, in the order of ``pool``; higher =
            better predicted transfer.

        Raises
        ------
        ValueError
            If the score is per-model (use :meth:`compute`), an option is not a
            keyword of the score, the score rejects its input, or it returns
            other than one finite value per candidate.

        Examples
        --------
        >>> import numpy as np
        >>> labels = np.repeat([0, 1], 10)
        >>> good = 3.0 * np.eye(2)[labels] + 0.1 * np.cos(np.arange(20))[:, None]
        >>> noise = np.column_stack([np.sin(np.arange(20)), np.cos(3.0 * np.arange(20))])
        >>> spec("ncti").compute_pool([good, noise], labels)
        [1.0, 0.0]
        """
        if self.kind != "pool":
            raise ValueError(
                f"score {self.name!r} is a per-model score: call compute(labels, features=...) "
                "for each candidate"
            )
        self._check_options(options, reserved={"pool", "labels"})
        if not isinstance(pool, Sized) and hasattr(pool, "__iter__"):  # a generator: read it once
            pool = list(pool)
        values = np.asarray(self.func(pool, labels, **options), dtype=np.float64)
        if values.ndim != 1 or values.shape[0] != len(pool) or not np.all(np.isfinite(values)):
            raise ValueError(
                f"pool score {self.name!r} must return one finite value per candidate "
                f"({len(pool)}); got {values!r}"
            )
        return [float(v) for v in values]

    def _check_options(self, options: dict, *, reserved: set) -> None:
        if not options:
            return
        try:
            params = inspect.signature(self.func).parameters
        except (TypeError, ValueError):  # a callable without a signature: let it decide
            return
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return
        known = sorted(
            n for n, p in params.items() if n not in reserved and p.kind is not inspect.Parameter.VAR_POSITIONAL
        )
        unknown = sorted(set(options) - set(known))
        if unknown:
            close = difflib.get_close_matches(unknown[0], known, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"score {self.name!r} has no option {unknown[0]!r}.{hint} "
                f"Its options are: {', '.join(known) if known else '(none)'}"
            )


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _check_needs(needs) -> frozenset[str]:
    items = frozenset([needs] if isinstance(needs, str) else needs)
    unknown = sorted(items - NEEDS)
    if not items or unknown:
        raise ValueError(
            f"needs must be a non-empty subset of {sorted(NEEDS)}; got {sorted(items)}"
        )
    return items


def _check_group(group) -> None:
    if not isinstance(group, str) or group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(repr(g) for g in GROUPS)}; got {group!r}")


def _check_kind(kind, *, allow_none: bool) -> None:
    if kind not in KINDS and not (allow_none and kind is None):
        choices = ", ".join(repr(k) for k in (*KINDS, *((None,) if allow_none else ())))
        raise ValueError(f"kind must be one of {choices}; got {kind!r}")


_TRAIT_NAMES = tuple(f.name for f in dataclasses.fields(Traits))
_KIND_WORDS = {"model": "per-model score", "pool": "pool score"}


class _ScoreRegistry:
    """A name -> :class:`ScoreSpec` table (one module-level instance; tests make their own).

    Parameters
    ----------
    package : str, optional
        A package whose modules define scores: every module of it is imported
        the first time a name is looked up (subpackages are not), so the scores
        of a new module are found without listing it anywhere.
    """

    def __init__(self, package: str | None = None):
        self._specs: dict[str, ScoreSpec] = {}
        self._package = package
        self._discovered = package is None
        # "<prefix>+<score>" names: a transform of the features composed with a score (see
        # register_composition); the builders by prefix, and the specs built so far by name.
        self._composers: dict[str, Callable[[ScoreSpec], ScoreSpec]] = {}
        self._composed: dict[str, ScoreSpec] = {}

    def register(self, spec: ScoreSpec) -> None:
        if spec.name in self._specs:
            old = self._specs[spec.name].func
            raise ValueError(
                f"score {spec.name!r} is already registered (by {old.__module__}.{old.__qualname__}); "
                "pick another name"
            )
        self._specs[spec.name] = spec

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True  # first, so that a lookup during the imports does not recurse
        package = importlib.import_module(self._package)
        for module in pkgutil.iter_modules(package.__path__, prefix=f"{package.__name__}."):
            if not module.ispkg:
                importlib.import_module(module.name)

    def spec(self, name: str, kind: str | None = None) -> ScoreSpec:
        _check_kind(kind, allow_none=True)
        self._discover()
        if not isinstance(name, str):
            raise ValueError(f"name must be a string; got {type(name).__name__}")
        key = _normalise(name)
        found = self._composite(key, name) if "+" in key else self._specs.get(key)
        if found is not None and (kind is None or found.kind == kind):
            return found
        names = self.available(kind=kind)
        what = "score" if kind is None else _KIND_WORDS[kind]
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        other = f"; {found.name!r} is a {_KIND_WORDS[found.kind]}" if found is not None else ""
        raise ValueError(f"unknown {what} {name!r}.{hint} Available {what}s: {', '.join(names)}{other}")

    def register_composition(self, prefix: str, build: Callable[[ScoreSpec], ScoreSpec]) -> None:
        """Make ``"<prefix>+<score>"`` a score name: ``build(spec(score))`` returns its spec."""
        if not isinstance(prefix, str) or not _NAME_RE.match(prefix):
            raise ValueError(f"prefix must be a lower-case identifier (letters, digits, '_'); got {prefix!r}")
        if prefix in self._composers or prefix in self._specs:
            raise ValueError(f"{prefix!r} is already a registered score or composition; pick another prefix")
        self._composers[prefix] = build

    def _composite(self, key: str, name: str) -> ScoreSpec:
        """The spec of ``"<prefix>+<score>"``, built once by the prefix's builder (not listed by available)."""
        prefix, _, rest = (part.strip() for part in key.partition("+"))
        build = self._composers.get(prefix)
        if build is None:
            known = ", ".join(f"'{p}+<score>'" for p in sorted(self._composers)) or "none"
            raise ValueError(f"unknown score {name!r}: {prefix!r} is not a composition (compositions: {known})")
        if "+" in rest:
            raise ValueError(f"score {name!r}: compositions do not nest; give one score after '{prefix}+'")
        try:
            base = self.spec(rest)
        except ValueError as err:
            raise ValueError(f"score {name!r}: {err}") from None
        canonical = f"{prefix}+{base.name}"
        if canonical not in self._composed:
            self._composed[canonical] = build(base)
        return self._composed[canonical]

    def available(self, have: Iterable[str] | str | None = None, *, kind: str | None = "model") -> list[str]:
        _check_kind(kind, allow_none=True)
        self._discover()
        specs = [s for s in self._specs.values() if kind is None or s.kind == kind]
        if have is not None:
            have = frozenset([have] if isinstance(have, str) else have)
            unknown = sorted(have - NEEDS)
            if unknown:
                raise ValueError(f"have must be a subset of {sorted(NEEDS)}; got unknown {unknown}")
            specs = [s for s in specs if s.needs <= have]
        return sorted(s.name for s in specs)

    def register_score(
        self, name, *, needs, reference, kind="model", direction=1, summary=None, group="score", **traits
    ):
        """The decorator of :func:`register_score`, registering into this registry."""
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(
                f"name must be a lower-case identifier (letters, digits, '_'); got {name!r}"
            )
        needs = _check_needs(needs)
        _check_kind(kind, allow_none=False)
        _check_group(group)
        if not isinstance(reference, str) or not reference.strip():
            raise ValueError(f"reference must name the paper that defines the score; got {reference!r}")
        unknown = sorted(set(traits) - set(_TRAIT_NAMES))
        if unknown:
            close = difflib.get_close_matches(unknown[0], _TRAIT_NAMES, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"register_score({name!r}) got an unknown trait {unknown[0]!r}.{hint} "
                f"Traits are: {', '.join(_TRAIT_NAMES)}"
            )
        declared = Traits(**traits)

        def decorator(func):
            if not callable(func):
                raise ValueError(f"register_score({name!r}) must decorate a function; got {func!r}")
            text = summary
            if text is None:
                doc = (func.__doc__ or "").strip()
                text = doc.splitlines()[0].strip() if doc else ""
            self.register(
                ScoreSpec(
                    name=name,
                    func=func,
                    needs=needs,
                    summary=text,
                    reference=reference.strip(),
                    kind=kind,
                    direction=direction,
                    traits=declared,
                    group=group,
                )
            )
            return func

        return decorator


_REGISTRY = _ScoreRegistry(package=__name__.rpartition(".")[0])


def register_score(
    name: str,
    *,
    needs: Iterable[str] | str,
    reference: str,
    kind: str = "model",
    direction: int = 1,
    summary: str | None = None,
    group: str = "score",
    **traits,
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Function decorator: register a transferability score under ``name``.

    The function is returned unchanged. Registering a name twice is an error.

    Parameters
    ----------
    name : str
        Lower-case identifier, e.g. ``"logme"``.
    needs : str or iterable of str
        The inputs the score reads, a non-empty subset of :data:`NEEDS`
        (``{"features"}`` for a pool score).
    reference : str
        The paper that defines the score.
    kind : {"model", "pool"}, default="model"
        ``"model"``: ``func(<needs>, labels, **options) -> float``; ``"pool"``:
        ``func(pool, labels, **options)`` returns one value per candidate.
    direction : int, default=+1
        Higher is better; the only accepted value (negate a distance or an
        entropy inside the score).
    summary : str, optional
        One line; by default the first line of the function's docstring.
    group : {"prior", "baseline", "score"}, default="score"
        What the score is (:data:`GROUPS`): ``"prior"`` for a target-blind
        score (its needs are all in :data:`MODEL_ONLY_NEEDS`, and a score with
        only such needs must say ``"prior"``), ``"baseline"`` for a simple
        target-aware baseline every score must beat, ``"score"`` otherwise.
    **traits
        The score's :class:`Traits` (``min_per_class``, ``constant``,
        ``scale_invariant``, ``translation_invariant``,
        ``label_permutation_invariant``, ``stochastic``, ``seeded``,
        ``per_member_seed``, ``resample``, ``targets``); the others keep their defaults.

    Raises
    ------
    ValueError
        If ``name`` is not a lower-case identifier or is already registered,
        ``needs`` is empty or has an unknown entry, ``reference`` is empty,
        ``kind``, ``group`` or ``direction`` is not accepted (or ``group``
        disagrees with the needs), a trait is unknown or has a
        bad value, or a declared ``seeded`` disagrees with the signature.

    Examples
    --------
    >>> @register_score("my_score", needs={"features"}, reference="Doe 2024",
    ...                 min_per_class=1, scale_invariant=True)  # doctest: +SKIP
    ... def my_score(features, labels):
    ...     '''My score: higher is better.'''
    """
    return _REGISTRY.register_score(
        name, needs=needs, reference=reference, kind=kind, direction=direction, summary=summary, group=group,
        **traits,
    )


def spec(name: str) -> ScoreSpec:
    """The :class:`ScoreSpec` of a registered score, per-model or pool-level.

    Lookup ignores case and surrounding spaces and treats ``-`` as ``_``
    (``"LogME"`` finds ``"logme"``). A composition ``"<prefix>+<score>"``
    applies a transform of the features before a per-model feature score:
    ``"ped+<score>"`` (:mod:`transferlab.scores._ped`) works for every such
    score, e.g. ``"ped+logme"``; :func:`available` does not list compositions.

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the valid names and the
        closest match.

    Examples
    --------
    >>> sorted(spec("leep").needs)
    ['source_probs']
    >>> spec("ncti").kind, spec("random").per_member_seed
    ('pool', True)
    >>> spec("random").group, spec("logme").group, spec("logme").resample
    ('baseline', 'score', True)
    >>> spec("PED+LogME").name, sorted(spec("ped+logme").needs)
    ('ped+logme', ['features'])
    """
    return _REGISTRY.spec(name)


def register_composition(prefix: str, build: Callable[[ScoreSpec], ScoreSpec]) -> None:
    """Make ``"<prefix>+<score>"`` a score name, whose spec is ``build(spec(score))``.

    For a transform of the features applied before any per-model feature score
    (PED, :mod:`transferlab.scores._ped`). The builder validates the base score
    (a ``ValueError`` naming it when it cannot compose) and returns a
    :class:`ScoreSpec` named ``"<prefix>+<score>"``; it runs once per name.

    Raises
    ------
    ValueError
        If ``prefix`` is not a lower-case identifier or is already taken.
    """
    _REGISTRY.register_composition(prefix, build)


def get(name: str) -> Callable[..., float]:
    """The score function registered under ``name`` (see :func:`spec` for lookup rules).

    Examples
    --------
    >>> get("logme").__name__
    'logme'
    """
    return _REGISTRY.spec(name).func


def available(have: Iterable[str] | str | None = None, *, kind: str | None = "model") -> list[str]:
    """Sorted names of the registered scores of one kind.

    Parameters
    ----------
    have : str or iterable of str, optional
        The inputs the caller can provide (a subset of :data:`NEEDS`); if given,
        only the scores whose ``needs`` are all among them are listed.
    kind : {"model", "pool"} or None, default="model"
        Per-model scores, pool-level scores, or ``None`` for both.

    Raises
    ------
    ValueError
        If ``have`` names an unknown input or ``kind`` is not accepted.

    Examples
    --------
    >>> "logme" in available({"features"}), "leep" in available({"features"})
    (True, False)
    >>> available(kind="pool")
    ['etran', 'ncti']
    """
    return _REGISTRY.available(have, kind=kind)
