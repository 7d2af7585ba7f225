"""Jobs and the driver: deterministic keys, nothing run twice, errors that name the job."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from tests.runner import _helpers as h
from transferlab.runner import _store
from transferlab.runner._executors import InProcessExecutor, get_executor
from transferlab.runner._jobs import Job, JobError, JobResult, execute_job, make_job, resolve_function, run_jobs
from transferlab.runner._store import ResultStore, job_key

SEEDED = f"{h.MODULE}:seeded_value"
MAYBE_FAIL = f"{h.MODULE}:maybe_fail"

# The first three standard normals of np.random.default_rng(0) (NumPy's documented
# PCG64 + ziggurat stream; printed by numpy 2.x, stable since numpy 1.17).
RNG0 = [0.1257302210933933, -0.1321048632913019, 0.6404226504432821]


@pytest.fixture
def job_log(tmp_path, monkeypatch):
    path = tmp_path / "ran.log"
    monkeypatch.setenv(h.LOG_ENV, str(path))
    monkeypatch.delenv(h.FAIL_ENV, raising=False)
    return path


# ---------------------------------------------------------------------------- keys and jobs


def test_make_job_key_is_job_key_of_kind_func_and_kwargs():
    job = make_job("seeded", SEEDED, seed=3, n=2)
    assert job.key == job_key("seeded", func=SEEDED, seed=3, n=2)
    assert job.key == make_job("seeded", SEEDED, n=2, seed=3).key  # order of kwargs is irrelevant
    assert job.key.startswith("seeded:")
    assert make_job("seeded", SEEDED, seed=4, n=2).key != job.key
    assert make_job("other", SEEDED, seed=3, n=2).key != job.key
    assert make_job("seeded", MAYBE_FAIL, seed=3, n=2).key != job.key


def test_resources_are_not_part_of_the_key():
    plain = make_job("seeded", SEEDED, seed=1)
    gpu = make_job("seeded", SEEDED, resources={"num_gpus": 1}, seed=1)
    assert plain.key == gpu.key
    assert gpu.resources == {"num_gpus": 1} and plain.resources == {}


def test_make_job_takes_a_module_level_function():
    assert make_job("seeded", h.seeded_value, seed=1) == make_job("seeded", SEEDED, seed=1)
    with pytest.raises(ValueError, match="cannot be imported by a worker"):
        make_job("x", lambda: 1)


def test_kwargs_are_a_private_json_copy():
    values = [1, 2]
    job = make_job("seeded", SEEDED, seed=1, extra=values, pair=(1, 2))
    values.append(3)
    assert job.kwargs == {"seed": 1, "extra": [1, 2], "pair": [1, 2]}
    assert hash(job) == hash(make_job("seeded", SEEDED, seed=1, extra=[1, 2], pair=[1, 2]))


@pytest.mark.parametrize("bad", [object(), np.arange(3), {1, 2}, b"bytes"])
def test_non_json_kwargs_are_rejected(bad):
    with pytest.raises(ValueError, match="JSON-serialisable"):
        make_job("seeded", SEEDED, seed=bad)
    with pytest.raises(ValueError, match="kwargs of job k:1 must be JSON-serialisable"):
        Job("k:1", SEEDED, {"seed": bad})


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("", SEEDED), {}, "kind must be a non-empty string"),
        (("a:b", SEEDED), {}, "without ':'"),
        (("x", "no_colon"), {}, "import path 'package.module:function'"),
        (("x", "mod:"), {}, "import path"),
        (("x", SEEDED), {"resources": {"num_gpus": -1}}, "num_gpus must be a finite number >= 0; got -1"),
        (("x", SEEDED), {"resources": {"GPU": 1}}, "write num_gpu"),
        (("x", SEEDED), {"resources": {"num_cpus": True}}, "num_cpus must be a finite number >= 0; got True"),
        (("x", SEEDED), {"resources": {"num_cpus": float("nan")}}, "num_cpus must be a finite number >= 0; got nan"),
        (("x", SEEDED), {"func": "a:b"}, "must not contain 'func'"),
    ],
)
def test_invalid_jobs_raise_value_errors_that_say_what_arrived(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_job(*args, **kwargs)


def test_resolve_function_imports_by_path():
    assert resolve_function("math:hypot")(3.0, 4.0) == 5.0
    assert resolve_function("collections:OrderedDict.fromkeys")("ab") == {"a": None, "b": None}
    with pytest.raises(ModuleNotFoundError):
        resolve_function("transferlab.no_such_module:f")


def test_execute_job_returns_json_and_time():
    result = execute_job(make_job("seeded", SEEDED, seed=0))
    assert isinstance(result, JobResult) and result.seconds >= 0
    # np.int64 and np.float64 in the result arrive as plain JSON numbers.
    assert json.loads(result.payload) == result.value
    assert result.value["n"] == 3 and result.value["values"] == RNG0
    np.testing.assert_allclose(result.value["sum"], sum(RNG0), rtol=1e-15)


def test_a_non_json_result_is_a_job_error_naming_the_key():
    job = make_job("array", f"{h.MODULE}:returns_array")
    with pytest.raises(JobError, match=rf"{job.key}.*JSON-serialisable.*ndarray"):
        execute_job(job)


def test_job_error_pickles_with_its_key():
    error = JobError("k:1", "m:f", "ValueError: bad", "Traceback ...")
    again = pickle.loads(pickle.dumps(error))
    assert (again.key, again.func, str(again)) == ("k:1", "m:f", str(error))
    assert "job k:1 (m:f) failed: ValueError: bad" in str(again)


# ---------------------------------------------------------------------------- run_jobs


@pytest.mark.parametrize("executor", ["inprocess", "process"])
def test_cached_jobs_are_not_run_again(tmp_path, job_log, executor):
    jobs = [make_job("seeded", SEEDED, seed=s) for s in range(4)]
    store = ResultStore(tmp_path / "r.sqlite")
    first = run_jobs(
        jobs[:2], store, executor=executor, max_workers=2 if executor == "process" else None, progress=False
    )
    assert sorted(h.read_log(job_log)) == ["seeded:0", "seeded:1"]

    second = run_jobs(jobs, tmp_path / "r.sqlite", executor=executor, progress=False)  # reopened by path
    assert sorted(h.read_log(job_log)) == ["seeded:0", "seeded:1", "seeded:2", "seeded:3"]
    assert {k: second[k] for k in first} == first
    assert list(second) == [j.key for j in jobs]  # input order
    assert second[jobs[0].key]["values"] == RNG0

    third = run_jobs(jobs, store, executor=executor, progress=False)
    assert third == second
    assert len(h.read_log(job_log)) == 4  # nothing ran the third time
    assert sorted(store.keys()) == sorted(j.key for j in jobs)
    assert all(t >= 0 for t in store.timings().values())


def test_duplicate_keys_run_once(tmp_path, job_log):
    job = make_job("seeded", SEEDED, seed=5)
    results = run_jobs([job, make_job("seeded", SEEDED, seed=5), job], tmp_path / "r.sqlite", progress=False)
    assert list(results) == [job.key]
    assert h.read_log(job_log) == ["seeded:5"]


def test_two_different_jobs_under_one_key_are_refused(tmp_path):
    a, b = Job("k:1", SEEDED, {"seed": 1}), Job("k:1", SEEDED, {"seed": 2})
    with pytest.raises(ValueError, match="two different jobs with key 'k:1'"):
        run_jobs([a, b], tmp_path / "r.sqlite", progress=False)


@pytest.mark.parametrize("executor", ["inprocess", "process"])
def test_a_failing_job_names_its_key_and_finished_results_stay(tmp_path, job_log, monkeypatch, executor):
    jobs = [make_job("maybe", MAYBE_FAIL, i=i) for i in range(4)]
    store = ResultStore(tmp_path / "r.sqlite")
    monkeypatch.setenv(h.FAIL_ENV, "2")
    kw = {"max_workers": 1} if executor == "process" else {}  # one worker: jobs finish in order
    with pytest.raises(
        JobError, match=rf"job {jobs[2].key} \({MAYBE_FAIL}\) failed: ValueError: job 2 was told to fail"
    ):
        run_jobs(jobs, store, executor=executor, progress=False, **kw)
    stored = store.get_many(j.key for j in jobs)
    assert {jobs[0].key: 0, jobs[1].key: 1}.items() <= stored.items() and jobs[2].key not in stored
    if executor == "inprocess":  # sequential: nothing after the failure ran
        assert len(stored) == 2 and sorted(h.read_log(job_log)) == ["maybe_fail:0", "maybe_fail:1", "maybe_fail:2"]

    monkeypatch.delenv(h.FAIL_ENV)
    job_log.unlink()
    results = run_jobs(jobs, store, executor=executor, progress=False, **kw)
    assert sorted(h.read_log(job_log)) == sorted(f"maybe_fail:{j.kwargs['i']}" for j in jobs if j.key not in stored)
    assert [results[j.key] for j in jobs] == [0, 1, 4, 9]


def test_a_job_returning_none_is_stored_and_not_run_again(tmp_path, job_log):
    job = make_job("none", f"{h.MODULE}:returns_none")
    store = ResultStore(tmp_path / "r.sqlite")
    assert run_jobs([job], store, progress=False) == {job.key: None}
    assert run_jobs([job], store, progress=False) == {job.key: None}
    assert h.read_log(job_log) == ["none"]
    assert job.key in store and len(store) == 1


def test_on_result_sees_each_new_result_after_it_is_stored(tmp_path):
    jobs = [make_job("maybe", MAYBE_FAIL, i=i) for i in range(3)]
    store = ResultStore(tmp_path / "r.sqlite")
    run_jobs(jobs[:1], store, progress=False)
    seen = []

    def on_result(job, value):
        assert store.get(job.key) == value  # stored before the callback
        seen.append((job.kwargs["i"], value))

    run_jobs(jobs, store, progress=True, on_result=on_result)
    assert seen == [(1, 1), (2, 4)]


class _ListExecutor(InProcessExecutor):
    """An executor that forgets the last job: the driver must notice."""

    def map_unordered(self, jobs):
        yield from ((job, execute_job(job)) for job in list(jobs)[:-1])


def test_an_executor_that_loses_a_job_is_an_error(tmp_path):
    jobs = [make_job("maybe", MAYBE_FAIL, i=i) for i in range(2)]
    with pytest.raises(RuntimeError, match="without the results of 1 jobs"):
        run_jobs(jobs, tmp_path / "r.sqlite", executor=_ListExecutor(), progress=False)


@pytest.mark.parametrize(
    ("executor", "max_workers", "match"),
    [
        ("procces", None, r"executor must be one of \['inprocess', 'process', 'ray'\].*did you mean 'process'"),
        ("inprocess", 2, "max_workers must be None or 1 for the inprocess executor"),
        ("process", 0, "max_workers must be a positive integer or None; got 0"),
        (InProcessExecutor(), 2, "max_workers must be None when executor is an instance"),
    ],
)
def test_bad_executor_arguments(tmp_path, executor, max_workers, match):
    with pytest.raises(ValueError, match=match):
        run_jobs(
            [make_job("seeded", SEEDED, seed=1)], tmp_path / "r.sqlite", executor=executor, max_workers=max_workers
        )


def test_bad_jobs_and_store_arguments(tmp_path):
    job = make_job("seeded", SEEDED, seed=1)
    with pytest.raises(ValueError, match="iterable of Job; got a single Job"):
        run_jobs(job, tmp_path / "r.sqlite")
    with pytest.raises(ValueError, match="item 1 is dict"):
        run_jobs([job, {"key": "x"}], tmp_path / "r.sqlite")
    with pytest.raises(ValueError, match="store must be a ResultStore or a path; got dict"):
        run_jobs([job], {})


def test_get_executor_passes_instances_through():
    executor = InProcessExecutor()
    assert get_executor(executor) is executor
    assert get_executor("process", 3).max_workers == 3


# ---------------------------------------------------------------------------- store additions used here


def test_store_get_many_and_timings(tmp_path, monkeypatch):
    monkeypatch.setattr(_store, "_CHUNK", 3)  # several chunks of the IN (...) query with few keys
    store = ResultStore(tmp_path / "r.sqlite")
    keys = [f"k:{i}" for i in range(11)]
    for i, key in enumerate(keys[:7]):
        store.put(key, {"i": i}, seconds=i / 10)
    found = store.get_many(keys + keys[:2])
    assert found == {f"k:{i}": {"i": i} for i in range(7)}
    assert store.timings(["k:3", "k:10"]) == {"k:3": 0.3}
    assert store.timings(keys) == {f"k:{i}": i / 10 for i in range(7)}
    assert len(store) == 7 == len(store.timings())
    with pytest.raises(ValueError, match="value for key 'k:x' must be JSON-serialisable; got ndarray"):
        store.put("k:x", np.zeros(2))
