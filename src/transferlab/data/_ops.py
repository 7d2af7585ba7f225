"""Task operations on labels and sample counts: class subsets, regrouping, k-shot.

Every operation takes a :class:`~transferlab.data._task.Task` and returns a new
one built with :meth:`Task.derive`, so the recipe records the chain of
operations and the fingerprint changes with it. The input task is never
modified (its arrays are read-only anyway).
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from transferlab._validation import check_int, check_scalar, check_seed
from transferlab.data._task import Task

__all__ = ["subset_classes", "relabel", "k_shot", "subsample", "concat_tasks"]


# -- shared validation helpers (also used by _shuffle and _pairs) ---------------------
def _check_task(task: Any, name: str = "task") -> Task:
    if not isinstance(task, Task):
        raise ValueError(f"{name} must be a transferlab Task; got {type(task).__name__}")
    return task


def _resolve_class(task: Task, item: Any, argument: str) -> int:
    """Index of one class given by index (int) or by name (str)."""
    if isinstance(item, str):
        if item in task.class_names:
            return task.class_names.index(item)
        close = difflib.get_close_matches(item, task.class_names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"{argument} names an unknown class {item!r}; task {task.name!r} has classes "
            f"{list(task.class_names)}{hint}"
        )
    name = f"every class in {argument} (task {task.name!r} has {task.n_classes} classes)"
    return check_scalar(item, name, (numbers.Integral, str), min_val=0, max_val=task.n_classes - 1)


def _resolve_classes(task: Task, items: Any, argument: str) -> list[int]:
    if isinstance(items, (str, bytes)) or not isinstance(items, (Sequence, np.ndarray)):
        raise ValueError(
            f"{argument} must be a sequence of class indices or names; got {type(items).__name__} "
            f"{items!r}"
        )
    return [_resolve_class(task, item, argument) for item in items]


def _map_labels(task: Task, new_label: np.ndarray, **extra: Any) -> dict[str, np.ndarray]:
    """Arrays for ``derive``: keep samples whose class maps to ``>= 0``, relabelled."""
    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        x, y = task.split(split)
        mapped = new_label[y]
        keep = mapped >= 0
        arrays[f"x_{split}"] = x[keep]
        arrays[f"y_{split}"] = mapped[keep]
    arrays.update(extra)
    return arrays


def _stratified_indices(
    labels: np.ndarray, per_class: int, rng: np.random.Generator, task: Task, split: str, argument: str
) -> np.ndarray:
    """Sorted indices of ``per_class`` samples of every class, without replacement.

    Classes are visited in order ``0..C-1``; each draws ``rng.choice(members,
    per_class, replace=False)`` from its members (ascending original indices).
    """
    counts = np.bincount(labels, minlength=task.n_classes)
    short = [c for c in range(task.n_classes) if counts[c] < per_class]
    if short:
        listing = ", ".join(f"{task.class_names[c]!r} (index {c}) has {counts[c]}" for c in short)
        raise ValueError(
            f"{argument}={per_class} needs {per_class} {split} samples per class, but in task "
            f"{task.name!r} {listing}; lower {argument} or drop those classes with subset_classes"
        )
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in range(task.n_classes)
    ]
    return np.sort(np.concatenate(chosen))


def _k_shot_indices(owner, k, seed, argument: str = "k") -> tuple[int, int, np.ndarray]:
    """The one k-shot draw: ``(k, seed, keep)``, validated, with the sorted indices kept.

    ``owner`` is anything with ``y_train``, ``n_classes``, ``class_names`` and
    ``name`` (a :class:`~transferlab.data._task.Task` or an
    :class:`~transferlab.data._external.ImageData`); ``keep`` indexes its train
    split: ``k`` samples of every class, drawn with
    ``numpy.random.default_rng(seed)`` as :func:`_stratified_indices` draws them.
    ``argument`` names ``k`` in the error messages (``"k"``, ``"shots"``).
    """
    k = check_int(k, argument)
    seed = check_seed(seed)
    keep = _stratified_indices(owner.y_train, k, np.random.default_rng(seed), owner, "train", argument)
    return k, seed, keep


# -- public operations -------------------------------------------------------------------
def subset_classes(task: Task, classes: Sequence[int | str]) -> Task:
    """Keep some classes of a task, relabelled ``0..k-1`` in the order given.

    Parameters
    ----------
    task : Task
        The task to restrict.
    classes : sequence of int or str, length k >= 2
        Classes to keep, by index or by name (mixing is allowed). New label
        ``i`` is ``classes[i]``; both splits are filtered.

    Returns
    -------
    Task
        A task with ``k`` classes whose recipe records the kept class names
        (so selecting the same classes by index or by name gives the same
        fingerprint).

    Raises
    ------
    ValueError
        Unknown name or index, a class listed twice, or fewer than 2 classes.

    Examples
    --------
    >>> import numpy as np
    >>> from transferlab.data._task import Task
    >>> t = Task("toy", np.zeros((6, 2, 2), np.uint8), [0, 1, 2, 0, 1, 2],
    ...          np.zeros((3, 2, 2), np.uint8), [0, 1, 2], ("a", "b", "c"), {"source": "toy"})
    >>> s = subset_classes(t, ["c", 0])
    >>> s.class_names, s.y_train.tolist()
    (('c', 'a'), [1, 0, 1, 0])
    """
    task = _check_task(task)
    indices = _resolve_classes(task, classes, "classes")
    if len(indices) < 2:
        raise ValueError(f"classes must list at least 2 classes; got {list(classes)!r}")
    seen: set[int] = set()
    for idx in indices:
        if idx in seen:
            raise ValueError(
                f"classes must not repeat a class; {task.class_names[idx]!r} (index {idx}) appears "
                f"more than once in {list(classes)!r}"
            )
        seen.add(idx)
    new_label = np.full(task.n_classes, -1, dtype=np.int64)
    new_label[indices] = np.arange(len(indices))
    names = tuple(task.class_names[i] for i in indices)
    op = {"op": "subset_classes", "classes": list(names)}
    return task.derive(f"{task.name}[{','.join(names)}]", op, **_map_labels(task, new_label, class_names=names))


def relabel(task: Task, groups: Mapping[str, Sequence[int | str]]) -> Task:
    """Merge classes into named groups; classes in no group are dropped.

    Parameters
    ----------
    task : Task
        The task to regroup.
    groups : mapping of str to sequence of int or str
        ``{group name: classes}``, classes by index or name. Group ``i`` (in
        mapping order) becomes label ``i`` and its name the class name. Needs
        at least 2 groups, each non-empty; a class may belong to one group only.

    Returns
    -------
    Task
        A task with ``len(groups)`` classes.

    Raises
    ------
    ValueError
        Fewer than 2 groups, an empty group, an unknown class, or a class that
        appears in two groups (or twice in one).

    Examples
    --------
    >>> import numpy as np
    >>> from transferlab.data._task import Task
    >>> t = Task("toy", np.zeros((4, 2, 2), np.uint8), [0, 1, 2, 3],
    ...          np.zeros((4, 2, 2), np.uint8), [3, 2, 1, 0], ("a", "b", "c", "d"), {"source": "toy"})
    >>> r = relabel(t, {"low": ["a", 1], "high": [3]})
    >>> r.class_names, r.y_train.tolist(), r.y_test.tolist()
    (('low', 'high'), [0, 0, 1], [1, 0, 0])
    """
    task = _check_task(task)
    if not isinstance(groups, Mapping):
        raise ValueError(f"groups must be a mapping {{group name: classes}}; got {type(groups).__name__}")
    if len(groups) < 2:
        raise ValueError(f"groups must define at least 2 groups; got {len(groups)}: {list(groups)!r}")
    new_label = np.full(task.n_classes, -1, dtype=np.int64)
    owner: dict[int, str] = {}
    recorded: list[list[Any]] = []
    for g, (group, members) in enumerate(groups.items()):
        if not isinstance(group, str) or not group:
            raise ValueError(f"groups keys must be non-empty strings (group names); got {group!r}")
        indices = _resolve_classes(task, members, f"groups[{group!r}]")
        if not indices:
            raise ValueError(f"groups[{group!r}] must list at least one class; got an empty group")
        for idx in indices:
            if idx in owner:
                where = "twice in that group" if owner[idx] == group else f"in groups {owner[idx]!r} and {group!r}"
                raise ValueError(
                    f"groups must put each class in one group only; class {task.class_names[idx]!r} "
                    f"(index {idx}) appears {where}"
                )
            owner[idx] = group
            new_label[idx] = g
        recorded.append([group, [task.class_names[i] for i in indices]])
    names = tuple(groups)
    # A list of pairs, not a dict: the canonical JSON of a recipe sorts dict keys,
    # and the group order defines the labels.
    op = {"op": "relabel", "groups": recorded}
    return task.derive(
        f"{task.name}/relabel({','.join(names)})", op, **_map_labels(task, new_label, class_names=names)
    )


def k_shot(task: Task, k: int, *, seed: int = 0) -> Task:
    """Keep exactly ``k`` training samples per class; the test split stays full.

    The selection is stratified: for each class ``c = 0..C-1`` in turn,
    ``numpy.random.default_rng(seed).choice(members_c, k, replace=False)``
    (one generator shared by the classes), then all chosen indices are sorted,
    so samples keep their original relative order.

    Parameters
    ----------
    task : Task
        The task to shrink.
    k : int >= 1
        Training samples per class.
    seed : int >= 0
        Seed of the draw; same seed, same samples.

    Returns
    -------
    Task
        ``k * n_classes`` training samples, the original test split.

    Raises
    ------
    ValueError
        ``k < 1``, or a class with fewer than ``k`` training samples (the
        message names the class and its count).

    Examples
    --------
    >>> import numpy as np
    >>> from transferlab.data._task import Task
    >>> t = Task("toy", np.zeros((8, 2, 2), np.uint8), [0, 1] * 4,
    ...          np.zeros((2, 2, 2), np.uint8), [0, 1], ("a", "b"), {"source": "toy"})
    >>> np.bincount(k_shot(t, 3, seed=1).y_train).tolist()
    [3, 3]
    """
    task = _check_task(task)
    k, seed, keep = _k_shot_indices(task, k, seed)
    op = {"op": "k_shot", "k": k, "seed": seed}
    return task.derive(f"{task.name}/{k}-shot", op, x_train=task.x_train[keep], y_train=task.y_train[keep])


def subsample(
    task: Task, *, train_per_class: int | None = None, test_per_class: int | None = None, seed: int = 0
) -> Task:
    """Stratified subsample of either split: a fixed number of samples per class.

    The same draw as :func:`k_shot`. The train split uses
    ``numpy.random.default_rng(seed)`` (so ``subsample(task,
    train_per_class=k, seed=s)`` keeps the same training samples as
    ``k_shot(task, k, seed=s)``); the test split uses an independent stream,
    ``numpy.random.default_rng([seed, 1])``, so its selection does not depend on
    whether the train split is subsampled.

    Parameters
    ----------
    task : Task
        The task to shrink.
    train_per_class, test_per_class : int >= 1 or None
        Samples per class to keep in each split; ``None`` keeps the split whole.
    seed : int >= 0
        Seed of the draw.

    Returns
    -------
    Task

    Raises
    ------
    ValueError
        A count below 1, or a class with fewer samples than asked in that split
        (strict, like :func:`k_shot`: no class silently keeps fewer).
    """
    task = _check_task(task)
    counts = {}
    for argument, value in (("train_per_class", train_per_class), ("test_per_class", test_per_class)):
        counts[argument] = None if value is None else check_int(value, argument)
    seed = check_seed(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, argument, rng_seed in (
        ("train", "train_per_class", seed),
        ("test", "test_per_class", [seed, 1]),
    ):
        per_class = counts[argument]
        if per_class is None:
            continue
        x, y = task.split(split)
        keep = _stratified_indices(y, per_class, np.random.default_rng(rng_seed), task, split, argument)
        arrays[f"x_{split}"] = x[keep]
        arrays[f"y_{split}"] = y[keep]
    op = {"op": "subsample", "train_per_class": counts["train_per_class"],
          "test_per_class": counts["test_per_class"], "seed": seed}
    label = ",".join(f"{s}={counts[a]}" for s, a in (("train", "train_per_class"), ("test", "test_per_class"))
                     if counts[a] is not None)
    return task.derive(f"{task.name}/subsample({label})", op, **arrays)


def concat_tasks(tasks: Sequence[Task] | Mapping[str, Task], *, name: str | None = None) -> Task:
    """The union of several tasks with the same image shape: one task whose classes are all of theirs.

    Part ``i`` keeps its samples (train and test) in order, after those of parts
    ``0..i-1``; its labels are offset by the number of classes before it,
    :math:`y' = y + \\sum_{j<i} C_j`, and its classes are renamed
    ``"<part>/<class>"``. This is the "generic" pre-training set of the zoo
    (the union of all sources, the analogue of ImageNet in Deshpande et al.
    2021, "A linearized framework and a new benchmark for model selection for
    fine-tuning").

    Parameters
    ----------
    tasks : sequence of Task, or mapping of str to Task
        At least one task, all with the same ``(channels, height, width)``. A
        sequence names the parts by ``task.name``; a mapping by its keys (e.g.
        the source specs), which must be non-empty, unique strings.
    name : str, optional
        Name of the union; default the part names joined by ``"+"``.

    Returns
    -------
    Task
        ``sum(C_i)`` classes. Its recipe records the op and every part (its name
        and recipe), so the fingerprint changes with any part and with their
        order. Images stay ``uint8`` when every part is ``uint8``; otherwise all
        become ``float32`` in ``[0, 1]`` (``uint8`` parts divided by 255).

    Raises
    ------
    ValueError
        No tasks, something that is not a Task, two parts with the same name,
        or parts whose image shapes differ (the message names both).

    Examples
    --------
    >>> import numpy as np
    >>> from transferlab.data._task import Task
    >>> a = Task("a", np.zeros((2, 2, 2), np.uint8), [0, 1], np.zeros((2, 2, 2), np.uint8), [1, 0], ("x", "y"), {})
    >>> b = Task("b", np.zeros((3, 2, 2), np.uint8), [2, 0, 1], np.zeros((1, 2, 2), np.uint8), [2],
    ...          ("p", "q", "r"), {})
    >>> u = concat_tasks([a, b])
    >>> u.name, u.class_names, u.y_train.tolist(), u.y_test.tolist()
    ('a+b', ('a/x', 'a/y', 'b/p', 'b/q', 'b/r'), [0, 1, 4, 2, 3], [1, 0, 4])
    """
    if isinstance(tasks, Mapping):
        parts = list(tasks.items())
        bad = [key for key, _ in parts if not isinstance(key, str) or not key]
        if bad:
            raise ValueError(f"tasks keys must be non-empty strings (part names); got {bad!r}")
    elif isinstance(tasks, (str, bytes)) or not isinstance(tasks, (Sequence, np.ndarray)):
        raise ValueError(f"tasks must be a sequence of Tasks or a mapping {{name: Task}}; got {type(tasks).__name__}")
    else:
        parts = [(getattr(t, "name", None), t) for t in tasks]
    if not parts:
        raise ValueError("tasks must hold at least one Task; got none")
    for i, (key, task) in enumerate(parts):
        _check_task(task, f"tasks[{key!r}]" if isinstance(tasks, Mapping) else f"tasks[{i}]")
    names = [key for key, _ in parts]
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(
            f"tasks must have distinct names (they prefix the class names); {duplicated} appear more than once; "
            "pass a mapping {part name: task} to name them"
        )
    shape = parts[0][1].image_shape
    for key, task in parts[1:]:
        if task.image_shape != shape:
            raise ValueError(
                f"tasks must share one image shape (channels, height, width); {names[0]!r} has {shape} "
                f"but {key!r} has {task.image_shape}"
            )
    as_float = any(task.x_train.dtype != np.uint8 for _, task in parts)
    arrays: dict[str, Any] = {}
    offsets = np.cumsum([0] + [task.n_classes for _, task in parts])
    for split in ("train", "test"):
        xs, ys = [], []
        for (_, task), offset in zip(parts, offsets):
            x, y = task.split(split)
            xs.append(x.astype(np.float32) / np.float32(255) if as_float and x.dtype == np.uint8 else x)
            ys.append(y + offset)
        arrays[f"x_{split}"] = np.concatenate(xs)
        arrays[f"y_{split}"] = np.concatenate(ys)
    class_names = tuple(f"{key}/{c}" for key, task in parts for c in task.class_names)
    recipe = {
        "op": {"op": "concat_tasks"},
        "parts": [{"name": key, "recipe": task.recipe} for key, task in parts],
    }
    return Task(
        name="+".join(names) if name is None else str(name),
        class_names=class_names,
        recipe=recipe,
        **arrays,
    )


def _check_permutation(values: Any, n: int, name: str, meaning: str) -> np.ndarray:
    """``values`` as an int64 permutation of ``0..n-1``; ``meaning`` says what it permutes."""
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{name} must be a permutation of 0..{n - 1} ({meaning}); got {values!r}")
    arr = np.asarray(values)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{name} must be a 1-D integer permutation of 0..{n - 1} ({meaning}); "
            f"got shape {arr.shape} and dtype {arr.dtype}"
        )
    if not np.array_equal(np.sort(arr), np.arange(n)):
        raise ValueError(f"{name} must hold each of 0..{n - 1} exactly once ({meaning}); got {arr.tolist()}")
    return arr.astype(np.int64)
