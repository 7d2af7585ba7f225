"""One study shape: configs derived from their fields, job keys from what each job reads, run_study's files.

The end-to-end tests run the selection benchmark on a preset of one target and
one regime of the tiny zoo (built once per session in the shared test home).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import transferlab
from transferlab.runner import Job, JobError, ResultStore, execute_job, usable_cpus
from transferlab.studies import _bound, _correlation, _demo, _selection, _what_transfers
from transferlab.studies._config import StudyConfig, UndeclaredFieldError, setting
from transferlab.studies._correlation_config import CorrelationConfig
from transferlab.studies._selection_config import SelectionConfig, TargetSpec, load_selection_config
from transferlab.studies._study import JobSpec, _resolve_executor, git_commit, run_study
from transferlab.train import TrainConfig

STUDIES = [_selection.SELECTION, _correlation.CORRELATION, _what_transfers.WHAT_TRANSFERS, _bound.BOUND, _demo.DEMO]
_JOB_SPECS = [_selection.SCORE, _selection.FINETUNE, _correlation.TOY, _correlation.PAIR, _correlation.LAYERWISE,
              _correlation.SEMANTIC, _what_transfers.PRETRAIN, _what_transfers.TARGET, _what_transfers.CHECKPOINT,
              _bound.PAIR, _demo.FINETUNE]


# --------------------------------------------------------------------------- configs follow their fields


@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.name)
def test_every_preset_round_trips_through_json(study):
    for preset in study.preset_names():
        cfg = study.load(preset)
        data = json.loads(json.dumps(cfg.to_dict()))
        assert type(cfg).from_dict(data) == cfg
        # every field is in the dict, nested dataclasses as tables of their own fields
        assert list(data) == [f.name for f in dataclasses.fields(cfg)]


def test_to_dict_is_plain_data_derived_from_the_fields():
    cfg = load_selection_config("tiny")
    data = cfg.to_dict()
    assert data["targets"][1] == {"spec": "glyphs:latin-lower", "classes": 6, "block_shuffle": 7}
    assert data["train"] == TrainConfig(epochs=2, batch_size=32).to_dict()  # steps=None left out: job keys kept
    assert data["lrs"] == [0.05, 0.01] and data["zoo_preset"] == "tiny-all"  # a list, not a tuple
    assert cfg.targets[1] == TargetSpec("glyphs:latin-lower", classes=6, block_shuffle=7)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Example(StudyConfig):
    size: int = setting(min_val=2)
    rate: float = setting(0.5, min_val=0, max_val=1, include_boundaries="right")
    names: tuple[str, ...] = setting(("a",), choices=("a", "b"), min_len=1)
    pair: tuple[str, int] = ("x", 1)
    shape: int | None = None
    train: TrainConfig = setting(default_factory=TrainConfig)


@pytest.mark.parametrize(
    "table, message",
    [
        ({}, r"missing keys \['size'\]"),
        ({"size": 3, "sise": 4}, r"unknown keys \['sise' \(did you mean 'size'\?\)\]"),
        ({"size": 2.0}, "size must be an integer >= 2; got 2.0"),
        ({"size": True}, "size must be an integer"),
        ({"size": 1}, "size must be an integer >= 2; got 1"),
        ({"size": 2, "rate": 0.0}, "rate must be a finite number"),
        ({"size": 2, "rate": float("nan")}, "rate must be a finite number"),
        ({"size": 2, "names": ["c"]}, r"names\[0\] must be one of \['a', 'b'\]; got 'c'"),
        ({"size": 2, "names": []}, "names must list at least 1 entry"),
        ({"size": 2, "names": "a"}, "names must be a list"),
        ({"size": 2, "pair": ["x"]}, "pair must be a list of 2 entries"),
        ({"size": 2, "pair": ["x", "y"]}, r"pair\[1\] must be an integer"),
        ({"size": 2, "shape": "big"}, "shape must be an integer"),
        ({"size": 2, "train": {"epoch": 3}}, "train: unknown TrainConfig keys: 'epoch' .did you mean 'epochs'"),
    ],
)
def test_tables_are_checked_by_the_field_types(table, message):
    with pytest.raises(ValueError, match=message):
        _Example.from_dict(table, where="the table")


def test_values_are_converted_by_the_field_types():
    cfg = _Example.from_dict({"size": np.int64(3), "rate": 1, "names": ["b", "a"], "pair": ["y", 2],
                              "train": {"epochs": 3}})
    assert cfg == _Example(size=3, rate=1.0, names=("b", "a"), pair=("y", 2), train=TrainConfig(epochs=3))
    assert type(cfg.size) is int and type(cfg.rate) is float and cfg.shape is None
    assert _Example(size=2).to_dict() == {"size": 2, "rate": 0.5, "names": ["a"], "pair": ["x", 1], "shape": None,
                                          "train": TrainConfig().to_dict()}


def test_preset_errors_name_the_preset_and_file(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[presets.p]\ntargets = [{ spec = "digits" }]\ntrain_per_class = 1\n')
    with pytest.raises(ValueError, match=rf"preset 'p' of {re.escape(str(path))}: train_per_class must be an integer"):
        load_selection_config("p", path=path)
    path.write_text('[presets.p]\ntargets = [{ spec = "digits", classes = 1 }]\n')
    with pytest.raises(ValueError, match=r"targets\[0\]: classes must be an integer >= 2; got 1"):
        load_selection_config("p", path=path)
    path.write_text('[presets.p]\ntargets = [{ spec = "digits" }]\npreset = "q"\n')
    with pytest.raises(ValueError, match="'preset' is the table's name"):
        load_selection_config("p", path=path)


# --------------------------------------------------------------------------- what a job reads is its key


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Pair(StudyConfig):
    a: int
    b: int


_READS_A = JobSpec("test-reads-a", "tests.studies.test_study:_reads_a_job", _Pair, reads=("a",))
_READS_B_TOO = JobSpec("test-reads-b", "tests.studies.test_study:_reads_b_job", _Pair, reads=("a",))


def _reads_a_job(*, config: dict, offset: int) -> int:
    return _READS_A.view(config).a + offset


def _reads_b_job(*, config: dict, offset: int) -> int:
    cfg = _READS_B_TOO.view(config)
    return cfg.a + cfg.b + offset  # b is not declared


def test_a_job_reading_an_undeclared_field_fails_loudly():
    assert execute_job(_READS_A.make(_Pair(a=2, b=5), offset=1)).value == 3
    with pytest.raises(JobError, match=r"UndeclaredFieldError: this job reads _Pair\.b but declares only \['a'\]"):
        execute_job(_READS_B_TOO.make(_Pair(a=2, b=5), offset=1))
    view = _READS_A.view({"a": 2})
    with pytest.raises(UndeclaredFieldError):
        view.b
    with pytest.raises(AttributeError, match="no field 'c'"):
        view.c
    with pytest.raises(ValueError, match="exactly the fields"):
        _READS_A.view({"a": 2, "b": 5})
    with pytest.raises(ValueError, match="does not have"):
        JobSpec("bad", "json:dumps", _Pair, reads=("c",))


def test_a_key_holds_only_the_fields_its_job_reads():
    key = _READS_A.make(_Pair(a=2, b=5), offset=1).key
    assert _READS_A.make(_Pair(a=2, b=6), offset=1).key == key
    assert _READS_A.make(_Pair(a=3, b=5), offset=1).key != key
    assert _READS_A.make(_Pair(a=2, b=5), offset=2).key != key


@pytest.mark.parametrize("spec", _JOB_SPECS, ids=lambda s: s.kind)
def test_no_job_reads_the_preset_name(spec):
    # The name of a preset computes nothing: two presets with the same settings share every job.
    assert "preset" not in spec.reads and len(set(spec.reads)) == len(spec.reads)


class _Zoo(list):
    """What selection_jobs reads of a zoo: its members (name, digest) and the recipe's digest."""

    recipe = SimpleNamespace(digest="zoo")


def _selection_keys(**changes) -> tuple[list[str], list[str]]:
    cfg = dataclasses.replace(load_selection_config("tiny"), **changes)
    zoo = _Zoo(SimpleNamespace(name=f"m{i}", metadata={"member_digest": f"d{i}"}) for i in range(3))
    scoring, tuning = _selection.selection_jobs(cfg, zoo)
    return [j.key for j in scoring], [j.key for j in tuning]


def test_selection_keys_hold_only_what_each_job_reads():
    scoring, tuning = _selection_keys()
    tiny = load_selection_config("tiny")
    assert len(scoring) == len(tiny.targets) * len(tiny.regimes) and len(tuning) == 3 * len(scoring)
    # a fine-tuning job does not change when the list of scores changes ...
    new_scoring, new_tuning = _selection_keys(scores=("logme",))
    assert new_tuning == tuning and not set(new_scoring) & set(scoring)
    # ... nor a scoring job when the LR grid (or the training schedule) changes
    for change in ({"lrs": (0.1,)}, {"train": TrainConfig(epochs=9)}, {"val_fraction": 0.3}):
        new_scoring, new_tuning = _selection_keys(**change)
        assert new_scoring == scoring and not set(new_tuning) & set(tuning), change
    # what both read changes both
    new_scoring, new_tuning = _selection_keys(seed=1)
    assert not set(new_scoring) & set(scoring) and not set(new_tuning) & set(tuning)
    # and the preset's name changes neither
    assert _selection_keys(preset="renamed") == (scoring, tuning)


def test_correlation_parts_read_their_own_tables():
    cfg = _correlation.CORRELATION.load("tiny")
    keys = {part: [j.key for j in jobs] for part, jobs in _correlation.correlation_jobs(cfg).items()}
    toy = dataclasses.replace(cfg.toy, steps=cfg.toy.steps + 1)
    changed = {part: [j.key for j in jobs]
               for part, jobs in _correlation.correlation_jobs(dataclasses.replace(cfg, toy=toy)).items()}
    assert changed["toy"] != keys["toy"]
    assert all(changed[part] == keys[part] for part in ("pairs", "layerwise", "semantic"))


# --------------------------------------------------------------------------- workers need only the payload


def _one_target_preset(lrs: str = "[0.05]", scores: str = '["logme", "leep"]') -> str:
    return textwrap.dedent(f"""
        [presets.one]
        zoo_preset = "tiny"
        targets = [{{ spec = "glyphs:greek-upper", classes = 4 }}]
        regimes = ["5-shot"]
        train_per_class = 8
        test_per_class = 4
        score_per_class = 8
        lrs = {lrs}
        train = {{ epochs = 1, batch_size = 16 }}
        scores = {scores}
        """)


def _run_in_fresh_process(job: Job, env: dict) -> dict:
    code = ("import json, sys; from transferlab.runner import Job, execute_job; "
            "job = Job(**json.loads(sys.argv[1])); print(execute_job(job).payload)")
    spec = json.dumps({"key": job.key, "func": job.func, "kwargs": job.kwargs})
    done = subprocess.run([sys.executable, "-c", code, spec], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env}, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_job_runs_from_its_payload_in_a_fresh_process_without_the_preset_file(tmp_path):
    # The bug this guards against: a worker rebuilt its config from the preset's name and file.
    path = tmp_path / "presets.toml"
    path.write_text(
        (Path(transferlab.__file__).parent / "studies" / "presets" / "correlation.toml").read_text()
        .replace("[presets.tiny]", "[presets.mine]")
        .replace("n_train = 400, n_test = 2000, steps = 300", "n_train = 60, n_test = 200, steps = 20")
    )
    cfg = _correlation.CORRELATION.load("mine", path=path)
    job = _correlation.correlation_jobs(cfg)["toy"][0]
    here = execute_job(job).value
    assert {r["n_test"] for r in here["rows"]} == {200}  # the edited preset, not the built-in tiny one
    path.unlink()
    assert _run_in_fresh_process(job, {}) == here


@pytest.fixture(scope="module")
def edited_runs(tmp_path_factory, transferlab_home):
    """The one-target preset run three times: as written, with fewer scores, with another LR grid.

    Returns each run's result, the new keys of each kind after each run, the store and the preset file.
    """
    folder = tmp_path_factory.mktemp("edited")
    path = folder / "presets.toml"
    store = ResultStore(transferlab_home / "results.sqlite")
    runs = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERLAB_HOME", str(transferlab_home))
        for i, (lrs, scores) in enumerate([("[0.05]", '["logme", "leep"]'), ("[0.05]", '["logme"]'),
                                           ("[0.05, 0.01]", '["logme"]')]):
            path.write_text(_one_target_preset(lrs, scores))
            before = {kind: set(store.keys(kind)) for kind in ("score", "finetune")}
            result = _selection.run_selection("one", path=path, out_dir=folder / f"out{i}", progress=False)
            new = {kind: set(store.keys(kind)) - before[kind] for kind in before}
            runs.append((result, new))
    return runs, store, path


def test_editing_one_value_reruns_only_the_jobs_that_read_it(edited_runs):
    runs, _, _ = edited_runs
    (first, new0), (fewer_scores, new1), (more_lrs, new2) = runs
    n_members = len({r["model"] for r in first.finetune})
    assert n_members >= 2 and len(first.scores) == n_members
    assert len(new0["finetune"]) in (0, n_members)  # 0 when an earlier test ran the same jobs
    # fewer scores: one new scoring job, no fine-tuning; the accuracies are the stored ones
    assert len(new1["score"]) == 1 and new1["finetune"] == set()
    assert fewer_scores.finetune == first.finetune
    assert [r["logme"] for r in fewer_scores.scores] == [r["logme"] for r in first.scores]
    # another LR grid: every member is fine-tuned again, nothing is scored again
    assert new2["score"] == set() and len(new2["finetune"]) == n_members
    assert more_lrs.scores == fewer_scores.scores


def test_a_fine_tuning_job_reproduces_its_result_in_a_fresh_process(edited_runs, transferlab_home):
    runs, store, path = edited_runs
    result = runs[-1][0]
    cfg = result.config
    member = result.finetune[0]["model"]
    job = next(j for j in _selection.selection_jobs(cfg, _built_zoo(cfg))[1] if j.kwargs["member"] == member)
    stored = store.get(job.key)
    assert stored is not None
    path.unlink(missing_ok=True)  # the worker needs no preset file
    fresh = _run_in_fresh_process(job, {"TRANSFERLAB_HOME": str(transferlab_home)})
    for key in ("best_test_accuracy", "best_lr", "val_selected_test_accuracy", "val_selected_lr"):
        assert fresh[key] == stored[key], key
    assert [r["test_accuracy"] for r in fresh["per_lr"]] == [r["test_accuracy"] for r in stored["per_lr"]]


def _built_zoo(cfg):
    from transferlab.zoo import build_zoo

    return build_zoo(cfg.zoo, cfg.zoo_preset, progress=False)


# --------------------------------------------------------------------------- run_study's files


def test_run_study_writes_the_resolved_config_and_provenance(edited_runs):
    runs, _, _ = edited_runs
    result = runs[0][0]
    config = json.loads((result.out_dir / "config.json").read_text())
    assert config == result.config.to_dict() and config["preset"] == "one"
    assert SelectionConfig.from_dict(config) == result.config
    prov = json.loads((result.out_dir / "provenance.json").read_text())
    # "auto": the selection benchmark's single-threaded jobs go to one worker process per CPU
    expected = "process" if usable_cpus() > 1 else "inprocess"
    assert prov["study"] == "selection" and prov["preset"] == "one" and prov["executor"] == expected
    assert prov["transferlab"] == transferlab.__version__ and prov["numpy"] == np.__version__
    import torch

    assert prov["torch"] == torch.__version__
    assert prov["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", prov["git_commit"])
    assert prov["wall_seconds"] > 0 and prov["jobs"] == len(result.finetune) + 1
    assert Path(prov["presets_file"]).name == "presets.toml"


@pytest.mark.parametrize(
    ("study", "executor", "workers", "device", "expected"),
    [
        (_selection.SELECTION, "auto", 2, "cpu", ("process", 2)),  # single-threaded jobs, side by side
        (_selection.SELECTION, "auto", 1, "cpu", ("inprocess", None)),  # one CPU: no pool to pay for
        (_selection.SELECTION, "auto", 4, "cuda", ("inprocess", None)),  # one GPU: jobs queue on it anyway
        (_correlation.CORRELATION, "auto", 4, "cpu", ("inprocess", None)),  # its jobs use every thread
        (_selection.SELECTION, "inprocess", None, "cpu", ("inprocess", None)),  # asked for: kept
        (_selection.SELECTION, "process", 3, "cpu", ("process", 3)),
    ],
)
def test_the_auto_executor_runs_single_threaded_jobs_side_by_side(study, executor, workers, device, expected):
    assert _resolve_executor(study, executor, workers, device) == expected


@pytest.mark.parametrize("workers", [0, -2, 1.5, True, "2"])
def test_auto_refuses_a_bad_worker_count_rather_than_ignoring_it(workers):
    for study in (_selection.SELECTION, _correlation.CORRELATION):
        with pytest.raises(ValueError, match="max_workers"):
            _resolve_executor(study, "auto", workers, "cpu")


def test_auto_uses_every_usable_cpu_by_default():
    assert _resolve_executor(_selection.SELECTION, "auto", None, "cpu")[1] in (None, usable_cpus())


def test_selection_jobs_run_on_one_thread_and_say_so_in_their_key(edited_runs):
    runs, _, _ = edited_runs
    cfg = runs[-1][0].config
    zoo = _built_zoo(cfg)
    scoring, tuning = _selection.selection_jobs(cfg, zoo)
    jobs = [*scoring, *tuning, *_selection.truth_jobs(cfg, zoo),
            *(j for v in _selection.setup_jobs(cfg, zoo).values() for j in v)]
    assert jobs and all(job.kwargs["threads"] == 1 for job in jobs)
    # the thread count is part of the key: results made on another count are not reused
    other = dict(tuning[0].kwargs, threads=2)
    assert _selection.FINETUNE.make(cfg, **{k: v for k, v in other.items() if k != "config"}).key != tuning[0].key


def test_git_commit_is_none_outside_a_checkout(tmp_path):
    assert git_commit(tmp_path) is None
    assert git_commit(tmp_path / "missing") is None


def test_unknown_preset_names_the_study_and_its_presets():
    with pytest.raises(ValueError, match=r"unknown demo preset 'huge'; presets are \['small', 'tiny'\]"):
        run_study(_demo.DEMO, "huge")
    with pytest.raises(ValueError, match="has no preset files"):
        _demo.DEMO.load("tiny", path="x.toml")


def test_runners_keep_their_signatures():
    import inspect

    expected = ["preset", "path", "out_dir", "executor", "max_workers", "device", "progress", "console"]
    for run in (_selection.run_selection, _correlation.run_correlation, _what_transfers.run_what_transfers,
                _bound.run_bound):
        signature = inspect.signature(run)
        assert list(signature.parameters) == expected, run.__name__
        assert signature.parameters["preset"].default == "small"
        assert run.__module__.startswith("transferlab.studies._") and "Parameters" in run.__doc__
    assert list(inspect.signature(_demo.run_demo).parameters) == ["preset", "out_dir", "device", "progress",
                                                                   "console"]
    with pytest.raises(TypeError):
        _selection.run_selection("tiny", "positional-path")


def test_correlation_config_keeps_betas_sorted_and_unique():
    cfg = _correlation.CORRELATION.load("tiny")
    again = dataclasses.replace(cfg, betas=(1.0, 0.0, 1.0))
    assert again.betas == (0.0, 1.0)
    with pytest.raises(ValueError, match="at least two task correlations"):
        dataclasses.replace(cfg, betas=(0.5, 0.5))
    with pytest.raises(ValueError, match=r"betas\[0\] must be a finite number"):
        CorrelationConfig.from_dict({**cfg.to_dict(), "betas": [1.5, 0.0]})


def test_config_docstring_examples_hold():
    import doctest

    from transferlab.studies import _config

    assert doctest.testmod(_config, raise_on_error=False).failed == 0
