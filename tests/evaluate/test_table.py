"""evaluate_table / check_table / summarise_over_targets against hand-worked tables.

The small table used throughout (baseline ``b``, one score ``s``):

========  =====  =====  =====
target    a      b      c
========  =====  =====  =====
score     0.9    0.5    0.7
t1 acc    70     80     75
t2 acc    60     50     90
========  =====  =====  =====

By score the order is a, c, b on both targets.

- t1: top-1 picks a: 70 - 80 = -10; top-3 is everyone: 80 - 80 = 0; relative top-1 70/80;
  trials to best 3 (b is last); random top-1 gain mean(70, 80, 75) - 80 = -5, random top-3 0;
  random trials (n + 1)/(b + 1) = 4/2 = 2. The score order is the exact reverse of the
  accuracy order and the score is an exact linear function of the accuracy (s - 0.7 = -(a - 75)/25):
  Spearman = Pearson = weighted tau = -1.
- t2: top-1 picks a: 60 - 50 = +10; top-3: 90 - 50 = 40; relative top-1 60/90; trials 2
  (a, then c); random top-1 gain 200/3 - 50; random trials 2. Spearman from
  d = rank(s) - rank(a) = (3-2, 1-1, 2-3): 1 - 6 * 2 / (3 * 8) = 0.5.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from transferlab.evaluate import check_table, evaluate_table, summarise_over_targets

SCORES = {"a": 0.9, "b": 0.5, "c": 0.7}
ACC = {"t1": {"a": 70.0, "b": 80.0, "c": 75.0}, "t2": {"a": 60.0, "b": 50.0, "c": 90.0}}


def _rows(**extra):
    return [
        {"target": t, "model": m, "accuracy": ACC[t][m], "s": SCORES[m], **extra}
        for t in ("t1", "t2")
        for m in ("a", "b", "c")
    ]


def _by_target(evaluation):
    return {r["target"]: r for r in evaluation["metrics"]}


def test_per_target_metrics_match_the_hand_worked_table():
    ev = evaluate_table(_rows(), baseline="b", n_boot=200)
    t1, t2 = _by_target(ev)["t1"], _by_target(ev)["t2"]
    assert (t1["regime"], t1["score"]) == ("full", "s")
    assert t1["top1_gain"] == pytest.approx(-10.0)
    assert t1["top3_gain"] == pytest.approx(0.0)
    assert t1["relative_top1_accuracy"] == pytest.approx(70 / 80)
    assert t1["relative_top3_accuracy"] == pytest.approx(1.0)
    assert t1["trials_to_best"] == 3.0
    assert t1["random_top1_gain"] == pytest.approx(-5.0)
    assert t1["random_top3_gain"] == pytest.approx(0.0)
    assert t1["random_trials_to_best"] == pytest.approx(2.0)
    for corr in ("weighted_kendall", "spearman", "pearson"):
        assert t1[corr] == pytest.approx(-1.0)
    # Regret: best accuracy minus the best of the selection. Gap fidelity: the pairs oriented by
    # the score (a, c, b) have score gaps (0.2, 0.4, 0.2) for ac, ab, cb and accuracy gaps
    # (-5, -10, -5): correlation exactly -1.
    assert (t1["top1_regret"], t1["top3_regret"]) == (pytest.approx(10.0), pytest.approx(0.0))
    assert t1["gap_fidelity"] == pytest.approx(-1.0)

    assert t2["top1_gain"] == pytest.approx(10.0)
    assert t2["top3_gain"] == pytest.approx(40.0)
    assert t2["relative_top1_accuracy"] == pytest.approx(60 / 90)
    assert t2["trials_to_best"] == 2.0
    assert (t2["top1_regret"], t2["top3_regret"]) == (pytest.approx(30.0), pytest.approx(0.0))
    assert t2["random_top1_gain"] == pytest.approx(200 / 3 - 50)
    assert t2["spearman"] == pytest.approx(0.5)
    s, a = np.array([0.9, 0.5, 0.7]), np.array([60.0, 50.0, 90.0])
    sc, ac = s - s.mean(), a - a.mean()
    assert t2["pearson"] == pytest.approx(float(sc @ ac / math.sqrt((sc @ sc) * (ac @ ac))))
    # The study's weighting: scipy's weightedtau defaults (hyperbolic weights 1/(r+1), additive).
    assert t2["weighted_kendall"] == pytest.approx(stats.weightedtau(s, a).statistic)


def test_summary_is_the_mean_over_targets_with_a_bootstrap_interval():
    ev = evaluate_table(_rows(), baseline="b", seed=0, n_boot=2000)
    (row,) = ev["summary"]
    assert (row["regime"], row["score"], row["n_targets"]) == ("full", "s", 2)
    assert row["top1_gain"] == pytest.approx(0.0)  # (-10 + 10) / 2
    # Resampling 2 targets: each mean is -10, 0 or +10, the extremes with probability 1/4 each,
    # far above the 2.5% tails, so the percentile interval is exactly [-10, +10].
    assert (row["top1_gain_low"], row["top1_gain_high"]) == (pytest.approx(-10.0), pytest.approx(10.0))
    assert row["trials_to_best"] == pytest.approx(2.5)
    assert row["spearman"] == pytest.approx((-1.0 + 0.5) / 2)


def test_without_a_baseline_the_gains_are_none_and_relative_accuracy_remains():
    ev = evaluate_table(_rows(), n_boot=200)
    t1 = _by_target(ev)["t1"]
    assert ev["baseline"] is None
    assert all(t1[k] is None for k in ("top1_gain", "top3_gain", "random_top1_gain", "random_top3_gain"))
    assert t1["relative_top1_accuracy"] == pytest.approx(70 / 80)
    (row,) = ev["summary"]
    assert row["top1_gain"] is None and row["top1_gain_low"] is None
    assert row["relative_top1_accuracy"] == pytest.approx((70 / 80 + 60 / 90) / 2)


def test_strings_from_a_csv_give_the_same_result_as_numbers():
    as_text = [{k: str(v) for k, v in r.items()} for r in _rows()]
    assert evaluate_table(as_text, baseline="b", n_boot=100) == evaluate_table(_rows(), baseline="b", n_boot=100)


def test_regime_column_groups_and_an_empty_regime_is_full():
    rows = _rows(regime="5shot") + [{**r, "regime": ""} for r in _rows()]
    ev = evaluate_table(rows, baseline="b", n_boot=100)
    assert ev["regimes"] == ["5shot", "full"]
    assert [(r["regime"], r["n_targets"]) for r in ev["summary"]] == [("5shot", 2), ("full", 2)]


def test_a_target_of_two_models_selects_both_as_its_top_3():
    rows = [{"target": "t", "model": m, "accuracy": acc, "s": s}
            for m, acc, s in (("a", 70.0, 0.9), ("b", 80.0, 0.5))]
    (row,) = evaluate_table(rows, baseline="a", n_boot=100)["metrics"]
    assert row["top1_gain"] == 0.0  # a is picked first and is the baseline
    assert row["top3_gain"] == pytest.approx(10.0)  # both fine-tuned: 80 - 70
    assert row["random_top3_gain"] == pytest.approx(10.0)
    assert row["top1_regret"] == pytest.approx(10.0) and row["top3_regret"] == 0.0
    assert row["gap_fidelity"] is None  # undefined below 3 models


def test_a_constant_score_has_no_correlation_but_pessimistic_selection():
    rows = [{**r, "s": 1.0} for r in _rows()]
    t1 = _by_target(evaluate_table(rows, baseline="b", n_boot=100))["t1"]
    assert t1["weighted_kendall"] is None and t1["spearman"] is None
    assert t1["top1_gain"] == pytest.approx(-10.0)  # ties: the worst model first
    assert t1["trials_to_best"] == 3.0


def test_summarise_over_targets_drops_none_and_needs_two_values_for_an_interval():
    metrics = [
        {"target": "t1", "g": "x", "m": 1.0, "n": None},
        {"target": "t2", "g": "x", "m": 3.0, "n": 5.0},
        {"target": "t1", "g": "a", "m": 2.0, "n": 2.0},
        {"target": "t2", "g": "a", "m": 2.0, "n": 4.0},
    ]
    summary = summarise_over_targets(metrics, ("g",), seed=0, n_boot=500)
    assert [r["g"] for r in summary] == ["a", "x"]  # sorted by the group key
    a, x = summary
    assert a["m"] == 2.0 and (a["m_low"], a["m_high"]) == (2.0, 2.0)
    assert a["n"] == pytest.approx(3.0) and 2.0 <= a["n_low"] <= a["n_high"] <= 4.0
    assert x["n_targets"] == 2 and x["m"] == pytest.approx(2.0)
    assert (x["n"], x["n_low"], x["n_high"]) == (None, None, None)  # one defined value


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda rows: [{k: v for k, v in r.items() if k != "accuracy"} for r in rows], "lacks the column(s) accuracy"),
        (lambda rows: [{k: v for k, v in r.items() if k != "s"} for r in rows], "no score column"),
        (lambda rows: [{**r, "accuracy": "high"} if i == 1 else r for i, r in enumerate(rows)],
         "row 2: accuracy must be a number; got 'high'"),
        (lambda rows: [{**r, "s": "nan"} if i == 0 else r for i, r in enumerate(rows)],
         "row 1: score s must be a finite number; got 'nan'"),
        (lambda rows: [{**r, "s": float("inf")} if i == 0 else r for i, r in enumerate(rows)],
         "row 1: score s must be a finite number"),
        (lambda rows: [{**r, "accuracy": ""} if i == 3 else r for i, r in enumerate(rows)],
         "row 4: accuracy must be a number; got an empty cell"),
        (lambda rows: [*rows, rows[0]], "row 7: target 't1', regime 'full', model 'a' appears twice"),
        (lambda rows: rows[:4], "target 't2' (regime 'full') has 1 model; a ranking needs at least 2"),
        (lambda rows: [], "the results table has no rows"),
        (lambda rows: [{**r, "target": " "} if i == 0 else r for i, r in enumerate(rows)], "row 1: target is empty"),
        (lambda rows: [{**r, None: ["x"]} if i == 2 else r for i, r in enumerate(rows)],
         "row 3 does not have the header's 4 columns"),
        (lambda rows: [{**r, "accuracy": -1.0} if i == 0 else r for i, r in enumerate(rows)],
         "target 't1': accuracy of 'a' is negative"),
    ],
)
def test_bad_tables_raise_a_value_error_naming_the_cause(mutate, fragment):
    with pytest.raises(ValueError) as info:
        evaluate_table(mutate(_rows()), n_boot=10)
    assert fragment in str(info.value)


def test_a_baseline_missing_from_a_target_is_named():
    rows = [r for r in _rows() if not (r["target"] == "t2" and r["model"] == "b")]
    with pytest.raises(ValueError, match="--baseline 'b' is not a model of target 't2'"):
        evaluate_table(rows, baseline="b", n_boot=10)


def test_check_table_returns_numbers_and_the_score_columns_in_order():
    rows = [{"target": "t", "model": m, "accuracy": "1.5", "z": "2", "regime": "", "y": 3}
            for m in ("a", "b")]
    clean, scores = check_table(rows)
    assert scores == ["z", "y"]
    assert clean[0] == {"target": "t", "regime": "full", "model": "a", "accuracy": 1.5, "z": 2.0, "y": 3.0}
