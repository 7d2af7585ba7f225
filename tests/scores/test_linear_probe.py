"""Linear probe: equal to scikit-learn's own cross-validation of the same pipeline, and its edge cases."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from transferlab.scores import linear_probe, spec


def _problem(seed, counts=(12, 10, 14), dim=6, signal=1.0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    features = rng.normal(size=(labels.size, dim)) + signal * np.eye(len(counts), dim)[labels]
    return features, labels


def _sklearn(features, labels, *, seed, scoring, n_splits=5, C=1.0, max_iter=1000):
    """The documented computation, written with scikit-learn directly."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    return cross_val_score(probe, features, labels, cv=folds, scoring=scoring).mean()


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_equals_sklearn_cross_validated_accuracy(seed):
    features, labels = _problem(seed)
    value = linear_probe(features, labels, seed=seed)
    assert type(value) is float
    np.testing.assert_allclose(value, _sklearn(features, labels, seed=seed, scoring="accuracy"), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
def test_log_loss_is_minus_the_mean_cross_validated_log_loss(seed):
    features, labels = _problem(seed, signal=0.5)
    value = linear_probe(features, labels, metric="log_loss", seed=seed)
    expected = _sklearn(features, labels, seed=seed, scoring="neg_log_loss")
    assert expected < 0
    np.testing.assert_allclose(value, expected, rtol=1e-10)


def test_options_reach_sklearn():
    features, labels = _problem(2, signal=0.3)
    np.testing.assert_allclose(
        linear_probe(features, labels, C=0.01, n_splits=3, max_iter=500, seed=4),
        _sklearn(features, labels, seed=4, scoring="accuracy", n_splits=3, C=0.01, max_iter=500),
        rtol=0, atol=1e-12,
    )


def test_n_splits_reduced_to_the_smallest_class():
    # A class of 3 samples: 3 folds (each holds one of its samples), not 5.
    features, labels = _problem(5, counts=(3, 9, 8))
    expected = _sklearn(features, labels, seed=0, scoring="accuracy", n_splits=3)
    np.testing.assert_allclose(linear_probe(features, labels), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(linear_probe(features, labels, n_splits=3), expected, rtol=0, atol=1e-12)
    # Two samples in a class: 2 folds.
    features, labels = _problem(6, counts=(2, 6))
    np.testing.assert_allclose(
        linear_probe(features, labels), _sklearn(features, labels, seed=0, scoring="accuracy", n_splits=2),
        rtol=0, atol=1e-12,
    )


def test_separated_classes_and_the_doctest():
    features = [[0.0, 1.0], [0.2, 1.1], [0.1, 0.9], [3.0, 0.0], [3.1, 0.2], [2.9, 0.1]]
    assert linear_probe(features, [0, 0, 0, 1, 1, 1], n_splits=3) == 1.0


def test_the_seed_chooses_the_folds():
    features, labels = _problem(8, signal=0.4)
    assert linear_probe(features, labels, seed=3) == linear_probe(features, labels, seed=3)
    values = {linear_probe(features, labels, seed=s) for s in range(6)}
    assert len(values) > 1  # different folds, different held-out accuracies on a noisy problem


def test_any_finite_magnitude_gives_the_unit_scale_value():
    # The power-of-two rescaling is exact: the value at 2**k times the features is bitwise the same,
    # and far magnitudes (whose squares would overflow or underflow in the scaler) give it too.
    features, labels = _problem(9, signal=0.7)
    expected = linear_probe(features, labels)
    assert linear_probe(features * 2.0**-40, labels) == expected
    for factor in (1e-300, 1e300):
        assert linear_probe(features * factor, labels) == expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metric": "auc"}, "metric must be one of 'accuracy', 'log_loss'; got 'auc'"),
        ({"n_splits": 1}, "n_splits must be an integer >= 2; got 1"),
        ({"n_splits": 2.0}, "n_splits must be an integer >= 2"),
        ({"C": 0.0}, "C must be"),
        ({"C": np.nan}, "C must be"),
        ({"max_iter": 0}, "max_iter must be an integer >= 1"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"max_samples": 3}, "max_samples must be an integer >= 4 or None; got 3"),
        ({"max_samples": 10.0}, "max_samples must be an integer >= 4 or None"),
    ],
)
def test_bad_options_name_the_argument(kwargs, message):
    features, labels = _problem(0)
    with pytest.raises(ValueError, match=message):
        linear_probe(features, labels, **kwargs)


def test_bad_input_names_the_argument():
    features, labels = _problem(0)
    bad = features.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="features must be finite"):
        linear_probe(bad, labels)
    with pytest.raises(ValueError, match="labels must contain at least 2 classes"):
        linear_probe(features, np.zeros_like(labels))
    with pytest.raises(ValueError, match=r"every class in labels needs at least 2 samples"):
        linear_probe(features[:13], labels[:13])


def test_spec():
    s = spec("linear_probe")
    assert s.group == "baseline" and s.resample is False and s.needs == {"features"}
    assert s.seeded and s.stochastic and not s.label_permutation_invariant
    assert s.scale_invariant and s.translation_invariant and s.min_per_class == 2
    assert "Renggli" in s.reference and "Sorkhei" in s.reference
    assert s.max_samples == 10_000


# --------------------------------------------------------------------------- the sample cap


def _documented_subset(labels, max_samples, seed):
    """The rows of the sample cap, from the docstring: one uniform key per row drawn in row order
    from ``default_rng(seed)``; class c keeps max(2, floor(n_c * max_samples / N)) rows, those with
    the smallest keys; the rows stay in their order."""
    n = len(labels)
    keys = np.random.default_rng(seed).random(n)
    chosen = []
    for c in np.unique(labels):
        members = [i for i in range(n) if labels[i] == c]
        take = min(len(members), max(2, len(members) * max_samples // n))
        chosen += sorted(members, key=lambda i: keys[i])[:take]
    return np.array(sorted(chosen))


@pytest.mark.parametrize("seed", [0, 5])
@pytest.mark.parametrize("max_samples", [12, 25])
def test_capped_probe_is_sklearn_on_the_documented_subset(seed, max_samples):
    features, labels = _problem(seed, counts=(30, 22, 3), signal=0.8)
    rows = _documented_subset(labels, max_samples, seed)
    # the class of 3 keeps 2 (its share would be 0 or 1): every class is in two folds
    assert np.bincount(labels[rows]).min() == 2 and len(rows) <= max_samples + 2
    n_splits = min(5, int(np.bincount(labels[rows]).min()))
    expected = _sklearn(features[rows], labels[rows], seed=seed, scoring="accuracy", n_splits=n_splits)
    np.testing.assert_allclose(linear_probe(features, labels, max_samples=max_samples, seed=seed), expected,
                               rtol=0, atol=1e-12)


def test_at_or_below_the_cap_every_sample_is_used():
    features, labels = _problem(3)
    expected = _sklearn(features, labels, seed=2, scoring="accuracy")
    for max_samples in (36, 100, None):
        np.testing.assert_allclose(linear_probe(features, labels, max_samples=max_samples, seed=2), expected,
                                   rtol=0, atol=1e-12)


def test_capped_regression_is_ridge_on_a_uniform_subset():
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold

    rng = np.random.default_rng(6)
    X = rng.normal(size=(50, 4))
    y = X @ np.array([1.0, -0.5, 0.0, 2.0]) + 0.5 * rng.normal(size=50)
    rows = _documented_subset(np.zeros(50, dtype=int), 20, 3)
    assert len(rows) == 20
    expected = cross_val_score(make_pipeline(StandardScaler(), Ridge(alpha=1.0)), X[rows], y[rows],
                               cv=KFold(5, shuffle=True, random_state=3), scoring="r2").mean()
    np.testing.assert_allclose(linear_probe(X, y, max_samples=20, seed=3, target_kind="regression"), expected,
                               rtol=1e-10)
