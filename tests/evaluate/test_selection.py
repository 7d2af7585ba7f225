"""Tests for the per-target model-selection metrics (Deshpande et al., 2021)."""

import itertools
import math
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferlab.evaluate._ranking import trials_to_best, weighted_kendall
from transferlab.evaluate._selection import (
    expected_relative_top_k_accuracy_random,
    expected_top_k_accuracy_random,
    expected_top_k_gain_random,
    expected_trials_to_best_random,
    pearson,
    relative_top_k_accuracy,
    selection_metrics,
    spearman,
    top_k_gain,
)

# Small integer-valued accuracies/scores make ties frequent and brute force cheap.
small_values = st.lists(st.integers(0, 4).map(float), min_size=2, max_size=6)


def _orders_by_score(scores):
    """Every order of the models that sorts the scores decreasingly (all tie orders)."""
    for order in itertools.permutations(range(len(scores))):
        if all(scores[order[i]] >= scores[order[i + 1]] for i in range(len(order) - 1)):
            yield order


def _top_k_best_worst_case(scores, accuracies, k):
    """Pessimistic top-k: the worst best-of-first-k over every order compatible with the scores."""
    return min(max(accuracies[m] for m in order[:k]) for order in _orders_by_score(scores))


# --------------------------------------------------------------------------- correlations


def test_spearman_closed_form_without_ties():
    # rho = 1 - 6 sum d^2 / (n (n^2 - 1)). Ranks of scores (2, 1, 4, 3, 5), of accuracies
    # (1, 2, 3, 4, 5): d^2 = 1 + 1 + 1 + 1 + 0 = 4, rho = 1 - 24 / 120 = 0.8.
    got = spearman([0.2, 0.1, 0.9, 0.5, 1.5], [50.0, 60.0, 70.0, 80.0, 90.0])
    np.testing.assert_allclose(got, 0.8, rtol=1e-12)


def test_pearson_hand_example():
    # s = (1, 2, 3), a = (1, 3, 2): centred (-1, 0, 1) and (-1, 1, 0); r = 1 / (sqrt 2 sqrt 2) = 0.5.
    np.testing.assert_allclose(pearson([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]), 0.5, rtol=1e-12)
    # An affine map of the accuracies is a perfect linear correlation; a monotone
    # non-linear one is perfect for Spearman only.
    acc = np.array([61.0, 75.5, 70.0, 90.0, 55.0])
    np.testing.assert_allclose(pearson(3.0 * acc - 7.0, acc), 1.0, rtol=1e-12)
    np.testing.assert_allclose(spearman(np.exp(acc / 10.0), acc), 1.0, rtol=1e-12)
    assert pearson(np.exp(acc / 10.0), acc) < 1.0 - 1e-3


@pytest.mark.parametrize("fn", [spearman, pearson])
def test_correlations_reject_constant_input(fn):
    with pytest.raises(ValueError, match="scores are all equal"):
        fn([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="accuracies are all equal"):
        fn([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    with pytest.raises(ValueError, match="one entry per model; got 3 scores and 2 accuracies"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="scores must be finite; got nan at index 1"):
        fn([1.0, np.nan, 2.0], [1.0, 2.0, 3.0])


# --------------------------------------------------------------------------- top-k gain


@pytest.mark.parametrize(
    "scores, accuracies, baseline, k, expected",
    [
        # Score order 0, 2, 1, 3; accuracies 70, 75, 80, 60; baseline (model 1) has 80.
        ([0.9, 0.5, 0.7, 0.1], [70.0, 80.0, 75.0, 60.0], 1, 1, 70.0 - 80.0),
        ([0.9, 0.5, 0.7, 0.1], [70.0, 80.0, 75.0, 60.0], 1, 2, 75.0 - 80.0),
        ([0.9, 0.5, 0.7, 0.1], [70.0, 80.0, 75.0, 60.0], 1, 3, 80.0 - 80.0),
        ([0.9, 0.5, 0.7, 0.1], [70.0, 80.0, 75.0, 60.0], 3, 1, 70.0 - 60.0),
        ([0.9, 0.5, 0.7, 0.1], [70.0, 80.0, 75.0, 60.0], 3, 4, 80.0 - 60.0),
        # Score tie at the top between models 0 (60) and 1 (90): pessimistic -> 60 first.
        ([0.8, 0.8, 0.2], [60.0, 90.0, 70.0], 2, 1, 60.0 - 70.0),
        ([0.8, 0.8, 0.2], [60.0, 90.0, 70.0], 2, 2, 90.0 - 70.0),
        # Constant scores select the k worst models.
        ([0.5, 0.5, 0.5, 0.5], [60.0, 90.0, 70.0, 80.0], 0, 2, 70.0 - 60.0),
    ],
)
def test_top_k_gain_hand_worked(scores, accuracies, baseline, k, expected):
    got = top_k_gain(scores, accuracies, baseline, k=k)
    assert type(got) is float
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "scores, accuracies, k, expected",
    [
        ([0.9, 0.5, 0.7], [70.0, 80.0, 75.0], 1, 70.0 / 80.0),
        ([0.9, 0.5, 0.7], [70.0, 80.0, 75.0], 2, 75.0 / 80.0),
        ([0.9, 0.5, 0.7], [70.0, 80.0, 75.0], 3, 1.0),
        ([0.1, 0.5, 0.7], [70.0, 80.0, 75.0], 1, 75.0 / 80.0),
        ([0.7, 0.7, 0.1], [80.0, 40.0, 50.0], 1, 40.0 / 80.0),  # tie: pessimistic
        ([0.2, 0.9, 0.4], [0.0, 0.0, 0.5], 1, 0.0),  # a zero accuracy selected
    ],
)
def test_relative_top_k_accuracy_hand_worked(scores, accuracies, k, expected):
    np.testing.assert_allclose(relative_top_k_accuracy(scores, accuracies, k=k), expected, rtol=1e-12)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_top_k_matches_worst_case_over_tie_orders(data):
    scores = data.draw(small_values)
    accuracies = data.draw(st.lists(st.integers(1, 4).map(float), min_size=len(scores), max_size=len(scores)))
    n = len(scores)
    k = data.draw(st.integers(1, n))
    baseline = data.draw(st.integers(0, n - 1))
    worst = _top_k_best_worst_case(scores, accuracies, k)
    np.testing.assert_allclose(top_k_gain(scores, accuracies, baseline, k=k), worst - accuracies[baseline], atol=1e-12)
    np.testing.assert_allclose(relative_top_k_accuracy(scores, accuracies, k=k), worst / max(accuracies), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(small_values, st.randoms(use_true_random=False))
def test_top_k_gain_invariant_to_model_order(accuracies, rnd):
    n = len(accuracies)
    scores = [float(rnd.randint(0, 3)) for _ in range(n)]
    perm = list(range(n))
    rnd.shuffle(perm)
    inverse = perm.index(0)  # where the baseline (model 0) lands after the shuffle
    for k in range(1, n + 1):
        np.testing.assert_allclose(
            top_k_gain([scores[i] for i in perm], [accuracies[i] for i in perm], inverse, k=k),
            top_k_gain(scores, accuracies, 0, k=k),
            atol=1e-12,
        )


def test_top_k_does_not_modify_inputs():
    scores = np.array([0.3, 0.9, 0.1])
    accuracies = np.array([50.0, 60.0, 70.0])
    top_k_gain(scores, accuracies, 0, k=2)
    relative_top_k_accuracy(scores, accuracies, k=2)
    np.testing.assert_array_equal(scores, [0.3, 0.9, 0.1])
    np.testing.assert_array_equal(accuracies, [50.0, 60.0, 70.0])


def test_top_k_errors():
    s, a = [0.1, 0.2, 0.3], [50.0, 60.0, 70.0]
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 3\]; got 4"):
        top_k_gain(s, a, 0, k=4)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 3\]; got 0"):
        relative_top_k_accuracy(s, a, k=0)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 3\]; got 1.5"):
        top_k_gain(s, a, 0, k=1.5)
    with pytest.raises(
        ValueError, match=r"baseline \(index of the generic expert\) must be an integer in \[0, 2\]; got 3"
    ):
        top_k_gain(s, a, 3)
    with pytest.raises(ValueError, match=r"must be an integer in \[0, 2\]; got -1"):
        top_k_gain(s, a, -1)
    with pytest.raises(ValueError, match=r"baseline .* must be an integer in \[0, 2\]; got True"):
        top_k_gain(s, a, True)
    with pytest.raises(ValueError, match="non-negative accuracies; got -1.0 at index 1"):
        relative_top_k_accuracy(s, [5.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="every accuracy is 0"):
        relative_top_k_accuracy(s, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="at least 2 models; got 1"):
        top_k_gain([1.0], [1.0], 0)


# --------------------------------------------------------------------------- random selection


def _expected_max_by_subsets(accuracies, k):
    """Average of the best accuracy over every k-subset, exactly (Fractions)."""
    subsets = list(itertools.combinations(accuracies, k))
    return float(sum(Fraction(max(c)) for c in subsets) / len(subsets))


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_expected_top_k_accuracy_matches_all_subsets(data):
    accuracies = data.draw(st.lists(st.integers(0, 100).map(float), min_size=1, max_size=8))
    k = data.draw(st.integers(1, len(accuracies)))
    np.testing.assert_allclose(
        expected_top_k_accuracy_random(accuracies, k), _expected_max_by_subsets(accuracies, k), rtol=1e-12
    )


def test_expected_top_k_accuracy_endpoints_and_monotone():
    acc = np.array([0.61, 0.75, 0.70, 0.90, 0.55, 0.90, 0.42])
    np.testing.assert_allclose(expected_top_k_accuracy_random(acc, 1), acc.mean(), rtol=1e-12)
    np.testing.assert_allclose(expected_top_k_accuracy_random(acc, len(acc)), acc.max(), rtol=1e-12)
    # k = n - 1: drop one model uniformly; the max falls only if a unique best is dropped.
    # Here the best (0.90) appears twice, so E = 0.90.
    np.testing.assert_allclose(expected_top_k_accuracy_random(acc, len(acc) - 1), 0.90, rtol=1e-12)
    values = [expected_top_k_accuracy_random(acc, k) for k in range(1, len(acc) + 1)]
    assert all(b >= a for a, b in itertools.pairwise(values))


def test_expected_top_k_accuracy_large_zoo_matches_exact_binomials():
    # n = 400 models, k = 150: C(400, 150) ~ 1e113, far past what a naive float formula
    # survives without care. Python's int / int is correctly rounded, so the binomial
    # weights C(i-1, k-1) / C(n, k) are exact to the last bit.
    n, k = 400, 150
    acc = np.random.default_rng(7).uniform(0.2, 0.9, size=n)
    sorted_acc = np.sort(acc)
    total = math.comb(n, k)
    weights = np.array([math.comb(i - 1, k - 1) / total if i >= k else 0.0 for i in range(1, n + 1)])
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(expected_top_k_accuracy_random(acc, k), weights @ sorted_acc, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(small_values, st.randoms(use_true_random=False))
def test_expected_trials_to_best_matches_all_permutations(accuracies, rnd):
    # Random order = distinct scores assigned by a uniformly random permutation; the
    # average of trials_to_best over all n! assignments is the expectation.
    n = len(accuracies)
    trials = [trials_to_best(list(map(float, perm)), accuracies) for perm in itertools.permutations(range(n))]
    exact = Fraction(sum(trials), len(trials))
    b = accuracies.count(max(accuracies))
    assert exact == Fraction(n + 1, b + 1)  # the closed form, exactly
    np.testing.assert_allclose(expected_trials_to_best_random(accuracies), float(exact), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_expected_gain_and_relative_match_all_permutations(data):
    accuracies = data.draw(st.lists(st.integers(1, 9).map(float), min_size=2, max_size=5))
    n = len(accuracies)
    k = data.draw(st.integers(1, n))
    baseline = data.draw(st.integers(0, n - 1))
    perms = list(itertools.permutations(range(n)))
    gains = [top_k_gain(list(map(float, p)), accuracies, baseline, k=k) for p in perms]
    rels = [relative_top_k_accuracy(list(map(float, p)), accuracies, k=k) for p in perms]
    np.testing.assert_allclose(expected_top_k_gain_random(accuracies, baseline, k=k), np.mean(gains), atol=1e-12)
    np.testing.assert_allclose(expected_relative_top_k_accuracy_random(accuracies, k=k), np.mean(rels), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=10), st.randoms(use_true_random=False))
def test_random_expectations_invariant_to_model_order(accuracies, rnd):
    n = len(accuracies)
    perm = list(range(n))
    rnd.shuffle(perm)
    shuffled = [accuracies[i] for i in perm]
    new_baseline = perm.index(0)
    np.testing.assert_allclose(expected_trials_to_best_random(shuffled), expected_trials_to_best_random(accuracies))
    for k in range(1, n + 1):
        np.testing.assert_allclose(
            expected_top_k_accuracy_random(shuffled, k), expected_top_k_accuracy_random(accuracies, k), rtol=1e-12
        )
        np.testing.assert_allclose(
            expected_top_k_gain_random(shuffled, new_baseline, k),
            expected_top_k_gain_random(accuracies, 0, k),
            rtol=1e-12,
            atol=1e-12,
        )


def test_random_hand_worked():
    acc = [10.0, 20.0, 30.0, 40.0]
    # k = 2: the six pairs have maxima 20, 30, 40, 30, 40, 40 -> 200 / 6.
    np.testing.assert_allclose(expected_top_k_accuracy_random(acc, 2), 200 / 6, rtol=1e-12)
    np.testing.assert_allclose(expected_top_k_gain_random(acc, 0, k=2), 200 / 6 - 10.0, rtol=1e-12)
    np.testing.assert_allclose(expected_relative_top_k_accuracy_random(acc, k=2), 200 / 6 / 40.0, rtol=1e-12)
    np.testing.assert_allclose(expected_trials_to_best_random(acc), 5 / 2, rtol=1e-12)
    np.testing.assert_allclose(expected_trials_to_best_random([1.0, 3.0, 3.0, 2.0, 3.0]), 6 / 4, rtol=1e-12)
    np.testing.assert_allclose(expected_trials_to_best_random([7.0]), 1.0)


def test_random_errors():
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 3\]; got 4"):
        expected_top_k_accuracy_random([1.0, 2.0, 3.0], 4)
    with pytest.raises(ValueError, match="at least 1 model"):
        expected_trials_to_best_random([])
    with pytest.raises(ValueError, match="accuracies must be finite; got inf at index 2"):
        expected_top_k_gain_random([1.0, 2.0, np.inf], 0)
    with pytest.raises(ValueError, match=r"baseline .* must be an integer in \[0, 2\]; got 5"):
        expected_top_k_gain_random([1.0, 2.0, 3.0], 5)
    with pytest.raises(ValueError, match="non-negative accuracies"):
        expected_relative_top_k_accuracy_random([1.0, -2.0, 3.0])
    with pytest.raises(ValueError, match=r"accuracies must be 1-D \(n_models,\)"):
        expected_top_k_accuracy_random([[1.0, 2.0]], 1)


# --------------------------------------------------------------------------- summary


def test_selection_metrics_keys_and_values():
    scores = [0.9, 0.5, 0.7, 0.1, 0.3]
    acc = [70.0, 80.0, 75.0, 60.0, 65.0]
    m = selection_metrics(scores, acc, baseline=1)
    assert list(m) == [
        "weighted_kendall", "spearman", "pearson",
        "top1_gain", "top3_gain", "relative_top1_accuracy", "relative_top3_accuracy",
        "trials_to_best",
        "random_top1_gain", "random_top3_gain",
        "random_relative_top1_accuracy", "random_relative_top3_accuracy",
        "random_trials_to_best",
    ]  # fmt: skip
    assert all(type(v) is float for v in m.values())
    # Hand-worked: score order 0 (70), 2 (75), 1 (80), 4 (65), 3 (60).
    np.testing.assert_allclose(m["top1_gain"], -10.0)
    np.testing.assert_allclose(m["top3_gain"], 0.0)
    np.testing.assert_allclose(m["relative_top1_accuracy"], 70 / 80)
    np.testing.assert_allclose(m["relative_top3_accuracy"], 1.0)
    assert m["trials_to_best"] == 3.0
    # Random: k=1 is the mean (70); k=3 over the 10 triples of {60,65,70,75,80}:
    # max 70 once, 75 three times, 80 six times -> (70 + 225 + 480) / 10 = 77.5.
    np.testing.assert_allclose(m["random_top1_gain"], 70.0 - 80.0)
    np.testing.assert_allclose(m["random_top3_gain"], 77.5 - 80.0)
    np.testing.assert_allclose(m["random_relative_top1_accuracy"], 70 / 80)
    np.testing.assert_allclose(m["random_relative_top3_accuracy"], 77.5 / 80)
    np.testing.assert_allclose(m["random_trials_to_best"], 3.0)
    # The correlations are those of the public functions.
    np.testing.assert_allclose(m["weighted_kendall"], weighted_kendall(scores, acc), rtol=1e-12)
    np.testing.assert_allclose(m["spearman"], spearman(scores, acc), rtol=1e-12)
    np.testing.assert_allclose(m["pearson"], pearson(scores, acc), rtol=1e-12)


def test_selection_metrics_custom_ks():
    m = selection_metrics([0.9, 0.5, 0.7], [70.0, 80.0, 75.0], baseline=0, ks=(2,))
    assert {"top2_gain", "relative_top2_accuracy", "random_top2_gain"} <= set(m)
    assert "top1_gain" not in m
    np.testing.assert_allclose(m["top2_gain"], 5.0)


@pytest.mark.parametrize(
    "scores, accuracies",
    [([0.5, 0.5, 0.5, 0.5], [60.0, 90.0, 70.0, 80.0]), ([0.1, 0.5, 0.3, 0.2], [70.0, 70.0, 70.0, 70.0])],
)
def test_selection_metrics_constant_input_gives_none_not_nan(scores, accuracies):
    m = selection_metrics(scores, accuracies, baseline=0, ks=(1, 3))
    assert m["weighted_kendall"] is None and m["spearman"] is None and m["pearson"] is None
    others = {k: v for k, v in m.items() if k not in ("weighted_kendall", "spearman", "pearson")}
    assert all(type(v) is float and math.isfinite(v) for v in others.values())


def test_selection_metrics_constant_scores_are_pessimistic():
    # A constant score picks the worst model: below the random expectation.
    m = selection_metrics([1.0, 1.0, 1.0, 1.0], [60.0, 90.0, 70.0, 80.0], baseline=0, ks=(1,))
    np.testing.assert_allclose(m["top1_gain"], 0.0)
    np.testing.assert_allclose(m["random_top1_gain"], 75.0 - 60.0)
    assert m["trials_to_best"] == 4.0


def test_selection_metrics_all_zero_accuracies():
    m = selection_metrics([0.1, 0.2, 0.3], [0.0, 0.0, 0.0], baseline=0, ks=(1,))
    assert m["relative_top1_accuracy"] is None and m["random_relative_top1_accuracy"] is None
    assert m["top1_gain"] == 0.0 and m["random_trials_to_best"] == 1.0


def test_selection_metrics_errors():
    s, a = [0.1, 0.2, 0.3], [50.0, 60.0, 70.0]
    with pytest.raises(ValueError, match=r"every k in ks .* must be an integer in \[1, 3\]; got 4"):
        selection_metrics(s, a, baseline=0, ks=(1, 4))
    with pytest.raises(ValueError, match="ks must not repeat"):
        selection_metrics(s, a, baseline=0, ks=(1, 1))
    with pytest.raises(ValueError, match="ks must hold at least one k"):
        selection_metrics(s, a, baseline=0, ks=())
    with pytest.raises(ValueError, match="ks must be a sequence"):
        selection_metrics(s, a, baseline=0, ks=3)
    with pytest.raises(ValueError, match=r"baseline .* must be an integer in \[0, 2\]; got 3"):
        selection_metrics(s, a, baseline=3)
    with pytest.raises(ValueError, match="non-negative accuracies; got -5.0 at index 0"):
        selection_metrics(s, [-5.0, 60.0, 70.0], baseline=0, ks=(1,))
    with pytest.raises(TypeError):
        selection_metrics(s, a, 0)  # baseline is keyword-only


def test_evaluate_does_not_import_torch():
    code = (
        "import transferlab.evaluate._selection, transferlab.evaluate._bootstrap, transferlab.evaluate, sys; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
