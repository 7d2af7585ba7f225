"""Members of a built-in zoo as candidates, and :func:`rank_zoo`.

A zoo member can give every input a score may need, each computed at most once
and cached on disk (:class:`~transferlab.features.FeatureCache`):

- ``features``: the member's features of the target train images;
- ``source_probs``: its source-head softmax on the same images;
- ``gradients``: per-sample gradients of its output with respect to the last
  stage, randomly projected (seeded) to ``gradient_dim`` dimensions;
- ``source_features``: its features of (at most ``source_per_class`` images per
  class of) the source task it was trained on, with their labels;
- ``probe``: features of a small probe network trained on the target, computed
  once per target (it does not depend on the member);
- ``source_accuracy`` and ``parameters`` (the priors' inputs): the member's
  recorded accuracy on its source test split, and its number of parameters.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from transferlab._validation import check_scalar
from transferlab.data import Task, load_sized, subsample
from transferlab.features import FeatureCache
from transferlab.models import check_device
from transferlab.rank._candidate import Candidate
from transferlab.rank._ranking import Ranking, rank
from transferlab.scores import NEEDS
from transferlab.zoo import MemberRecipe, Zoo, ZooMember, load_member_task

#: Default cap on the source images per class read for ``source_features``.
SOURCE_PER_CLASS = 100


class _ZooTarget:
    """What the members of one zoo ranking share: the target, the cache, the settings,
    the source tasks (several members may share one) and the probe features (one per target)."""

    def __init__(self, target, cache, device, progress, source_per_class, gradient_dim, seed):
        self.target = target
        self.cache = cache
        self.device = device
        self.progress = progress
        self.source_per_class = source_per_class
        self.gradient_dim = gradient_dim
        self.seed = seed
        self._sources: dict[tuple, Task] = {}
        self._probe: np.ndarray | None = None

    def source_task(self, member: ZooMember) -> Task:
        """The member's source task, at most ``source_per_class`` train images per class."""
        recipe = member.metadata.get("member", {})
        spec_text = recipe.get("source", member.source)
        train_per_class = recipe.get("train_per_class")
        per_class = self.source_per_class
        if train_per_class is not None:
            per_class = min(int(train_per_class), per_class)
        seed = int(recipe.get("train", {}).get("seed", 0))
        key = (spec_text, per_class, seed)
        if key not in self._sources:
            # test_per_class=1: only the train split is read; keeps generated sources cheap.
            if recipe.get("role") == "generic":  # the union of the sources it was trained on
                sized = dataclasses.replace(MemberRecipe.from_dict(recipe), train_per_class=per_class, test_per_class=1)
                self._sources[key] = load_member_task(sized)
            else:
                # As the zoo built it (the spec's own options win over the recipe's), then capped.
                task = load_sized(spec_text, defaults={"train_per_class": per_class, "test_per_class": 1, "seed": seed})
                if np.bincount(task.y_train, minlength=task.n_classes).max() > per_class:
                    task = subsample(task, train_per_class=per_class, seed=seed)
                self._sources[key] = task
        return self._sources[key]

    def probe_features(self) -> np.ndarray:
        if self._probe is None:
            self._probe = self.cache.probe(self.target, seed=self.seed, device=self.device, progress=self.progress)
        return self._probe


class ZooCandidate(Candidate):
    """A member of a built-in zoo, ranked on a target task: it provides every input.

    Build them with :func:`zoo_candidates`, which shares the target's source
    tasks and probe features among the members. The member's checkpoint is
    loaded on the first request for an array; :meth:`close` lets it go.

    Attributes
    ----------
    name : str
        The member's name.
    fingerprint : str
        ``"<member name>@<target fingerprint>"``.
    provides : frozenset of str
        Every need (:data:`~transferlab.scores.NEEDS`), the priors' included:
        ``source_accuracy`` is the member's recorded source test accuracy,
        ``parameters`` the number of parameters of its network (head included).
    info : dict
        ``arch``, ``source``, ``source_accuracy`` of the member.
    """

    provides = NEEDS

    def __init__(self, member: ZooMember, shared: _ZooTarget):
        self.member = member
        self.name = member.name
        self.fingerprint = f"{member.name}@{shared.target.fingerprint}"
        self._shared = shared
        self._model = None
        self._arrays: dict[str, np.ndarray] = {}

    @property
    def info(self) -> dict:
        m = self.member
        return {"arch": m.arch, "source": m.source, "source_accuracy": m.source_accuracy}

    def array(self, argument: str) -> np.ndarray:
        if argument not in self._arrays:
            self._compute(argument)
        return self._arrays[argument]

    def close(self) -> None:
        self._model = None
        self._arrays.clear()

    def _compute(self, argument: str) -> None:
        s = self._shared
        if argument == "probe_features":  # the target's, not the member's: no model needed
            self._arrays[argument] = s.probe_features()
            return
        if argument == "source_accuracy":  # recorded when the member was built: no model needed
            self._arrays[argument] = self.member.source_accuracy
            return
        if self._model is None:
            self._model = self.member.load(s.device)
        common = {"device": s.device, "progress": s.progress}
        if argument == "features":
            self._arrays[argument] = s.cache.features(self._model, s.target, split="train", **common)
        elif argument == "source_probs":
            self._arrays[argument] = s.cache.source_probabilities(self._model, s.target, split="train", **common)
        elif argument == "gradients":
            self._arrays[argument] = s.cache.gradients(
                self._model, s.target, split="train", dim=s.gradient_dim, seed=s.seed, **common
            )
        elif argument in ("source_features", "source_labels"):
            source = s.source_task(self.member)
            self._arrays["source_features"] = s.cache.features(self._model, source, split="train", **common)
            self._arrays["source_labels"] = source.y_train
        elif argument == "n_parameters":
            self._arrays[argument] = sum(int(p.numel()) for p in self._model.parameters())
        else:
            raise ValueError(f"unknown score input {argument!r} for zoo member {self.name!r}")


def zoo_candidates(
    zoo: Zoo,
    target: Task,
    *,
    cache: FeatureCache | None = None,
    device: str = "cpu",
    progress: bool = True,
    source_per_class: int = SOURCE_PER_CLASS,
    gradient_dim: int = 1024,
    seed: int = 0,
) -> list[ZooCandidate]:
    """The members of ``zoo`` as candidates for the train split of ``target``, in zoo order.

    Parameters are those of :func:`rank_zoo` (``seed`` here seeds the gradient
    projection and the probe network).

    Raises
    ------
    ValueError
        If ``zoo`` has no members, or ``source_per_class`` or ``gradient_dim`` is
        not an integer >= 1.
    """
    source_per_class = check_scalar(source_per_class, "source_per_class", numbers.Integral, min_val=1)
    gradient_dim = check_scalar(gradient_dim, "gradient_dim", numbers.Integral, min_val=1)
    if len(zoo) == 0:
        raise ValueError("zoo has no members: nothing to rank")
    shared = _ZooTarget(target, cache or FeatureCache(), device, progress, source_per_class, gradient_dim, seed)
    return [ZooCandidate(member, shared) for member in zoo]


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
    bootstrap: int = 100,
) -> Ranking:
    """Score every member of ``zoo`` on the train split of ``target``.

    A thin wrapper: ``rank(zoo_candidates(zoo, target, ...), target.y_train,
    scores, target=target.name, seed=seed, bootstrap=bootstrap, ...)``.

    Parameters
    ----------
    zoo : Zoo
        Built by :func:`~transferlab.zoo.build_zoo`.
    target : Task
        The target task; scores read its train split (subsample it first to
        score on at most K samples per class).
    scores : sequence of str, optional
        Per-model and pool-level score names (see
        :func:`transferlab.scores.available`, ``kind=None`` for both); default
        :func:`~transferlab.rank.default_scores`, every per-model score.
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
        Seed of the gradient projection, the probe network, every seeded score
        and the bootstrap.
    bootstrap : int, default 100
        Bootstrap resamples of the target samples (0: none); see
        :func:`~transferlab.rank.rank`.

    Returns
    -------
    Ranking
        Rows (``model``, ``arch``, ``source``, ``source_accuracy``, the scores)
        sorted as :func:`~transferlab.rank.rank` sorts them.

    Raises
    ------
    ValueError
        On an unknown score name, a bad argument, or when a score rejects a
        member's arrays (the message names the member and the score).
    """
    check_device(device)
    candidates = zoo_candidates(
        zoo, target, cache=cache, device=device, progress=progress,
        source_per_class=source_per_class, gradient_dim=gradient_dim, seed=seed,
    )
    return rank(candidates, target.y_train, scores, target=target.name, seed=seed, device=device, progress=progress,
                bootstrap=bootstrap)
