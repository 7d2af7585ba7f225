"""Tests for the percentile bootstrap over targets and the summary of per-target metrics."""

import numpy as np
import pytest
from scipy import stats

from transferlab.evaluate._bootstrap import bootstrap_ci, summarise
from transferlab.evaluate._selection import selection_metrics


def test_matches_scipy_percentile_bootstrap():
    # scipy.stats.bootstrap(method="percentile") draws rng.integers(0, m, (n_resamples, m))
    # and takes numpy percentiles of the replicates, the same documented procedure; with
    # the same Generator seed it gives the same interval (checked with scipy 1.17.1).
    x = np.random.default_rng(1).normal(size=12)
    est, low, high = bootstrap_ci(x, n_boot=500, confidence=0.9, seed=3)
    ref = stats.bootstrap(
        (x,), np.mean, n_resamples=500, confidence_level=0.9, method="percentile", rng=np.random.default_rng(3)
    )
    np.testing.assert_allclose(est, x.mean(), rtol=1e-12)
    np.testing.assert_allclose(
        [low, high], [ref.confidence_interval.low, ref.confidence_interval.high], rtol=1e-10, atol=1e-12
    )


def test_determinism_by_seed():
    values = [0.1, 0.4, -0.2, 0.3, 0.25, 0.05]
    a = bootstrap_ci(values, seed=11)
    assert bootstrap_ci(values, seed=11) == a
    assert bootstrap_ci(values, seed=np.random.default_rng(11)) == a  # a Generator with the same seed
    assert bootstrap_ci(values, seed=12) != a
    assert bootstrap_ci(values, seed=12)[0] == a[0]  # the estimate does not depend on the seed


def test_constant_values_give_a_point():
    est, low, high = bootstrap_ci([0.1] * 7 + [None], seed=5)
    assert low == est == high
    np.testing.assert_allclose(est, 0.1, rtol=1e-15)


def test_coverage_for_normal_samples():
    # 200 samples of 40 draws from N(2, 1): the 90% interval should contain the true mean
    # about 90% of the time (the percentile interval undercovers slightly at m = 40).
    rng = np.random.default_rng(0)
    hits = 0
    for i in range(200):
        x = rng.normal(2.0, 1.0, size=40)
        est, low, high = bootstrap_ci(x, n_boot=300, confidence=0.9, seed=i)
        assert low <= est <= high
        hits += low <= 2.0 <= high
    assert 0.82 <= hits / 200 <= 0.97


def test_width_matches_normal_theory():
    # For the mean of m iid values the 95% interval is about mean +- 1.96 s / sqrt(m).
    x = np.random.default_rng(4).normal(0.0, 3.0, size=400)
    est, low, high = bootstrap_ci(x, n_boot=2000, seed=0)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    np.testing.assert_allclose([low, high], [est - half, est + half], atol=0.1 * half)


def test_none_is_dropped():
    assert bootstrap_ci([1.0, None, 2.0, 5.0, None], seed=2) == bootstrap_ci([1.0, 2.0, 5.0], seed=2)


def test_custom_statistic_and_inputs_untouched():
    x = np.array([3.0, 1.0, 2.0, 10.0, 4.0])
    est, low, high = bootstrap_ci(x, statistic=np.median, n_boot=300, seed=0)
    assert est == 3.0
    # Medians of resamples are values of x or midpoints of two: within [min, max].
    assert 1.0 <= low <= est <= high <= 10.0
    np.testing.assert_array_equal(x, [3.0, 1.0, 2.0, 10.0, 4.0])


def test_bootstrap_errors():
    with pytest.raises(ValueError, match="at least 2 defined values .* got 1 of 3 after dropping None"):
        bootstrap_ci([1.0, None, None])
    with pytest.raises(ValueError, match="values must be finite; got nan at index 1 .*use None"):
        bootstrap_ci([1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="real numbers or None; got 'a' at index 0"):
        bootstrap_ci(["a", 1.0, 2.0])
    with pytest.raises(ValueError, match=r"values must be 1-D \(n_targets,\); got shape \(2, 2\)"):
        bootstrap_ci(np.ones((2, 2)))
    with pytest.raises(ValueError, match="n_boot must be a positive integer; got 0"):
        bootstrap_ci([1.0, 2.0], n_boot=0)
    with pytest.raises(ValueError, match=r"confidence must be a finite number in \(0, 1\); got 95"):
        bootstrap_ci([1.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match="seed must be an integer >= 0 or a Generator; got None"):
        bootstrap_ci([1.0, 2.0], seed=None)
    with pytest.raises(ValueError, match="statistic must return one real number"):
        bootstrap_ci([1.0, 2.0], statistic=lambda v: v)
    with pytest.raises(ValueError, match="statistic must return a finite number"):
        bootstrap_ci([1.0, 2.0], statistic=lambda v: np.inf)


# --------------------------------------------------------------------------- summarise


def test_summarise_is_bootstrap_per_metric():
    per_target = [{"a": 1.0, "b": None}, {"a": 2.0, "b": 4.0}, {"a": 4.0, "b": 5.0}, {"a": 0.5, "b": 7.0}]
    out = summarise(per_target, seed=3, n_boot=500)
    assert list(out) == ["a", "b"]
    assert out["a"] == bootstrap_ci([1.0, 2.0, 4.0, 0.5], n_boot=500, seed=3)
    assert out["b"] == bootstrap_ci([4.0, 5.0, 7.0], n_boot=500, seed=3)
    np.testing.assert_allclose(out["a"][0], 7.5 / 4)
    np.testing.assert_allclose(out["b"][0], 16 / 3)


def test_summarise_resamples_metrics_in_pairs():
    # One seed for every metric: a metric y = 2 x + 1 on the same targets sees the same
    # resamples, so its interval is the affine image of x's (mean and linear-interpolated
    # percentiles are affine equivariant).
    x = np.random.default_rng(9).uniform(size=8)
    per_target = [{"x": float(v), "y": float(2 * v + 1)} for v in x]
    out = summarise(per_target, seed=1, n_boot=400)
    np.testing.assert_allclose(out["y"], 2 * np.asarray(out["x"]) + 1, rtol=1e-12)


def test_summarise_selection_metrics_end_to_end():
    rng = np.random.default_rng(0)
    per_target = []
    for _ in range(5):
        acc = rng.uniform(50, 90, size=6)
        per_target.append(selection_metrics(acc + rng.normal(0, 5, size=6), acc, baseline=0, ks=(1, 3)))
    per_target.append(selection_metrics(rng.uniform(size=6), np.full(6, 70.0), baseline=0, ks=(1, 3)))
    out = summarise(per_target, n_boot=300)
    assert set(out) == set(per_target[0])
    for name, (est, low, high) in out.items():
        assert np.isfinite([est, low, high]).all() and low <= est <= high, name
    # The constant target contributes None to the correlations only: mean over 5 targets.
    np.testing.assert_allclose(out["spearman"][0], np.mean([d["spearman"] for d in per_target[:5]]), rtol=1e-12)
    np.testing.assert_allclose(out["top1_gain"][0], np.mean([d["top1_gain"] for d in per_target]), rtol=1e-12)


def test_summarise_errors():
    with pytest.raises(ValueError, match="at least 2 targets to bootstrap; got 1"):
        summarise([{"a": 1.0}])
    with pytest.raises(ValueError, match=r"target 1 lacks \['b'\] and adds \['c'\]"):
        summarise([{"a": 1.0, "b": 2.0}, {"a": 1.0, "c": 2.0}])
    with pytest.raises(ValueError, match="metric 'b': values needs at least 2 defined values"):
        summarise([{"a": 1.0, "b": None}, {"a": 2.0, "b": 3.0}])
    with pytest.raises(ValueError, match="per_target must be a list"):
        summarise({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="per_target must hold dicts"):
        summarise([{"a": 1.0}, [1.0]])
    with pytest.raises(ValueError, match="seed must be"):
        summarise([{"a": 1.0}, {"a": 2.0}], seed=-1)
