"""Model-selection metrics of one target: correlations, top-k gains, random-selection baselines.

The evaluation of Deshpande et al., "A linearized framework and a new benchmark
for model selection for fine-tuning" (arXiv:2102.00084, 2021): for one target
task, a zoo of ``n`` models has transferability ``scores`` (higher = predicted
better) and ground-truth ``accuracies`` after fine-tuning. A score is judged by
how well it correlates with the accuracies, by the accuracy of the model it
would pick (over the "ImageNet expert", here the generic expert ``baseline``),
and by how many fine-tunings it saves; each number sits next to its expected
value when the models are picked uniformly at random.

Ties in score
-------------
Every function that follows the score order breaks ties in score
**pessimistically**, as :func:`~transferlab.evaluate._ranking.trials_to_best`
does: among models with the same score, those with the lower accuracy come
first. This is the worst case over every order compatible with the scores, so a
score that cannot tell models apart gets no credit for a lucky index order (a
constant score selects the ``k`` worst models). The random-selection
expectations need no tie rule: they depend on the accuracies only.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from scipy import stats

from transferlab._validation import check_scalar
from transferlab.evaluate._ranking import (
    _check_not_constant,
    _check_scores_accuracies,
    _check_vector,
    trials_to_best,
    weighted_kendall,
)

# --------------------------------------------------------------------------- validation


def _check_accuracies(accuracies) -> np.ndarray:
    """Validate the accuracies alone: 1-D, finite, at least one model."""
    a = _check_vector(accuracies, "accuracies")
    if a.shape[0] < 1:
        raise ValueError("accuracies must hold at least 1 model; got an empty array")
    return a


def _check_int(value, name: str, low: int, high: int) -> int:
    """An integer (not a bool) in ``low..high`` inclusive."""
    return check_scalar(value, name, numbers.Integral, min_val=low, max_val=high)


def _check_k(k, n: int) -> int:
    return _check_int(k, "k", 1, n)


def _check_baseline(baseline, n: int) -> int:
    return _check_int(baseline, "baseline (index of the generic expert)", 0, n - 1)


def _check_ratio_accuracies(a: np.ndarray) -> None:
    """Relative accuracies divide by the best accuracy: it must be positive."""
    if np.any(a < 0):
        bad = int(np.flatnonzero(a < 0)[0])
        raise ValueError(f"relative top-k accuracy needs non-negative accuracies; got {a[bad].item()!r} at index {bad}")
    if a.max() == 0:
        raise ValueError("relative top-k accuracy is undefined when every accuracy is 0 (0 / 0)")


# --------------------------------------------------------------------------- workers (clean input)


def _top_k_best(s: np.ndarray, a: np.ndarray, k: int) -> float:
    """Best accuracy among the first ``k`` models in decreasing score order, ties pessimistic."""
    # lexsort: the last key is the primary one. Decreasing score, then increasing accuracy.
    order = np.lexsort((a, -s))
    return float(a[order[:k]].max())


def _expected_max_of_k(a: np.ndarray, k: int) -> float:
    """E[max of k values drawn without replacement] by the order-statistic weights."""
    n = a.shape[0]
    sorted_a = np.sort(a)
    # w_i = C(i-1, k-1) / C(n, k) for the i-th smallest (1-based), zero for i < k.
    # w_n = k / n and w_{i-1} = w_i (i - k) / (i - 1): each factor is in [0, 1], so the
    # recurrence never overflows (binomials of a few hundred models would).
    i = np.arange(n, k, -1, dtype=np.float64)  # n, n-1, ..., k+1
    factors = (i - k) / (i - 1.0)
    tail = (k / n) * np.concatenate(([1.0], np.cumprod(factors)))  # w_n, w_{n-1}, ..., w_k
    weights = np.zeros(n, dtype=np.float64)
    weights[k - 1 :] = tail[::-1]
    return float(np.dot(weights, sorted_a))


# --------------------------------------------------------------------------- correlations


def spearman(scores, accuracies) -> float:
    """Spearman rank correlation between the scores and the fine-tuned accuracies.

    ``scipy.stats.spearmanr(scores, accuracies).statistic``: the Pearson
    correlation of the ranks (ties get their average rank),

    .. math::

        \\rho_S = \\frac{\\operatorname{cov}(R(s), R(a))}{\\sigma_{R(s)} \\sigma_{R(a)}}.

    Used as a secondary ranking metric by Deshpande et al. (2021) and later
    model-selection benchmarks.

    Parameters
    ----------
    scores : array-like of shape (n_models,)
        Transferability scores (higher = predicted better).
    accuracies : array-like of shape (n_models,)
        Ground-truth accuracies after fine-tuning.

    Returns
    -------
    float
        In [-1, 1].

    Raises
    ------
    ValueError
        If the inputs are not 1-D finite vectors of the same length >= 2, or
        either is constant (the correlation is undefined; scipy would return NaN).

    Examples
    --------
    >>> round(spearman([0.1, 0.5, 0.9, 0.7], [60.0, 70.0, 80.0, 90.0]), 12)
    0.8
    """
    s, a = _check_scores_accuracies(scores, accuracies)
    _check_not_constant(s, a)
    return _finite(stats.spearmanr(s, a).statistic, "spearman")


def pearson(scores, accuracies) -> float:
    """Pearson linear correlation between the scores and the fine-tuned accuracies.

    ``scipy.stats.pearsonr(scores, accuracies).statistic``:

    .. math::

        r = \\frac{\\sum_m (s_m - \\bar s)(a_m - \\bar a)}
                 {\\sqrt{\\sum_m (s_m - \\bar s)^2}\\sqrt{\\sum_m (a_m - \\bar a)^2}}.

    Parameters
    ----------
    scores : array-like of shape (n_models,)
        Transferability scores (higher = predicted better).
    accuracies : array-like of shape (n_models,)
        Ground-truth accuracies after fine-tuning.

    Returns
    -------
    float
        In [-1, 1].

    Raises
    ------
    ValueError
        If the inputs are not 1-D finite vectors of the same length >= 2, or
        either is constant (the correlation is undefined; scipy would return NaN).

    Examples
    --------
    >>> round(pearson([1.0, 2.0, 3.0], [10.0, 20.0, 30.0]), 12)
    1.0
    """
    s, a = _check_scores_accuracies(scores, accuracies)
    _check_not_constant(s, a)
    return _finite(stats.pearsonr(s, a).statistic, "pearson")


def _finite(value, name: str) -> float:
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} is not finite ({value!r}); the inputs overflow float64 arithmetic, rescale them")
    return value


# --------------------------------------------------------------------------- top-k selection


def top_k_gain(scores, accuracies, baseline, k: int = 1) -> float:
    """Accuracy gain of the top-k selection over the generic expert.

    Fine-tune the ``k`` models with the highest scores and keep the best; the
    gain is its accuracy minus the accuracy of the baseline model (the "ImageNet
    expert" of Deshpande et al., 2021, the generic expert of our zoo):

    .. math::

        \\text{gain}_k = \\max_{m \\in \\text{top}_k(s)} a_m - a_{\\text{baseline}}.

    Ties in score are broken pessimistically (lower accuracy first; see the
    module docstring), the worst case over the orders compatible with the scores.

    Parameters
    ----------
    scores : array-like of shape (n_models,)
        Transferability scores (higher = predicted better).
    accuracies : array-like of shape (n_models,)
        Ground-truth accuracies after fine-tuning, in any unit (the gain has it).
    baseline : int
        Index in ``0..n_models-1`` of the generic expert.
    k : int, default 1
        Number of models fine-tuned, in ``1..n_models``.

    Returns
    -------
    float
        Negative when the selection is worse than the generic expert. Since the
        baseline is in the zoo, the gain is at most ``max(a) - a[baseline]``.

    Raises
    ------
    ValueError
        If the inputs are not 1-D finite vectors of the same length >= 2, or
        ``baseline`` or ``k`` is not an integer in range.

    Examples
    --------
    >>> top_k_gain([0.9, 0.5, 0.7], [70.0, 80.0, 75.0], baseline=1, k=2)
    -5.0
    """
    s, a = _check_scores_accuracies(scores, accuracies)
    base = _check_baseline(baseline, s.shape[0])
    k = _check_k(k, s.shape[0])
    return _top_k_best(s, a, k) - float(a[base])


def relative_top_k_accuracy(scores, accuracies, k: int = 1) -> float:
    """Best accuracy among the top-k models by score, relative to the best accuracy of the zoo.

    .. math::

        \\text{rel}_k = \\frac{\\max_{m \\in \\text{top}_k(s)} a_m}{\\max_m a_m} \\in [0, 1],

    1 when the top-k selection contains a best model (the "relative top-k
    accuracy" used alongside the gain to compare selections across targets of
    different difficulty). Ties in score are broken pessimistically.

    Parameters
    ----------
    scores : array-like of shape (n_models,)
        Transferability scores (higher = predicted better).
    accuracies : array-like of shape (n_models,)
        Ground-truth accuracies after fine-tuning, non-negative with a positive
        maximum (a ratio of accuracies).
    k : int, default 1
        Number of models fine-tuned, in ``1..n_models``.

    Returns
    -------
    float
        In [0, 1]; in (0, 1] when every accuracy is positive.

    Raises
    ------
    ValueError
        If the inputs are not 1-D finite vectors of the same length >= 2, an
        accuracy is negative, every accuracy is 0, or ``k`` is out of range.

    Examples
    --------
    >>> relative_top_k_accuracy([0.9, 0.5, 0.7], [70.0, 80.0, 75.0], k=1)
    0.875
    """
    s, a = _check_scores_accuracies(scores, accuracies)
    _check_ratio_accuracies(a)
    k = _check_k(k, s.shape[0])
    return _top_k_best(s, a, k) / float(a.max())


# --------------------------------------------------------------------------- random selection


def expected_trials_to_best_random(accuracies) -> float:
    """Expected :func:`trials_to_best` when the models are tried in a uniformly random order.

    With ``b`` best models (accuracy equal to the maximum) among ``n``, the
    position of the first best model in a random order has expectation

    .. math::

        \\mathbb{E}[T] = \\frac{n + 1}{b + 1}

    (the ``n - b`` other models fall into the ``b + 1`` gaps around the best
    ones with equal expected counts, ``(n - b) / (b + 1)`` before the first).
    The random baseline of the "trials to best" metric of Deshpande et al. (2021).

    Parameters
    ----------
    accuracies : array-like of shape (n_models,)
        Ground-truth accuracies after fine-tuning.

    Returns
    -------
    float
        In ``[1, (n + 1) / 2]``.

    Raises
    ------
    ValueError
        If ``accuracies`` is not a non-empty 1-D finite vector.

    Examples
    --------
    >>> expected_trials_to_best_random([70.0, 80.0, 75.0, 60.0])
    2.5
    """
    a = _check_accuracies(accuracies)
    n = a.shape[0]
    b = int(np.sum(a == a.max()))
    return (n + 1) / (b + 1)


def expected_top_k_accuracy_random(accuracies, k: int) -> float:
    """Expected best accuracy among ``k`` models drawn uniformly without replacement.

    With the accuracies sorted increasingly, :math:`a_{(1)} \\le \\dots \\le a_{(n)}`,
    the ``i``-th smallest is the maximum of a random ``k``-subset exactly when the
    other ``k - 1`` members come from the ``i - 1`` below it, so

    .. math::

        \\mathbb{E}\\Big[\\max_{m \\in S} a_m\\Big]
        = \\sum_{i=k}^{n} \\frac{\\binom{i-1}{k-1}}{\\binom{n}{k}} a_{(i)}.

    Ties among accuracies do not matter (tied values are interchangeable). The
    weights are computed by the recurrence :math:`w_n = k/n`,
    :math:`w_{i-1} = w_i (i-k)/(i-1)`, which never overflows.

    Parameters
    ----------
    accuracies : array-like of shape (n_models,)
        Ground-truth accuracies after fine-tuning.
    k : int
        Size of the random selection, in ``1..n_models``.

    Returns
    -------
    float
        Between the mean accuracy (``k = 1``) and the maximum (``k = n``).

    Raises
    ------
    ValueError
        If ``accuracies`` is not a non-empty 1-D finite vector or ``k`` is out of range.

    Examples
    --------
    >>> round(expected_top_k_accuracy_random([10.0, 20.0, 30.0, 40.0], k=2), 10)  # 200 / 6
    33.3333333333
    """
    a = _check_accuracies(accuracies)
    k = _check_k(k, a.shape[0])
    return _expected_max_of_k(a, k)


def expected_top_k_gain_random(accuracies, baseline, k: int = 1) -> float:
    """Expected :func:`top_k_gain` of a uniformly random selection of ``k`` models.

    .. math::

        \\mathbb{E}[\\text{gain}_k] = \\mathbb{E}\\Big[\\max_{m \\in S} a_m\\Big] - a_{\\text{baseline}},

    with the expectation of :func:`expected_top_k_accuracy_random`.

    Parameters
    ----------
    accuracies : array-like of shape (n_models,)
        Ground-truth accuracies after fine-tuning.
    baseline : int
        Index in ``0..n_models-1`` of the generic expert.
    k : int, default 1
        Size of the random selection, in ``1..n_models``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``accuracies`` is not a non-empty 1-D finite vector, or ``baseline``
        or ``k`` is out of range.

    Examples
    --------
    >>> expected_top_k_gain_random([10.0, 20.0, 30.0, 40.0], baseline=1, k=1)
    5.0
    """
    a = _check_accuracies(accuracies)
    base = _check_baseline(baseline, a.shape[0])
    k = _check_k(k, a.shape[0])
    return _expected_max_of_k(a, k) - float(a[base])


def expected_relative_top_k_accuracy_random(accuracies, k: int = 1) -> float:
    """Expected :func:`relative_top_k_accuracy` of a uniformly random selection of ``k`` models.

    The denominator is fixed, so by linearity

    .. math::

        \\mathbb{E}[\\text{rel}_k] = \\mathbb{E}\\Big[\\max_{m \\in S} a_m\\Big] \\Big/ \\max_m a_m.

    Parameters
    ----------
    accuracies : array-like of shape (n_models,)
        Ground-truth accuracies after fine-tuning, non-negative with a positive maximum.
    k : int, default 1
        Size of the random selection, in ``1..n_models``.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    ValueError
        If ``accuracies`` is not a non-empty 1-D finite vector, an accuracy is
        negative, every accuracy is 0, or ``k`` is out of range.

    Examples
    --------
    >>> expected_relative_top_k_accuracy_random([10.0, 20.0, 30.0, 40.0], k=1)
    0.625
    """
    a = _check_accuracies(accuracies)
    _check_ratio_accuracies(a)
    k = _check_k(k, a.shape[0])
    return _expected_max_of_k(a, k) / float(a.max())


# --------------------------------------------------------------------------- summary


def _check_ks(ks, n: int) -> tuple[int, ...]:
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Sequence):
        raise ValueError(f"ks must be a sequence of integers such as (1, 3); got {ks!r}")  # noqa: TRY004 -- house rule
    if len(ks) == 0:
        raise ValueError("ks must hold at least one k; got an empty sequence")
    out = tuple(_check_int(k, f"every k in ks (zoo of {n} models)", 1, n) for k in ks)
    if len(set(out)) != len(out):
        raise ValueError(f"ks must not repeat a value; got {tuple(ks)!r}")
    return out


def _correlation_or_none(fn, s: np.ndarray, a: np.ndarray) -> float | None:
    """The correlation, or None when scores or accuracies are constant."""
    if np.all(s == s[0]) or np.all(a == a[0]):
        return None
    return fn(s, a)


def selection_metrics(scores, accuracies, *, baseline, ks=(1, 3)) -> dict[str, float | None]:
    """Every model-selection metric of one target, next to its random-selection expectation.

    The per-target evaluation of Deshpande et al. (2021), "A linearized
    framework and a new benchmark for model selection for fine-tuning". Keys,
    in this order (``{k}`` for every ``k`` in ``ks``):

    - ``weighted_kendall``, ``spearman``, ``pearson``: see :func:`weighted_kendall`,
      :func:`spearman`, :func:`pearson`; ``None`` when the scores or the
      accuracies are constant (the correlation is undefined), never NaN.
    - ``top{k}_gain``: :func:`top_k_gain` over the generic expert ``baseline``.
    - ``relative_top{k}_accuracy``: :func:`relative_top_k_accuracy`; ``None``
      when every accuracy is 0.
    - ``trials_to_best``: :func:`trials_to_best`, as a float.
    - ``random_top{k}_gain``, ``random_relative_top{k}_accuracy``,
      ``random_trials_to_best``: the expected values of the same metrics when
      the models are picked uniformly at random (:func:`expected_top_k_gain_random`,
      :func:`expected_relative_top_k_accuracy_random`,
      :func:`expected_trials_to_best_random`).

    Ties in score are broken pessimistically (see the module docstring).

    Parameters
    ----------
    scores : array-like of shape (n_models,)
        Transferability scores (higher = predicted better).
    accuracies : array-like of shape (n_models,)
        Ground-truth accuracies after fine-tuning (non-negative, e.g. percent).
    baseline : int
        Index in ``0..n_models-1`` of the generic expert (the "ImageNet expert").
    ks : sequence of int, default (1, 3)
        Selection sizes, distinct, each in ``1..n_models``.

    Returns
    -------
    dict of str to float or None

    Raises
    ------
    ValueError
        If the inputs are not 1-D finite vectors of the same length >= 2, an
        accuracy is negative, or ``baseline`` or an entry of ``ks`` is out of range.

    Examples
    --------
    >>> m = selection_metrics([0.9, 0.5, 0.7, 0.1], [70.0, 80.0, 75.0, 60.0], baseline=1, ks=(1, 2))
    >>> m["top1_gain"], m["top2_gain"], m["random_top1_gain"], m["trials_to_best"]
    (-10.0, -5.0, -8.75, 3.0)
    """
    s, a = _check_scores_accuracies(scores, accuracies)
    n = s.shape[0]
    base = _check_baseline(baseline, n)
    ks = _check_ks(ks, n)
    if np.any(a < 0):
        _check_ratio_accuracies(a)  # raises, naming the negative accuracy
    ratio_defined = a.max() > 0
    best = float(a.max())

    out: dict[str, float | None] = {
        "weighted_kendall": _correlation_or_none(weighted_kendall, s, a),
        "spearman": _correlation_or_none(spearman, s, a),
        "pearson": _correlation_or_none(pearson, s, a),
    }
    for k in ks:
        out[f"top{k}_gain"] = _top_k_best(s, a, k) - float(a[base])
    for k in ks:
        out[f"relative_top{k}_accuracy"] = _top_k_best(s, a, k) / best if ratio_defined else None
    out["trials_to_best"] = float(trials_to_best(s, a))
    for k in ks:
        out[f"random_top{k}_gain"] = _expected_max_of_k(a, k) - float(a[base])
    for k in ks:
        out[f"random_relative_top{k}_accuracy"] = _expected_max_of_k(a, k) / best if ratio_defined else None
    out["random_trials_to_best"] = (n + 1) / (int(np.sum(a == best)) + 1)
    return out
