"""Ground-truth sensitivity of the selection benchmark (transferlab.studies._selection_truth), worked by hand."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import weightedtau

from tests.studies.test_selection import tiny_study  # noqa: F401 -- the module-scoped fixture, reused
from transferlab.studies._selection_truth import AGREE, truth_markdown, truth_sensitivity, write_truth

MEMBERS = ["m0", "m1", "m2", "m3"]
DEFAULT = [0.1, 0.2, 0.3, 0.4]
LONGER = [0.1, 0.2, 0.45, 0.35]  # the last two swap: 5 concordant pairs of 6, Kendall tau (5 - 1) / 6


def _rows(accuracies, regime="full"):
    return [{"target": "t0", "regime": regime, "model": m, "best_test_accuracy": a}
            for m, a in zip(MEMBERS, accuracies, strict=True)]


def test_two_truths_by_hand(tmp_path):
    cfg = SimpleNamespace(truth_factor=4, steps=24, train=None)
    scores = [{"target": "t0", "regime": "full", "model": m, "A": float(i), "B": float(-i)}
              for i, m in enumerate(MEMBERS)]
    out = truth_sensitivity(cfg, MEMBERS, _rows(DEFAULT), _rows(LONGER), scores, ["A", "B"])
    (row,) = out["rows"]
    assert row["kendall_tau"] == pytest.approx(4 / 6)
    assert row["weighted_tau"] == pytest.approx(weightedtau(DEFAULT, LONGER).statistic)
    assert (row["best_default"], row["best_long"]) == ("m3", "m2")
    assert row["regret_long"] == pytest.approx(0.45 - 0.35) and row["mean_gain"] == pytest.approx(0.025)
    assert out["mean_tau"] == pytest.approx(4 / 6) and 4 / 6 < AGREE and not out["agree"]
    a = {s["score"]: s for s in out["scores"]}
    assert a["A"]["weighted_tau_default"] == pytest.approx(1.0)
    assert a["A"]["weighted_tau_long"] == pytest.approx(weightedtau([0, 1, 2, 3], LONGER).statistic)
    assert a["B"]["weighted_tau_default"] == pytest.approx(weightedtau([0, -1, -2, -3], DEFAULT).statistic)
    assert out["stability"] == pytest.approx(1.0)  # A above B under both truths
    text = "\n".join(truth_markdown(out))
    assert "**They disagree**" in text and "the default budget should move toward the longer one" in text
    assert "| t0 | full | +0.667 |" in text and "| m3 | m2 | 10.0 | +2.5 |" in text
    files = write_truth(tmp_path, out)
    assert len(files) == 3 and (tmp_path / "truth.png").read_bytes()[:4] == b"\x89PNG"
    assert [r["best_long"] for r in csv.DictReader(open(tmp_path / "truth.csv"))] == ["m2"]


def test_identical_truths_agree_and_no_check_says_so():
    cfg = SimpleNamespace(truth_factor=4, steps=None, train=SimpleNamespace(epochs=3))
    out = truth_sensitivity(cfg, MEMBERS, _rows(DEFAULT), _rows(DEFAULT), [], [])
    assert out["mean_tau"] == pytest.approx(1.0) and out["agree"] and out["budget"] == "3 epochs"
    assert "**They agree**" in "\n".join(truth_markdown(out))
    assert truth_sensitivity(cfg, MEMBERS, _rows(DEFAULT), [], [], []) == {}
    assert "Not checked" in "\n".join(truth_markdown({}))
    constant = truth_sensitivity(cfg, MEMBERS, _rows(DEFAULT), _rows([0.5] * 4), [], [])
    assert constant["rows"][0]["kendall_tau"] is None and constant["mean_tau"] is None and not constant["agree"]


def test_tiny_study_checks_its_truth_and_varies_its_scoring(tiny_study):  # noqa: F811
    result, out = tiny_study
    assert result.exit_code == 0, result.output
    truth = list(csv.DictReader(open(out / "truth.csv")))
    assert len(truth) == 1 and truth[0]["regime"] == "full"
    tau = truth[0]["kendall_tau"]
    assert tau == "" or -1.0 <= float(tau) <= 1.0
    report = (out / "report.md").read_text()
    assert "## Ground-truth sensitivity" in report and "2 times that budget" in report
    rows = list(csv.DictReader(open(out / "stability.csv")))
    budget = {r["variation"] for r in rows if r["analysis"] == "score_budget"}
    assert budget == {"K=10", "K=6"} and {r["regime"] for r in rows if r["analysis"] == "score_budget"} == {"full"}
    assert "the scoring budget K [K=10, K=6]" in report
    assert np.isfinite([float(r["mean_weighted_tau"]) for r in rows
                        if r["analysis"] == "score_budget" and r["mean_weighted_tau"]]).all()
