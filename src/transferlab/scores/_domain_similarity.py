"""Domain similarity: the earth mover's distance between class-mean features.

Cui, Song, Sun, Howard & Belongie, "Large Scale Fine-Grained Categorization and
Domain-Specific Transfer Learning", CVPR 2018.
"""

from __future__ import annotations

import numbers

import numpy as np

from transferlab._linalg import binary_exponent
from transferlab._validation import check_features_labels, check_scalar, check_source_features
from transferlab.scores._linalg import _class_sums
from transferlab.scores._registry import register_score


def _check_gamma(gamma) -> float:
    return check_scalar(gamma, "gamma", numbers.Real, min_val=0, include_boundaries="neither")


def _class_means_and_weights(X: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Class means (C, D) and class shares ``n_c / N`` (C,), accumulated in float64."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return _class_sums(X, y, n_classes) / counts[:, None], counts / counts.sum()


def _emd(a: np.ndarray, b: np.ndarray, cost: np.ndarray) -> float:
    """Exact optimal-transport cost ``min_T <T, cost>`` over the couplings of ``a`` and ``b``.

    The linear program is solved on ``cost / max(cost)`` (entries in [0, 1]) and
    the optimum rescaled: the optimal coupling does not change with the scale
    of the cost, and the network simplex stays accurate for features of any
    magnitude.
    """
    scale = float(cost.max())
    if scale == 0.0:
        return 0.0
    # Imported here, not at module level: POT's backend module imports torch when it is
    # installed, and importing the pure score modules must not (tests/scores/test_boundaries.py).
    import ot

    return scale * float(ot.emd2(a, b, cost / scale))


def _emd_between_class_means(S, ys, cs, T, yt, ct) -> float:
    """EMD between the count-weighted class means of ``S`` and ``T``, for features of any finite magnitude.

    Both domains are first divided by ``u = 2^(e-1)``, the power of two at or
    just below their largest magnitude (an exact division), so the class sums
    and the squares inside the Euclidean distance cannot overflow (features of
    1e155 and above used to give an infinite cost and a NaN similarity) nor
    underflow; the EMD is homogeneous, ``EMD(S, T) = u EMD(S / u, T / u)``.
    The product is ``inf`` only when the EMD itself exceeds the float64 range,
    where the similarity is 0.0.
    """
    top = max(float(np.max(np.abs(S))), float(np.max(np.abs(T))))
    unit = float(np.ldexp(1.0, binary_exponent(top) - 1)) if top > 0 else 1.0
    mu_s, w_s = _class_means_and_weights(S / unit, ys, cs)
    mu_t, w_t = _class_means_and_weights(T / unit, yt, ct)
    # Euclidean ground cost between every source and target class mean (Cs, Ct), from the
    # differences themselves (no |a|^2 + |b|^2 - 2ab cancellation: equal means cost exactly 0).
    from scipy.spatial.distance import cdist  # deferred: scipy.spatial loads scipy.stats (~0.2 s)

    cost = cdist(mu_s, mu_t, metric="euclidean")
    with np.errstate(over="ignore"):
        return float(np.float64(unit) * _emd(w_s, w_t, cost))


@register_score(
    "domain_similarity",
    needs={"features", "source_features"},
    reference='Cui, Song, Sun, Howard & Belongie, "Large Scale Fine-Grained Categorization and '
    'Domain-Specific Transfer Learning", CVPR 2018',
    # Count-weighted class means: one sample per class is a mean too; constant target
    # features are one point. exp(-gamma EMD) depends on the scale (at 1e12 it underflows
    # to 0.0, a finite documented value); moving source and target together keeps the EMD.
    min_per_class=1,
    scale_invariant=False,
    translation_invariant=True,
)
def domain_similarity(features, labels, *, source_features, source_labels, gamma: float = 0.01) -> float:
    """Domain similarity: exp(-gamma * EMD) between count-weighted class means of source and target.

    Each domain is summarised by the mean feature of each of its classes,
    weighted by the class's share of that domain's samples: source classes
    :math:`s_i` with mean :math:`\\mu^s_i` and weight :math:`w^s_i = n^s_i / M`,
    target classes :math:`t_j` with :math:`\\mu^t_j` and :math:`w^t_j = n^t_j / N`.
    The earth mover's distance between the two weighted sets, with the Euclidean
    distance between class means as ground cost, is

    .. math::

        \\mathrm{EMD}(S, T) = \\min_{f \\ge 0} \\sum_{i,j} f_{ij}\\, \\lVert \\mu^s_i - \\mu^t_j \\rVert_2
        \\quad \\text{s.t.} \\quad \\sum_j f_{ij} = w^s_i,\\ \\sum_i f_{ij} = w^t_j,

    (both weight vectors sum to 1, so the paper's normalisation by the total
    flow is 1), solved exactly with POT's network simplex (``ot.emd2``) in
    float64, and the domain similarity is

    .. math::

        \\mathrm{DS}(S, T) = e^{-\\gamma\\, \\mathrm{EMD}(S, T)} \\in (0, 1].

    Higher is better: the target's classes lie close to the candidate's source
    classes in its own feature space. ``DS = 1`` when both domains have the same
    weighted class means. The paper uses ``gamma = 0.01`` with ImageNet-scale
    features; the value of ``gamma`` does not change a ranking for a fixed
    target, and for features whose EMD exceeds about ``745 / gamma`` the
    similarity underflows to 0.0 (a finite, correct float64 value).

    The target labels follow the shared rules (at least 2 classes, any number
    of samples each); the source may have a single class. When all the target
    class means coincide (or the source has one class and the target's means
    coincide), the transport is trivial and DS is
    ``exp(-gamma * ||mu_s - mu_t||)``. Features are used as given (no
    centring: the method compares the absolute positions of the two domains).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate model.
    labels : array-like of shape (n_samples,)
        Target labels (integers or strings; at least 2 classes).
    source_features : array-like of shape (n_source_samples, n_features)
        Features of the candidate's source data, from the same model (same D).
    source_labels : array-like of shape (n_source_samples,)
        Source labels (integers or strings; one class or more).
    gamma : float, default=0.01
        Positive scale of the exponential (the paper's value).

    Returns
    -------
    float
        The domain similarity, in ``[0, 1]``.

    Raises
    ------
    ValueError
        If either feature matrix is not a finite 2-D numeric array, the labels do
        not match their features, the two feature dimensions differ, or
        ``gamma`` is not positive and finite.

    References
    ----------
    Y. Cui, Y. Song, C. Sun, A. Howard, S. Belongie. Large Scale Fine-Grained
    Categorization and Domain-Specific Transfer Learning. CVPR 2018.

    Examples
    --------
    One source class at the origin; both target classes at (3, 4): EMD = 5.

    >>> ds = domain_similarity([[3.0, 4.0], [3.0, 4.0]], [0, 1],
    ...                        source_features=[[0.0, 0.0]], source_labels=["a"], gamma=0.1)
    >>> bool(np.isclose(ds, np.exp(-0.5)))
    True
    """
    gamma = _check_gamma(gamma)
    T, yt, target_classes = check_features_labels(features, labels, min_per_class=1)
    ct = int(target_classes.shape[0])
    S, ys, source_classes = check_source_features(source_features, source_labels, n_features=T.shape[1])
    cs = int(source_classes.shape[0])
    emd = _emd_between_class_means(S, ys, cs, T, yt, ct)
    with np.errstate(over="ignore"):  # gamma * emd beyond the float64 range: the similarity is 0.0
        return float(np.exp(-gamma * np.float64(emd)))
