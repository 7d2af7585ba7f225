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
    consensus = [float(r["consensus_rank"]) for r in rows]
    assert consensus == sorted(consensus), "rows are sorted by the consensus rank"
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
    # The decision: the recommendation first, grouped columns, intervals and the outputs.
    first = result.output.strip().splitlines()[0]
    assert first.startswith(("Recommended: ", "Cannot tell apart: ")), first
    for fragment in ("(prior)", "(baseline)", "(score)", "source_accuracy", "parameters", "knn", "linear_probe",
                     "P=", "95% stratified bootstrap, 100 resamples", "no interval for knn",
                     "agreement between scores (Kendall tau)"):
        assert fragment in result.output, fragment
    for name in ("ranking.csv", "ranking.json", "ranking.md", "ranking.png", "agreement.png"):
        assert (tmp_path / name).is_file(), name
    md = (tmp_path / "ranking.md").read_text()
    assert first.split(" (")[0] in md


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
    assert list(rows[0])[:8 + len(pool)] == ["model", "arch", "source", "source_accuracy", "leep", "logme", *pool,
                                              "consensus_rank", "leep_rank"]
    consensus = [float(r["consensus_rank"]) for r in rows]
    assert consensus == sorted(consensus), "rows are sorted by the consensus rank"
    for name in ("leep", "logme", *pool):  # every score column has its rank, interval and P(best)
        assert {f"{name}_rank", f"{name}_low", f"{name}_high", f"{name}_p_best"} <= set(rows[0])
        assert sum(float(r[f"{name}_p_best"]) for r in rows) == pytest.approx(1.0)
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
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)  # --device cuda is checked before the runner
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


# --------------------------------------------------------------------------- names print as they are (no markup)


def _images_with_a_bracketed_bad_file(root):
    import numpy as np
    from PIL import Image

    for c in ("ant", "bee"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * i + (c == "bee") * 100, dtype=np.uint8)).save(root / c / f"{i}.png")
    (root / "bee" / "x[bold]y.png").write_bytes(b"not an image")


def test_an_unreadable_image_with_brackets_is_named_literally(tmp_path):
    from transferlab.models import ConvNet, save_checkpoint

    _images_with_a_bracketed_bad_file(tmp_path / "data")
    model = save_checkpoint(tmp_path / "m.safetensors", ConvNet(widths=(4, 8), num_classes=3, in_channels=3))
    argv = ["rank", "--models", f"file:{model}", "--data", str(tmp_path / "data"), "--scores", "logme",
            "--out", str(tmp_path / "o"), "-q"]
    refused = runner.invoke(app, argv)
    assert refused.exit_code == 2 and "x[bold]y.png" in refused.output, refused.output
    skipped = runner.invoke(app, [*argv, "--skip-bad"])
    assert skipped.exit_code == 0, skipped.output
    assert "skipped 1 unreadable image(s): " in skipped.output and "x[bold]y.png" in skipped.output


def test_a_data_name_with_brackets_prints_literally_in_the_table_and_paths(tmp_path):
    import numpy as np

    data = tmp_path / "x[bold]y.npz"
    np.savez(data, features=np.random.default_rng(0).normal(size=(20, 3)), labels=np.arange(20) % 2)
    out = tmp_path / "o[/x]"
    result = runner.invoke(app, ["rank", "--models", "", "--data", str(data), "--scores", "logme", "--out", str(out),
                                 "-q"])
    assert result.exit_code == 0, result.output
    assert "models ranked for x[bold]y (sorted by consensus rank)" in result.output
    assert result.output.startswith("Recommended: x[bold]y ")
    assert "│ x[bold]y " in result.output  # the model column of the table
    assert f"wrote {out / 'ranking.csv'}, {out / 'ranking.json'}" in result.output.replace("\n", "")


def test_a_missing_extra_keeps_its_brackets(tmp_path, monkeypatch):
    import sys as _sys

    monkeypatch.setitem(_sys.modules, "timm", None)  # import timm raises ImportError
    _images_with_a_bracketed_bad_file(tmp_path / "data")
    result = runner.invoke(app, ["rank", "--models", "timm:resnet18", "--data", str(tmp_path / "data"), "--skip-bad",
                                 "-q"])
    assert result.exit_code == 2, result.output
    assert "pip install 'transferlab[timm]'" in result.output


# --------------------------------------------------------------------------- OSError: one line naming the cause


@pytest.mark.parametrize(
    "code, expected",
    [
        ("ENOSPC", "no space left on device while writing /w/f.csv; free some space or write elsewhere and run again"),
        ("EROFS", "read-only file system: cannot write /w/f.csv"),
        ("EACCES", "permission denied on /w/f.csv"),
        ("ENOTDIR", "/w/f.csv: a part of this path is a file, not a folder"),
        ("EISDIR", "/w/f.csv is a folder, not a file"),
        ("EEXIST", "/w/f.csv already exists"),
        ("ENOENT", "no such file or folder: /w/f.csv"),
        ("EIO", "Input/output error: /w/f.csv"),
    ],
)
def test_os_errors_are_told_by_their_errno(code, expected):
    import errno
    import os

    from transferlab.cli import _describe_os_error

    number = getattr(errno, code)
    assert _describe_os_error(OSError(number, os.strerror(number), "/w/f.csv")) == expected


def test_an_os_error_under_the_home_names_the_home(transferlab_home):
    import errno

    from transferlab.cli import _describe_os_error

    path = transferlab_home / "zoo" / "m.safetensors"
    assert _describe_os_error(PermissionError(errno.EACCES, "Permission denied", str(path))) == (
        f"permission denied on {path} (under TRANSFERLAB_HOME={transferlab_home}: "
        "point TRANSFERLAB_HOME at a writable folder)"
    )
    assert _describe_os_error(OSError(errno.ENOSPC, "No space left on device", str(path))) == (
        f"no space left on device while writing {path}; point TRANSFERLAB_HOME at another disk and run again"
    )


def test_an_os_error_with_its_own_message_is_kept():
    from transferlab.cli import _describe_os_error

    message = "no zoo checkpoint at /z; build it"
    assert _describe_os_error(FileNotFoundError(message)) == message


def test_a_programming_error_keeps_its_traceback(monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr("transferlab.zoo.zoo_members", broken)
    result = runner.invoke(app, ["zoo", "list", "builtin", "--preset", "tiny"])
    assert result.exit_code == 1
    assert isinstance(result.exception, TypeError)


# --------------------------------------------------------------------------- a read-only home serves a cached run


def _snapshot(root):
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_a_fully_cached_rank_needs_no_write_under_the_home(demo_run, tmp_path, transferlab_home, monkeypatch):
    import errno
    import os
    from pathlib import Path

    from transferlab import _atomic

    argv = ["rank", "--target", "glyphs:greek", "--preset", "tiny", "--per-class", "5", "--scores", "logme,leep", "-q"]
    first = runner.invoke(app, [*argv, "--out", str(tmp_path / "first")])
    assert first.exit_code == 0, first.output
    before = _snapshot(transferlab_home)

    home = str(transferlab_home)

    def refuse(path):  # what a read-only TRANSFERLAB_HOME answers
        if str(path).startswith(home):
            raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    atomic_path, mkdir, open_ = _atomic.atomic_path, Path.mkdir, Path.open
    monkeypatch.setattr(_atomic, "atomic_path", lambda path: refuse(path) or atomic_path(path))
    monkeypatch.setattr(Path, "mkdir", lambda self, *a, **k: refuse(self) or mkdir(self, *a, **k))
    monkeypatch.setattr(Path, "open", lambda self, mode="r", *a, **k: (
        refuse(self) if any(c in mode for c in "wax+") else None) or open_(self, mode, *a, **k))
    again = runner.invoke(app, [*argv, "--out", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    assert _snapshot(transferlab_home) == before
    assert (tmp_path / "again" / "ranking.csv").read_text() == (tmp_path / "first" / "ranking.csv").read_text()
