"""The transfer-bound study: presets, the summary's statistics, and the tiny preset end to end."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.runner._store import ResultStore
from transferlab.studies._bound import run_bound
from transferlab.studies._bound_config import load_bound_config
from transferlab.studies._bound_report import summarise_bound

runner = CliRunner()


def test_presets_resolve_and_bad_ones_are_refused(tmp_path):
    small = load_bound_config("small")
    assert set(small.roles) == {"single", "generic", "from-generic"} and len(small.targets) == 4
    assert load_bound_config("full").transform.init == "transport"
    with pytest.raises(ValueError, match="unknown bound preset"):
        load_bound_config("huge")
    text = (tmp_path / "p.toml")
    base = {
        "zoo": '"builtin"', "zoo_preset": '"tiny"', "roles": '["single"]',
        "targets": '[{ spec = "glyphs:digits" }]', "train_per_class": "5", "test_per_class": "5",
        "source_per_class": "5", "source_eval_per_class": "5", "probe_weight_decay": "1e-4", "seed": "0",
        "head": "{ tau = 1.0, penalty = 10.0, steps = 5, lr = 0.05 }",
        "transform": '{ steps = 2, batch_size = 8, lr = 0.01, prior_lr = 0.001, prior_weight = 1.0, '
                     'invertibility_weight = 1.0, init = "transport" }',
    }
    for change, message in (({"roles": '["teacher"]'}, r"roles\[0\] must be one of"), ({"seed": "-1"}, "seed must be"),
                            ({"head": "{ tau = 1.0 }"}, r"head: missing keys \['penalty', 'steps', 'lr'\]"),
                            ({"head": "{ tau = 1.0, penalty = 10.0, steps = 5, lr = -0.05 }"}, "lr must be"),
                            ({"transform": '{ steps = 2, batch_size = 8, lr = 0.01, prior_lr = 0.001, '
                                           'prior_weight = 1.0, invertibility_weight = 1.0, init = "ot" }'},
                             "init must be one of"),
                            ({"targets": "[]"}, "lists no targets"), ({"extra": "1"}, "unknown keys")):
        table = {**base, **change}
        text.write_text("[presets.p]\n" + "\n".join(f"{k} = {v}" for k, v in table.items()) + "\n")
        with pytest.raises(ValueError, match=message):
            load_bound_config("p", path=text)


def _pairs(bound, loss, logme=None, leep=None):
    n = len(bound)
    rng = np.random.default_rng(0)
    logme = rng.normal(size=n) if logme is None else logme
    leep = rng.normal(size=n) if leep is None else leep
    return [{"bound": b, "probe_loss": l, "transferred_loss": b - 0.1, "logme": m, "leep": e,
             "model": f"m{i % 4}", "target": f"t{i // 4}"} for i, (b, l, m, e) in enumerate(zip(bound, loss, logme, leep))]


def test_summary_statistics_against_scipy():
    rng = np.random.default_rng(1)
    loss = rng.uniform(0.2, 2.0, 20)
    bound = 1.5 * loss + rng.normal(0, 0.3, 20) + 1.0
    logme = -loss + rng.normal(0, 0.5, 20)
    cfg = load_bound_config("tiny")
    summary, claims = summarise_bound(cfg, _pairs(bound, loss, logme))
    row = {(r["measure"], r["of"]): r for r in summary}
    share = row[("share of pairs", "bound >= probe loss")]
    assert share["estimate"] == np.mean(bound >= loss)
    ci = stats.binomtest(int(np.sum(bound >= loss)), 20).proportion_ci(method="exact")
    assert (share["low"], share["high"]) == pytest.approx((ci.low, ci.high))
    spearman = row[("spearman", "bound vs probe loss")]
    assert spearman["estimate"] == pytest.approx(stats.spearmanr(bound, loss)[0])
    assert spearman["low"] <= spearman["estimate"] <= spearman["high"]
    # scores are negated so that every predictor should rise with the loss
    assert row[("pearson", "-LogME vs probe loss")]["estimate"] == pytest.approx(stats.pearsonr(-logme, loss)[0])
    assert [c["supported"] for c in claims][0] is True
    assert [c["supported"] for c in claims][2] is True


def test_claims_say_no_when_the_bound_fails():
    loss = np.linspace(1.0, 3.0, 12)
    bound = loss[::-1] - 1.5  # below the loss and anti-correlated with it
    summary, claims = summarise_bound(load_bound_config("tiny"), _pairs(bound, loss, logme=-loss, leep=-loss))
    assert [c["supported"] for c in claims] == [False, False, False, False]


def test_tiny_preset_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    result = run_bound("tiny", out_dir=tmp_path / "out", progress=False)
    cfg = result.config
    for name in ("pairs.csv", "summary.csv", "claims.csv", "bound_vs_loss.png", "bound_terms.png", "report"):
        assert result.files[name].exists(), name
    assert len(result.pairs) == 6 * len(cfg.targets)  # the tiny zoo has six single-domain experts
    for p in result.pairs:
        assert p["bound"] == pytest.approx(p["source_loss"] + p["conditional_entropy"] + p["wasserstein"])
        assert p["bound"] >= p["transferred_loss"] - 1e-9  # the theorem, on the test samples
        assert 0 <= p["conditional_entropy"] <= np.log(p["target_classes"]) + 1e-9
        assert 0 <= p["probe_accuracy"] <= 1 and np.isfinite(p["probe_loss"])
    assert len(result.claims) == 4
    within = [r for r in result.summary if r["measure"] == "mean spearman"]
    assert [r["n_groups"] for r in within] == [6, len(cfg.targets)]
    report = result.files["report"].read_text()
    assert "share of pairs" in report and "spearman" in report
    # a second run reads every pair from the store and gives the same numbers
    n_rows = len(ResultStore(tmp_path / "home" / "results.sqlite").keys())
    again = runner.invoke(app, ["study", "bound", "--preset", "tiny", "--out", str(tmp_path / "o2"), "-q"])
    assert again.exit_code == 0, again.output
    assert "share of pairs" in again.output
    assert len(ResultStore(tmp_path / "home" / "results.sqlite").keys()) == n_rows
    assert (tmp_path / "o2" / "pairs.csv").read_text() == result.files["pairs.csv"].read_text()


def test_cli_unknown_preset_exits_2():
    result = runner.invoke(app, ["study", "bound", "--preset", "huge", "-q"])
    assert result.exit_code == 2 and "unknown bound preset" in result.output
