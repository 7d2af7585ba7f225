"""``transferlab rank --target-kind regression|multilabel`` on precomputed features."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from transferlab.cli import app

runner = CliRunner()


def _features(n=40, seed=0):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    return signal, np.column_stack([signal, rng.normal(size=(n, 2))]) + 0.1 * rng.normal(size=(n, 3))


def test_rank_regression_targets_of_an_npz(tmp_path):
    signal, features = _features()
    np.savez(tmp_path / "x.npz", features=features, targets=2.0 * signal + 1.0)
    out = tmp_path / "o"
    result = runner.invoke(app, ["rank", "--models", "", "--data", str(tmp_path / "x.npz"), "--target-kind",
                                 "regression", "--bootstrap", "10", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Recommended: x ")
    assert "95% plain bootstrap" in result.output
    saved = json.loads((out / "ranking.json").read_text())
    assert saved["scores"] == ["logme", "linear_mse", "knn", "linear_probe"]
    assert saved["target_kind"] == "regression"
    assert all(isinstance(saved["rows"][0][name], float) for name in saved["scores"])


def test_rank_multilabel_targets_of_an_npz(tmp_path):
    signal, features = _features()
    labels = np.column_stack([signal > 0, signal > 1, signal < -1]).astype(np.uint8)
    np.savez(tmp_path / "m.npz", features=features, labels=labels)
    out = tmp_path / "o"
    result = runner.invoke(app, ["rank", "--models", "", "--data", str(tmp_path / "m.npz"), "--target-kind",
                                 "multilabel", "--bootstrap", "10", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Recommended: m ")
    saved = json.loads((out / "ranking.json").read_text())
    assert saved["scores"] == ["logme", "knn", "linear_probe"] and saved["target_kind"] == "multilabel"
    refused = runner.invoke(app, ["rank", "--models", "", "--data", str(tmp_path / "m.npz"), "--target-kind",
                                  "multilabel", "--scores", "linear_mse", "-q"])
    assert refused.exit_code == 2
    assert refused.output.strip() == ("error: score 'linear_mse' does not support multilabel targets "
                                      "(it supports regression)")


def test_a_score_that_does_not_support_the_kind_is_one_line_and_exit_2(tmp_path):
    signal, features = _features()
    np.savez(tmp_path / "x.npz", features=features, targets=signal)
    result = runner.invoke(app, ["rank", "--models", "", "--data", str(tmp_path / "x.npz"), "--target-kind",
                                 "regression", "--scores", "logme,hscore", "--out", str(tmp_path / "o"), "-q"])
    assert result.exit_code == 2
    assert result.output.strip() == ("error: score 'hscore' does not support regression targets "
                                     "(it supports classes)")
    bad = runner.invoke(app, ["rank", "--models", "", "--data", str(tmp_path / "x.npz"), "--target-kind", "ordinal"])
    assert bad.exit_code == 2 and "--target-kind must be one of 'classes', 'regression', 'multilabel'" in bad.output
    # targets read as classes are not guessed into regression
    silent = runner.invoke(app, ["rank", "--models", "", "--data", str(tmp_path / "x.npz"), "-q"])
    assert silent.exit_code == 2 and "pass target_kind='regression'" in silent.output
