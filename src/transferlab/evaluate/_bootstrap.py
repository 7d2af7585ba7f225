"""Percentile bootstrap intervals over targets, and the summary of per-target metrics.

Deshpande et al., "A linearized framework and a new benchmark for model
selection for fine-tuning" (2021), report each selection metric averaged over
the target tasks; we add a 95% percentile bootstrap interval over the targets
(Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13): the
targets are the sampling unit, resampled with replacement.

Missing values
--------------
A metric may be undefined on a target (a correlation when the accuracies of
the zoo are all equal): :func:`~transferlab.evaluate._selection.selection_metrics`
reports it as ``None``. ``None`` values are **dropped** before resampling: the
estimate and the interval are over the targets where the metric is defined.
NaN is not a missing marker and raises.

Seeds
-----
The resampling draws from ``numpy.random.default_rng(seed)``: the same seed
gives the same interval, bit for bit. :func:`summarise` uses one seed for every
metric, so metrics defined on the same targets are resampled with the same
target indices (a paired bootstrap: their intervals are comparable).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from transferlab._validation import check_scalar


def _check_seed(seed) -> np.random.Generator:
    seed = check_scalar(seed, "seed", (numbers.Integral, np.random.Generator), min_val=0)
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_values(values, name: str = "values") -> np.ndarray:
    """Drop None, check that the rest are finite real numbers, at least 2 of them."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"{name} must be 1-D (n_targets,); got shape {values.shape}")
        items = list(values)
    elif isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence with one number per target; got {type(values).__name__}")  # noqa: TRY004 -- house rule
    else:
        items = list(values)
    kept = []
    for i, v in enumerate(items):
        if v is None:
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise ValueError(f"{name} must hold real numbers or None; got {v!r} at index {i}")  # noqa: TRY004 -- house rule
        v = float(v)
        if not np.isfinite(v):
            raise ValueError(
                f"{name} must be finite; got {v!r} at index {i} (use None for a value undefined on a target)"
            )
        kept.append(v)
    if len(kept) < 2:
        raise ValueError(
            f"{name} needs at least 2 defined values (targets) to bootstrap; got {len(kept)} "
            f"of {len(items)} after dropping None"
        )
    return np.asarray(kept, dtype=np.float64)


def _apply(statistic: Callable, sample: np.ndarray) -> float:
    value = statistic(sample)
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "biuf":
        raise ValueError(f"statistic must return one real number; got {value!r}")
    out = float(arr.reshape(()))
    if not np.isfinite(out):
        raise ValueError(f"statistic must return a finite number; got {out!r}")
    return out


def bootstrap_ci(
    values,
    *,
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float, float]:
    """Statistic of the per-target values and its percentile bootstrap interval.

    With the ``m`` defined values :math:`x_1, \\dots, x_m` (``None`` dropped),
    draw ``n_boot`` resamples :math:`x^{*b}` of size ``m`` with replacement
    (index matrix ``rng.integers(0, m, size=(n_boot, m))``), compute
    :math:`\\hat\\theta^{*b} = \\text{statistic}(x^{*b})`, and return

    .. math::

        \\Big(\\hat\\theta,\\;
        Q_{(1-c)/2}\\big(\\hat\\theta^{*}\\big),\\;
        Q_{(1+c)/2}\\big(\\hat\\theta^{*}\\big)\\Big),

    with :math:`\\hat\\theta` the statistic of the original values and
    :math:`Q_p` the ``numpy.percentile`` (linear interpolation) of the bootstrap
    replicates: the percentile interval of Efron & Tibshirani (1993), used here
    over the targets of the model-selection benchmark of Deshpande et al. (2021).

    Parameters
    ----------
    values : sequence of float or None, or array of shape (n_targets,)
        One number per target; ``None`` marks a target where the metric is
        undefined and is dropped.
    statistic : callable, default numpy.mean
        Maps a 1-D float64 array to one real number; called once on the values
        and once per resample.
    n_boot : int, default 2000
        Number of bootstrap resamples, >= 1.
    confidence : float, default 0.95
        Coverage of the interval, in (0, 1).
    seed : int or numpy.random.Generator, default 0
        Seed of ``numpy.random.default_rng``; the same seed gives the same
        interval. A Generator is used (and advanced) as is.

    Returns
    -------
    tuple of float
        ``(estimate, low, high)``. For the mean, ``low <= estimate <= high``
        whenever the interval is wide enough; a constant sample gives a point.

    Raises
    ------
    ValueError
        If fewer than 2 values remain after dropping None, a value is not a
        finite real number, ``n_boot``, ``confidence`` or ``seed`` is invalid, or
        ``statistic`` does not return one finite number.

    Examples
    --------
    >>> bootstrap_ci([0.5, 0.5, 0.5, None])
    (0.5, 0.5, 0.5)
    """
    x = _check_values(values)
    n_boot = check_scalar(n_boot, "n_boot", numbers.Integral, min_val=0, include_boundaries="right")
    confidence = check_scalar(
        confidence, "confidence", numbers.Real, min_val=0, max_val=1, include_boundaries="neither"
    )
    if not callable(statistic):
        raise ValueError(f"statistic must be callable, e.g. numpy.mean; got {statistic!r}")  # noqa: TRY004 -- house rule
    rng = _check_seed(seed)
    return _bootstrap(x, statistic, int(n_boot), float(confidence), rng)


def _bootstrap(
    x: np.ndarray, statistic: Callable, n_boot: int, confidence: float, rng: np.random.Generator
) -> tuple[float, float, float]:
    """Worker on clean input."""
    m = x.shape[0]
    estimate = _apply(statistic, x.copy())
    idx = rng.integers(0, m, size=(n_boot, m))
    replicates = np.fromiter((_apply(statistic, x[row]) for row in idx), dtype=np.float64, count=n_boot)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return estimate, float(low), float(high)


def summarise(
    per_target: Sequence[Mapping[str, float | None]],
    *,
    seed: int | np.random.Generator = 0,
    n_boot: int = 2000,
    confidence: float = 0.95,
) -> dict[str, tuple[float, float, float]]:
    """Mean of every metric over the targets, with its percentile bootstrap interval.

    For every key ``name`` of the per-target dictionaries (e.g. the output of
    :func:`~transferlab.evaluate._selection.selection_metrics` for each target),
    ``bootstrap_ci([d[name] for d in per_target], statistic=numpy.mean, ...)``:
    the average over targets of Deshpande et al. (2021) with a 95% interval.
    ``None`` values are dropped per metric.

    Parameters
    ----------
    per_target : sequence of mapping of str to float or None
        One dictionary per target, all with the same keys.
    seed : int or numpy.random.Generator, default 0
        One seed for every metric, so that metrics defined on the same targets
        share their resamples (paired). A Generator contributes one integer
        seed drawn from it.
    n_boot : int, default 2000
        Number of bootstrap resamples per metric.
    confidence : float, default 0.95
        Coverage of the intervals.

    Returns
    -------
    dict of str to tuple of float
        ``{name: (mean, low, high)}`` in the key order of the first target.

    Raises
    ------
    ValueError
        If ``per_target`` holds fewer than 2 dictionaries, their keys differ,
        or a metric has fewer than 2 defined values (the message names it).

    Examples
    --------
    >>> summarise([{"gain": 1.0}, {"gain": 1.0}, {"gain": 1.0}])
    {'gain': (1.0, 1.0, 1.0)}
    """
    if isinstance(per_target, Mapping) or not isinstance(per_target, Sequence):
        raise ValueError(  # noqa: TRY004 -- house rule
            f"per_target must be a list with one dict of metrics per target; got {type(per_target).__name__}"
        )
    if len(per_target) < 2:
        raise ValueError(f"per_target needs at least 2 targets to bootstrap; got {len(per_target)}")
    for i, d in enumerate(per_target):
        if not isinstance(d, Mapping):
            raise ValueError(f"per_target must hold dicts of metrics; got {type(d).__name__} at index {i}")  # noqa: TRY004 -- house rule
    names = list(per_target[0].keys())
    for i, d in enumerate(per_target[1:], start=1):
        if set(d.keys()) != set(names):
            missing = sorted(set(names) - set(d.keys()))
            extra = sorted(set(d.keys()) - set(names))
            raise ValueError(
                f"every target must report the same metrics; target {i} lacks {missing} and adds {extra} "
                "compared with target 0"
            )
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2**63 - 1))
    else:
        _check_seed(seed)
    out: dict[str, tuple[float, float, float]] = {}
    for name in names:
        try:
            out[name] = bootstrap_ci(
                [d[name] for d in per_target],
                statistic=np.mean,
                n_boot=n_boot,
                confidence=confidence,
                seed=seed,
            )
        except ValueError as err:
            raise ValueError(f"metric {name!r}: {err}") from None
    return out
