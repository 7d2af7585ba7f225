"""Gap fidelity and top-k regret: hand-worked tables of 3-4 models, brute-force loops, identities."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from transferlab.evaluate import fidelity_metrics, gap_fidelity, pearson, top_k_gain, top_k_regret


def _pearson_by_hand(x, y) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


def test_gap_fidelity_hand_worked_four_models():
    # Models A..D: scores 4, 3, 1, 0 and accuracies 80, 70, 75, 60.
    # Pairs oriented by score (first the higher score): score gap, accuracy gap
    #   A-B: 1, 10    A-C: 3, 5    A-D: 4, 20    B-C: 2, -5    B-D: 3, 10    C-D: 1, 15
    # ds = [1, 3, 4, 2, 3, 1] (mean 14/6 = 7/3), da = [10, 5, 20, -5, 10, 15] (mean 55/6)
    # Sxy = sum(ds*da) - 6*mean*mean = (10 + 15 + 80 - 10 + 30 + 15) - 6 * 7/3 * 55/6 = 140 - 385/3 = 35/3
    # Sxx = (1 + 9 + 16 + 4 + 9 + 1) - 6 * 49/9 = 40 - 98/3 = 22/3
    # Syy = (100 + 25 + 400 + 25 + 100 + 225) - 6 * 3025/36 = 875 - 3025/6 = 2225/6
    expected = (35 / 3) / math.sqrt((22 / 3) * (2225 / 6))
    assert gap_fidelity([4.0, 3.0, 1.0, 0.0], [80.0, 70.0, 75.0, 60.0]) == pytest.approx(expected, rel=1e-12)
    # The zoo's index order does not matter: same table, models listed D, B, A, C.
    assert gap_fidelity([0.0, 3.0, 4.0, 1.0], [60.0, 70.0, 80.0, 75.0]) == pytest.approx(expected, rel=1e-12)


def test_gap_fidelity_three_models_closed_forms():
    # Score gaps 1, 2, 1 (equally spaced scores) against accuracy gaps 10, 20, 10: perfectly faithful.
    assert gap_fidelity([3.0, 2.0, 1.0], [30.0, 20.0, 10.0]) == pytest.approx(1.0)
    # Right order but the gaps say nothing: accuracies 30, 29, 10 give gaps 1, 20, 19 for score gaps 1, 2, 1.
    # ds = [1, 2, 1] (mean 4/3), da = [1, 20, 19] (mean 40/3): Sxy = 1 + 40 + 19 - 3*(4/3)*(40/3) = 60 - 160/3 = 20/3
    # Sxx = 6 - 16/3 = 2/3, Syy = 1 + 400 + 361 - 1600/3 = 686/3
    assert gap_fidelity([3.0, 2.0, 1.0], [30.0, 29.0, 10.0]) == pytest.approx(
        (20 / 3) / math.sqrt((2 / 3) * (686 / 3)), rel=1e-12)


def test_gap_fidelity_matches_a_brute_force_loop():
    rng = np.random.default_rng(3)
    for _ in range(20):
        s, a = rng.normal(size=6), rng.normal(size=6)
        ds, da = [], []
        for i, j in itertools.permutations(range(6), 2):
            if s[i] > s[j]:  # continuous draws: no ties in score
                ds.append(s[i] - s[j])
                da.append(a[i] - a[j])
        assert len(ds) == 15
        assert gap_fidelity(s, a) == pytest.approx(_pearson_by_hand(ds, da), rel=1e-10)


def test_unoriented_pairwise_correlation_is_plain_pearson():
    # The documented reason for orienting the pairs: over all ordered pairs the
    # correlation of differences is the Pearson correlation of the raw vectors.
    rng = np.random.default_rng(5)
    s, a = rng.normal(size=5), rng.normal(size=5)
    pairs = list(itertools.permutations(range(5), 2))
    ds = [s[i] - s[j] for i, j in pairs]
    da = [a[i] - a[j] for i, j in pairs]
    assert _pearson_by_hand(ds, da) == pytest.approx(pearson(s, a), rel=1e-10)


def test_gap_fidelity_ties_in_score_are_pessimistic():
    # A and B tie in score: the pair is oriented with the lower accuracy first (B, A): gap 0, accuracy gap -10.
    # Pairs: (B, A): 0, -10; A-C: 1, 20; B-C: 1, 10.  ds = [0, 1, 1], da = [-10, 20, 10]
    # ds mean 2/3, da mean 20/3: Sxy = 30 - 3*(2/3)*(20/3) = 30 - 40/3 = 50/3; Sxx = 2 - 4/3 = 2/3;
    # Syy = 600 - 400/3 = 1400/3
    expected = (50 / 3) / math.sqrt((2 / 3) * (1400 / 3))
    assert gap_fidelity([1.0, 1.0, 0.0], [70.0, 60.0, 50.0]) == pytest.approx(expected, rel=1e-12)


def test_gap_fidelity_is_invariant_to_positive_affine_maps():
    s, a = [0.3, 0.1, 0.9, 0.4], [50.0, 61.0, 70.0, 40.0]
    base = gap_fidelity(s, a)
    assert gap_fidelity([2 * x - 7 for x in s], [a_ / 100 + 1 for a_ in a]) == pytest.approx(base, rel=1e-10)


def test_top_k_regret_hand_worked():
    # Scores rank C, A, D, B; the best accuracy (80) is B's.
    s, a = [0.7, 0.1, 0.9, 0.5], [75.0, 80.0, 60.0, 70.0]
    assert top_k_regret(s, a, k=1) == 20.0  # C: 80 - 60
    assert top_k_regret(s, a, k=2) == 5.0  # best of C, A: 75
    assert top_k_regret(s, a, k=3) == 5.0  # best of C, A, D: 75
    assert top_k_regret(s, a, k=4) == 0.0
    # Identity with the gain over any baseline: regret = (max a - a_base) - gain.
    for k in range(1, 5):
        for base in range(4):
            assert top_k_regret(s, a, k=k) == pytest.approx(max(a) - a[base] - top_k_gain(s, a, base, k=k))


def test_top_k_regret_ties_are_pessimistic():
    # Every score equal: the first k models are the k worst.
    assert top_k_regret([1.0, 1.0, 1.0], [10.0, 30.0, 20.0], k=1) == 20.0
    assert top_k_regret([1.0, 1.0, 1.0], [10.0, 30.0, 20.0], k=2) == 10.0


def test_fidelity_metrics_keys_and_undefined():
    m = fidelity_metrics([4.0, 3.0, 1.0, 0.0], [80.0, 70.0, 75.0, 60.0], ks=(1, 3))
    assert list(m) == ["gap_fidelity", "top1_regret", "top3_regret"]
    assert m["top1_regret"] == 0.0 and m["top3_regret"] == 0.0
    assert m["gap_fidelity"] == pytest.approx(gap_fidelity([4.0, 3.0, 1.0, 0.0], [80.0, 70.0, 75.0, 60.0]))
    assert fidelity_metrics([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], ks=(1,))["gap_fidelity"] is None
    assert fidelity_metrics([1.0, 2.0, 3.0], [5.0, 5.0, 5.0], ks=(1,))["gap_fidelity"] is None
    assert fidelity_metrics([1.0, 2.0], [5.0, 6.0], ks=(1,))["gap_fidelity"] is None


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: gap_fidelity([1.0, 2.0], [1.0, 2.0]), "at least 3 models"),
        (lambda: gap_fidelity([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]), "undefined"),
        (lambda: gap_fidelity([1.0, 2.0, np.nan], [1.0, 2.0, 3.0]), "scores must be finite"),
        (lambda: gap_fidelity([1.0, 2.0, 3.0], [1.0, 2.0]), "one entry per model"),
        (lambda: top_k_regret([1.0, 2.0], [1.0, 2.0], k=3), "k"),
        (lambda: top_k_regret([1.0, 2.0], [1.0, 2.0], k=True), "k"),
        (lambda: fidelity_metrics([1.0, 2.0], [1.0, 2.0], ks=(1, 1)), "repeat"),
    ],
)
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
