"""Mistake agreement between two models and distances between their weights: pure NumPy.

Neyshabur, Sedghi & Zhang, "What is being transferred in transfer learning?"
(NeurIPS 2020), Section 3.2 and 3.3: models fine-tuned from the same pre-trained
weights make more common mistakes and stay closer in weight space than models
trained from random initialisations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["mistake_agreement", "weight_distance"]


def _labels(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1 or a.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of class labels; got shape {a.shape}")
    if a.dtype.kind == "f" and (not np.all(np.isfinite(a)) or np.any(a != np.round(a))):
        raise ValueError(f"{name} must hold integer class labels; got non-integral floats")
    return a


def mistake_agreement(pred_a, pred_b, labels) -> dict:
    """How two models' errors overlap on the same samples.

    Returns counts and fractions of: ``both_right``; ``common_mistakes`` (both
    wrong), of which ``same_wrong_label`` predict the same wrong class;
    ``only_a_wrong`` and ``only_b_wrong`` (the uncommon mistakes); and
    ``disagreement`` (the models predict different classes).

    Examples
    --------
    >>> r = mistake_agreement([0, 1, 2, 2], [0, 2, 1, 2], [0, 1, 1, 0])
    >>> r["both_right"], r["common_mistakes"], r["only_a_wrong"], r["only_b_wrong"]
    (1, 1, 1, 1)
    """
    a, b, y = _labels(pred_a, "pred_a"), _labels(pred_b, "pred_b"), _labels(labels, "labels")
    if not a.shape == b.shape == y.shape:
        raise ValueError(f"pred_a, pred_b and labels must have the same length; got {a.shape}, {b.shape}, {y.shape}")
    right_a, right_b = a == y, b == y
    counts = {
        "both_right": int(np.sum(right_a & right_b)),
        "common_mistakes": int(np.sum(~right_a & ~right_b)),
        "same_wrong_label": int(np.sum(~right_a & ~right_b & (a == b))),
        "only_a_wrong": int(np.sum(~right_a & right_b)),
        "only_b_wrong": int(np.sum(right_a & ~right_b)),
        "disagreement": int(np.sum(a != b)),
    }
    n = y.shape[0]
    return {**counts, **{f"{k}_fraction": v / n for k, v in counts.items()}, "n": int(n)}


def weight_distance(weights_a: Mapping[str, np.ndarray], weights_b: Mapping[str, np.ndarray],
                    groups: Sequence[str] = ()) -> dict:
    """Euclidean distance between two sets of weights, whole and per group of names.

    ``||theta_a - theta_b||_2`` over every shared tensor (``"total"``), and for
    each prefix in ``groups`` (e.g. ``"stages.conv1."``) over the tensors whose
    names start with it. Accumulated in float64.
    """
    if set(weights_a) != set(weights_b):
        missing = sorted(set(weights_a) ^ set(weights_b))
        raise ValueError(f"the two weight sets must name the same tensors; they differ in {missing[:5]}")
    squares = {}
    for name in weights_a:
        a, b = np.asarray(weights_a[name], dtype=np.float64), np.asarray(weights_b[name], dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(f"tensor {name!r} has shape {a.shape} in one set and {b.shape} in the other")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            raise ValueError(f"tensor {name!r} contains NaN or Inf")
        squares[name] = float(np.sum((a - b) ** 2))
    out = {"total": float(np.sqrt(sum(squares.values())))}
    for prefix in groups:
        names = [n for n in squares if n.startswith(prefix)]
        if not names:
            raise ValueError(f"no tensor name starts with {prefix!r}")
        out[prefix] = float(np.sqrt(sum(squares[n] for n in names)))
    return out
