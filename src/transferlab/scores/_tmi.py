"""TMI: transferability measured by the intra-class feature variance (a conditional entropy).

Xu & Kang, "Fast and Accurate Transferability Measurement by Evaluating
Intra-class Feature Variance", ICCV 2023. The authors' code
(``snudatalab/TMI``, ``src/trf_measurement.py``) estimates the conditional
entropy ``H(Z | Y)`` of the features given the class with the
Kozachenko-Leonenko k-nearest-neighbour estimator in the maximum norm; this
module computes the same estimator, exactly (every pair of samples of a class is
compared, in blocks of rows so that memory stays bounded).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist
from scipy.special import digamma

from transferlab._validation import check_features_labels, check_int, check_scalar
from transferlab.scores._registry import register_score

#: Neighbours of the estimator and the floor of a neighbour distance: the authors' defaults.
DEFAULT_K = 3
DEFAULT_MIN_DIST = 1.0
#: Bytes of one block of Chebyshev distances (block rows x n_c, float64).
_BLOCK_BYTES = 32 * 2**20


def _kth_neighbour_distances(Xc: np.ndarray, k: int) -> np.ndarray:
    """Maximum-norm distance from each row of ``Xc`` to its ``k``-th nearest *other* row.

    The ``k + 1``-th smallest distance from row ``i`` to every row, itself (0)
    included; a duplicate of row ``i`` is another row at distance 0.
    """
    n = Xc.shape[0]
    out = np.empty(n)
    block = max(1, _BLOCK_BYTES // (8 * n))
    for start in range(0, n, block):
        dist = cdist(Xc[start : start + block], Xc, metric="chebyshev")
        out[start : start + block] = np.partition(dist, k, axis=1)[:, k]
    return out


def _class_entropy(Xc: np.ndarray, k: int, min_dist: float) -> float:
    """Kozachenko-Leonenko entropy (nats) of one class in the maximum norm, ``k`` at most ``n_c - 1``."""
    n, d = Xc.shape
    k = min(k, n - 1)
    eps = np.maximum(_kth_neighbour_distances(Xc, k), min_dist)
    return float(-digamma(k) + digamma(n) + d * np.mean(np.log(2.0 * eps)))


@register_score(
    "tmi",
    needs={"features"},
    reference='Xu & Kang, "Fast and Accurate Transferability Measurement by Evaluating Intra-class '
    'Feature Variance", ICCV 2023',
    # A class of one sample has no neighbour: a ValueError naming labels. Every row equal puts
    # every distance at the floor min_dist: finite. Distances are differences of rows:
    # translation-free; the floor and the log of the distances make it scale-dependent. A sum
    # over classes weighted by their sizes: class names do not matter.
    min_per_class=2,
    constant="finite",
    scale_invariant=False,
    translation_invariant=True,
    label_permutation_invariant=True,
    # k-nearest neighbours on a bootstrap sample: a duplicated row is its own neighbour at
    # distance 0 (the kNN baseline's reason); and O(sum_c n_c^2 D) per resample.
    resample=False,
)
def tmi(features, labels, *, k: int = DEFAULT_K, min_dist: float = DEFAULT_MIN_DIST) -> float:
    """TMI: the conditional entropy of the features given the class, higher is better.

    The intra-class feature variance measured as the differential entropy of
    each class's features, averaged with the class frequencies:

    .. math::

        \\mathrm{TMI} = \\hat H(Z \\mid Y) = \\sum_c \\frac{n_c}{N}\\, \\hat H_c, \\qquad
        \\hat H_c = -\\psi(k_c) + \\psi(n_c)
            + \\frac{D}{n_c} \\sum_{i : y_i = c} \\log\\big(2 \\max(\\varepsilon_{i}, \\delta)\\big),

    the Kozachenko-Leonenko estimator in the form of Kraskov, Stogbauer &
    Grassberger (2004), in the maximum norm (``eps`` a radius, ``2 eps`` the side
    of the cube, whose volume constant is 1), with ``psi`` the digamma function,
    ``eps_i`` the maximum-norm distance from ``z_i`` to its ``k_c``-th nearest
    other sample of its class,
    ``k_c = min(k, n_c - 1)``, and ``delta = min_dist`` a floor on that distance
    (duplicates would give ``log 0``). Higher means more intra-class variance,
    which the paper reads as a more adaptable, more transferable representation:
    the direction is the paper's, and it is the opposite of the discriminability
    scores (labels that cluster the features score *lower* than shuffled ones).

    Cost: every pair of samples within a class, ``O(sum_c n_c^2 D)`` time,
    computed in blocks (bounded memory); no ``N x N`` matrix across classes.

    Differences from the authors' code (``snudatalab/TMI``): the authors average
    ``p_c H_c`` over the class ids (``mean`` instead of ``sum``), an extra factor
    ``1 / C`` that is the same for every candidate and so leaves rankings
    unchanged; here it is the conditional entropy itself. A class of
    ``n_c <= k`` samples gets an infinite estimate there (and is dropped); here
    it uses ``k_c = n_c - 1`` neighbours. A class of one sample counts 0 there;
    here it is refused. The defaults (``k=3``, ``min_dist=1.0``, maximum norm)
    are theirs. The floor is absolute, so the value depends on the scale of the
    features (features of magnitude well below ``min_dist`` all sit at the floor).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target-task features from the candidate model.
    labels : array-like of shape (n_samples,)
        Class labels (integers or strings, at least 2 classes, 2 samples each).
    k : int, default=3
        Neighbours of the estimator (at least 1); a class of ``n_c <= k``
        samples uses ``n_c - 1``.
    min_dist : float, default=1.0
        Floor of a neighbour distance, ``> 0``, in the units of the features.

    Returns
    -------
    float
        The estimated conditional entropy ``H(Z | Y)`` in nats; higher is better.

    Raises
    ------
    ValueError
        On invalid input (see :func:`~transferlab._validation.check_features_labels`;
        every class needs 2 samples), ``k < 1`` or ``min_dist <= 0``.

    References
    ----------
    H. Xu, U Kang. Fast and Accurate Transferability Measurement by Evaluating
    Intra-class Feature Variance. ICCV 2023. L. F. Kozachenko, N. N. Leonenko.
    Sample estimate of the entropy of a random vector. Problems Inform.
    Transmission, 1987. A. Kraskov, H. Stogbauer, P. Grassberger. Estimating
    mutual information. Phys. Rev. E 69, 2004.

    Examples
    --------
    One feature, two classes ``{0, 3}`` and ``{10, 14}``, ``k_c = 1``: the
    neighbour distances are 3, 3 and 4, 4 (above the floor), ``psi(2) - psi(1) = 1``,
    so ``H_0 = 1 + log 6`` and ``H_1 = 1 + log 8``, each with weight 1/2:

    >>> value = tmi([[0.0], [3.0], [10.0], [14.0]], [0, 0, 1, 1])
    >>> bool(np.isclose(value, 1 + 0.5 * (np.log(6) + np.log(8))))
    True
    """
    X, y, classes = check_features_labels(features, labels, min_per_class=2)
    k = check_int(k, "k", minimum=1)
    min_dist = check_scalar(min_dist, "min_dist", float, min_val=0.0, include_boundaries="neither")
    X -= X.mean(axis=0)  # distances are unchanged; centring keeps them exact far from the origin
    n = X.shape[0]
    total = 0.0
    for c in range(classes.shape[0]):
        Xc = X[y == c]
        total += Xc.shape[0] / n * _class_entropy(Xc, k, min_dist)
    return float(total)
