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
