"""Tests for TMI, the conditional entropy of the features given the class (Xu & Kang, ICCV 2023).

The reference here shares no code with the module: explicit loops over every
pair of samples of a class for the maximum-norm distances, a sort for the k-th
neighbour, and the digamma function at integers written as harmonic numbers,
``psi(n) = -gamma + sum_{j < n} 1/j``. Hand-worked cases give exact values.
"""

import math

import numpy as np
import pytest

import transferlab.scores._tmi as tmi_module
from transferlab.scores import spec
from transferlab.scores._tmi import tmi

EULER_GAMMA = 0.5772156649015329


def _psi(n: int) -> float:
    return -EULER_GAMMA + sum(1.0 / j for j in range(1, n))


def _tmi_reference(X, y, k=3, min_dist=1.0):
    """sum_c (n_c / N) [-psi(k_c) + psi(n_c) + (D / n_c) sum_i log(2 max(eps_i, min_dist))], with loops."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    n, d = X.shape
    total = 0.0
    for c in sorted(set(y.tolist())):
        rows = [X[i] for i in range(n) if y[i] == c]
        n_c = len(rows)
        k_c = min(k, n_c - 1)
        log_sum = 0.0
        for i in range(n_c):
            dists = sorted(max(abs(rows[i][j] - rows[m][j]) for j in range(d)) for m in range(n_c) if m != i)
            log_sum += math.log(2.0 * max(dists[k_c - 1], min_dist))
        total += n_c / n * (-_psi(k_c) + _psi(n_c) + d * log_sum / n_c)
    return total


def test_one_feature_by_hand():
    # Classes {0, 3} and {10, 14}: k_c = 1, neighbour distances 3, 3 and 4, 4; psi(2) - psi(1) = 1.
    value = tmi([[0.0], [3.0], [10.0], [14.0]], [0, 0, 1, 1])
    assert value == pytest.approx(1.0 + 0.5 * (math.log(6.0) + math.log(8.0)), rel=1e-14)


def test_two_features_max_norm_by_hand():
    # One class of 3 points, one of 2, k=1 (k_c = 1 for both), floor 0.5.
    # Class 0: (0,0), (1,3), (4,1): max-norm distances 3 (a-b), 4 (a-c), 3 (b-c): nearest 3, 3, 3.
    # Class 1: (10,10), (10.2,10.1): distance 0.2, floored to 0.5 for both.
    X = [[0.0, 0.0], [1.0, 3.0], [4.0, 1.0], [10.0, 10.0], [10.2, 10.1]]
    y = [0, 0, 0, 1, 1]
    h0 = -_psi(1) + _psi(3) + 2 * math.log(6.0)  # psi(3) - psi(1) = 1 + 1/2
    h1 = -_psi(1) + _psi(2) + 2 * math.log(1.0)
    assert h0 == pytest.approx(1.5 + 2 * math.log(6.0), rel=1e-14)
    assert tmi(X, y, k=1, min_dist=0.5) == pytest.approx(0.6 * h0 + 0.4 * h1, rel=1e-14)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k, min_dist", [(3, 1.0), (1, 0.1), (5, 0.3)])
def test_matches_the_loop_reference(seed, k, min_dist):
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, 9, size=3)  # some classes smaller than k + 1: k_c = n_c - 1
    y = np.repeat(np.arange(3), counts)
    X = 2.0 * rng.normal(size=(3, 4))[y] + 1.5 * rng.normal(size=(y.shape[0], 4))
    assert tmi(X, y, k=k, min_dist=min_dist) == pytest.approx(_tmi_reference(X, y, k, min_dist), rel=1e-12)


def test_everything_at_the_floor_is_a_closed_form():
    # Features far below min_dist: every distance floors at 1, log(2 * 1) per feature.
    y = np.repeat([0, 1], [4, 6])
    X = 1e-6 * np.random.default_rng(0).normal(size=(10, 3))
    expected = 0.4 * (-_psi(3) + _psi(4) + 3 * math.log(2.0)) + 0.6 * (-_psi(3) + _psi(6) + 3 * math.log(2.0))
    assert tmi(X, y) == pytest.approx(expected, rel=1e-14)
    assert tmi(np.zeros((10, 3)), y) == pytest.approx(expected, rel=1e-14)  # constant input: finite, the same


def test_more_intra_class_spread_scores_higher():
    # The paper's direction: the same class means, a wider spread within each class, a higher TMI.
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], 30)
    centres = 10.0 * rng.normal(size=(3, 5))[y]
    noise = rng.normal(size=(90, 5))
    assert tmi(centres + 3.0 * noise, y) > tmi(centres + 1.5 * noise, y)


def test_shuffled_labels_score_higher_than_separating_ones_by_design():
    # TMI rewards intra-class variance, not separation: labels that cluster the features leave each
    # class tight (low entropy); shuffled labels make each class span the whole set. So unlike the
    # discriminability scores, separated < shuffled here. This pins the paper's direction.
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1, 2], 30)
    X = 8.0 * rng.normal(size=(3, 4))[y] + rng.normal(size=(90, 4))
    assert tmi(X, rng.permutation(y)) > tmi(X, y)


def test_blocks_give_the_same_value(monkeypatch):
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], [20, 13])
    X = 3.0 * rng.normal(size=(33, 6))
    whole = tmi(X, y)
    monkeypatch.setattr(tmi_module, "_BLOCK_BYTES", 8 * 20 * 3)  # three rows per block
    assert tmi(X, y) == whole


def test_translation_far_from_the_origin_and_scale_dependence():
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], 12)
    X = 2.0 * rng.normal(size=(36, 3)) + y[:, None]
    assert tmi(X + 1e6, y) == pytest.approx(tmi(X, y), rel=1e-9)
    assert tmi(10.0 * X, y) != pytest.approx(tmi(X, y), rel=1e-3)  # declared scale-dependent


def test_traits():
    s = spec("tmi")
    assert s.needs == frozenset({"features"}) and s.group == "score" and s.direction == 1
    assert (s.min_per_class, s.constant, s.scale_invariant, s.translation_invariant) == (2, "finite", False, True)
    assert s.label_permutation_invariant and not s.seeded and not s.resample
    assert "Xu & Kang" in s.reference


@pytest.mark.parametrize(
    "kwargs, message",
    [({"k": 0}, "k must be"), ({"k": 2.5}, "k must be"), ({"min_dist": 0.0}, "min_dist"),
     ({"min_dist": np.nan}, "min_dist")],
)
def test_invalid_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tmi([[0.0], [3.0], [10.0], [14.0]], [0, 0, 1, 1], **kwargs)


def test_a_class_of_one_sample_is_refused():
    with pytest.raises(ValueError, match="labels"):
        tmi([[0.0], [3.0], [10.0]], [0, 0, 1])
