"""The selection study's stability analyses: wiring on hand-worked rows, and the tiny preset end to end.

The hand-worked table is the one of tests/evaluate/test_stability.py: 4 members,
2 targets (accuracies [1, 2, 3, 4] and [4, 3, 2, 1]), score A following the
truth, score B = [2, 1, 3, 4] then [1, 2, 3, 4]. There, B's weighted tau on
target 0 is 61/75 on all four members and 6/11 without member 2 or 3; on target 1 it is -1.
"""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest

from tests.studies.test_selection import tiny_study  # noqa: F401 -- the module-scoped fixture, reused
from transferlab.studies._selection_stability import (
    _sizes,
    stability_analyses,
    stability_markdown,
    write_stability,
)

MEMBERS = ["m0", "m1", "m2", "m3"]
ARCH = ["a", "a", "b", "b"]
ROLE = ["single", "single", "generic", "multidomain"]
TRUTH = {"t0": [1.0, 2.0, 3.0, 4.0], "t1": [4.0, 3.0, 2.0, 1.0]}
# With the truth of lr = 0.01 alone, B is perfect on both targets and A gets 61/75 and -1.
TRUTH_LR = {0.1: TRUTH, 0.01: {"t0": [2.0, 1.0, 3.0, 4.0], "t1": [1.0, 2.0, 3.0, 4.0]}}
SCORES = {"A": TRUTH, "B": {"t0": [2.0, 1.0, 3.0, 4.0], "t1": [1.0, 2.0, 3.0, 4.0]}}


def _rows(members=MEMBERS, lrs=(0.1, 0.01)):
    finetune, scores, per_lr = [], [], []
    for t in TRUTH:
        for i, m in enumerate(members):
            finetune.append({"target": t, "regime": "full", "model": m, "arch": ARCH[i], "role": ROLE[i],
                             "best_test_accuracy": TRUTH[t][i]})
            scores.append({"target": t, "regime": "full", "model": m, **{n: SCORES[n][t][i] for n in SCORES}})
            per_lr += [{"target": t, "regime": "full", "model": m, "lr": lr, "test_accuracy": TRUTH_LR[lr][t][i]}
                       for lr in lrs]
    cfg = SimpleNamespace(regimes=("full",), lrs=tuple(lrs), seed=0)
    return cfg, finetune, scores, per_lr


def _pick(rows, analysis, variation, score):
    (row,) = [r for r in rows if r["analysis"] == analysis and r["variation"] == variation and r["score"] == score]
    return row


def test_stability_analyses_by_hand(tmp_path):
    cfg, finetune, scores, per_lr = _rows()
    out = stability_analyses(cfg, MEMBERS, finetune, scores, per_lr, ["A", "B"])
    rows = out["rows"]
    assert _pick(rows, "full_pool", "all members", "B")["mean_weighted_tau"] == pytest.approx((61 / 75 - 1) / 2)
    # Leave one member out: B's target-0 tau is 1, 1, 6/11, 6/11 without m0..m3.
    for m, t0 in zip(MEMBERS, [1.0, 1.0, 6 / 11, 6 / 11], strict=True):
        row = _pick(rows, "leave_one_member_out", f"without {m}", "B")
        assert row["mean_weighted_tau"] == pytest.approx((t0 - 1) / 2) and row["n_models"] == 3
        assert row["in_top3"] and row["top3_frequency"] == 1.0  # two scores: both are always among three
    # Architectures a and b leave pools of 2 members: skipped, and said so.
    assert not [r for r in rows if r["analysis"] == "leave_one_arch_out"]
    assert any("leave_one_arch_out skipped a, b" in n for n in out["notes"])
    # Kinds: without single -> 2 members (skipped); without generic = without m2; without multidomain = without m3.
    assert _pick(rows, "leave_one_kind_out", "without generic", "B")["mean_weighted_tau"] == pytest.approx(-5 / 22)
    assert _pick(rows, "leave_one_kind_out", "without multidomain", "B")["mean_weighted_tau"] == pytest.approx(-5 / 22)
    assert any("leave_one_kind_out skipped single" in n for n in out["notes"])
    # Pool sizes 3 (every one of the 4 subsets: B's pool means 0, 0, -5/22, -5/22) and 4.
    size3 = _pick(rows, "pool_size", "size 3", "B")
    assert size3["mean_weighted_tau"] == pytest.approx(-5 / 44) and size3["n_models"] == 3
    assert _pick(rows, "pool_size", "size 4", "A")["mean_weighted_tau"] == pytest.approx(1.0)
    # LR grid: lr=0.1 ranks A (1) over B (-7/75); lr=0.01 ranks B (1) over A ((61/75 - 1) / 2): tau -1.
    assert _pick(rows, "lr_grid", "lr=0.01", "A")["mean_weighted_tau"] == pytest.approx(-7 / 75)
    assert _pick(rows, "lr_grid", "lr=0.01", "B")["mean_weighted_tau"] == pytest.approx(1.0)
    assert _pick(rows, "lr_grid", "lr=0.1", "B")["setup_stability"] == pytest.approx(-1.0)
    assert out["summary"][("full", None)]["lr_grid_stability"] == pytest.approx(-1.0)

    files = write_stability(cfg, tmp_path, out)
    table = list(csv.DictReader(open(tmp_path / "stability.csv")))
    assert len(table) == len(rows)
    assert {r["analysis"] for r in table} == {"full_pool", "leave_one_member_out", "leave_one_kind_out",
                                              "pool_size", "lr_grid"}
    for name in ("stability_pool_size.png", "stability_leave_out.png", "stability_setups.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert len(files) == 4
    text = "\n".join(stability_markdown(cfg, out))
    assert "## Stability" in text and "Setup stability across the LR grid [lr=0.1, lr=0.01]: **-1.000**" in text
    assert "| A | +1.000 |" in text  # A first: the higher weighted tau on all members


def test_scoring_setups_by_hand(tmp_path):
    # With K=5 the scores swap (A gets B's values and B the truth): the preset's own scoring ranks A
    # over B, K=5 ranks B (1) over A ((61/75 - 1) / 2): tau -1. seed=1 repeats the preset's scores: tau +1.
    cfg, finetune, scores, per_lr = _rows()
    cfg = SimpleNamespace(**vars(cfg), score_per_class=10, setup_regimes=None)
    swapped = [{**r, "A": r["B"], "B": r["A"]} for r in scores]
    out = stability_analyses(cfg, MEMBERS, finetune, scores, per_lr, ["A", "B"],
                             setups={"K=5": swapped, "seed=1": scores})
    rows = out["rows"]
    assert _pick(rows, "score_budget", "K=10", "A")["mean_weighted_tau"] == pytest.approx(1.0)
    assert _pick(rows, "score_budget", "K=5", "B")["mean_weighted_tau"] == pytest.approx(1.0)
    assert _pick(rows, "score_budget", "K=5", "A")["mean_weighted_tau"] == pytest.approx((61 / 75 - 1) / 2)
    assert out["summary"][("full", None)]["score_budget_stability"] == pytest.approx(-1.0)
    assert out["summary"][("full", None)]["score_seed_stability"] == pytest.approx(1.0)
    assert _pick(rows, "score_seed", "seed=0", "B")["mean_weighted_tau"] == pytest.approx((61 / 75 - 1) / 2)
    assert not any("not varied" in n for n in out["notes"])
    text = "\n".join(stability_markdown(cfg, out))
    assert "the scoring budget K [K=10, K=5]: **-1.000**" in text and "the scoring seed [seed=0, seed=1]: **+1.000**" in text
    assert "top-3, the scoring budget K | top-3, the scoring seed |" in text
    write_stability(cfg, tmp_path, out)
    assert (tmp_path / "stability_setups.png").read_bytes()[:4] == b"\x89PNG"


def test_stability_degrades_on_a_tiny_zoo_and_a_single_rate(tmp_path):
    cfg, finetune, scores, per_lr = _rows(members=MEMBERS[:2], lrs=(0.1,))
    out = stability_analyses(cfg, MEMBERS[:2], finetune, scores, per_lr, ["A", "B"])
    analyses = {r["analysis"] for r in out["rows"]}
    assert analyses == {"full_pool", "lr_grid"}  # no pool of 3 members to leave anything out of
    notes = " ".join(out["notes"])
    assert "pool-size curve skipped" in notes and "grid has one rate" in notes
    assert "score_budget: not varied" in notes and "score_seed: not varied" in notes
    assert "leave_one_member_out skipped m0, m1" in notes
    assert out["summary"][("full", None)]["lr_grid_stability"] is None
    write_stability(cfg, tmp_path, out)  # the figures still draw (empty panels say why)
    assert "n/a" in "\n".join(stability_markdown(cfg, out))


def test_pool_sizes_are_every_size_or_an_even_grid():
    assert _sizes(2) == []
    assert _sizes(5) == [3, 4, 5]
    big = _sizes(37)
    assert big[0] == 3 and big[-1] == 37 and len(big) == 20


def test_tiny_study_reports_stability(tiny_study):  # noqa: F811
    result, out = tiny_study
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out / "stability.csv")))
    assert {"full_pool", "leave_one_member_out", "leave_one_arch_out", "leave_one_kind_out", "pool_size",
            "lr_grid"} <= {r["analysis"] for r in rows}
    for r in rows:
        if r["top3_frequency"]:
            assert 0.0 <= float(r["top3_frequency"]) <= 1.0
        if r["mean_weighted_tau"]:
            assert -1.0 <= float(r["mean_weighted_tau"]) <= 1.0
    report = (out / "report.md").read_text()
    assert "## Stability" in report and "Setup stability across the LR grid" in report
    for name in ("stability_pool_size.png", "stability_leave_out.png", "stability_setups.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
