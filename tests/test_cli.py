"""The command line end to end: the tiny demo, rank, data list, and bad input."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.zoo._recipe import load_recipe

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, transferlab_home):
    out = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:  # module-scoped: runs before the autouse fixture
        mp.setenv("TRANSFERLAB_HOME", str(transferlab_home))
        result = runner.invoke(app, ["demo", "--preset", "tiny", "--out", str(out), "--quiet"])
    return result, out


def test_demo_tiny_end_to_end(demo_run):
    result, out = demo_run
    assert result.exit_code == 0, result.output
    members = load_recipe("builtin", "tiny").members
    for member in members:
        assert member.name in result.output
    assert "weighted Kendall tau" in result.output
    rows = list(csv.DictReader(open(out / "ranking.csv")))
    assert sorted(r["model"] for r in rows) == sorted(m.name for m in members)
    for row in rows:
        assert 0.0 <= float(row["fine_tuned_accuracy"]) <= 1.0
        assert float(row["leep"]) <= 0.0  # LEEP is an average log-likelihood
    logme = [float(r["logme"]) for r in rows]
    assert logme == sorted(logme, reverse=True), "rows are sorted by the first score"
    png = (out / "score_vs_accuracy.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_demo_run_reuses_everything(demo_run, monkeypatch):
    result, out = demo_run
    assert result.exit_code == 0
    from transferlab.zoo import _build

    def refuse(*args, **kwargs):
        raise AssertionError("cached work was redone")

    monkeypatch.setattr(_build, "_train_member", refuse)
    monkeypatch.setattr("transferlab.studies._demo.fine_tune", refuse)
    again = runner.invoke(app, ["demo", "--preset", "tiny", "--out", str(out), "--quiet"])
    assert again.exit_code == 0, again.output
    assert again.output == result.output


def test_rank_prints_the_ranking(demo_run, tmp_path):
    result = runner.invoke(
        app, ["rank", "--target", "glyphs:greek", "--preset", "tiny", "--per-class", "5", "--out", str(tmp_path), "-q"]
    )
    assert result.exit_code == 0, result.output
    for member in load_recipe("builtin", "tiny").members:
        assert member.name in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["rank", "--target", "glyphs:greek", "--preset", "tiny", "--scores", "logmee"], "logme"),
        (["rank", "--target", "nosuchsource", "--preset", "tiny"], "nosuchsource"),
        (["rank", "--target", "glyphs:greek", "--preset", "gigantic"], "presets are"),
        (["demo", "--preset", "gigantic"], "presets are"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_data_list_shows_every_source():
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0, result.output
    for name in ("fashion", "digits", "glyphs", "shapes", "textures"):
        assert name in result.output


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "transferlab.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "demo" in proc.stdout and "rank" in proc.stdout


def test_data_download_calls_the_verified_download(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr("transferlab.data.download_fashion", lambda force=False: calls.append(force) or tmp_path)
    result = runner.invoke(app, ["data", "download", "fashion"])
    assert result.exit_code == 0, result.output
    assert calls == [False] and str(tmp_path) in result.output.replace("\n", "")
    assert runner.invoke(app, ["data", "download", "digits"]).exit_code == 2


# --------------------------------------------------------------------------- rank: every score, CSV and JSON


def _rank_outputs(out):
    import json

    rows = list(csv.DictReader((out / "ranking.csv").read_text().splitlines()))
    payload = json.loads((out / "ranking.json").read_text())
    return rows, payload


def test_rank_default_scores_are_all_written_finite(demo_run, tmp_path):
    import math

    from transferlab.rank import default_scores

    out = tmp_path / "rank"
    result = runner.invoke(
        app, ["rank", "--target", "glyphs:digits", "--preset", "tiny", "--per-class", "5", "--out", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    rows, payload = _rank_outputs(out)
    members = sorted(m.name for m in load_recipe("builtin", "tiny").members)
    assert sorted(r["model"] for r in rows) == members
    assert sorted(r["model"] for r in payload["rows"]) == members
    assert payload["scores"] == list(default_scores()) and payload["pool_scores"] == []
    assert payload["target_spec"] == "glyphs:digits" and payload["per_class"] == 5
    for name in default_scores():
        for row in rows:
            assert math.isfinite(float(row[name])), (row["model"], name)
        for row in payload["rows"]:
            assert isinstance(row[name], float) and math.isfinite(row[name]), (row["model"], name)
    # The CSV and the JSON hold the same numbers, and the table shows every score column.
    by_model = {r["model"]: r for r in payload["rows"]}
    for row in rows:
        for name in default_scores():
            assert float(row[name]) == pytest.approx(by_model[row["model"]][name], rel=1e-12)
    assert "ranking.csv" in result.output and "ranking.json" in result.output


def test_rank_named_and_pool_scores_and_csv_option(demo_run, tmp_path):
    from transferlab.scores import available_pool_scores

    pool = available_pool_scores()
    out, extra = tmp_path / "named", tmp_path / "extra.csv"
    names = ["leep", "logme", *pool]
    result = runner.invoke(
        app,
        ["rank", "--target", "glyphs:digits", "--preset", "tiny", "--per-class", "5", "--scores", ",".join(names),
         "--out", str(out), "--csv", str(extra), "-q"],
    )
    assert result.exit_code == 0, result.output
    rows, payload = _rank_outputs(out)
    assert payload["scores"] == ["leep", "logme"] and payload["pool_scores"] == pool
    assert list(rows[0]) == ["model", "arch", "source", "source_accuracy", "leep", "logme", *pool]
    leep = [float(r["leep"]) for r in rows]
    assert leep == sorted(leep, reverse=True), "rows are sorted by the first score"
    assert list(csv.DictReader(extra.read_text().splitlines())) == rows


def test_rank_default_out_dir_is_named_for_the_target(demo_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, ["rank", "--target", "glyphs:digits", "--preset", "tiny", "--per-class", "5", "--scores", "logme", "-q"]
    )
    assert result.exit_code == 0, result.output
    rows, payload = _rank_outputs(tmp_path / "transferlab-out" / "rank-glyphs-digits")
    assert [r["model"] for r in rows] == [r["model"] for r in payload["rows"]]


def test_rank_unknown_score_exits_2_with_the_closest_match():
    result = runner.invoke(app, ["rank", "--target", "glyphs:digits", "--preset", "tiny", "--scores", "logme,hscroe"])
    assert result.exit_code == 2
    assert "unknown score 'hscroe'" in result.output and "Did you mean 'hscore'?" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- study commands: one table, one set of options


_STUDY_OPTIONS = ("--preset", "--out", "--executor", "--workers", "--presets", "--device", "--quiet", "-q")


@pytest.mark.parametrize("name", ["selection", "correlation", "what-transfers", "bound"])
def test_every_study_command_has_the_shared_options(name):
    result = runner.invoke(app, ["study", name, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for option in _STUDY_OPTIONS:
        assert option in result.output, (name, option)


def test_demo_command_has_its_subset_of_the_options():
    result = runner.invoke(app, ["demo", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in ("--preset", "--out", "--device", "--quiet"):
        assert option in result.output
    for option in ("--executor", "--workers", "--presets"):
        assert option not in result.output


def test_study_command_hands_its_options_to_the_runner(monkeypatch, tmp_path):
    from types import SimpleNamespace

    calls = []

    def fake_run(preset, **kwargs):
        calls.append((preset, kwargs))
        claim = {"claim": "a claim", "setting": "s", "supported": True, "numbers": "1.0"}
        return SimpleNamespace(config=SimpleNamespace(preset=preset), claims=[claim],
                               files={"report": tmp_path / "report.md"}, out_dir=tmp_path)

    monkeypatch.setattr("transferlab.studies.run_correlation", fake_run)
    presets = tmp_path / "p.toml"
    result = runner.invoke(app, ["study", "correlation", "--preset", "mine", "--presets", str(presets), "--out",
                                 str(tmp_path / "o"), "--executor", "process", "--workers", "3", "--device",
                                 "cuda", "-q"])
    assert result.exit_code == 0, result.output
    [(preset, kwargs)] = calls
    assert preset == "mine" and kwargs["path"] == presets and kwargs["out_dir"] == tmp_path / "o"
    assert (kwargs["executor"], kwargs["max_workers"], kwargs["device"], kwargs["progress"]) == ("process", 3,
                                                                                                  "cuda", False)
    assert "a claim" in result.output and "correlation study (mine)" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["study", "selection", "--presets", "no-such-file.toml", "-q"], "does not exist"),
        (["study", "what-transfers", "--preset", "huge", "-q"], "unknown what-transfers preset 'huge'"),
        (["study", "bound", "--workers", "two"], "Invalid value for '--workers'"),
    ],
)
def test_study_bad_input_exits_2(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
