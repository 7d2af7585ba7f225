"""Argument checks shared by every package: one message for one mistake.

A public function validates its arguments once, with the functions here, and
hands clean values to private workers that assume them (the scikit-learn
pattern). Every check raises :class:`ValueError` naming the argument, what was
expected and what arrived. The array checks never modify the caller's arrays:
the feature, probability, label and target checks return fresh float64 (or
int64) copies.

Scalars and sequences:

- :func:`check_scalar` -- a number (or other scalar) of a type, within bounds.
- :func:`check_int` -- an ``int`` >= a minimum (bools and floats refused).
- :func:`check_nonnegative` -- a finite ``float`` >= 0.
- :func:`check_seed` -- a non-negative ``int`` seed.
- :func:`check_int_sequence` -- a non-empty list of ints >= a minimum.

Arrays:

- :func:`check_features` -- an ``(N, D)`` finite numeric matrix.
- :func:`_check_labels` -- class labels of any integer or string values, mapped to
  ``0..C-1`` (used by the functions below).
- :func:`check_features_labels` -- both, with matching ``N`` (``name`` for other
  per-sample matrices, e.g. ``"gradients"``).
- :func:`check_source_probs` -- an ``(N, Z)`` matrix of source-class probabilities
  with matching labels.
- :func:`check_source_features` -- features of the candidate's source data
  ``(M, D)`` and their labels (one class allowed), optionally with a fixed ``D``.
- :func:`check_rows` -- a per-sample matrix that must have ``N`` rows, e.g.
  ``probe_features`` next to ``features``.
- :func:`check_targets` -- real-valued regression targets ``(N,)`` or ``(N, K)``.
- :func:`check_matrix` -- any finite numeric 2-D array (a head's weights, a map).
- :func:`check_images` -- a batch of images ``(N, C, H, W)`` (or ``(N, H, W)``).

This module imports only NumPy and the standard library: every package may use it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "PROB_SUM_ATOL",
    "check_features",
    "check_features_labels",
    "check_images",
    "check_int",
    "check_int_sequence",
    "check_labels",
    "check_matrix",
    "check_nonnegative",
    "check_rows",
    "check_scalar",
    "check_seed",
    "check_source_features",
    "check_source_probs",
    "check_targets",
]

_BOUNDARY_MODES = ("both", "left", "right", "neither")


# --------------------------------------------------------------------------- scalars


def _normalise_types(target_type) -> tuple[type, ...]:
    """``target_type`` as a tuple, with ``int``/``float`` widened to the ABCs (NumPy scalars pass)."""
    types = target_type if isinstance(target_type, tuple) else (target_type,)
    if not types or not all(isinstance(t, type) for t in types):
        raise ValueError(f"target_type must be a type or a tuple of types; got {target_type!r}")
    widened = {int: (numbers.Integral,), float: (numbers.Real,), bool: (bool, np.bool_)}
    return tuple(w for t in types for w in widened.get(t, (t,)))


def _describe(types: tuple[type, ...], min_val, max_val, include_boundaries: str) -> str:
    """What ``check_scalar`` accepts, in words: "an integer >= 1", "a finite number in (0, 1]", "a string"...

    A numeric kind comes first with its range, then the other accepted types:
    ``"an integer >= 2 or None"``. A lone exclusive lower bound of 0 reads
    "positive" (``"a positive finite number"``); two bounds read as an interval.
    """
    others = []
    numeric = None
    for t in types:
        if t is bool or t is np.bool_:
            others.append("a bool")
        elif issubclass(t, numbers.Integral):
            numeric = numeric or "integer"
        elif issubclass(t, numbers.Real):
            numeric = "finite number"
        elif t is type(None):
            others.append("None")
        elif t is str:
            others.append("a string")
        else:
            others.append(f"a {t.__name__}")
    words = []
    if numeric is not None:
        left = include_boundaries in ("both", "left")
        right = include_boundaries in ("both", "right")
        article = "an" if numeric == "integer" else "a"
        if min_val is not None and max_val is not None:
            interval = f"{'[' if left else '('}{min_val}, {max_val}{']' if right else ')'}"
            text = f"{article} {numeric} in {interval}"
        elif min_val is not None and min_val == 0 and not left:
            text = f"a positive {numeric}"
        else:
            text = f"{article} {numeric}"
            if min_val is not None:
                text += f" {'>=' if left else '>'} {min_val}"
            if max_val is not None:
                text += f" {'<=' if right else '<'} {max_val}"
        words.append(text)
    words.extend(dict.fromkeys(others))
    return " or ".join(words)


def _scalar_message(value, name, types, min_val, max_val, include_boundaries) -> str:
    return f"{name} must be {_describe(types, min_val, max_val, include_boundaries)}; got {value!r}"


def check_scalar(
    value: Any,
    name: str,
    target_type: type | tuple[type, ...],
    *,
    min_val: float | None = None,
    max_val: float | None = None,
    include_boundaries: str = "both",
) -> Any:
    """Validate a scalar argument's type and range (scikit-learn style).

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        The argument name used in the error message.
    target_type : type or tuple of types
        The accepted types, e.g. ``numbers.Integral``, ``numbers.Real``, ``int``,
        ``float``, ``str``, ``bool``, ``type(None)`` (an optional argument).
        ``int`` and ``float`` stand for :class:`numbers.Integral` and
        :class:`numbers.Real`, and ``bool`` takes ``numpy.bool_`` too, so NumPy
        scalars pass. A ``bool`` is refused unless ``bool`` itself is one of
        the types.
    min_val, max_val : float, optional
        The bounds of the accepted range; ``None`` leaves that side open.
    include_boundaries : {"both", "left", "right", "neither"}, default="both"
        Which of ``min_val`` (left) and ``max_val`` (right) are accepted values.

    Returns
    -------
    value : int, float or object
        ``int(value)`` when ``value`` is an integer and ``target_type`` accepts
        integers; ``float(value)`` for other real numbers; ``bool(value)`` for a
        bool; ``value`` otherwise.

    Raises
    ------
    ValueError
        If ``value`` has another type, is a bool where a number is wanted, is NaN
        or infinite, or lies outside the range. The message names the argument,
        what is accepted and what arrived: ``"n must be an integer >= 1; got 0"``,
        ``"p must be a finite number in (0, 1]; got 1.5"``, ``"tol must be a
        positive finite number; got 0.0"`` (a lone exclusive bound of 0),
        ``"max_samples must be an integer >= 2 or None; got 1"`` (``type(None)``
        among the types). Also if ``include_boundaries`` or ``target_type`` is not
        one of the accepted values.

    Examples
    --------
    >>> import numbers
    >>> check_scalar(3, "n_epochs", numbers.Integral, min_val=1)
    3
    >>> check_scalar(1, "lr", numbers.Real, min_val=0, include_boundaries="neither")
    1.0
    >>> check_scalar(0.0, "lr", numbers.Real, min_val=0, include_boundaries="neither")
    Traceback (most recent call last):
        ...
    ValueError: lr must be a positive finite number; got 0.0
    >>> check_scalar(None, "max_samples", (numbers.Integral, type(None)), min_val=2) is None
    True
    """
    if include_boundaries not in _BOUNDARY_MODES:
        raise ValueError(
            f"include_boundaries must be one of {', '.join(map(repr, _BOUNDARY_MODES))}; "
            f"got {include_boundaries!r}"
        )
    types = _normalise_types(target_type)
    is_bool = isinstance(value, (bool, np.bool_))
    if (is_bool and bool not in types and np.bool_ not in types) or not isinstance(value, types):
        raise ValueError(_scalar_message(value, name, types, min_val, max_val, include_boundaries))
    if is_bool:
        return bool(value)
    if not isinstance(value, numbers.Real):
        return value
    too_low = min_val is not None and (
        value < min_val or (value == min_val and include_boundaries in ("right", "neither"))
    )
    too_high = max_val is not None and (
        value > max_val or (value == max_val and include_boundaries in ("left", "neither"))
    )
    # an Integral is always finite (and a huge Python int must not reach math.isfinite)
    if too_low or too_high or not (isinstance(value, numbers.Integral) or math.isfinite(value)):
        raise ValueError(_scalar_message(value, name, types, min_val, max_val, include_boundaries))
    if isinstance(value, numbers.Integral) and any(
        issubclass(t, numbers.Integral) for t in types if t not in (bool, np.bool_)
    ):
        return int(value)
    return float(value)


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    """Validate an integer argument with a lower bound.

    Parameters
    ----------
    value : object
        The value to check; bools and floats (even ``2.0``) are refused.
    name : str
        The argument name used in the error message.
    minimum : int, default=1
        The smallest accepted value.

    Returns
    -------
    int
        ``int(value)``.

    Raises
    ------
    ValueError
        ``"{name} must be an integer >= {minimum}; got {value!r}"``.

    Examples
    --------
    >>> check_int(4, "batch_size")
    4
    """
    return check_scalar(value, name, numbers.Integral, min_val=minimum)


def check_nonnegative(value: Any, name: str) -> float:
    """Validate a finite non-negative real argument.

    Parameters
    ----------
    value : object
        The value to check; bools, NaN and Inf are refused.
    name : str
        The argument name used in the error message.

    Returns
    -------
    float
        ``float(value)``.

    Raises
    ------
    ValueError
        ``"{name} must be a finite number >= 0; got {value!r}"``.

    Examples
    --------
    >>> check_nonnegative(0, "weight_decay")
    0.0
    """
    return check_scalar(value, name, numbers.Real, min_val=0)


def check_seed(seed: Any) -> int:
    """Validate a seed: a non-negative ``int`` (it is written into JSON recipes).

    Parameters
    ----------
    seed : object
        The value to check; bools, floats and negative integers are refused.

    Returns
    -------
    int
        ``int(seed)``.

    Raises
    ------
    ValueError
        ``"seed must be a non-negative integer; got {seed!r}"``.

    Examples
    --------
    >>> check_seed(0)
    0
    """
    try:
        return check_scalar(seed, "seed", numbers.Integral, min_val=0)
    except ValueError:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}") from None


def check_int_sequence(value: Any, name: str, *, minimum: int = 1, length: int | None = None) -> list[int]:
    """Validate a non-empty sequence of integers with a lower bound.

    Parameters
    ----------
    value : sequence of int or ndarray
        The values to check (a string is not a sequence here).
    name : str
        The argument name used in the error messages; entry ``i`` is ``name[i]``.
    minimum : int, default=1
        The smallest accepted entry.
    length : int, optional
        The exact number of entries required.

    Returns
    -------
    list of int
        The entries as Python ints.

    Raises
    ------
    ValueError
        If ``value`` is not a sequence, is empty, has another length than
        ``length``, or an entry fails :func:`check_int`.

    Examples
    --------
    >>> check_int_sequence((16, 32), "widths")
    [16, 32]
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must be a sequence of integers; got {value!r}")
    items = list(value)
    if not items:
        raise ValueError(f"{name} must have at least one entry; got {value!r}")
    if length is not None and len(items) != length:
        raise ValueError(f"{name} must have {length} entries; got {len(items)}: {value!r}")
    return [check_int(v, f"{name}[{i}]", minimum=minimum) for i, v in enumerate(items)]


# --------------------------------------------------------------------------- arrays


#: Largest deviation of a row sum of ``source_probs`` from 1 that is accepted.
PROB_SUM_ATOL = 1e-6

_NUMERIC_KINDS = "biuf"


def _as_numeric_array(values, name: str) -> np.ndarray:
    """``np.asarray(values)`` that rejects non-numeric data with a clear message."""
    arr = np.asarray(values)
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} must be numeric; got an object array that cannot be converted to float"
            ) from None
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"{name} must be numeric (bool, int or float); got dtype {arr.dtype}")
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(arr.size - finite.sum() - n_nan)
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{name} must be finite; got {n_nan} NaN and {n_inf} Inf values "
            f"(first at index {first})"
        )


def _check_matrix(values, name: str, what: str) -> np.ndarray:
    """A non-empty, finite, numeric 2-D array as a C-contiguous float64 copy."""
    arr = _as_numeric_array(values, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D {what}; got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty {what}; got shape {arr.shape}")
    # np.array(..., copy=True) always copies, so the caller's array is never aliased.
    out = np.array(arr, dtype=np.float64, order="C", copy=True)
    _check_finite(out, name)
    return out


def check_features(features, *, name: str = "features") -> np.ndarray:
    """Validate a feature matrix.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Numeric (bool, int or float) and finite.
    name : str, default="features"
        The argument name used in error messages (e.g. ``"source_features"``).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
        A C-contiguous copy.

    Raises
    ------
    ValueError
        If ``features`` is not 2-D, is empty, is not numeric or holds NaN/Inf.

    Examples
    --------
    >>> check_features([[1, 2], [3, 4]]).dtype
    dtype('float64')
    """
    return _check_matrix(features, name, "(n_samples, n_features)")


def _labels_array(labels, name: str) -> np.ndarray:
    """Labels as a 1-D array of integers or strings (integral floats become int64)."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        hint = "; use labels.ravel() for a column vector" if arr.ndim == 2 and arr.shape[1:] == (1,) else ""
        raise ValueError(f"{name} must be 1-D (n_samples,); got shape {arr.shape}{hint}")
    kind = arr.dtype.kind
    if kind in "biuUS":
        return arr
    if kind == "f":
        _check_finite(arr, name)
        if not np.all(arr == np.round(arr)):
            bad = arr[arr != np.round(arr)][0].item()
            raise ValueError(
                f"{name} must be integers or strings (class labels); got non-integral "
                f"float value {bad!r}. For real-valued targets use a regression score"
            )
        return arr.astype(np.int64)
    if kind == "O":
        items = arr.tolist()
        if all(isinstance(v, str) for v in items):
            return arr.astype(str)
        if all(isinstance(v, numbers.Integral) for v in items):
            return arr.astype(np.int64)
        raise ValueError(
            f"{name} must be all integers or all strings; got an object array with types "
            f"{sorted({type(v).__name__ for v in items})}"
        )
    raise ValueError(f"{name} must be integers or strings (class labels); got dtype {arr.dtype}")


def _check_labels(
    labels,
    n_samples: int,
    *,
    min_per_class: int,
    name: str = "labels",
    of: str | None = None,
    min_classes: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate class labels and map them to ``0..C-1``.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Integers of any values (negative, non-contiguous), integral floats
        (``1.0``, ``2.0``), or strings.
    n_samples : int
        The number of samples the labels must match (the rows of the features).
    min_per_class : int
        Every class needs at least this many samples (at least 1).
    name : str, default="labels"
        The argument name used in error messages.
    of : str, optional
        The argument whose rows define ``n_samples`` (e.g. ``"features"``); named
        in the length-mismatch message.
    min_classes : int, default=2
        The fewest distinct classes accepted (1 for a source set that may hold
        a single class).

    Returns
    -------
    y : ndarray of shape (n_samples,), int64
        Class indices in ``0..C-1``; index ``k`` stands for ``classes[k]``.
    classes : ndarray of shape (n_classes,)
        The sorted distinct label values (``np.unique``).

    Raises
    ------
    ValueError
        If the labels are not 1-D, do not match ``n_samples``, are empty, are
        non-integral floats, have fewer than ``min_classes`` classes, or a class
        has fewer than ``min_per_class`` samples.

    Examples
    --------
    >>> y, classes = _check_labels(["b", "a", "b", "a"], 4, min_per_class=2)
    >>> y.tolist(), classes.tolist()
    ([1, 0, 1, 0], ['a', 'b'])
    """
    check_int(min_per_class, "min_per_class")
    if min_classes not in (1, 2):
        raise ValueError(f"min_classes must be 1 or 2; got {min_classes!r}")
    arr = _labels_array(labels, name)
    if arr.shape[0] != n_samples:
        source = f" ({of} has {n_samples} rows)" if of else ""
        raise ValueError(
            f"{name} must have one entry per sample (n_samples={n_samples}); got {arr.shape[0]}{source}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must be non-empty; got 0 samples")
    classes, y = np.unique(arr, return_inverse=True)
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    if classes.shape[0] < min_classes:
        raise ValueError(
            f"{name} must contain at least 2 classes; got 1 class ({classes[0].item()!r})"
        )
    counts = np.bincount(y, minlength=classes.shape[0])
    small = np.flatnonzero(counts < min_per_class)
    if small.size:
        k = int(small[0])
        more = f" (and {small.size - 1} more classes)" if small.size > 1 else ""
        raise ValueError(
            f"every class in {name} needs at least {min_per_class} samples; class "
            f"{classes[k].item()!r} has {int(counts[k])}{more}"
        )
    return y, classes


def check_labels(labels, *, min_per_class: int = 2, name: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """Validate class labels alone (for a score that reads no per-sample array) and map them to ``0..C-1``.

    The rules of :func:`check_features_labels` for ``labels``: 1-D, non-empty,
    integers, integral floats or strings, at least 2 classes, every class with
    at least ``min_per_class`` samples.

    Returns
    -------
    y : ndarray of shape (n_samples,), int64
    classes : ndarray of shape (n_classes,)

    Examples
    --------
    >>> y, classes = check_labels(["b", "a", "b"], min_per_class=1)
    >>> y.tolist(), classes.tolist()
    ([1, 0, 1], ['a', 'b'])
    """
    arr = _labels_array(labels, name)
    return _check_labels(arr, arr.shape[0], min_per_class=min_per_class, name=name)


def check_features_labels(
    features, labels, *, min_per_class: int = 2, name: str = "features"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a feature matrix and its class labels.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Numeric and finite; float32 is converted to float64.
    labels : array-like of shape (n_samples,)
        Integers, integral floats or strings (see :func:`_check_labels`).
    min_per_class : int, default=2
        Every class needs at least this many samples.
    name : str, default="features"
        The argument name of ``features`` in error messages (e.g. ``"gradients"``).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
        A C-contiguous copy of ``features``.
    y : ndarray of shape (n_samples,), int64
        Class indices in ``0..C-1``.
    classes : ndarray of shape (n_classes,)
        The sorted distinct label values.

    Raises
    ------
    ValueError
        See :func:`check_features` and :func:`_check_labels`.

    Examples
    --------
    >>> X, y, classes = check_features_labels([[0.0], [1.0], [2.0], [3.0]], [7, -1, 7, -1])
    >>> X.shape, y.tolist(), classes.tolist()
    ((4, 1), [1, 0, 1, 0], [-1, 7])
    """
    X = check_features(features, name=name)
    y, classes = _check_labels(labels, X.shape[0], min_per_class=min_per_class, of=name)
    return X, y, classes


def check_source_probs(
    source_probs, labels, *, min_per_class: int = 1, atol: float = PROB_SUM_ATOL
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate source-model probabilities and target labels.

    Parameters
    ----------
    source_probs : array-like of shape (n_samples, n_source_classes)
        Row ``i`` is the source model's predicted distribution over its own
        classes for target sample ``i``: finite, non-negative, each row summing
        to 1 within ``atol``.
    labels : array-like of shape (n_samples,)
        Target labels (see :func:`_check_labels`).
    min_per_class : int, default=1
        Every target class needs at least this many samples.
    atol : float, default=1e-6
        Tolerance on the row sums.

    Returns
    -------
    P : ndarray of shape (n_samples, n_source_classes), float64
        A C-contiguous copy of ``source_probs`` (not renormalised).
    y : ndarray of shape (n_samples,), int64
        Class indices in ``0..C-1``.
    classes : ndarray of shape (n_classes,)
        The sorted distinct label values.

    Raises
    ------
    ValueError
        If ``source_probs`` is not 2-D, not finite, has a negative entry or a row
        whose sum is not 1; or the labels are invalid (see :func:`_check_labels`).

    Examples
    --------
    >>> P, y, _ = check_source_probs([[0.2, 0.8], [1.0, 0.0]], ["cat", "dog"])
    >>> P.shape, y.tolist()
    ((2, 2), [0, 1])
    """
    P = _check_matrix(source_probs, "source_probs", "(n_samples, n_source_classes)")
    if (P < 0).any():
        i, z = (int(v) for v in np.argwhere(P < 0)[0])
        raise ValueError(
            f"source_probs must be non-negative probabilities; got {P[i, z].item()!r} at row {i}, "
            f"column {z}. Apply a softmax to logits first"
        )
    deviation = np.abs(P.sum(axis=1) - 1.0)
    worst = int(np.argmax(deviation))
    if deviation[worst] > atol:
        raise ValueError(
            f"every row of source_probs must sum to 1 (within {atol:g}); row {worst} sums to "
            f"{P[worst].sum():.10g}. Apply a softmax to logits first"
        )
    y, classes = _check_labels(labels, P.shape[0], min_per_class=min_per_class, of="source_probs")
    return P, y, classes


def check_source_features(
    source_features,
    source_labels,
    *,
    n_features: int | None = None,
    min_per_class: int = 1,
    min_classes: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the features of a candidate's source data and their labels.

    Parameters
    ----------
    source_features : array-like of shape (n_source_samples, n_features)
        Numeric and finite, from the same model as the target ``features``.
    source_labels : array-like of shape (n_source_samples,)
        Source class labels (integers or strings), mapped to ``0..S-1``.
    n_features : int, optional
        The number of columns required: the target features' ``D`` (the same
        model's feature space).
    min_per_class : int, default=1
        Every source class needs at least this many samples.
    min_classes : int, default=1
        The fewest source classes accepted (a source set may hold one class).

    Returns
    -------
    S : ndarray of shape (n_source_samples, n_features), float64
        A C-contiguous copy of ``source_features``.
    ys : ndarray of shape (n_source_samples,), int64
        Source class indices in ``0..S-1``.
    source_classes : ndarray of shape (n_source_classes,)
        The sorted distinct source label values.

    Raises
    ------
    ValueError
        If ``source_features`` is not a finite non-empty 2-D numeric array, does
        not have ``n_features`` columns, or the labels are invalid (see
        :func:`_check_labels`; the messages name ``source_features`` and
        ``source_labels``).

    Examples
    --------
    >>> S, ys, classes = check_source_features([[0.0, 1.0], [2.0, 3.0]], ["x", "x"], n_features=2)
    >>> S.shape, ys.tolist(), classes.tolist()
    ((2, 2), [0, 0], ['x'])
    """
    S = check_features(source_features, name="source_features")
    if n_features is not None and S.shape[1] != n_features:
        raise ValueError(
            f"source_features must have the same number of features as features ({n_features}, the "
            f"same model's feature space); got shape {S.shape}"
        )
    ys, classes = _check_labels(
        source_labels,
        S.shape[0],
        min_per_class=min_per_class,
        name="source_labels",
        of="source_features",
        min_classes=min_classes,
    )
    return S, ys, classes


def check_rows(values, n_samples: int, *, name: str, of: str = "features") -> np.ndarray:
    """Validate a per-sample matrix that must have one row per sample of another input.

    For example ``probe_features`` (N, E) next to the candidate's ``features``
    (N, D): the same samples in the same order, any number of columns.

    Parameters
    ----------
    values : array-like of shape (n_samples, n_columns)
        Numeric and finite.
    n_samples : int
        The number of rows required.
    name : str
        The argument name used in error messages.
    of : str, default="features"
        The argument whose rows define ``n_samples``.

    Returns
    -------
    ndarray of shape (n_samples, n_columns), float64
        A C-contiguous copy.

    Raises
    ------
    ValueError
        If ``values`` is not a finite non-empty 2-D numeric array or has another
        number of rows.

    Examples
    --------
    >>> check_rows([[1.0], [2.0]], 2, name="probe_features").shape
    (2, 1)
    """
    out = _check_matrix(values, name, "(n_samples, n_features)")
    if out.shape[0] != n_samples:
        raise ValueError(
            f"{name} must have one row per sample of {of} (n_samples={n_samples}); got {out.shape[0]} rows"
        )
    return out


def check_targets(targets, n_samples: int, *, name: str = "labels") -> np.ndarray:
    """Validate real-valued regression targets.

    Parameters
    ----------
    targets : array-like of shape (n_samples,) or (n_samples, n_targets)
        Numeric and finite (multi-label 0/1 indicator matrices are fine).
    n_samples : int
        The number of rows the targets must have.
    name : str, default="labels"
        The argument name used in error messages.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_targets), float64
        A C-contiguous copy; a 1-D input becomes one column.

    Raises
    ------
    ValueError
        If the targets are not 1-D or 2-D, do not have ``n_samples`` rows, have
        no column, are not numeric or hold NaN/Inf.

    Examples
    --------
    >>> check_targets([0.5, 1.5, 2.5], 3).shape
    (3, 1)
    """
    arr = _as_numeric_array(targets, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(
            f"{name} (regression targets) must be (n_samples,) or (n_samples, n_targets); "
            f"got shape {arr.shape}"
        )
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} must have one row per sample (n_samples={n_samples}); got {arr.shape[0]}"
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one target column; got shape {arr.shape}")
    out = np.array(arr, dtype=np.float64, order="C", copy=True)
    _check_finite(out, name)
    return out


def check_sample_weight(weights, n_samples: int, *, name: str = "sample_weight", batched: bool = False) -> np.ndarray:
    """Validate per-sample weights: finite, non-negative, one per sample, not all zero.

    With ``batched=True`` a 2-D array of shape ``(n_weightings, n_samples)`` is
    accepted too: several weightings at once (a score then returns one value per
    row), each row checked as a 1-D array would be.

    Parameters
    ----------
    weights : array-like of shape (n_samples,), or (n_weightings, n_samples) when batched
    n_samples : int
    name : str, default="sample_weight"
    batched : bool, default=False
        Accept a 2-D stack of weightings.

    Returns
    -------
    ndarray of shape (n_samples,) or (n_weightings, n_samples), float64
        A new array (the caller's is never modified).

    Raises
    ------
    ValueError
        If the weights are not 1-D with ``n_samples`` entries (or, batched, 2-D
        with rows of ``n_samples`` entries), not numeric, hold NaN/Inf or a
        negative value, or are all zero (in any row).

    Examples
    --------
    >>> check_sample_weight([1, 0, 2], 3)
    array([1., 0., 2.])
    >>> check_sample_weight([[1, 0, 2], [1, 1, 1]], 3, batched=True).shape
    (2, 3)
    """
    arr = _as_numeric_array(weights, name)
    two_d = batched and arr.ndim == 2 and arr.shape[1] == n_samples and arr.shape[0] >= 1
    if arr.shape != (n_samples,) and not two_d:
        also = f", or ({n_samples},) rows stacked, (n_weightings, {n_samples})" if batched else ""
        raise ValueError(
            f"{name} must have shape ({n_samples},), one weight per sample{also}; got shape {arr.shape}"
        )
    out = np.array(arr, dtype=np.float64, copy=True)
    _check_finite(out, name)
    if (out < 0).any():
        first = np.unravel_index(int(np.argmin(out)), out.shape)
        where = int(first[0]) if out.ndim == 1 else tuple(int(i) for i in first)
        raise ValueError(f"{name} must be non-negative; got {out.min():g} at index {where}")
    if out.ndim == 1 and not out.any():
        raise ValueError(f"{name} is all zeros: no sample would count")
    if out.ndim == 2:
        empty = np.flatnonzero(~out.any(axis=1))
        if empty.size:
            raise ValueError(f"{name} is all zeros in row {int(empty[0])}: no sample of that weighting would count")
    return out


def check_matrix(values, name: str, what: str = "(n_rows, n_columns)") -> np.ndarray:
    """Validate a finite numeric 2-D array of any meaning (a head's weights, a map, ...).

    Parameters
    ----------
    values : array-like of shape (n_rows, n_columns)
        Numeric (bool, int or float), finite and non-empty.
    name : str
        The argument name used in error messages.
    what : str, default="(n_rows, n_columns)"
        The layout named in the shape messages, e.g. ``"(K_S, D)"``.

    Returns
    -------
    ndarray of shape (n_rows, n_columns), float64
        A C-contiguous copy.

    Raises
    ------
    ValueError
        If ``values`` is not 2-D (``"{name} must be 2-D {what}; got shape ..."``),
        is empty, is not numeric or holds NaN/Inf.

    Examples
    --------
    >>> check_matrix([[1, 0], [0, 1]], "feature_map", "(D, D)").dtype
    dtype('float64')
    """
    return _check_matrix(values, name, what)


def check_images(images, name: str = "images") -> np.ndarray:
    """Validate a batch of images for a model.

    Parameters
    ----------
    images : array-like of shape (n_samples, channels, height, width) or (n_samples, height, width)
        ``uint8`` (0..255) or float; float images must be finite. A 3-D array
        gets a channel axis.
    name : str, default="images"
        The argument name used in error messages.

    Returns
    -------
    ndarray of shape (n_samples, channels, height, width)
        ``numpy.asarray(images)`` (no copy when it already is one), with the
        channel axis added to a 3-D array; the dtype is kept.

    Raises
    ------
    ValueError
        If the images are not 3-D or 4-D, are empty, or hold NaN/Inf.

    Examples
    --------
    >>> check_images(np.zeros((2, 28, 28), dtype=np.uint8)).shape
    (2, 1, 28, 28)
    """
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4:
        raise ValueError(f"{name} must be (n_samples, channels, height, width); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if arr.dtype != np.uint8 and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def check_multilabel(targets, n_samples: int, *, name: str = "labels") -> np.ndarray:
    """Validate a multi-label 0/1 indicator matrix.

    Parameters
    ----------
    targets : array-like of shape (n_samples, n_labels)
        0/1 (or False/True) entries: row ``i`` marks the labels of sample ``i``.
    n_samples : int
        The number of rows the matrix must have.
    name : str, default="labels"
        The argument name used in error messages.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_labels), float64
        A C-contiguous copy.

    Raises
    ------
    ValueError
        If the matrix is not 2-D with ``n_samples`` rows and at least one
        column, or holds a value other than 0 and 1.

    Examples
    --------
    >>> check_multilabel([[1, 0], [0, 1], [1, 1]], 3).shape
    (3, 2)
    """
    arr = _as_numeric_array(targets, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} (multi-label) must be a 0/1 matrix (n_samples, n_labels); got shape {arr.shape}")
    out = check_targets(arr, n_samples, name=name)
    bad = ~((out == 0) | (out == 1))
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{name} (multi-label) must hold only 0 and 1; got {arr[i, j].item()!r} "
                         f"at row {i}, column {j}")
    return out


#: The kinds of target: ``"classes"`` (single-label class labels, (N,)), ``"regression"``
#: (real-valued targets, (N,) or (N, K)) and ``"multilabel"`` (a 0/1 matrix (N, L)).
TARGET_KINDS = ("classes", "regression", "multilabel")


def check_target_kind(target_kind, name: str = "target_kind") -> str:
    """``target_kind`` if it is one of :data:`TARGET_KINDS`; else a ValueError naming ``name``.

    Examples
    --------
    >>> check_target_kind("regression")
    'regression'
    """
    if not isinstance(target_kind, str) or target_kind not in TARGET_KINDS:
        raise ValueError(f"{name} must be one of {', '.join(repr(k) for k in TARGET_KINDS)}; got {target_kind!r}")
    return target_kind
