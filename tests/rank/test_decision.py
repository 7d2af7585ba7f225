"""The decision: ranks, bootstrap intervals, P(best), within-noise marks, agreement and the recommendation.

Expected values are derived by hand (small tables), from closed forms (P(best) of
two identical models), or from properties that must hold for any input (P(best)
sums to 1; the full-sample value lies inside its interval).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from transferlab.rank import ArrayCandidate, rank
from transferlab.rank._bootstrap import bootstrap_score, class_index, draw
from transferlab.rank._decision import (
    consensus,
    intervals,
    kendall_matrix,
    p_best,
    ranks,
    recommend,
    within_noise,
)
from transferlab.scores import logme, spec

# --------------------------------------------------------------------------- pure math


def test_ranks_share_ties_and_keep_missing():
    np.testing.assert_array_equal(ranks([0.1, 0.5, np.nan, 0.5, -1.0]), [3.0, 1.5, np.nan, 1.5, 4.0])


def test_p_best_counts_and_splits_ties():
    boot = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 5.0], [np.nan, 1.0, 0.0], [2.0, 2.0, 2.0]])
    # resample 1: model 0; 2: models 1 and 2 share; 3: model 1 (0 has no value); 4: all three share
    expected = np.array([1 + 1 / 3, 0.5 + 1 + 1 / 3, 0.5 + 1 / 3]) / 4
    np.testing.assert_allclose(p_best(boot), expected)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 40))
def test_p_best_sums_to_one(seed, n_models, n_resamples):
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, 3, size=(n_resamples, n_models)).astype(float)  # many ties
    assert p_best(boot).sum() == pytest.approx(1.0)


def test_intervals_are_the_percentiles():
    boot = np.arange(101.0)[:, None] * np.array([1.0, -2.0])
    low, high = intervals(boot, level=0.9)
    np.testing.assert_allclose(low, [5.0, -190.0])
    np.testing.assert_allclose(high, [95.0, -10.0])


def test_within_noise_uses_the_paired_difference():
    # Model 1 beats the reference in 3 of 100 resamples (>= 2.5%): within noise; model 2 in 2: not.
    ref = np.linspace(1.0, 2.0, 100)
    boot = np.column_stack([ref, ref - 0.5, ref - 0.5, ref])
    boot[:3, 1] = ref[:3] + 0.1
    boot[:2, 2] = ref[:2] + 0.1
    np.testing.assert_array_equal(within_noise(boot, 0), [False, True, False, True])


def test_kendall_matrix_matches_scipy_and_handles_missing_and_constant():
    a = np.array([0.1, 0.4, 0.3, 0.9])
    b = np.array([1.0, 3.0, np.nan, 2.0])
    c = np.array([5.0, 5.0, 5.0, 5.0])
    names, tau = kendall_matrix({"a": a, "b": b, "c": c})
    assert names == ["a", "b", "c"]
    assert tau[0][1] == tau[1][0] == pytest.approx(stats.kendalltau(a[[0, 1, 3]], b[[0, 1, 3]]).statistic)
    assert tau[0][0] == 1.0 and tau[2][2] is None and tau[0][2] is None


def test_consensus_is_the_mean_available_rank():
    np.testing.assert_allclose(consensus([np.array([1.0, 2.0, 3.0]), np.array([2.0, np.nan, 1.0])]),
                               [1.5, 2.0, 2.0])


def test_recommendation_decides_and_names_noise_and_baselines():
    models = ["a", "b", "c"]
    evidence = {"s1": np.array([1.0, 2.0, 3.0]), "s2": np.array([1.0, 3.0, 2.0]), "s3": np.array([2.0, 1.0, 3.0])}
    out = recommend(models, evidence, consensus(list(evidence.values())), primary="s1",
                    primary_p_best=np.array([0.8, 0.2, 0.0]), primary_within_noise=np.array([False, True, False]),
                    baselines={"knn": np.array([2.0, 1.0, 3.0])})
    assert out["decided"] and out["model"] == "a" and out["within_noise"] == ["b"]
    assert out["text"] == ("Recommended: a (first under 2 of 3 scores; P(best) 0.80 under s1). b is within noise. "
                           "The knn baseline prefers b.")


def test_recommendation_refuses_to_pick_when_not_separated():
    models = ["a", "b"]
    evidence = {"s1": np.array([1.0, 2.0])}
    out = recommend(models, evidence, evidence["s1"], primary="s1", primary_p_best=np.array([0.45, 0.55]),
                    primary_within_noise=np.array([False, True]))
    assert not out["decided"] and out["model"] is None
    assert out["text"].startswith("Cannot tell apart: a and b")
    assert "--top-k 2" in out["text"]


# --------------------------------------------------------------------------- the draws


def test_draws_are_stratified_and_seeded():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    classes = class_index(labels)
    idx, w = draw(classes, labels.size, seed=3, b=7)
    np.testing.assert_array_equal(np.bincount(labels[idx]), np.bincount(labels))  # class sizes kept
    for members in classes:  # Bayesian weights: positive, n_c per class
        assert (w[members] > 0).all() and w[members].sum() == pytest.approx(members.size)
    idx2, w2 = draw(classes, labels.size, seed=3, b=7)
    np.testing.assert_array_equal(idx, idx2)
    np.testing.assert_array_equal(w, w2)
    assert not np.array_equal(draw(classes, labels.size, seed=3, b=8)[1], w)


def test_weighted_score_gets_the_bayesian_weights():
    # LogME takes sample_weight: each resample's value is logme(F, y, sample_weight=w_b).
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 8)
    F = rng.normal(size=(24, 5)) + y[:, None]
    got = bootstrap_score(spec("logme"), y, {"features": F}, seed=1, resamples=4, options={}, workers=1)
    classes = class_index(y)
    expected = [logme(F, y, sample_weight=draw(classes, 24, 1, b)[1]) for b in range(4)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_unweighted_score_is_recomputed_on_repeated_rows():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 10)
    F = rng.normal(size=(20, 3)) + y[:, None]
    got = bootstrap_score(spec("hscore"), y, {"features": F}, seed=2, resamples=3, options={}, workers=2)
    classes = class_index(y)
    expected = []
    for b in range(3):
        idx = draw(classes, 20, 2, b)[0]
        expected.append(spec("hscore").compute(y[idx], features=F[idx]))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


# --------------------------------------------------------------------------- through rank()


def _candidates(strengths, seed=0, n_per_class=15, d=6):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    centres = rng.normal(size=(3, d))
    noise = rng.normal(size=(y.size, d))
    return y, [ArrayCandidate(f"m{i}", {"features": s * centres[y] + noise}) for i, s in enumerate(strengths)]


def test_intervals_contain_the_full_sample_value_and_p_best_sums_to_one():
    y, cands = _candidates([0.3, 0.8, 1.5])
    ranking = rank(cands, y, ["logme", "hscore", "lfc"], progress=False, bootstrap=60)
    for name in ("logme", "hscore", "lfc"):
        u = ranking.uncertainty[name]
        values = ranking.column(name)
        assert (u["low"] <= values).all() and (values <= u["high"]).all(), name
        assert u["p_best"].sum() == pytest.approx(1.0)
    assert [r["model"] for r in ranking.rows] == ["m2", "m1", "m0"]
    assert ranking.recommendation["model"] == "m2" and ranking.recommendation["decided"]


def test_two_identical_models_share_p_best_and_are_within_noise():
    y, cands = _candidates([1.0, 0.2])
    same = cands[0].array("features")
    twins = [ArrayCandidate("a", {"features": same}), ArrayCandidate("b", {"features": same.copy()}), cands[1]]
    ranking = rank(twins, y, ["logme"], progress=False, bootstrap=50)
    u = ranking.uncertainty["logme"]
    by_model = {r["model"]: i for i, r in enumerate(ranking.rows)}
    assert u["p_best"][by_model["a"]] == pytest.approx(0.5)
    assert u["p_best"][by_model["b"]] == pytest.approx(0.5)
    first = 0  # the row ranked first is one twin; the other is within noise of it
    other = by_model["b"] if ranking.rows[first]["model"] == "a" else by_model["a"]
    assert u["within_noise"][other]
    assert not ranking.recommendation["decided"]
    assert ranking.recommendation["text"].startswith("Cannot tell apart: ")
    assert {"a", "b"} <= set(ranking.recommendation["text"].split(": ")[1].split(" (")[0].replace(" and", ",")
                               .split(", "))


def test_bootstrap_zero_and_seed_reproducibility():
    y, cands = _candidates([0.5, 1.0])
    off = rank(cands, y, ["logme"], progress=False, bootstrap=0)
    assert off.uncertainty == {} and off.bootstrap["resamples"] == 0
    assert "P(best)" not in off.recommendation["text"]
    one = rank(cands, y, ["logme"], progress=False, bootstrap=20, seed=4).uncertainty["logme"]["low"]
    two = rank(cands, y, ["logme"], progress=False, bootstrap=20, seed=4).uncertainty["logme"]["low"]
    np.testing.assert_array_equal(one, two)


def test_agreement_matrix_is_kendall_between_score_columns():
    y, cands = _candidates([0.3, 0.8, 1.5, 0.1])
    ranking = rank(cands, y, ["logme", "hscore", "nce"] if False else ["logme", "hscore"], progress=False,
                   bootstrap=0)
    names, tau = ranking.agreement["scores"], ranking.agreement["tau"]
    assert names == ["logme", "hscore"]
    expected = stats.kendalltau(ranking.column("logme"), ranking.column("hscore")).statistic
    assert tau[0][1] == pytest.approx(expected)


def test_bad_bootstrap_count():
    y, cands = _candidates([0.5])
    with pytest.raises(ValueError, match="bootstrap"):
        rank(cands, y, ["logme"], progress=False, bootstrap=-1)
