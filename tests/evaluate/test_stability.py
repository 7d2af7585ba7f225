"""Stability of the verdict on the scores: reduced pools, pool-size curves, setup stability.

Every expected value below is worked out by hand. The weighted tau of
``scipy.stats.weightedtau`` (hyperbolic weights w(r) = 1 / (r + 1), additive
pair weights w_i + w_j, the statistic averaged over the rank orders of both
vectors; Vigna 2015) has, without ties, the closed form

    tau_w = (sum of w_ij over concordant pairs - over discordant pairs) / (sum of w_ij over all pairs).

The table: 4 models, 2 targets, 2 scores.

- target 0: accuracies [1, 2, 3, 4]; target 1: accuracies [4, 3, 2, 1].
- score A follows the accuracies on both targets: tau = 1 on every pool.
- score B is [2, 1, 3, 4] on target 0 (models 0 and 1 swapped, at the bottom)
  and [1, 2, 3, 4] on target 1 (the reverse of the truth: tau = -1 on every pool).

B on target 0, by pool:
- without model 0 or model 1: B and the truth agree on the 3 members left: tau = 1.
- without model 2 (members 0, 1, 3: B = [2, 1, 4], truth [1, 2, 4]): rank by B gives
  weights 1, 1/2, 1/3 to models 3, 0, 1; the one discordant pair (0, 1) weighs
  1/2 + 1/3 = 5/6, all pairs 2 * (1 + 1/2 + 1/3) = 11/3, so tau = (11/3 - 2 * 5/6) / (11/3)
  = 6/11 (the same by the truth's order). Without model 3: the same structure, 6/11.
- all four: weights 1, 1/2, 1/3, 1/4; the discordant pair (0, 1) weighs 1/3 + 1/4 = 7/12,
  all pairs 3 * 25/12 = 25/4: tau = (25/4 - 7/6) / (25/4) = 61/75.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from transferlab.evaluate import (
    best_scores,
    leave_out_stability,
    mean_weighted_tau,
    pool_size_curve,
    setup_stability,
    top_k_frequency,
)

ACC = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
SCORES = {
    "A": np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]]),
    "B": np.array([[2.0, 1.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]]),
}
# B's tau on target 0 without each model (index = the model left out); target 1 is always -1.
B_T0_WITHOUT = [1.0, 1.0, 6 / 11, 6 / 11]
B_T0_ALL = 61 / 75


def test_mean_weighted_tau_on_the_full_and_reduced_pools():
    full = mean_weighted_tau(ACC, SCORES)
    assert full["A"] == pytest.approx(1.0)
    assert full["B"] == pytest.approx((B_T0_ALL - 1.0) / 2)  # -7/75
    assert full["B"] == pytest.approx(-7 / 75)
    reduced = mean_weighted_tau(ACC, SCORES, members=[0, 1, 3])
    assert reduced["B"] == pytest.approx((6 / 11 - 1.0) / 2)  # -5/22


def test_constant_targets_are_left_out_and_all_constant_gives_none():
    acc = np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])  # target 1: constant truth, no tau
    out = mean_weighted_tau(acc, {"s": [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], "flat": [[7.0, 7.0, 7.0]] * 2})
    assert out == {"s": pytest.approx(1.0), "flat": None}


def test_leave_one_member_out_by_hand():
    out = leave_out_stability(ACC, SCORES, ["m0", "m1", "m2", "m3"], k=1)
    assert [v["left_out"] for v in out["variations"]] == ["m0", "m1", "m2", "m3"]
    assert all(v["n_models"] == 3 for v in out["variations"])
    for v, b_t0 in zip(out["variations"], B_T0_WITHOUT, strict=True):
        assert v["means"]["A"] == pytest.approx(1.0)
        assert v["means"]["B"] == pytest.approx((b_t0 - 1.0) / 2)
    assert out["skipped"] == []
    assert out["top_k_frequency"] == {"A": 1.0, "B": 0.0}  # A is always the best of two


def test_leave_one_family_out_by_hand_and_small_pools_skipped():
    labels = ["x", "x", "y", "y"]
    out = leave_out_stability(ACC, SCORES, labels, min_size=2)
    # Without x: members 2, 3, B agrees on target 0 (tau 1) and not on target 1: mean 0.
    # Without y: members 0, 1, B = [2, 1] against [1, 2]: -1 on both targets.
    means = {v["left_out"]: v["means"]["B"] for v in out["variations"]}
    assert means == {"x": pytest.approx(0.0), "y": pytest.approx(-1.0)}
    skipped = leave_out_stability(ACC, SCORES, labels)  # min_size 3: both pools of 2 are skipped
    assert skipped["variations"] == [] and skipped["skipped"] == ["x", "y"]
    assert skipped["top_k_frequency"] == {}
    # A label held by every member leaves nothing.
    assert leave_out_stability(ACC, SCORES, ["z"] * 4)["skipped"] == ["z"]


def test_pool_size_curve_exact_enumeration_by_hand():
    rows = pool_size_curve(ACC, SCORES, sizes=[3, 4], n_pools=50, quantiles=(0.1, 0.9), k=1)
    by = {(r["size"], r["score"]): r for r in rows}
    b3 = by[(3, "B")]
    assert b3["exact"] and b3["n_pools"] == 4 and b3["n_defined"] == 4  # C(4, 3) = 4 <= 50: every subset
    # Pool means of B: 0, 0, -5/22, -5/22 (see the module docstring); their mean is -5/44.
    assert b3["mean"] == pytest.approx(-5 / 44)
    # Sorted [-5/22, -5/22, 0, 0]: the 0.1 quantile sits at position 0.3 (-5/22), the 0.9 at 2.7 (0).
    assert b3["low"] == pytest.approx(-5 / 22) and b3["high"] == pytest.approx(0.0)
    assert b3["top_k_frequency"] == 0.0 and by[(3, "A")]["top_k_frequency"] == 1.0
    b4 = by[(4, "B")]
    assert b4["n_pools"] == 1 and b4["mean"] == pytest.approx(-7 / 75) == pytest.approx(b4["low"])


def test_pool_size_curve_random_draws_are_seeded_and_match_a_brute_force_mean():
    rng = np.random.default_rng(3)
    acc = rng.normal(size=(3, 8))
    scores = {"noisy": acc + rng.normal(scale=0.5, size=acc.shape), "noise": rng.normal(size=acc.shape)}
    # C(8, 4) = 70 subsets: with n_pools >= 70 the curve is the exact mean over all of them.
    exact = {r["score"]: r for r in pool_size_curve(acc, scores, sizes=[4], n_pools=70)}
    from scipy import stats

    for name, s in scores.items():
        pool_means = []
        for subset in itertools.combinations(range(8), 4):
            cols = list(subset)
            pool_means.append(np.mean([stats.weightedtau(s[t][cols], acc[t][cols])[0] for t in range(3)]))
        assert exact[name]["exact"] and exact[name]["mean"] == pytest.approx(np.mean(pool_means))
    drawn = pool_size_curve(acc, scores, sizes=[4], n_pools=20, seed=5)
    assert drawn == pool_size_curve(acc, scores, sizes=[4], n_pools=20, seed=5)
    assert drawn != pool_size_curve(acc, scores, sizes=[4], n_pools=20, seed=6)
    for r in drawn:
        assert not r["exact"] and r["n_pools"] == 20
        assert r["low"] <= r["mean"] <= r["high"]


def test_pool_size_curve_default_sizes_start_at_three():
    assert {r["size"] for r in pool_size_curve(ACC, SCORES)} == {3, 4}
    two = pool_size_curve(ACC[:, :2], {n: s[:, :2] for n, s in SCORES.items()})
    assert two == []  # fewer than 3 members: no size to draw


def test_best_scores_keeps_ties_and_ignores_undefined():
    means = {"a": 0.5, "b": 0.2, "c": 0.2, "d": -0.1, "e": None}
    assert best_scores(means, k=1) == {"a"}
    assert best_scores(means, k=2) == {"a", "b", "c"}  # b and c tie for second
    assert best_scores(means, k=3) == {"a", "b", "c"}  # nobody is third: d has three ahead
    assert best_scores(means, k=4) == {"a", "b", "c", "d"}


def test_top_k_frequency_counts_variations():
    variations = [{"a": 0.9, "b": 0.1, "c": 0.0}, {"a": 0.1, "b": 0.9, "c": 0.5}, {"a": 0.3, "b": None, "c": 0.2}]
    # k = 1: a wins variations 1 and 3, b wins variation 2 (b is undefined in 3).
    assert top_k_frequency(variations, k=1) == pytest.approx({"a": 2 / 3, "b": 1 / 3, "c": 0.0})
    # k = 2: variation 1 {a, b}, variation 2 {b, c}, variation 3 {a, c}.
    assert top_k_frequency(variations, k=2) == pytest.approx({"a": 2 / 3, "b": 2 / 3, "c": 2 / 3})


def test_setup_stability_by_hand():
    # Three setups, three scores. Orders: s1 a > b > c; s2 a > c > b; s3 c > b > a.
    setups = {
        "s1": {"a": 0.9, "b": 0.5, "c": 0.1},
        "s2": {"a": 0.8, "b": 0.2, "c": 0.3},
        "s3": {"a": 0.0, "b": 0.4, "c": 0.6},
    }
    out = setup_stability(setups, k=1)
    # Pairs of scores (a,b), (a,c), (b,c): s1-s2 agree on 2 of 3 (tau 1/3); s1-s3 on none (-1);
    # s2-s3 on (b, c) only (-1/3). Mean: (1/3 - 1 - 1/3) / 3 = -1/3.
    taus = {(i, j): t for i, j, t in out["pairs"]}
    assert taus == pytest.approx({("s1", "s2"): 1 / 3, ("s1", "s3"): -1.0, ("s2", "s3"): -1 / 3})
    assert out["stability"] == pytest.approx(-1 / 3)
    assert out["n_setups"] == 3
    assert out["top_k_frequency"] == pytest.approx({"a": 2 / 3, "b": 0.0, "c": 1 / 3})


def test_setup_stability_undefined_cases():
    one = setup_stability({"only": {"a": 0.1, "b": 0.2}})
    assert one["stability"] is None and one["pairs"] == []
    flat = setup_stability({"s1": {"a": 0.1, "b": 0.1}, "s2": {"a": 0.3, "b": 0.2}})
    assert flat["stability"] is None and flat["pairs"] == [("s1", "s2", None)]
    # Only the scores defined in both setups are compared: here a and c, in the same order.
    partial = setup_stability({"s1": {"a": 0.1, "b": None, "c": 0.3}, "s2": {"a": 0.0, "b": 0.5, "c": 0.9}})
    assert partial["stability"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mean_weighted_tau(ACC, {"s": ACC[:, :3]}), "shape"),
        (lambda: mean_weighted_tau([[1.0, np.nan]], {"s": [[1.0, 2.0]]}), "finite"),
        (lambda: mean_weighted_tau(ACC[0], SCORES), "2-D"),
        (lambda: mean_weighted_tau(ACC, {}), "non-empty"),
        (lambda: mean_weighted_tau(ACC, SCORES, members=[0]), "at least 2"),
        (lambda: mean_weighted_tau(ACC, SCORES, members=[0, 4]), "indices"),
        (lambda: mean_weighted_tau(ACC, SCORES, members=[1, 1]), "repeat"),
        (lambda: leave_out_stability(ACC, SCORES, ["a", "b"]), "one entry per model"),
        (lambda: leave_out_stability(ACC, SCORES, list("abcd"), min_size=1), "min_size"),
        (lambda: pool_size_curve(ACC, SCORES, sizes=[5]), "pool size"),
        (lambda: pool_size_curve(ACC, SCORES, sizes=[3, 3]), "repeat"),
        (lambda: pool_size_curve(ACC, SCORES, n_pools=0), "n_pools"),
        (lambda: pool_size_curve(ACC, SCORES, quantiles=(0.9, 0.1)), "quantiles"),
        (lambda: best_scores({"a": 0.1}, k=0), "k"),
        (lambda: best_scores({"a": float("nan")}), "finite"),
        (lambda: top_k_frequency([]), "at least one"),
        (lambda: setup_stability({}), "non-empty"),
    ],
)
def test_bad_input_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()
