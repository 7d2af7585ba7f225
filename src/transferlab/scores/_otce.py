"""OTCE, F-OTCE and JC-OTCE: optimal transport between source and target features, then a conditional entropy.

Tan, Li & Huang, "OTCE: A Transferability Metric for Cross-Domain Cross-Task
Representations", CVPR 2021 (OTCE); Tan, Zhang, Li, Huang & Zhang,
"Transferability-Guided Cross-Domain Cross-Task Transfer Learning", IEEE TNNLS
2025, arXiv:2207.05510 (F-OTCE and JC-OTCE).

The three scores share one computation: an exact optimal coupling ``P`` (M, N)
between the source samples (rows) and the target samples (columns), each with
uniform mass, and the conditional entropy of the target labels given the
source labels under that coupling. They differ in the ground cost of the
transport and in what they add to the entropy.
"""

from __future__ import annotations

import numbers

import numpy as np

from transferlab._linalg import binary_exponent
from transferlab._validation import check_features_labels, check_scalar, check_seed, check_source_features
from transferlab.scores._linalg import _class_sums
from transferlab.scores._registry import register_score

_REFERENCE_OTCE = (
    'Tan, Li & Huang, "OTCE: A Transferability Metric for Cross-Domain Cross-Task Representations", CVPR 2021'
)
_REFERENCE_AUX_FREE = (
    'Tan, Zhang, Li, Huang & Zhang, "Transferability-Guided Cross-Domain Cross-Task Transfer Learning", '
    "IEEE TNNLS 2025 (arXiv:2207.05510)"
)

#: Iteration budget of POT's network simplex (its default is 1e5): far above what the capped
#: problems need, so that the plan is the exact optimum, never a truncated one.
_MAX_PIVOTS = 100_000_000


# --------------------------------------------------------------------------- the shared pieces


def _check_max_samples(max_samples) -> int | None:
    return check_scalar(max_samples, "max_samples", (numbers.Integral, type(None)), min_val=2)


def _capped_rows(X: np.ndarray, y: np.ndarray, n_classes: int, max_samples: int | None, rng) -> np.ndarray:
    """Sorted indices of a seeded class-stratified subset of at most about ``max_samples`` rows (all rows below it).

    Class ``c`` keeps ``max(1, floor(n_c * max_samples / N))`` of its ``n_c``
    rows (the class shares are kept, every class stays). Which rows: each row
    gets a random key that depends on its content, not on its position (rows
    are put in a canonical order by their projection on a random direction,
    then the keys are drawn in that order), and each class keeps its rows with
    the smallest keys. The subset is therefore the same for any order of the
    rows and any naming of the classes, and moves with the data under a
    translation or a positive scaling (up to rounding of the projections).
    """
    n = y.shape[0]
    if max_samples is None or n <= max_samples:
        return np.arange(n)
    direction = rng.normal(size=X.shape[1])
    canonical = np.argsort(X @ direction, kind="stable")
    keys = np.empty(n)
    keys[canonical] = rng.random(n)
    counts = np.bincount(y, minlength=n_classes)
    chosen = []
    for c in range(n_classes):
        members = np.flatnonzero(y == c)
        take = max(1, int(counts[c]) * max_samples // n)
        chosen.append(members[np.argsort(keys[members], kind="stable")[:take]])
    return np.sort(np.concatenate(chosen))


def _to_unit_scale(S: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``(S', T', u)``: both domains divided by ``u``, then centred on their common mean.

    ``u = 2^e`` is the power of two just above the largest magnitude of
    either domain (an exact division), so squared distances neither overflow
    nor underflow for features of any finite magnitude; squared distances in
    the original units are ``u^2`` times those of ``S'`` and ``T'``. Centring
    (distances do not change) keeps the Gram form of the distances accurate for
    data far from the origin.
    """
    unit = float(np.ldexp(1.0, max(binary_exponent(S), binary_exponent(T))))
    S, T = S / unit, T / unit
    centre = (S.sum(axis=0) + T.sum(axis=0)) / (S.shape[0] + T.shape[0])
    return S - centre, T - centre, unit


def _squared_distances(S: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``||s_i - t_j||^2`` for every source row ``i`` and target row ``j`` (M, N), clipped at 0."""
    cost = np.sum(S**2, axis=1)[:, None] + np.sum(T**2, axis=1)[None, :] - 2.0 * (S @ T.T)
    return np.maximum(cost, 0.0, out=cost)


def _is_constant(X: np.ndarray) -> bool:
    return bool(np.all(X == X[0]))


def _optimal_plan(cost: np.ndarray) -> np.ndarray:
    """An exact optimal coupling of uniform marginals for ``cost`` (M, N), by POT's network simplex.

    Solved on ``cost / max(cost)``: the optimal couplings do not depend on the
    scale of the cost, and the simplex is most accurate with entries in [0, 1].
    """
    m, n = cost.shape
    a, b = np.full(m, 1.0 / m), np.full(n, 1.0 / n)
    scale = float(cost.max())
    if scale == 0.0:  # every pair at the same place: every coupling costs 0; take the independent one
        return np.outer(a, b)
    # Imported here, not at module level: POT's backend imports torch when it is installed,
    # and importing the pure score modules must not (tests/scores/test_boundaries.py).
    import ot

    return ot.emd(a, b, cost / scale, numItermax=_MAX_PIVOTS)


def _coupling(S: np.ndarray, T: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """The optimal coupling for ``cost``; the independent coupling when a domain is one point.

    If every source row (or every target row) is the same vector, every
    coupling has the same cost (``sum_j b_j c(s, t_j)``); the independent
    coupling ``a b^T`` is the optimal one that assumes nothing, and makes the
    value independent of the solver's choice among them.
    """
    if _is_constant(S) or _is_constant(T):
        return np.outer(np.full(S.shape[0], 1.0 / S.shape[0]), np.full(T.shape[0], 1.0 / T.shape[0]))
    return _optimal_plan(cost)


def _conditional_entropy(plan: np.ndarray, ys: np.ndarray, n_source: int, yt: np.ndarray, n_target: int) -> float:
    """``H(Y_t | Y_s)`` in nats of the label pairs coupled by ``plan`` (source rows, target columns).

    ``P(y_s, y_t)`` sums the plan over the sample pairs with those labels;
    ``H = -sum P(y_s, y_t) log(P(y_s, y_t) / P(y_s))`` with ``0 log 0 = 0``.
    """
    by_source = _class_sums(plan, ys, n_source)  # (Cs, N): mass from each source class to each target sample
    joint = _class_sums(by_source.T, yt, n_target).T  # (Cs, Ct)
    joint /= joint.sum()
    marginal = np.broadcast_to(joint.sum(axis=1, keepdims=True), joint.shape)
    mass = joint > 0
    return float(-np.sum(joint[mass] * np.log(joint[mass] / marginal[mass]))) + 0.0


def _prepare(features, labels, source_features, source_labels, max_samples, seed):
    """Validated, capped, unit-scaled inputs: ``(S, ys, cs, T, yt, ct, unit)``."""
    max_samples = _check_max_samples(max_samples)
    seed = check_seed(seed)
    T, yt, target_classes = check_features_labels(features, labels, min_per_class=1)
    S, ys, source_classes = check_source_features(source_features, source_labels, n_features=T.shape[1])
    ct, cs = int(target_classes.shape[0]), int(source_classes.shape[0])
    rows = _capped_rows(T, yt, ct, max_samples, np.random.default_rng([seed, 0]))
    T, yt = T[rows], yt[rows]
    rows = _capped_rows(S, ys, cs, max_samples, np.random.default_rng([seed, 1]))
    S, ys = S[rows], ys[rows]
    S, T, unit = _to_unit_scale(S, T)
    return S, ys, cs, T, yt, ct, unit


def _label_distances(cost: np.ndarray, ys: np.ndarray, cs: int, yt: np.ndarray, ct: int) -> np.ndarray:
    """``W_2^2`` between every source class and every target class (Cs, Ct), exactly.

    The squared 2-Wasserstein distance between the empirical feature
    distributions of source class ``a`` and target class ``b`` (uniform
    masses), with the squared Euclidean ground cost: the exact OT problem on
    the block of ``cost`` with those rows and columns.
    """
    import ot  # deferred, see _optimal_plan

    distances = np.zeros((cs, ct))
    source_rows = [np.flatnonzero(ys == a) for a in range(cs)]
    target_cols = [np.flatnonzero(yt == b) for b in range(ct)]
    for a, rows in enumerate(source_rows):
        for b, cols in enumerate(target_cols):
            block = cost[np.ix_(rows, cols)]
            scale = float(block.max())
            if scale > 0.0:
                u, v = np.full(rows.shape[0], 1.0 / rows.shape[0]), np.full(cols.shape[0], 1.0 / cols.shape[0])
                distances[a, b] = scale * float(ot.emd2(u, v, block / scale, numItermax=_MAX_PIVOTS))
    return distances


# --------------------------------------------------------------------------- the scores

@register_score(
    "otce",
    needs={"features", "source_features"},
    reference=_REFERENCE_OTCE,
    # A class of one sample is a point of mass 1/N like any other. W_D is a squared distance:
    # not scale-invariant; moving both domains together changes neither W_D nor the coupling.
    # The seed only draws the subset above max_samples, by content (order-invariant).
    min_per_class=1,
    scale_invariant=False,
    translation_invariant=True,
    resample=False,  # an exact transport problem of up to 1000 x 1000 per resample: too costly
)
def otce(
    features,
    labels,
    *,
    source_features,
    source_labels,
    lambda_domain: float = -0.5,
    lambda_task: float = -0.5,
    max_samples: int | None = 1000,
    seed: int = 0,
) -> float:
    """OTCE: a weighted sum of the domain difference (W_D) and the task difference (W_T).

    The source samples :math:`x^s_i` (:math:`i = 1..M`) and the target samples
    :math:`x^t_j` (:math:`j = 1..N`) each carry uniform mass. The exact optimal
    coupling for the squared Euclidean cost,

    .. math::

        P^* = \\arg\\min_{P \\in \\Pi(\\frac{1}{M}\\mathbf{1}, \\frac{1}{N}\\mathbf{1})}
            \\sum_{i,j} P_{ij} \\lVert x^s_i - x^t_j \\rVert_2^2,
        \\qquad W_D = \\sum_{i,j} P^*_{ij} \\lVert x^s_i - x^t_j \\rVert_2^2,

    gives the domain difference :math:`W_D` (the squared 2-Wasserstein distance)
    and couples the labels,

    .. math::

        \\hat P(y_s, y_t) = \\sum_{i: y^s_i = y_s} \\sum_{j: y^t_j = y_t} P^*_{ij},
        \\qquad W_T = H(Y_t \\mid Y_s) = -\\sum_{y_s, y_t} \\hat P(y_s, y_t)
            \\log \\frac{\\hat P(y_s, y_t)}{\\hat P(y_s)},

    the task difference (nats). The score is

    .. math::

        \\mathrm{OTCE} = \\lambda_1 W_D + \\lambda_2 W_T + b.

    The paper learns :math:`(\\lambda_1, \\lambda_2, b)` by linear regression on
    auxiliary tasks of known transfer accuracy, so its weights belong to the
    setting they were fitted in. The defaults here are the equal,
    untrained weighting :math:`\\lambda_1 = \\lambda_2 = -0.5`, :math:`b = 0`
    (``b`` shifts every candidate alike, so it is left out); pass your own
    fitted ``lambda_domain`` and ``lambda_task`` to use a fit. The scale of
    :math:`W_D` follows the features' (squared), so with the defaults OTCE is
    dominated by :math:`W_D` for large features. For a score without auxiliary
    tasks use :func:`f_otce` or :func:`jc_otce`.

    Higher is better (with negative lambdas: a smaller domain and task
    difference). The transport is solved exactly (POT's network simplex,
    ``ot.emd``, in float64) with the squared Euclidean cost, as in the authors'
    public code; an exact plan has no regularisation parameter to choose. If
    every source or every target row is the same vector, every coupling is
    optimal and the independent one is used.

    Cost: exact OT takes about :math:`O(n^3)` time and an ``M x N`` cost matrix,
    so each domain is capped at ``max_samples`` samples: above it, a seeded
    class-stratified subset keeps ``max(1, floor(n_c * max_samples / n))``
    samples of each class ``c`` (the class shares are kept). The subset depends
    on the samples' content, not their order, so the score stays invariant to
    the sample order; ``max_samples=None`` uses every sample.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate model.
    labels : array-like of shape (n_samples,)
        Target labels (integers or strings; at least 2 classes, any number of samples each).
    source_features : array-like of shape (n_source_samples, n_features)
        Features of the candidate's source data, from the same model (same D).
    source_labels : array-like of shape (n_source_samples,)
        Source labels (integers or strings; one class or more).
    lambda_domain : float, default=-0.5
        Weight :math:`\\lambda_1` of the domain difference :math:`W_D`.
    lambda_task : float, default=-0.5
        Weight :math:`\\lambda_2` of the task difference :math:`W_T`.
    max_samples : int or None, default=1000
        Most samples per domain fed to the transport (stratified subset above it).
    seed : int, default=0
        Seed of the subsets (used only above ``max_samples``).

    Returns
    -------
    float
        ``lambda_domain * W_D + lambda_task * W_T``.

    Raises
    ------
    ValueError
        If either feature matrix is not a finite 2-D numeric array, the labels
        do not match their features, the feature dimensions differ, an option is
        invalid, or ``W_D`` exceeds the float64 range (features of magnitude
        above about 1e153).

    References
    ----------
    Y. Tan, Y. Li, S.-L. Huang. OTCE: A Transferability Metric for Cross-Domain
    Cross-Task Representations. CVPR 2021.

    Examples
    --------
    Each source point sits on a target point of the same class: W_D = 0, W_T = 0.

    >>> otce([[0.0], [4.0]], [0, 1], source_features=[[0.0], [4.0]], source_labels=["a", "b"])
    0.0
    """
    lambda_domain = check_scalar(lambda_domain, "lambda_domain", numbers.Real)
    lambda_task = check_scalar(lambda_task, "lambda_task", numbers.Real)
    S, ys, cs, T, yt, ct, unit = _prepare(features, labels, source_features, source_labels, max_samples, seed)
    cost = _squared_distances(S, T)
    plan = _coupling(S, T, cost)
    with np.errstate(over="ignore"):
        w_d = float(np.float64(unit) ** 2 * np.sum(plan * cost))
    if not np.isfinite(w_d):
        raise ValueError(
            "features and source_features are too large in magnitude: the squared Wasserstein distance "
            f"W_D exceeds the float64 range (largest magnitude about {unit:.3g}); rescale the features"
        )
    w_t = _conditional_entropy(plan, ys, cs, yt, ct)
    return float(lambda_domain * w_d + lambda_task * w_t) + 0.0


@register_score(
    "f_otce",
    needs={"features", "source_features"},
    reference=_REFERENCE_AUX_FREE,
    # Only the coupling matters, and the optimal coupling is the same for c * features
    # (the cost scales by c^2) and for features moved together with the source.
    min_per_class=1,
    scale_invariant=True,
    translation_invariant=True,
    resample=False,  # an exact transport problem of up to 1000 x 1000 per resample: too costly
)
def f_otce(
    features, labels, *, source_features, source_labels, max_samples: int | None = 1000, seed: int = 0
) -> float:
    """F-OTCE: the negative conditional entropy of the target labels given the source labels under the OT coupling.

    The auxiliary-free form of OTCE (no fitted weights): with the exact optimal
    coupling :math:`P^*` of the source and target features (uniform masses,
    squared Euclidean cost, as in :func:`otce`),

    .. math::

        \\hat P(y_s, y_t) = \\sum_{i: y^s_i = y_s} \\sum_{j: y^t_j = y_t} P^*_{ij},
        \\qquad
        \\text{F-OTCE} = -H(Y_t \\mid Y_s) = \\sum_{y_s, y_t} \\hat P(y_s, y_t)
            \\log \\frac{\\hat P(y_s, y_t)}{\\hat P(y_s)} \\in [-\\log C_t, 0].

    Higher is better: the source classes the transport matches with the target
    samples predict their labels. ``0`` when every source class is sent to one
    target class; ``-H(Y_t)`` when the coupled labels are independent (and when
    every source or every target row is the same vector, where every coupling is
    optimal and the independent one is used). The transport is exact (POT's
    ``ot.emd`` in float64), as in the authors' public OTCE code. Invariant to
    translating both
    domains together, to scaling them, to the sample order and to renaming the
    classes.

    Cost: exact OT is about :math:`O(n^3)`; each domain is capped at
    ``max_samples`` samples by a seeded, class-stratified, order-invariant
    subset, as in :func:`otce`.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate model.
    labels : array-like of shape (n_samples,)
        Target labels (integers or strings; at least 2 classes, any number of samples each).
    source_features : array-like of shape (n_source_samples, n_features)
        Features of the candidate's source data, from the same model (same D).
    source_labels : array-like of shape (n_source_samples,)
        Source labels (integers or strings; one class or more).
    max_samples : int or None, default=1000
        Most samples per domain fed to the transport (stratified subset above it).
    seed : int, default=0
        Seed of the subsets (used only above ``max_samples``).

    Returns
    -------
    float
        ``-H(Y_t | Y_s)`` in nats, in ``[-log C_t, 0]``.

    Raises
    ------
    ValueError
        If either feature matrix is not a finite 2-D numeric array, the labels
        do not match their features, the feature dimensions differ or an option
        is invalid.

    References
    ----------
    Y. Tan, E. Zhang, Y. Li, S.-L. Huang, X.-P. Zhang. Transferability-Guided
    Cross-Domain Cross-Task Transfer Learning. IEEE TNNLS 2025, arXiv:2207.05510.

    Examples
    --------
    The transport matches each target point with the source point next to it;
    the labels are shuffled evenly, so knowing the source class says nothing:

    >>> value = f_otce([[0.0], [1.0], [10.0], [11.0]], [0, 1, 0, 1],
    ...                source_features=[[0.0], [1.0], [10.0], [11.0]], source_labels=[0, 0, 1, 1])
    >>> bool(np.isclose(value, -np.log(2)))
    True
    """
    S, ys, cs, T, yt, ct, _ = _prepare(features, labels, source_features, source_labels, max_samples, seed)
    plan = _coupling(S, T, _squared_distances(S, T))
    return -_conditional_entropy(plan, ys, cs, yt, ct) + 0.0


@register_score(
    "jc_otce",
    needs={"features", "source_features"},
    reference=_REFERENCE_AUX_FREE,
    # Feature and label costs are both squared distances (they scale by c^2 together), and
    # both are unchanged when the two domains move together: the coupling is invariant.
    min_per_class=1,
    scale_invariant=True,
    translation_invariant=True,
    resample=False,  # Cs x Ct + 1 exact transport problems per resample: too costly
)
def jc_otce(
    features, labels, *, source_features, source_labels, max_samples: int | None = 1000, seed: int = 0
) -> float:
    """JC-OTCE: F-OTCE with the coupling of the joint feature-label distributions (label distances in the cost).

    The samples are pairs :math:`(x, y)`; following the optimal transport
    dataset distance (Alvarez-Melis & Fusi, NeurIPS 2020), the ground cost
    between a source pair and a target pair adds to the feature distance the
    distance between their classes, each class represented by the distribution
    of its features :math:`\\alpha_y`:

    .. math::

        c\\big((x^s, y^s), (x^t, y^t)\\big) = \\lVert x^s - x^t \\rVert_2^2
            + W_2^2(\\alpha_{y^s}, \\alpha_{y^t}),

    where :math:`W_2^2(\\alpha_a, \\alpha_b)` is the exact squared 2-Wasserstein
    distance between the empirical features of source class ``a`` and of target
    class ``b`` (uniform masses, squared Euclidean cost; one exact transport
    problem per pair of classes, no Gaussian approximation). The exact optimal
    coupling :math:`P^*` for this cost (uniform masses) then gives, as in
    :func:`f_otce`,

    .. math::

        \\text{JC-OTCE} = -H_{P^*}(Y_t \\mid Y_s) \\in [-\\log C_t, 0].

    The two terms of the cost weigh the same; a common factor on both (such as
    ``gamma = 1/2`` each) leaves the coupling, and so the score, unchanged.
    Higher is better. The transports are exact (POT's ``ot.emd`` in
    float64). When every source or every target row is the same vector the
    independent coupling is used, as in :func:`f_otce`. Invariant to
    translating both domains together, to scaling them, to the sample order and
    to renaming the classes.

    Cost: the outer transport is about :math:`O(n^3)`, plus one smaller
    problem per pair of classes (``C_s x C_t`` of them); each domain is capped at
    ``max_samples`` samples as in :func:`otce`.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate model.
    labels : array-like of shape (n_samples,)
        Target labels (integers or strings; at least 2 classes, any number of samples each).
    source_features : array-like of shape (n_source_samples, n_features)
        Features of the candidate's source data, from the same model (same D).
    source_labels : array-like of shape (n_source_samples,)
        Source labels (integers or strings; one class or more).
    max_samples : int or None, default=1000
        Most samples per domain fed to the transports (stratified subset above it).
    seed : int, default=0
        Seed of the subsets (used only above ``max_samples``).

    Returns
    -------
    float
        ``-H(Y_t | Y_s)`` in nats under the joint coupling, in ``[-log C_t, 0]``.

    Raises
    ------
    ValueError
        If either feature matrix is not a finite 2-D numeric array, the labels
        do not match their features, the feature dimensions differ or an option
        is invalid.

    References
    ----------
    Y. Tan, E. Zhang, Y. Li, S.-L. Huang, X.-P. Zhang. Transferability-Guided
    Cross-Domain Cross-Task Transfer Learning. IEEE TNNLS 2025, arXiv:2207.05510.
    D. Alvarez-Melis, N. Fusi. Geometric Dataset Distances via Optimal
    Transport. NeurIPS 2020.

    Examples
    --------
    Source class "a" and target class 0 share their features, as do "b" and 1:
    the label distances send each class to its twin, F-OTCE's 0 becomes certain.

    >>> jc_otce([[0.0], [1.0], [5.0], [6.0]], [0, 0, 1, 1],
    ...         source_features=[[0.0], [1.0], [5.0], [6.0]], source_labels=["a", "a", "b", "b"])
    0.0
    """
    S, ys, cs, T, yt, ct, _ = _prepare(features, labels, source_features, source_labels, max_samples, seed)
    cost = _squared_distances(S, T)
    if _is_constant(S) or _is_constant(T):
        plan = _coupling(S, T, cost)
    else:
        joint_cost = cost + _label_distances(cost, ys, cs, yt, ct)[ys][:, yt]
        plan = _optimal_plan(joint_cost)
    return -_conditional_entropy(plan, ys, cs, yt, ct) + 0.0
