"""The what-transfers study: presets, and the tiny preset end to end."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.studies._what_transfers import run_what_transfers
from transferlab.studies._what_transfers_config import load_what_transfers_config

runner = CliRunner()


def test_presets_resolve_and_bad_ones_are_refused(tmp_path):
    small = load_what_transfers_config("small")
    assert small.block_sizes == (28, 14, 7, 4, 2, 1)  # DESIGN's block sizes, largest first
    assert len(small.seeds) >= 2
    with pytest.raises(ValueError, match="unknown what-transfers preset"):
        load_what_transfers_config("huge")
    path = tmp_path / "p.toml"
    path.write_text("[presets.p]\nseeds = [0]\n")
    with pytest.raises(ValueError, match="missing keys"):
        load_what_transfers_config("p", path=path)


def test_tiny_preset_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    result = run_what_transfers("tiny", out_dir=tmp_path / "out", progress=False)
    cfg = result.config
    for name in ("accuracy.csv", "pairs.csv", "interpolation.csv", "criticality.csv", "checkpoints.csv",
                 "claims.csv", "accuracy_vs_block.png", "cka_per_stage.png", "interpolation.png",
                 "criticality.png", "checkpoints.png", "report"):
        assert result.files[name].exists(), name
    n_runs = len(cfg.seeds) * len(cfg.targets) * len(cfg.block_sizes) * 4  # 2 P-T and 2 RI-T
    assert len(result.tables["accuracy"]) == n_runs
    assert {r["pair"] for r in result.tables["pairs"]} == {"P-P", "RI-RI", "P-RI"}
    curves = [r for r in result.tables["interpolation"] if r["pair"] == "P-P"]
    assert len(curves) == cfg.interpolation_points * len(cfg.seeds) * len(cfg.targets) * len(cfg.block_sizes)
    assert all(r["test_barrier"] >= 0 for r in curves)
    assert all(0 <= r[f"cka_{s}"] <= 1 + 1e-9 for r in result.tables["pairs"] for s in ("fc1", "fc2"))
    assert all(np.isfinite(r["criticality"]) for r in result.tables["criticality"])
    assert sorted({r["epoch"] for r in result.tables["checkpoints"]}) == list(cfg.checkpoint_epochs)
    assert len(result.claims) == 2 * len(cfg.targets) + 6
    again = runner.invoke(app, ["study", "what-transfers", "--preset", "tiny", "--out", str(tmp_path / "o2"), "-q"])
    assert again.exit_code == 0, again.output


def test_cli_unknown_preset_exits_2():
    result = runner.invoke(app, ["study", "what-transfers", "--preset", "huge", "-q"])
    assert result.exit_code == 2 and "unknown what-transfers preset" in result.output
