"""`transferlab rank --target SPEC`: the spec's options reach the target; a conflict with a flag is an error."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.data._glyphs import load_glyphs
from transferlab.data._procedural import load_shapes

runner = CliRunner()


class _Captured(Exception):
    """Raised by the stand-in for rank_zoo, carrying the target task the command built."""

    def __init__(self, task):
        super().__init__("captured")
        self.task = task


@pytest.fixture
def captured_target(monkeypatch):
    """Run ``rank --target ...`` up to the ranking, without a zoo, and return the target task it built."""
    import transferlab.rank
    import transferlab.zoo

    def fake_rank_zoo(built, task, *args, **kwargs):
        raise _Captured(task)

    monkeypatch.setattr(transferlab.zoo, "build_zoo", lambda *args, **kwargs: None)
    monkeypatch.setattr(transferlab.rank, "rank_zoo", fake_rank_zoo)

    def run(*argv):
        result = runner.invoke(app, ["rank", "--preset", "tiny", "-q", *argv])
        assert isinstance(result.exception, _Captured), result.output
        return result.exception.task

    return run


def test_spec_seed_reaches_the_target(captured_target):
    task = captured_target("--target", "shapes,seed=3", "--per-class", "5")
    direct = load_shapes(n_train_per_class=5, seed=3)
    np.testing.assert_array_equal(task.x_train, direct.x_train)
    assert task.recipe["seed"] == 3 and task.name == "shapes,n_train_per_class=5,seed=3"


def test_spec_size_is_used_without_per_class(captured_target):
    task = captured_target("--target", "glyphs:greek,n_train_per_class=5")
    np.testing.assert_array_equal(task.x_train, load_glyphs("greek", n_train_per_class=5).x_train)
    np.testing.assert_array_equal(np.bincount(task.y_train), np.full(task.n_classes, 5))


def test_per_class_defaults_to_100(captured_target):
    task = captured_target("--target", "shapes")
    np.testing.assert_array_equal(np.bincount(task.y_train), np.full(task.n_classes, 100))


def test_per_class_equal_to_the_spec_is_accepted(captured_target):
    task = captured_target("--target", "shapes,n_train_per_class=6", "--per-class", "6")
    np.testing.assert_array_equal(np.bincount(task.y_train), np.full(task.n_classes, 6))


def _refuse_to_build(monkeypatch):
    import transferlab.zoo

    def refuse(*args, **kwargs):
        raise AssertionError("the zoo was built before the target spec was checked")

    monkeypatch.setattr(transferlab.zoo, "build_zoo", refuse)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--target", "glyphs:greek,n_train_per_class=5", "--per-class", "50"],
         "--per-class 50 conflicts with n_train_per_class=5 in --target 'glyphs:greek,n_train_per_class=5'; "
         "give the size once: drop --per-class, or drop n_train_per_class from the spec"),
        (["--target", "shapes,seed=abc"],
         "invalid option seed=abc in spec 'shapes,seed=abc': seed must be an integer >= 0; got 'abc'"),
        (["--target", "shapes,n_train_per_class=1"],
         "n_train_per_class in --target 'shapes,n_train_per_class=1' must be an integer >= 2; got 1"),
    ],
)
def test_a_bad_target_spec_exits_2_before_the_zoo_is_built(argv, message, monkeypatch):
    _refuse_to_build(monkeypatch)
    result = runner.invoke(app, ["rank", "--preset", "tiny", "-q", *argv])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].endswith(message), result.output


def test_spec_seed_changes_the_scores_end_to_end(tmp_path):
    """With the tiny zoo: 'shapes,seed=3' is another target than 'shapes', so the scores differ."""
    payloads = {}
    for target in ("shapes", "shapes,seed=3"):
        out = tmp_path / target.replace(",", "-").replace("=", "")
        result = runner.invoke(app, ["rank", "--target", target, "--preset", "tiny", "--per-class", "5",
                                     "--scores", "logme", "--out", str(out), "-q"])
        assert result.exit_code == 0, result.output
        payloads[target] = json.loads((out / "ranking.json").read_text())
    plain, seeded = payloads["shapes"], payloads["shapes,seed=3"]
    assert plain["target"] == "shapes,n_train_per_class=5"
    assert seeded["target"] == "shapes,n_train_per_class=5,seed=3"
    assert seeded["per_class"] == 5 and seeded["target_spec"] == "shapes,seed=3"
    by_model = {row["model"]: row["logme"] for row in plain["rows"]}
    assert sorted(by_model) == sorted(row["model"] for row in seeded["rows"])
    assert all(row["logme"] != by_model[row["model"]] for row in seeded["rows"])
