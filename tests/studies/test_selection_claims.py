"""The selection study's claims, baselines, fidelity and regret on hand-made tables (no fine-tuning)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from scipy import stats

from transferlab.studies._claims import judged_claim, verdict
from transferlab.studies._selection_report import evaluate_selection

MEMBERS = ("generic", "a", "b", "c")
# Accuracies: in every target and regime the order is a > generic > b > c.
FULL = {"T1": (0.60, 0.62, 0.55, 0.50), "T2": (0.70, 0.72, 0.65, 0.60), "T3": (0.50, 0.52, 0.45, 0.40)}
FEW_SHOT = {t: (0.40, 0.50, 0.35, 0.30) for t in ("T1", "T2", "T3")}
SCORES = {
    "logme": None,  # the accuracy itself: a perfect ranking
    "leep": (0.2, 0.1, 0.9, 0.8),  # puts b, c, generic first: its top 3 miss a
    "knn": (0.5, 0.4, 0.6, 0.1),
    "random": (0.1, 0.2, 0.3, 0.4),
    "source_accuracy": (0.3, 0.1, 0.2, 0.4),
}


def _evaluate(scores=SCORES, accuracies=None):
    accuracies = accuracies or {"full": FULL, "5-shot": FEW_SHOT}
    zoo = [SimpleNamespace(name=m, role="generic" if m == "generic" else "single") for m in MEMBERS]
    cfg = SimpleNamespace(seed=0, regimes=("full", "5-shot"), preset="hand")
    finetune, scored, seconds = [], [], []
    for regime, table in accuracies.items():
        for target, accs in table.items():
            seconds.append({"target": target, "regime": regime, "scores": list(scores)})
            for m, acc in zip(MEMBERS, accs):
                finetune.append({"target": target, "regime": regime, "model": m, "best_test_accuracy": acc,
                                 "val_selected_test_accuracy": acc, "seconds": 1.0})
            for i, m in enumerate(MEMBERS):
                row = {"target": target, "regime": regime, "model": m}
                for name, values in scores.items():
                    row[name] = accs[i] if values is None else values[i]
                scored.append(row)
    return cfg, evaluate_selection(cfg, zoo, finetune, scored, seconds)


def _claim(evaluation, claim_start, setting):
    return next(c for c in evaluation["claims"] if c["claim"].startswith(claim_start) and c["setting"] == setting)


def test_claims_on_a_table_with_point_intervals():
    # Every target has the same gains and orders, so each interval is a point and each verdict is certain.
    _, ev = _evaluate()
    full = _claim(ev, "the best zoo member beats", "full")
    assert full["estimate"] == pytest.approx(0.02) and full["verdict"] == "holds"
    few = _claim(ev, "the best zoo member beats", "5-shot")
    assert few["estimate"] == pytest.approx(0.10) and few["verdict"] == "holds"
    diff = _claim(ev, "the best member's gain is larger at 5-shot", "5-shot - full")
    assert (diff["estimate"], diff["low"], diff["high"]) == pytest.approx((0.08, 0.08, 0.08))
    assert diff["verdict"] == "holds"
    # One of the three other members (a) beats the generic expert: 1/3 is not "a few" (< 1/4).
    share = _claim(ev, "only a few members", "full")
    assert share["estimate"] == pytest.approx(1 / 3) and share["verdict"] == "does not hold"
    # logme's top 3 hold a: all the gain; leep's top 3 (b, c, generic) recover none.
    assert _claim(ev, "top-3 selection", "full, logme")["estimate"] == pytest.approx(1.0)
    assert _claim(ev, "top-3 selection", "full, logme")["verdict"] == "holds"
    assert _claim(ev, "top-3 selection", "5-shot, leep")["estimate"] == pytest.approx(0.0)
    assert _claim(ev, "top-3 selection", "5-shot, leep")["verdict"] == "does not hold"
    # logme ranks best; its lead over leep is the same on every target: significant.
    lead = _claim(ev, "`logme` ranks best", "full, logme - leep")
    acc = FULL["T1"]
    expected = stats.weightedtau(acc, acc).statistic - stats.weightedtau(SCORES["leep"], acc).statistic
    assert (lead["estimate"], lead["low"], lead["high"]) == pytest.approx((expected,) * 3)
    assert lead["verdict"] == "holds"
    for c in ev["claims"]:
        assert set(c) >= {"claim", "statistic", "estimate", "low", "high", "verdict", "evidence"}


def test_top3_share_is_a_ratio_of_sums():
    # leep's top 3 on T1 (full) now hold a (gain 0.02), on T2 and T3 none: (0.02 + 0 + 0) / (3 x 0.02) = 1/3.
    leep_t1 = (0.2, 0.95, 0.9, 0.8)
    zoo = [SimpleNamespace(name=m, role="generic" if m == "generic" else "single") for m in MEMBERS]
    cfg = SimpleNamespace(seed=0, regimes=("full",), preset="hand")
    finetune, scored, seconds = [], [], []
    for target, accs in FULL.items():
        seconds.append({"target": target, "regime": "full", "scores": ["logme", "leep"]})
        leep = leep_t1 if target == "T1" else SCORES["leep"]
        for i, m in enumerate(MEMBERS):
            finetune.append({"target": target, "regime": "full", "model": m, "best_test_accuracy": accs[i],
                             "val_selected_test_accuracy": accs[i], "seconds": 1.0})
            scored.append({"target": target, "regime": "full", "model": m, "logme": accs[i], "leep": leep[i]})
    ev = evaluate_selection(cfg, zoo, finetune, scored, seconds)
    share = _claim(ev, "top-3 selection", "full, leep")
    assert share["estimate"] == pytest.approx(1 / 3)
    assert share["low"] <= 1 / 3 <= share["high"]


def test_groups_order_and_baselines():
    _, ev = _evaluate()
    rows = [r for r in ev["summary"] if r["regime"] == "full" and r["truth"] == "best"]
    assert [(r["score"], r["group"]) for r in rows] == [
        ("source_accuracy", "prior"), ("knn", "baseline"), ("random", "baseline"),
        ("leep", "score"), ("logme", "score"),
    ]
    assert all("group" in r for r in ev["metrics"])
    # The best baseline by weighted tau, computed independently; logme leads it on every target alike.
    acc = FULL["T1"]
    taus = {n: stats.weightedtau(SCORES[n], acc).statistic for n in ("knn", "random", "source_accuracy")}
    best = max(taus, key=taus.get)
    vs = {r["score"]: r for r in ev["versus_baselines"] if r["regime"] == "full"}
    assert vs["logme"]["best_baseline"] == best
    assert vs["logme"]["lead"] == pytest.approx(1.0 - taus[best])
    assert vs["logme"]["verdict"] == "beats"
    leep_lead = stats.weightedtau(SCORES["leep"], acc).statistic - taus[best]
    assert vs["leep"]["verdict"] == ("beats" if leep_lead > 0 else "below")


def test_fidelity_and_regret_reach_the_summary():
    _, ev = _evaluate()
    logme = next(r for r in ev["summary"] if r["score"] == "logme" and r["regime"] == "full" and r["truth"] == "best")
    assert logme["gap_fidelity"] == pytest.approx(1.0)  # the score is the accuracy
    assert logme["top1_regret"] == 0.0 and logme["top3_regret"] == 0.0
    leep = next(r for r in ev["summary"] if r["score"] == "leep" and r["regime"] == "5-shot" and r["truth"] == "best")
    # leep picks b first (0.35) and its top 3 (b, c, generic) best is 0.40; the best model a has 0.50.
    assert leep["top1_regret"] == pytest.approx(0.15) and leep["top3_regret"] == pytest.approx(0.10)


@pytest.mark.parametrize(
    "low, high, threshold, above, expected",
    [
        (0.1, 0.2, 0.0, True, "holds"),
        (-0.1, 0.2, 0.0, True, "inconclusive"),
        (-0.2, 0.0, 0.0, True, "does not hold"),
        (0.1, 0.2, 0.25, False, "holds"),
        (0.2, 0.3, 0.25, False, "inconclusive"),
        (0.25, 0.3, 0.25, False, "does not hold"),
        (None, None, 0.0, True, "inconclusive"),
    ],
)
def test_verdict(low, high, threshold, above, expected):
    assert verdict(low, high, threshold, above=above) == expected


def test_verdict_refuses_a_reversed_interval():
    with pytest.raises(ValueError, match="low <= high"):
        verdict(0.3, 0.1, 0.0)
    assert judged_claim("c", "s", "stat", None, 0.0, "e")["verdict"] == "inconclusive"
