"""Priors: target-blind facts about a model that every transferability score must beat.

A prior reads nothing of the target task: the model's accuracy on its own
source task, or its number of parameters. Renggli et al. (CVPR 2022) show that
such facts (a model that is better on ImageNet, or larger, tends to transfer
better) are strong baselines for model selection: a score that reads the
target must do better than them to be worth its cost. They are registered as
scores (``group="prior"``) so the ranker computes them like every other score;
``labels`` are validated (so a bad call fails here too) and otherwise unused.
"""

from __future__ import annotations

import numbers

import numpy as np

from transferlab._validation import check_labels, check_scalar
from transferlab.scores._registry import register_score

_REFERENCE = (
    'Renggli, Pinto, Rimanic, Puigcerver, Riquelme, Zhang & Lucic, "Which model to transfer? '
    'Finding the needle in the growing haystack", CVPR 2022 (source accuracy and model size as baselines)'
)


def _scalar(value, name: str):
    """A Python scalar from a number or a 0-d array (a 0-d array of any dtype, a NumPy scalar included)."""
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise ValueError(f"{name} must be a single number (a float or a 0-d array); got shape {value.shape}")
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


@register_score(
    "source_accuracy",
    needs={"source_accuracy"},
    reference=_REFERENCE,
    # Target-blind: labels are validated, never read (a class of one sample is fine, any class
    # names). It reads no features: translation and scale do not apply (declared False, as LEEP).
    min_per_class=1,
    group="prior",
    resample=False,  # constant in the target samples: nothing to resample
)
def source_accuracy(labels, *, source_accuracy) -> float:
    """Source accuracy prior: the model's accuracy on its own source task, in [0, 1]; ignores the target.

    .. math::

        S = \\text{acc}_{\\text{source}}

    A prior, not a transferability score: the same value on every target. It
    is the baseline "pick the model that is best on its source task", which
    Renggli et al. (2022) find strong; every score that reads the target must
    beat it.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Target labels, at least 2 classes (validated, otherwise unused).
    source_accuracy : float or 0-d array
        The model's accuracy on its source task, finite, in ``[0, 1]``.

    Returns
    -------
    float
        ``source_accuracy``.

    Raises
    ------
    ValueError
        On invalid ``labels``, or a ``source_accuracy`` that is not a finite
        number in ``[0, 1]``.

    References
    ----------
    C. Renggli et al. Which model to transfer? Finding the needle in the
    growing haystack. CVPR 2022.

    Examples
    --------
    >>> source_accuracy([0, 1, 1], source_accuracy=0.93)
    0.93
    """
    check_labels(labels, min_per_class=1)
    value = check_scalar(
        _scalar(source_accuracy, "source_accuracy"), "source_accuracy", numbers.Real, min_val=0, max_val=1
    )
    return float(value)


@register_score(
    "parameters",
    needs={"parameters"},
    reference=_REFERENCE,
    # Target-blind: labels are validated, never read. It reads no features (declared False, as LEEP).
    min_per_class=1,
    group="prior",
    resample=False,  # constant in the target samples: nothing to resample
)
def parameters(labels, *, n_parameters) -> float:
    """Model size prior: the model's number of parameters, as a float; ignores the target.

    .. math::

        S = |\\theta|

    A prior, not a transferability score: the same value on every target. It
    is the baseline "pick the largest model", which Renggli et al. (2022) find
    strong; every score that reads the target must beat it. Only its order
    matters to a ranking (a rank correlation reads no more).

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Target labels, at least 2 classes (validated, otherwise unused).
    n_parameters : int or 0-d integer array
        The model's number of parameters, an integer >= 1.

    Returns
    -------
    float
        ``float(n_parameters)``.

    Raises
    ------
    ValueError
        On invalid ``labels``, or an ``n_parameters`` that is not an integer
        >= 1 (a float such as ``1e6`` included: a count is an integer).

    References
    ----------
    C. Renggli et al. Which model to transfer? Finding the needle in the
    growing haystack. CVPR 2022.

    Examples
    --------
    >>> parameters([0, 1, 1], n_parameters=11_689_512)
    11689512.0
    """
    check_labels(labels, min_per_class=1)
    value = check_scalar(_scalar(n_parameters, "n_parameters"), "n_parameters", numbers.Integral, min_val=1)
    return float(value)
