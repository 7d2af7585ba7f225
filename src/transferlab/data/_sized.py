"""Load a source task at a chosen size: what presets, zoo recipes and the CLI ask for.

A size or seed can come from three places, and the most specific one wins:

1. an explicit argument (``train_per_class=``, ``test_per_class=``, ``seed=``),
2. the spec's own option (``n_train_per_class``, ``n_test_per_class``, ``seed``),
3. a default of the caller (``defaults=``: a study's or a recipe's sizes).

An explicit argument and a spec option that disagree are an error naming both
values: neither silently replaces the other.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from transferlab._validation import check_scalar
from transferlab.data._ops import subsample
from transferlab.data._sources import load_task, parse_spec
from transferlab.data._task import Task

#: Sources that render images on demand: their size is a generation option.
_GENERATED = frozenset({"glyphs", "shapes", "textures"})

#: load_sized's argument -> the spec option it stands for.
_SPEC_OPTION = {"train_per_class": "n_train_per_class", "test_per_class": "n_test_per_class", "seed": "seed"}


def _cap(labels: np.ndarray, n_classes: int, per_class: int | None) -> int | None:
    if per_class is None:
        return None
    smallest = int(np.bincount(labels, minlength=n_classes).min())
    return min(int(per_class), smallest)


def _check_sizes(values: Mapping, what: str) -> dict:
    """``values`` (a subset of load_sized's three settings) checked; ``what`` names them in messages."""
    unknown = sorted(set(values) - set(_SPEC_OPTION))
    if unknown:
        raise ValueError(f"{what} takes only {', '.join(_SPEC_OPTION)}; got {', '.join(map(repr, unknown))}")
    checked = {}
    for name, value in values.items():
        minimum = 0 if name == "seed" else 1
        label = name if what == "arguments" else f"{what}[{name!r}]"
        checked[name] = check_scalar(value, label, (numbers.Integral, type(None)), min_val=minimum)
    return checked


def load_sized(
    spec: str,
    *,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    seed: int | None = None,
    defaults: Mapping[str, int | None] | None = None,
) -> Task:
    """Load the task ``spec`` with at most ``train_per_class`` / ``test_per_class`` images per class.

    Generated sources (glyphs, shapes, textures) render exactly that many; stored
    sources (fashion, digits) are subsampled, stratified and seeded, keeping every
    image of a class that has fewer.

    Parameters
    ----------
    spec : str
        A task spec (:func:`~transferlab.data.load_task`), e.g. ``"glyphs:greek"``
        or ``"shapes,seed=3,n_train_per_class=20"``.
    train_per_class, test_per_class : int or None, default=None
        Explicit sizes. For a generated source, where the spec may set the same
        size (``n_train_per_class``, ``n_test_per_class``), both must agree.
    seed : int or None, default=None
        Explicit seed: the generation seed of a generated source, the
        subsampling seed of a stored one. It must agree with the spec's
        ``seed`` when the spec sets one.
    defaults : mapping, optional
        Values for ``"train_per_class"``, ``"test_per_class"`` and ``"seed"``
        used where neither the argument nor the spec sets one (a study's or a
        zoo recipe's sizes): a spec option wins over them. Without either, a
        generated source has its own default size, a stored one keeps every
        image, and the seed is 0.

    Returns
    -------
    Task
        Named by the normalised spec with the sizes and seed it was loaded with.

    Raises
    ------
    ValueError
        For a malformed spec or value, or an explicit argument that differs from
        the spec's option: the message names both values and how to fix it.

    Notes
    -----
    A spec's ``seed`` is the seed of the whole task: the loader's, and for a
    stored source also the subsampling's. Without one, a stored source is
    loaded with its own default seed and subsampled with ``seed``.

    Examples
    --------
    >>> load_sized("shapes,seed=3", train_per_class=2, test_per_class=1, defaults={"seed": 0}).recipe["seed"]
    3
    """
    explicit = {
        name: value
        for name, value in _check_sizes(
            {"train_per_class": train_per_class, "test_per_class": test_per_class, "seed": seed}, "arguments"
        ).items()
        if value is not None
    }
    fallback = {k: v for k, v in _check_sizes(dict(defaults or {}), "defaults").items() if v is not None}
    source, _, in_spec = parse_spec(spec)
    spec_values = {name: in_spec[option] for name, option in _SPEC_OPTION.items() if option in in_spec}
    for name, value in explicit.items():
        if name in spec_values and spec_values[name] != value:
            option = _SPEC_OPTION[name]
            raise ValueError(
                f"{name}={value} conflicts with {option}={spec_values[name]} in spec {spec!r}; "
                f"give it in one place: drop {option} from the spec, or pass {name}={spec_values[name]}"
            )
    resolved = {**fallback, **spec_values, **explicit}
    if source in _GENERATED:
        options = {_SPEC_OPTION[name]: value for name, value in resolved.items()}
        options.setdefault("seed", 0)
        return load_task(spec, **options)
    task = load_task(spec)
    train_cap = _cap(task.y_train, task.n_classes, resolved.get("train_per_class"))
    test_cap = _cap(task.y_test, task.n_classes, resolved.get("test_per_class"))
    if train_cap is None and test_cap is None:
        return task
    return subsample(task, train_per_class=train_cap, test_per_class=test_cap, seed=resolved.get("seed", 0))
