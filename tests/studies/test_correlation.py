"""The correlation study: the linear toy against its closed form, the parts' mechanics, tiny end to end."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.helpers import tiny_task
from transferlab.cli import app
from transferlab.models._mlp import MLP
from transferlab.studies._correlation import fine_tune_from_stage, run_correlation, with_probe_head
from transferlab.studies._correlation_config import load_correlation_config
from transferlab.studies._correlation_toy import closed_form_accuracy, run_toy, toy_inputs
from transferlab.train._config import TrainConfig
from transferlab.train._fit import evaluate
from transferlab.features import linear_probe

runner = CliRunner()


@pytest.fixture(scope="module")
def toy_rows():
    return run_toy(k=4, alphas=[0.0, 0.6, -0.9], betas=[0.0, 0.5, 1.0], decays=[0.001, 0.3],
                   n_train=1000, n_test=20000, steps=600, seed=3)


def test_toy_simulation_matches_the_closed_form(toy_rows):
    # w is fixed once trained, so the simulated accuracy is a binomial proportion around the
    # closed form 1/2 + beta arcsin(rho)/pi: allow 4 standard errors.
    for r in toy_rows:
        for sim, cf in (("bob_as_is", "closed_form_as_is"), ("bob_refit", "closed_form_refit")):
            p = r[cf]
            assert abs(r[sim] - p) < 4 * np.sqrt(p * (1 - p) / r["n_test"]) + 1e-9, (r, sim)


def test_toy_weights_follow_the_paper(toy_rows):
    s1 = {(r["alpha"], r["decay"]): r for r in toy_rows if r["scenario"] == "S1"}
    assert abs(s1[(0.0, 0.001)]["w_ratio"]) < 0.1  # w* ~ [1, 0] at alpha = 0
    assert s1[(0.6, 0.3)]["w_ratio"] > 0.3  # strong decay: toward [1, alpha]
    assert s1[(-0.9, 0.3)]["w_ratio"] < -0.5  # ... and [1, -1] as alpha -> -1
    assert s1[(0.6, 0.3)]["w_ratio"] > s1[(0.6, 0.001)]["w_ratio"]  # weak decay drifts toward [1, 0]
    s2 = {r["beta"]: r for r in toy_rows if r["scenario"] == "S2" and r["decay"] == 0.001}
    assert s2[0.0]["bob_refit"] == pytest.approx(0.5, abs=0.02)  # independent tasks: chance
    assert s2[1.0]["bob_refit"] > 0.95


def test_toy_inputs_have_the_asked_correlation():
    x = toy_inputs(50_000, 3, 0.7, np.random.default_rng(0))
    corr = np.corrcoef(x[:, 0], x[:, 3])[0, 1]
    assert abs(corr - 0.7) < 4 * (1 - 0.7**2) / np.sqrt(50_000)
    assert closed_form_accuracy(1.0) == 1.0 and closed_form_accuracy(0.0) == 0.5
    with pytest.raises(ValueError, match="alpha"):
        toy_inputs(3, 2, 1.5, np.random.default_rng(0))


def test_frozen_stages_stay_frozen():
    task = tiny_task(3, 8, seed=0)
    alice = MLP(in_shape=task.x_train.shape[1:], hidden=(16, 8, 8), num_classes=3)
    before = {k: v.clone() for k, v in alice.state_dict().items()}
    bob, _ = fine_tune_from_stage(alice, task, 3, TrainConfig(epochs=3, batch_size=8, lr=0.1), seed=0)
    after = bob.state_dict()
    for key, value in before.items():
        if key.startswith(("stages.fc1.", "stages.fc2.")):  # l = 3: the first two stages are frozen
            torch.testing.assert_close(after[key], value, rtol=0, atol=0)
        elif key.startswith("stages.fc3."):
            assert not torch.equal(after[key], value), key
    for key, value in alice.state_dict().items():  # Alice herself is never touched
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    with pytest.raises(ValueError, match="first_trained"):
        fine_tune_from_stage(alice, task, 5, TrainConfig(epochs=1), seed=0)


def test_probe_head_is_folded_exactly():
    task = tiny_task(3, 10, seed=4)
    model = MLP(in_shape=task.x_train.shape[1:], hidden=(12,), num_classes=3)
    probe = linear_probe(model, task)
    bob = with_probe_head(model, probe)
    assert evaluate(bob, task)[1] == pytest.approx(probe.test_accuracy)


def test_config_refuses_bad_presets(tmp_path):
    with pytest.raises(ValueError, match="unknown correlation preset"):
        load_correlation_config("huge")
    path = tmp_path / "p.toml"
    path.write_text("[presets.p]\nseeds = [0]\nbetaz = [0.0]\n")
    with pytest.raises(ValueError, match="betaz"):
        load_correlation_config("p", path=path)
    assert load_correlation_config("small").betas[0] == 0.0  # the built-in presets resolve


def test_tiny_preset_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    result = run_correlation("tiny", out_dir=tmp_path / "out", progress=False)
    for name in ("toy.csv", "pairs.csv", "layerwise.csv", "semantic.csv", "claims.csv", "toy.png",
                 "transfer_vs_beta.png", "layerwise.png", "attribution.png", "semantic.png", "report"):
        assert result.files[name].exists(), name
    pairs = {r["beta"]: r for r in result.tables["pairs"]}
    assert pairs[1.0]["bob_probe_accuracy"] > pairs[0.0]["bob_probe_accuracy"] + 0.2
    with open(result.files["claims.csv"]) as fh:
        claims = list(csv.DictReader(fh))
    assert {c["claim"] for c in claims} >= {"Bob's accuracy rises monotonically with beta",
                                            "with little correlation, reusing only lower layers is best"}
    report = result.files["report"].read_text()
    assert "| claim | setting | supported | numbers |" in report
    # a second run finds every job in the store
    again = runner.invoke(app, ["study", "correlation", "--preset", "tiny", "--out", str(tmp_path / "o2"), "-q"])
    assert again.exit_code == 0, again.output


def test_cli_unknown_preset_exits_2():
    result = runner.invoke(app, ["study", "correlation", "--preset", "huge", "-q"])
    assert result.exit_code == 2
    assert "unknown correlation preset" in result.output


def test_claim_helpers_on_golden_rows():
    from transferlab.studies._correlation_report import best_stage, freezing_cost, mean_and_se

    rows = [
        {"arch": "mlp", "beta": b, "seed": 0, "first_trained": l, "bob_accuracy": acc}
        for b, accs in ((0.0, (0.9, 0.7, 0.5)), (1.0, (0.8, 0.8, 0.79)))
        for l, acc in zip((1, 2, 3), accs)
    ]
    assert [r["freezing_cost"] for r in freezing_cost(rows)] == pytest.approx([0.4, 0.01])
    assert [r["best_first_trained"] for r in best_stage(rows)] == [1, 1]  # ties go to the lowest l
    mean, se = mean_and_se([1.0, 2.0, 3.0])
    assert mean == 2.0 and se == pytest.approx(1.0 / np.sqrt(3))
    assert mean_and_se([0.5]) == (0.5, 0.0)


def test_semantic_fine_tuning_gets_enough_steps():
    from transferlab.studies._correlation import _with_min_steps

    train = TrainConfig(epochs=2, batch_size=64)
    assert _with_min_steps(train, 20, 100).epochs == 100  # one batch per epoch
    assert _with_min_steps(train, 640, 15).epochs == 2  # 10 batches per epoch: 2 epochs suffice
