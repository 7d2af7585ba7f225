"""ETran: energy, LDA-classification (and SVD-regression) scores, normalised across the pool.

A pool-level score (``kind="pool"``): its terms are min-max normalised across
the candidates (see :mod:`transferlab.scores._pool`).

Gholami, Akbari, Wang, Kamranian & Zhang, "ETran: Energy-Based Transferability
Estimation", ICCV 2023.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.special import logsumexp

from transferlab._validation import check_nonnegative, check_scalar, check_targets
from transferlab.scores._pool import SHRINKAGE_FLOOR, _check_pool, _LDA, _minmax, _true_class_probability
from transferlab.scores._registry import register_score

#: ETran: the LDA shrinkage is ``exp(-5 * largest within-class eigenvalue)`` (reference code).
ETRAN_SHRINKAGE_RATE = 5.0
#: ETran: weight of the normalised energy score; the classification score gets the rest
#: (the reference code's ``0.15 * energy + 0.85 * lda``).
ETRAN_ENERGY_WEIGHT = 0.15
#: ETran: fraction of samples, those of lowest log-sum-exp, whose mean is the energy score
#: (the reference code's ``Energy_Score(features, 0.5, 'bot')``: the bottom 0.5 %).
ETRAN_ENERGY_FRACTION = 0.005


def _energy_score(X: np.ndarray, fraction: float) -> float:
    """Mean of the ``max(1, floor(fraction * N))`` smallest per-sample log-sum-exp of the features."""
    lse = logsumexp(X, axis=1)
    # floor(fraction * N), robust to products such as 0.29 * 100 = 28.999999999999996
    k = max(1, int(np.floor(fraction * X.shape[0] + 1e-9)))
    return float(np.mean(np.partition(lse, k - 1)[:k]))


def _lda_score(X: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    """ETran's classification score: mean LDA posterior of the true class."""
    lda = _LDA(X, y, n_classes)
    shrinkage = max(float(np.exp(-ETRAN_SHRINKAGE_RATE * lda.largest_within_eigenvalue())), SHRINKAGE_FLOOR)
    lda.whiten(shrinkage)
    return _true_class_probability(lda.posterior(), y)


def _regression_score(X: np.ndarray, Y: np.ndarray) -> float:
    """ETran's SVD-based regression score: minus the mean squared residual of least squares ``X w ~ Y``."""
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    rank = int(np.count_nonzero(s > s[0] * max(X.shape) * np.finfo(np.float64).eps)) if s.size else 0
    Ur = U[:, :rank]
    resid = Y - Ur @ (Ur.T @ Y)
    mse = float(np.mean(resid**2))
    if mse <= 1e-12 * float(np.mean(Y**2)):  # interpolated (e.g. N <= D): exactly zero up to rounding
        mse = 0.0
    return -mse


def _etran_terms(X: np.ndarray, y: np.ndarray, n_classes: int, fraction: float, Y: np.ndarray | None):
    energy = _energy_score(X, fraction)
    cls = _lda_score(X, y, n_classes)
    reg = _regression_score(X, Y) if Y is not None else np.nan
    return energy, cls, reg


@register_score(
    "etran",
    kind="pool",
    needs={"features"},
    reference='Gholami, Akbari, Wang, Kamranian & Zhang, "ETran: Energy-Based Transferability '
    'Estimation", ICCV 2023',
    # The LDA takes class means over any number of samples; constant members give
    # finite terms. The energy log-sum-exp of the raw features changes with their
    # scale and with any added constant.
    min_per_class=1,
    scale_invariant=False,
    translation_invariant=False,
)
def etran(
    pool,
    labels,
    *,
    energy_weight: float = ETRAN_ENERGY_WEIGHT,
    energy_fraction: float = ETRAN_ENERGY_FRACTION,
    regression_targets=None,
    regression_weight: float = 1.0,
) -> np.ndarray:
    """ETran: energy, LDA-classification (and SVD-regression) scores, normalised across the pool.

    For each candidate ``m`` with target features :math:`f(x_i) \\in \\mathbb{R}^{D_m}`:

    - **Energy score.** Treating the features as logits, the free energy of a
      sample is :math:`E(x) = -\\log \\sum_j e^{f_j(x)}` (temperature 1); a
      low energy means the sample looks in-distribution to the pre-trained
      model. As in the reference code (``Energy_Score(features, 0.5, 'bot')``),
      the score is the mean of :math:`-E(x_i)` over the
      :math:`k = \\max(1, \\lfloor \\texttt{energy\\_fraction} \\cdot N \\rfloor)`
      samples of highest energy (the most out-of-distribution-looking ones;
      0.5 % by default):
      :math:`S^m_{en} = \\frac1k \\sum_{i \\in \\text{bottom-}k} \\log \\sum_j e^{f_j(x_i)}`.
    - **Classification score.** A Gaussian LDA with shared, shrunk
      within-class covariance
      :math:`\\Sigma = (1 - s)\\Sigma_w + s \\frac{\\mathrm{tr}\\,\\Sigma_w}{D} I`,
      :math:`s = \\max(e^{-5 \\lambda_{\\max}(\\Sigma_w)}, 10^{-10})`, gives the
      posterior :math:`p(c \\mid x) \\propto \\pi_c \\mathcal N(x; \\mu_c, \\Sigma)`, and
      :math:`S^m_{cls} = \\frac1N \\sum_i p(y_i \\mid x_i)`.
    - **Regression score** (only with ``regression_targets`` :math:`Y`, e.g.
      bounding boxes): the least-squares fit through the SVD of the features,
      :math:`S^m_{reg} = -\\frac{1}{NK} \\lVert Y - F F^+ Y \\rVert_F^2`.

    Each term is min-max normalised across the pool (:math:`\\hat S`), and

    .. math::

        \\mathrm{ETran}^m = w_{en} \\hat S^m_{en} + (1 - w_{en}) \\hat S^m_{cls}
            \\; [+\\, w_{reg} \\hat S^m_{reg}],

    with :math:`w_{en} = 0.15` by default (the weights of the reference code's
    classification benchmark, ``tw.py``). Without regression targets the score
    lies in ``[0, 1]``; with them in ``[0, 1 + regression_weight]``. Higher is
    better. A term on which every candidate agrees contributes 0.

    The paper sums the normalised terms; its public code combines the energy
    and classification scores with weights 0.15 and 0.85 and releases no
    regression weight, so ``regression_weight`` (1 by default, the plain sum)
    is our choice. Differences from the reference code: its "LDA" calls
    ``numpy.linalg.eigh`` on the non-symmetric ``inv(Sw) @ Sb``, which reads
    one triangle only and returns an orthonormal basis ``V``, so the
    ``means @ V @ V.T`` of its classifier is just the class means: its
    posterior is that of a unit-variance nearest-mean classifier, not LDA. Ours
    is the LDA the paper describes (with the reference's shrinkage rule, and
    the exact largest eigenvalue instead of 3 power iterations). Its energy
    average over ``floor(0.005 N)`` samples is empty (NaN) below 200 samples;
    ours uses at least one. Its regression score inverts every singular value
    in float32; ours is rank-aware in float64.

    Parameters
    ----------
    pool : sequence of array-like, each of shape (n_samples, n_features_m)
        Target features of each candidate model, all on the same samples in the
        same order (feature dimensions may differ). At least 2 candidates.
    labels : array-like of shape (n_samples,)
        Target labels (integers or strings, at least 2 classes).
    energy_weight : float, default=0.15
        Weight of the normalised energy score, in ``[0, 1]``; the classification
        score gets ``1 - energy_weight``.
    energy_fraction : float, default=0.005
        Fraction of samples (those of highest energy) averaged in the energy
        score, in ``(0, 1]``; 1 averages all samples.
    regression_targets : array-like of shape (n_samples,) or (n_samples, n_targets), optional
        Real-valued targets; adds the SVD-based regression score.
    regression_weight : float, default=1.0
        Weight of the normalised regression score (used with ``regression_targets``).

    Returns
    -------
    ndarray of shape (n_models,), float64
        One score per candidate, in the order of ``pool``.

    Raises
    ------
    ValueError
        If ``pool`` holds fewer than 2 models, a member is not a finite 2-D
        array, the members have different numbers of samples, the labels or
        regression targets are invalid, or an option is out of range.

    References
    ----------
    M. Gholami, M. Akbari, X. Wang, B. Kamranian, Y. Zhang. ETran: Energy-Based
    Transferability Estimation. ICCV 2023.

    Examples
    --------
    Features that separate the classes (and are larger, so lower energy) win:

    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], 20)
    >>> good = 4.0 * np.eye(3)[labels] + 0.3 * rng.normal(size=(60, 3))
    >>> noise = rng.normal(size=(60, 3))
    >>> etran([good, noise], labels).tolist()
    [1.0, 0.0]
    """
    energy_weight = check_scalar(energy_weight, "energy_weight", numbers.Real, min_val=0, max_val=1)
    energy_fraction = check_scalar(
        energy_fraction, "energy_fraction", numbers.Real, min_val=0, max_val=1, include_boundaries="right"
    )
    arrays, y, n_classes = _check_pool(pool, labels)
    Y = None
    if regression_targets is not None:
        Y = check_targets(regression_targets, y.shape[0], name="regression_targets")
        check_nonnegative(regression_weight, "regression_weight")
    terms = np.array([_etran_terms(X, y, n_classes, energy_fraction, Y) for X in arrays])  # (M, 3)
    score = energy_weight * _minmax(terms[:, 0]) + (1.0 - energy_weight) * _minmax(terms[:, 1])
    if Y is not None:
        score = score + float(regression_weight) * _minmax(terms[:, 2])
    return score


