"""The README's bring-your-own example: written offline, then ranked with one command."""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from transferlab.cli import app

pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")


def test_byo_example_ranks_two_hf_models_and_ours(tmp_path):
    path = Path(__file__).resolve().parents[1] / "examples" / "byo_example.py"
    spec = importlib.util.spec_from_file_location("byo_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    command = module.main(tmp_path / "byo")
    args = shlex.split(command)[1:] + ["--scores", "logme,leep", "--out", str(tmp_path / "out"), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "out" / "ranking.json").read_text())["rows"]
    assert sorted(r["input_size"] for r in rows) == ["224x224", "28x28", "32x32"]
