"""Scores for regression and multi-label targets, and the registry's ``targets`` trait.

Each regression form is checked against a value derived another way: Linear MSE
against the ridge normal equations with an explicit intercept column, kNN
regression against a brute-force loop over sorted neighbours, the linear probe
against scikit-learn's ``cross_val_score`` on the same folds, multi-label LogME
against the mean of per-label LogME.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from transferlab.scores import TARGET_KINDS, Traits, available, knn, linear_mse, linear_probe, logme, spec
from transferlab.scores._registry import _ScoreRegistry


def _regression(seed=0, n=40, d=5, k=1, noise=0.3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d)
    W = rng.normal(size=(d, k))
    Y = X @ W + noise * rng.normal(size=(n, k)) + 2.0
    return X, (Y[:, 0] if k == 1 else Y)


# --------------------------------------------------------------------------- linear_mse


def _ridge_closed_form(X, Y, alpha):
    """Minus the training MSE of ridge with an unpenalised intercept, from the normal equations of [X, 1]."""
    Y = Y.reshape(len(Y), -1)
    A = np.column_stack([X, np.ones(len(X))])
    penalty = alpha * np.eye(A.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not penalised
    coef = np.linalg.solve(A.T @ A + penalty, A.T @ Y)
    return -np.mean((Y - A @ coef) ** 2)


@pytest.mark.parametrize("n, d, k, alpha", [(30, 4, 1, 1.0), (30, 4, 3, 0.1), (8, 20, 2, 1.0), (12, 3, 1, 50.0)])
def test_linear_mse_is_the_closed_form_ridge_training_error(n, d, k, alpha):
    X, Y = _regression(seed=n + d, n=n, d=d, k=k)
    np.testing.assert_allclose(linear_mse(X, Y, alpha=alpha), _ridge_closed_form(X, Y, alpha), rtol=1e-9)
    # and scikit-learn's Ridge (the paper's regularised linear regression) agrees
    fitted = Ridge(alpha=alpha).fit(X, Y).predict(X)
    np.testing.assert_allclose(linear_mse(X, Y, alpha=alpha), -np.mean((Y - fitted) ** 2), rtol=1e-8)


def test_linear_mse_by_hand():
    # y = 2x + 1 exactly: the fit with no penalty is perfect.
    assert linear_mse([[0.0], [1.0], [2.0], [3.0]], [1.0, 3.0, 5.0, 7.0], alpha=1e-12) == pytest.approx(0.0, abs=1e-18)
    # One feature, centred x = (-1, 1), y = (0, 2): w = 2 / (2 + alpha), residual = (1 - w, w - 1) after centring.
    # With alpha = 2: w = 1/2, residuals +-1/2, MSE = 1/4.
    assert linear_mse([[0.0], [2.0]], [0.0, 2.0], alpha=2.0) == pytest.approx(-0.25, rel=1e-12)
    # Constant features explain nothing: minus the (biased) variance of the targets.
    assert linear_mse(np.ones((4, 2)), [1.0, 2.0, 3.0, 6.0]) == pytest.approx(-np.var([1.0, 2.0, 3.0, 6.0]))


def test_linear_mse_traits_hold_on_regression_targets():
    X, y = _regression(seed=3)
    value = linear_mse(X, y)
    np.testing.assert_allclose(linear_mse(X + np.arange(5.0) * 100, y), value, rtol=1e-9)  # translation
    assert not np.isclose(linear_mse(X * 0.01, y), value, rtol=1e-4)  # the penalty is not scale-free
    np.testing.assert_allclose(linear_mse(X.astype(np.float32), y), linear_mse(X.astype(np.float32).astype(float), y))
    order = np.random.default_rng(0).permutation(len(y))
    np.testing.assert_allclose(linear_mse(X[order], y[order]), value, rtol=1e-10)
    s = spec("linear_mse")
    assert s.targets == {"regression"} and s.translation_invariant and not s.scale_invariant
    assert s.needs == {"features"} and s.group == "score"


@pytest.mark.parametrize("bad, match", [
    ({"labels": [1.0, np.nan, 2.0, 3.0]}, "labels must be finite"),
    ({"labels": ["a", "b", "c", "d"]}, "labels must be numeric"),
    ({"alpha": 0.0}, "alpha"),
    ({"target_kind": "classes"}, "score 'linear_mse' does not support 'classes' targets"),
])
def test_linear_mse_refuses_bad_input(bad, match):
    kwargs = {"features": np.arange(8.0).reshape(4, 2) ** 2, "labels": [1.0, 2.0, 0.0, 3.0], **bad}
    with pytest.raises(ValueError, match=match):
        linear_mse(**kwargs)


# --------------------------------------------------------------------------- knn


def _knn_r2_brute_force(X, Y, k):
    """Leave-one-out kNN regression R^2: z-score, cosine, sort every other sample by (-similarity, index)."""
    Y = Y.reshape(len(Y), -1)
    keep = X.max(axis=0) > X.min(axis=0)
    Z = (X[:, keep] - X[:, keep].mean(axis=0)) / X[:, keep].std(axis=0)
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    n = len(X)
    predicted = np.empty_like(Y)
    for i in range(n):
        others = sorted((j for j in range(n) if j != i), key=lambda j: (-float(Z[i] @ Z[j]), j))
        predicted[i] = Y[others[:k]].mean(axis=0)
    r2 = 1.0 - ((Y - predicted) ** 2).sum(axis=0) / ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(r2))


@pytest.mark.parametrize("k, n_targets", [(1, 1), (5, 1), (10, 2), (100, 1)])
def test_knn_regression_is_the_brute_force_leave_one_out_r2(k, n_targets):
    X, Y = _regression(seed=k, n=25, d=4, k=n_targets, noise=1.0)
    got = knn(X, Y, k=k, target_kind="regression")
    np.testing.assert_allclose(got, _knn_r2_brute_force(X, Y, min(k, 24)), rtol=1e-10)
    assert got <= 1.0


def test_knn_regression_refuses_a_constant_target_and_classes_stay_as_they_were():
    X, y = _regression(seed=1)
    with pytest.raises(ValueError, match="constant column"):
        knn(X, np.ones(len(y)), target_kind="regression")
    labels = (y > np.median(y)).astype(int)
    assert knn(X, labels) == knn(X, labels, target_kind="classes")
    with pytest.raises(ValueError, match="score 'knn' does not support 'ordinal' targets"):
        knn(X, labels, target_kind="ordinal")


# --------------------------------------------------------------------------- linear_probe


@pytest.mark.parametrize("n_splits, C, seed, n_targets", [(5, 1.0, 0, 1), (3, 0.1, 7, 1), (4, 2.0, 1, 2)])
def test_linear_probe_regression_is_sklearn_cross_validated_ridge_r2_on_the_same_folds(n_splits, C, seed, n_targets):
    X, Y = _regression(seed=seed, n=30, d=6, k=n_targets, noise=2.0)
    expected = cross_val_score(make_pipeline(StandardScaler(), Ridge(alpha=1.0 / C)), X, Y,
                               cv=KFold(n_splits, shuffle=True, random_state=seed), scoring="r2").mean()
    got = linear_probe(X, Y, n_splits=n_splits, C=C, seed=seed, target_kind="regression")
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_linear_probe_regression_keeps_two_samples_in_each_held_out_fold():
    X, y = _regression(seed=2, n=6, d=2)
    expected = cross_val_score(make_pipeline(StandardScaler(), Ridge(alpha=1.0)), X, y,
                               cv=KFold(3, shuffle=True, random_state=0), scoring="r2").mean()
    np.testing.assert_allclose(linear_probe(X, y, n_splits=5, target_kind="regression"), expected, rtol=1e-9)
    with pytest.raises(ValueError, match="at least 4 samples"):
        linear_probe(X[:3], y[:3], target_kind="regression")


# --------------------------------------------------------------------------- logme


def test_multilabel_logme_is_the_mean_of_per_label_logme():
    rng = np.random.default_rng(5)
    F = rng.normal(size=(40, 6))
    Y = (F[:, :3] + 0.5 * rng.normal(size=(40, 3)) > 0).astype(int)
    per_label = [logme(F, Y[:, j], regression=True) for j in range(3)]
    np.testing.assert_allclose(logme(F, Y, target_kind="multilabel"), np.mean(per_label), rtol=1e-10)
    np.testing.assert_allclose(spec("logme").compute(Y, features=F, target_kind="multilabel"), np.mean(per_label),
                               rtol=1e-10)
    with pytest.raises(ValueError, match="must hold only 0 and 1"):
        logme(F, Y * 2, target_kind="multilabel")
    with pytest.raises(ValueError, match="column 1 is all zeros"):
        logme(F, np.column_stack([Y[:, 0], np.zeros(40)]), target_kind="multilabel")


def test_logme_regression_kind_is_its_regression_form():
    X, y = _regression(seed=4)
    assert logme(X, y, target_kind="regression") == logme(X, y, regression=True)
    with pytest.raises(ValueError, match="target_kind must be"):
        logme(X, y, target_kind="ordinal")


# --------------------------------------------------------------------------- the registry


def test_declared_target_kinds():
    assert TARGET_KINDS == ("classes", "regression", "multilabel")
    assert spec("logme").targets == set(TARGET_KINDS)
    assert spec("knn").targets == spec("linear_probe").targets == set(TARGET_KINDS)
    assert spec("linear_mse").targets == {"regression"}
    others = [n for n in available(kind=None) if n not in ("logme", "knn", "linear_probe", "linear_mse")]
    assert others and all(spec(n).targets == {"classes"} for n in others)


@pytest.mark.parametrize("name", ["hscore", "leep", "sfda", "ncti"])
def test_a_classes_only_score_is_refused_for_regression_by_name(name):
    with pytest.raises(ValueError, match=rf"^score '{name}' does not support regression targets \(it supports "
                                         r"classes\)$"):
        spec(name).supports("regression")
    spec(name).supports("classes")


def test_targets_trait_is_checked_at_registration():
    with pytest.raises(ValueError, match="targets must be a non-empty subset"):
        Traits(targets=frozenset({"ordinal"}))
    with pytest.raises(ValueError, match="targets must be a non-empty subset"):
        Traits(targets=frozenset())
    assert Traits(targets={"regression", "classes"}).targets == frozenset({"regression", "classes"})
    reg = _ScoreRegistry()

    with pytest.raises(ValueError, match="takes no target_kind argument"):
        @reg.register_score("no_kind", needs={"features"}, reference="Doe 2024", targets={"regression"})
        def no_kind(features, labels):
            """No kind."""
            return 0.0

    @reg.register_score("with_kind", needs={"features"}, reference="Doe 2024", targets={"regression"})
    def with_kind(features, labels, *, target_kind="regression"):
        """With kind."""
        return 0.0

    assert reg.spec("with_kind").targets == {"regression"}


# --------------------------------------------------------------------------- per-label baselines


def _multilabel(seed=0, n=30):
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(n, 4))
    Y = np.column_stack([F[:, 0] > 0, F[:, 1] + rng.normal(size=n) > 0.3, rng.random(n) < 0.4]).astype(int)
    return F, Y


@pytest.mark.parametrize("k", [1, 4, 7])
def test_multilabel_knn_is_the_mean_of_per_label_knn(k):
    F, Y = _multilabel(seed=k)
    per_label = [knn(F, Y[:, c], k=k) for c in range(Y.shape[1])]
    assert knn(F, Y, k=k, target_kind="multilabel") == pytest.approx(np.mean(per_label), rel=1e-15)
    lonely = Y.copy()
    lonely[:, 2] = 0
    lonely[0, 2] = 1
    with pytest.raises(ValueError, match="column 2 has 1 of 30 samples with the label"):
        knn(F, lonely, k=k, target_kind="multilabel")


def test_multilabel_linear_probe_is_the_mean_of_per_label_probes():
    F, Y = _multilabel(seed=3)
    per_label = [linear_probe(F, Y[:, c], n_splits=3, seed=1) for c in range(Y.shape[1])]
    got = linear_probe(F, Y, n_splits=3, seed=1, target_kind="multilabel")
    assert got == pytest.approx(np.mean(per_label), rel=1e-15)
    with pytest.raises(ValueError, match="labels \\(multi-label\\) column 0: labels must contain at least 2 classes"):
        linear_probe(F, np.column_stack([np.zeros(30), Y[:, 1]]), target_kind="multilabel")
