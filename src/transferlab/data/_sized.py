"""Load a source task at a chosen size: what presets and zoo recipes ask for."""

from __future__ import annotations

import numbers

import numpy as np

from transferlab._validation import check_scalar
from transferlab.data._ops import subsample
from transferlab.data._sources import load_task, parse_spec
from transferlab.data._task import Task

#: Sources that render images on demand: their size is a generation option.
_GENERATED = frozenset({"glyphs", "shapes", "textures"})


def _cap(labels: np.ndarray, n_classes: int, per_class: int | None) -> int | None:
    if per_class is None:
        return None
    smallest = int(np.bincount(labels, minlength=n_classes).min())
    return min(int(per_class), smallest)


def load_sized(
    spec: str,
    *,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    seed: int = 0,
) -> Task:
    """Load the task ``spec`` with at most ``train_per_class`` / ``test_per_class`` images per class.

    Generated sources (glyphs, shapes, textures) render exactly that many; stored
    sources (fashion, digits) are subsampled, stratified and seeded, keeping every
    image of a class that has fewer. ``None`` keeps the source's default size.
    """
    train_per_class, test_per_class = (
        check_scalar(value, name, (numbers.Integral, type(None)), min_val=1)
        for name, value in (("train_per_class", train_per_class), ("test_per_class", test_per_class))
    )
    source = parse_spec(spec)[0]
    if source in _GENERATED:
        options = {"seed": seed}
        if train_per_class is not None:
            options["n_train_per_class"] = int(train_per_class)
        if test_per_class is not None:
            options["n_test_per_class"] = int(test_per_class)
        return load_task(spec, **options)
    task = load_task(spec)
    train_cap = _cap(task.y_train, task.n_classes, train_per_class)
    test_cap = _cap(task.y_test, task.n_classes, test_per_class)
    if train_cap is None and test_cap is None:
        return task
    return subsample(task, train_per_class=train_cap, test_per_class=test_cap, seed=seed)
