"""The random-selection baseline: a seeded uniform draw that ignores the data.

Model-selection benchmarks report the expected quality of picking a candidate at
random (e.g. Deshpande et al. 2021, "A linearized framework and a new benchmark
for model selection for fine-tuning"); this score is that baseline in the form
of a per-model score, so that it runs through the same pipeline as the others.
"""

from __future__ import annotations

import numpy as np

from transferlab._validation import check_features_labels, check_seed
from transferlab.scores._registry import register_score


@register_score(
    "random",
    needs={"features"},
    reference="Random selection baseline, as in Deshpande, Achille, Ravichandran, Li, Zancato, "
    'Fowlkes, Bhotika, Soatto & Perona, "A linearized framework and a new benchmark for '
    'model selection for fine-tuning", arXiv 2021',
    # A seeded draw that ignores the data: invariant to everything but the seed, so one
    # seed for every candidate would tie them all: a ranker gives each its own seed.
    min_per_class=1,
    scale_invariant=True,
    translation_invariant=True,
    per_member_seed=True,
    group="baseline",  # random selection: the floor every score must beat
)
def random(features, labels, *, seed: int = 0) -> float:
    """Random baseline: a uniform draw from [0, 1) fixed by ``seed``; ignores the data.

    .. math::

        S = u, \\qquad u \\sim \\mathcal{U}[0, 1) \\text{ drawn by }
        \\texttt{numpy.random.default\\_rng(seed).random()}

    The features and labels are validated like every other score's (so a bad
    input fails here too) and then deliberately ignored: the value depends on
    ``seed`` alone, the same seed always gives the same number, and no property
    of the candidate model makes it higher. "Higher is better" holds only in the
    trivial sense that a ranking sorts by it; its expected rank correlation with
    real transfer performance is 0.

    Calling it with the same ``seed`` for every candidate gives every candidate
    the same score (a tie). To draw a random ranking of a pool, give each
    candidate its own seed (e.g. its index in the pool, or ``seed + index``);
    repeating that over several base seeds estimates the expected performance of
    random selection.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate (validated, otherwise unused).
    labels : array-like of shape (n_samples,)
        Target labels, at least 2 classes (validated, otherwise unused).
    seed : int, default=0
        A non-negative integer; the only input that changes the result.

    Returns
    -------
    float
        A number in ``[0, 1)``.

    Raises
    ------
    ValueError
        On invalid ``features``/``labels`` (see
        :func:`~transferlab.scores._validation.check_features_labels`) or a
        ``seed`` that is not a non-negative integer.

    References
    ----------
    S. Deshpande et al. A linearized framework and a new benchmark for model
    selection for fine-tuning. arXiv:2102.00084, 2021 (random selection as a
    baseline of the model-selection benchmark).

    Examples
    --------
    The value is NumPy's first uniform draw for the seed:

    >>> labels = [0, 0, 1, 1]
    >>> features = [[0.0], [1.0], [2.0], [3.0]]
    >>> random(features, labels, seed=0) == float(np.random.default_rng(0).random())
    True
    >>> round(random(features, labels, seed=0), 6)
    0.636962
    """
    seed = check_seed(seed)
    check_features_labels(features, labels, min_per_class=1)
    return float(np.random.default_rng(seed).random())
