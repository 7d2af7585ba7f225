"""Linear probe: the cross-validated accuracy of a logistic regression on the target features.

A simple target-aware baseline that every transferability score must beat:
Renggli et al. (CVPR 2022) use a linear classifier on a model's features as a
proxy of its fine-tuned accuracy, and Sorkhei et al. (2025) find such a linear
probe a strong baseline that many transferability scores do not beat. The
cross-validation is scikit-learn's own (``Pipeline``, ``StratifiedKFold``,
``cross_validate``); nothing of it is rewritten here. For regression targets
(``target_kind="regression"``) the probe is a ridge regression and the score its
cross-validated R^2 (``KFold``).

Its cost is that of ``n_splits`` multinomial fits, each ``O(N D C)`` per
iteration: at ``N = 50,000``, ``D = 2048`` and ``C = 1000`` minutes of BLAS
time on two cores. Above ``max_samples`` (10,000 by default) the probe is
cross-validated on a seeded class-stratified subset of about ``max_samples``
samples, the same for every candidate model of a ranking.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from transferlab._linalg import binary_exponent
from transferlab._validation import (
    check_features,
    check_features_labels,
    check_int,
    check_multilabel,
    check_scalar,
    check_seed,
    check_targets,
)
from transferlab.scores._knn import _stratified_rows, _uniform_rows
from transferlab.scores._registry import register_score

#: The metrics of :func:`linear_probe`: its name -> scikit-learn's scorer.
METRICS = {"accuracy": "accuracy", "log_loss": "neg_log_loss"}
#: The folds of the cross-validation, by default (fewer when a class has fewer samples).
DEFAULT_SPLITS = 5
#: Iterations of lbfgs, by default: generous (scikit-learn's default is 100).
DEFAULT_MAX_ITER = 1000
#: The most samples the probe is cross-validated on, by default (the sample cap; see :func:`linear_probe`).
DEFAULT_MAX_SAMPLES = 10_000


@register_score(
    "linear_probe",
    needs={"features"},
    reference='Renggli, Pinto, Rimanic, Puigcerver, Riquelme, Zhang & Lucic, "Which model to transfer? '
    'Finding the needle in the growing haystack", CVPR 2022; Sorkhei et al., 2025 (a linear probe '
    "as a strong baseline of transferability estimation)",
    # A class needs a sample in two folds. The folds are a seeded stratified shuffle, drawn
    # class by class in class-index order: they depend on the sample order (stochastic) and on
    # the class names (not label-permutation invariant). Standardised inside each fold: scale-
    # and translation-free (the features are first divided by a power of two, exactly, so any
    # finite magnitude is safe). Constant features: every fold predicts from the intercept alone.
    # Above max_samples, a seeded stratified subset drawn by sample position (stochastic too).
    min_per_class=2,
    constant="finite",
    scale_invariant=True,
    translation_invariant=True,
    label_permutation_invariant=False,
    stochastic=True,
    group="baseline",
    resample=False,  # n_splits logistic-regression fits per bootstrap resample: too costly
    # regression: cross-validated ridge R^2; multi-label: the mean over labels of each label's
    # two-class probe (one-vs-rest), each on its own stratified folds.
    targets=frozenset({"classes", "regression", "multilabel"}),
)
def linear_probe(
    features,
    labels,
    *,
    n_splits: int = DEFAULT_SPLITS,
    C: float = 1.0,
    max_iter: int = DEFAULT_MAX_ITER,
    metric: str = "accuracy",
    max_samples: int | None = DEFAULT_MAX_SAMPLES,
    seed: int = 0,
    target_kind: str = "classes",
) -> float:
    """Linear probe: stratified k-fold cross-validated accuracy of an L2 logistic regression (<= ~10,000 samples).

    In each of ``n_splits`` folds of a seeded, shuffled, stratified split
    (:class:`~sklearn.model_selection.StratifiedKFold`), a
    :class:`~sklearn.preprocessing.StandardScaler` is fitted on the training
    part and a multinomial :class:`~sklearn.linear_model.LogisticRegression`
    (lbfgs, L2 penalty) minimises

    .. math::

        \\frac{1}{2} \\lVert W \\rVert_F^2 - C \\sum_{i \\in \\text{train}}
        \\log \\operatorname{softmax}(W z_i + b)_{y_i}

    on the standardised features :math:`z_i`; the score is the mean over the
    folds of the held-out accuracy (``metric="accuracy"``) or of minus the
    held-out mean log-loss (``metric="log_loss"``):

    .. math::

        S_{\\text{acc}} = \\frac{1}{K} \\sum_{k=1}^{K} \\frac{1}{|T_k|} \\sum_{i \\in T_k} [\\hat y_i = y_i],
        \\qquad
        S_{\\text{log}} = \\frac{1}{K} \\sum_{k=1}^{K} \\frac{1}{|T_k|} \\sum_{i \\in T_k} \\log \\hat p_i(y_i)

    Higher is better for both. This is exactly
    ``cross_validate(Pipeline([scaler, logistic]), X, y, cv=StratifiedKFold(n_splits,
    shuffle=True, random_state=seed), scoring=...)`` with the features first
    divided by a power of two near their largest magnitude (exact, so the value
    is that of the raw features, and any finite magnitude is safe).

    Sample cap. With ``N > max_samples`` the same computation runs on a subset
    of the samples: class ``c`` with :math:`n_c` samples keeps
    :math:`\\max(2, \\lfloor n_c M_{\\max} / N \\rfloor)` of them (about
    ``max_samples`` in all, the class shares kept, every class in at least two
    folds), those with the smallest of one uniform random key per sample,
    drawn in sample order from ``seed``: the same samples for every candidate
    model that sees them in the same order (a paired comparison). The value is
    then the cross-validated accuracy of a probe trained on about
    :math:`(1 - 1/K) \\, M_{\\max}` samples, not on :math:`(1 - 1/K) N`: a
    probe with fewer training samples per class, usually a lower accuracy, the
    same for every candidate. The cost of one lbfgs iteration is
    :math:`O(M D C)` with :math:`M = \\min(N, M_{\\max})`. For regression
    targets the subset is a uniform one of ``max_samples`` samples; each label
    of a multi-label target gets its own subset, stratified on that label.

    With ``target_kind="regression"`` the probe is a
    :class:`~sklearn.linear_model.Ridge` regression (penalty ``alpha = 1 / C``,
    with an intercept) on the standardised features, the folds are a seeded
    shuffled :class:`~sklearn.model_selection.KFold`, and the score is the
    mean over the folds of the held-out coefficient of determination
    (scikit-learn's ``"r2"``, averaged over the target columns):

    .. math::

        S_{R^2} = \\frac{1}{K} \\sum_{k=1}^{K} \\Bigl(1 - \\frac{\\sum_{i \\in T_k} (y_i - \\hat y_i)^2}
            {\\sum_{i \\in T_k} (y_i - \\bar y_{T_k})^2}\\Bigr) .

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target features of the candidate model.
    labels : array-like of shape (n_samples,), or (n_samples, n_targets) for regression
        Target labels, at least 2 classes, at least 2 samples per class; or
        real-valued targets.
    n_splits : int, default=5
        Folds, at least 2; reduced to the smallest class count when a class
        has fewer samples (every class is then in every fold).
    C : float, default=1.0
        Inverse L2 regularisation strength (scikit-learn's default), > 0.
    max_iter : int, default=1000
        lbfgs iterations per fit, at least 1. Generous: a fit that does not
        converge within it still gives its iterate, with scikit-learn's
        ``ConvergenceWarning`` (not silenced).
    metric : {"accuracy", "log_loss"}, default="accuracy"
        ``"accuracy"`` (the registered value) or ``"log_loss"`` (minus the
        mean held-out log-loss, in ``(-inf, 0]``).
    max_samples : int or None, default=10000
        The sample cap: above it, a seeded class-stratified subset of about
        ``max_samples`` samples is cross-validated (see above); ``None`` uses
        every sample. At least 4.
    seed : int, default=0
        Seed of the fold shuffle and of the subset above ``max_samples``.
    target_kind : {"classes", "regression", "multilabel"}, default="classes"
        Class labels (``metric``) or real-valued targets (cross-validated
        R^2; ``metric`` is then not read). For regression ``n_splits`` is
        reduced so that every held-out fold has at least 2 samples. A
        multi-label 0/1 matrix gives the mean over its labels of the two-class
        probe of each label's column (``metric`` as for classes; each equals
        ``linear_probe`` on that column alone).

    Returns
    -------
    float
        The mean cross-validated accuracy in ``[0, 1]``, or minus the mean
        cross-validated log-loss.

    Raises
    ------
    ValueError
        On invalid ``features``/``labels`` (see
        :func:`~transferlab._validation.check_features_labels`; a class with a
        single sample included), ``n_splits`` not an integer >= 2, ``C`` not a
        positive number, ``max_iter`` not an integer >= 1, an unknown
        ``metric``, ``max_samples`` not an integer >= 4 or None, or a bad
        ``seed``.

    References
    ----------
    C. Renggli et al. Which model to transfer? Finding the needle in the
    growing haystack. CVPR 2022.
    Sorkhei et al. 2025, a re-evaluation of transferability estimation in
    which a linear probe on frozen features is a strong baseline.

    Examples
    --------
    Two separated classes: every held-out sample is classified correctly.

    >>> features = [[0.0, 1.0], [0.2, 1.1], [0.1, 0.9], [3.0, 0.0], [3.1, 0.2], [2.9, 0.1]]
    >>> linear_probe(features, [0, 0, 0, 1, 1, 1], n_splits=3)
    1.0
    """
    if target_kind not in ("classes", "regression", "multilabel"):
        raise ValueError(
            f"score 'linear_probe' does not support {target_kind!r} targets (it supports classes, regression, "
            "multilabel)"
        )
    if target_kind == "multilabel":
        Y = check_multilabel(labels, check_features(features).shape[0])
        values = []
        for c in range(Y.shape[1]):
            try:
                values.append(linear_probe(features, Y[:, c].astype(np.int64), n_splits=n_splits, C=C,
                                           max_iter=max_iter, metric=metric, max_samples=max_samples,
                                           seed=seed))
            except ValueError as exc:
                raise ValueError(f"labels (multi-label) column {c}: {exc}") from None
        return float(np.mean(values))
    if target_kind == "regression":
        X = check_features(features)
        Y = check_targets(labels, X.shape[0])
    else:
        X, y, classes = check_features_labels(features, labels, min_per_class=2)
    n_splits = check_int(n_splits, "n_splits", minimum=2)
    C = check_scalar(C, "C", numbers.Real, min_val=0, include_boundaries="neither")
    max_iter = check_int(max_iter, "max_iter")
    max_samples = check_scalar(max_samples, "max_samples", (numbers.Integral, type(None)), min_val=4)
    seed = check_seed(seed)
    if target_kind == "regression":
        rows = _uniform_rows(X.shape[0], max_samples, seed)
        if rows is not None:
            X, Y = X[rows], Y[rows]
        # a power of two: exact, and the scaler's squares can neither overflow nor underflow
        X = np.ldexp(X, -binary_exponent(X), out=X)
        return _ridge_r2(X, Y, n_splits=n_splits, alpha=1.0 / float(C), seed=seed)
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(repr(m) for m in METRICS)}; got {metric!r}")
    rows = _stratified_rows(y, classes.shape[0], max_samples, seed, minimum=2)
    if rows is not None:
        X, y = X[rows], y[rows]
    X = np.ldexp(X, -binary_exponent(X), out=X)  # in place: X is this function's own copy
    n_splits = min(n_splits, int(np.bincount(y).min()))
    probe = Pipeline([("scale", StandardScaler()), ("logistic", LogisticRegression(C=float(C), max_iter=max_iter))])
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    result = cross_validate(probe, X, y, cv=folds, scoring=METRICS[metric], error_score="raise")
    return float(np.mean(result["test_score"]))


def _ridge_r2(X: np.ndarray, Y: np.ndarray, *, n_splits: int, alpha: float, seed: int) -> float:
    """The mean K-fold held-out R^2 of a standardised ridge regression (clean ``X`` scaled by a power of
    two to max|X| < 1, ``Y`` (N, K))."""
    if X.shape[0] < 4:
        raise ValueError(f"a cross-validated R^2 needs at least 4 samples (2 folds of 2); got {X.shape[0]}")
    n_splits = min(n_splits, X.shape[0] // 2)  # every held-out fold has 2 samples: its R^2 is defined
    probe = Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=alpha))])
    folds = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    y = Y[:, 0] if Y.shape[1] == 1 else Y
    result = cross_validate(probe, X, y, cv=folds, scoring="r2", error_score="raise")
    return float(np.mean(result["test_score"]))
