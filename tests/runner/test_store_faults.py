"""The results store under faults: a damaged file, a tampered row, a lock that outlasts the timeout."""

from __future__ import annotations

import json
import re
import sqlite3
import threading

import pytest

from tests.runner import _helpers as h
from transferlab.runner import _store
from transferlab.runner._jobs import make_job, run_jobs
from transferlab.runner._store import ResultStore


def _filled(tmp_path, n=200):
    path = tmp_path / "results.sqlite"
    store = ResultStore(path)
    for i in range(5):
        store.put(f"ft:{i}", {"i": i, "pad": "x" * 100})
    con = sqlite3.connect(path)
    with con:  # many more rows in one transaction, so that the file spans many pages
        con.executemany(
            "INSERT INTO results (key, kind, value, seconds, created) VALUES (?, 'ft', '{}', 0, 0)",
            [(f"ft:{i}",) for i in range(5, n)],
        )
    con.close()
    return path


def _set_value(path, key, text):
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE results SET value = ? WHERE key = ?", (text, key))
    con.close()


def test_a_file_that_is_not_sqlite_names_the_store_and_the_fix(tmp_path):
    path = tmp_path / "results.sqlite"
    path.write_bytes(b"this is not a database " * 100)
    with pytest.raises(ValueError) as info:
        ResultStore(path)
    message = str(info.value)
    assert message == (
        f"results store {path} is damaged (file is not a database); delete or move {path} to start afresh "
        "(the finished jobs in it are lost and run again)"
    )
    assert "\n" not in message


def test_a_truncated_file_names_the_store_and_the_fix(tmp_path):
    path = _filled(tmp_path)
    data = path.read_bytes()
    for sidecar in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        sidecar.unlink(missing_ok=True)
    assert len(data) > 8192  # several pages, so cutting it in half loses some
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"results store {re.escape(str(path))} is damaged \(.*\); delete or move"):
        ResultStore(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{}", "its value '{}' is not what was written (digest mismatch)"),
        ("null", "its value 'null' is not what was written (digest mismatch)"),
        ('{"i": 3', "its value is not JSON: Expecting ',' delimiter: line 1 column 8 (char 7)"),
    ],
    ids=["empty-dict", "null", "not-json"],
)
def test_a_tampered_row_names_the_store_the_job_and_the_fix(tmp_path, text, problem):
    path = _filled(tmp_path, n=5)
    _set_value(path, "ft:3", text)
    store = ResultStore(path)
    expected = (
        f"results store {path}: the stored result of job ft:3 is corrupt ({problem}); drop the bad rows with "
        f"ResultStore('{path}').repair() (their jobs run again), or delete or move {path} to start afresh "
        "(the finished jobs in it are lost)"
    )
    for read in (lambda: store.get("ft:3"), lambda: store.get_many(["ft:1", "ft:3"])):
        with pytest.raises(ValueError) as info:
            read()
        assert str(info.value) == expected
    assert store.get_many(["ft:1", "ft:4"]) == {"ft:1": {"i": 1, "pad": "x" * 100}, "ft:4": {"i": 4, "pad": "x" * 100}}
    assert store.check() == {"ft:3": problem}
    assert store.repair() == ["ft:3"]
    assert store.check() == {} and "ft:3" not in store and len(store) == 4


@pytest.mark.parametrize("value", [{}, None, [], ""], ids=["empty-dict", "none", "empty-list", "empty-string"])
def test_empty_results_written_by_put_are_legitimate(tmp_path, value):
    store = ResultStore(tmp_path / "r.sqlite")
    store.put("k:1", value)
    assert ResultStore(store.path).get_many(["k:1"]) == {"k:1": value}
    assert store.check() == {}


def test_a_store_without_digests_is_migrated_and_its_rows_checked_as_json(tmp_path):
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    with con:
        con.execute(_store._SCHEMA)
        rows = [("a:1", "a", "{}", 0.0, 0.0), ("a:2", "a", "{oops", 0.0, 0.0)]
        con.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?)", rows)
    con.close()
    store = ResultStore(path)
    assert store.get("a:1") == {}  # no digest to compare: JSON text is taken as written
    assert store.check() == {"a:2": "its value is not JSON: Expecting property name enclosed in double quotes: "
                                    "line 1 column 2 (char 1)"}
    store.put("a:3", [1])
    _set_value(path, "a:3", "[2]")
    assert set(store.check()) == {"a:2", "a:3"}


def test_a_folder_where_the_store_should_be_is_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"results store .*r\.sqlite is a folder; it must be a SQLite file"):
        ResultStore((tmp_path / "r.sqlite").mkdir() or tmp_path / "r.sqlite")


# ---------------------------------------------------------------------------- locks


def _hold_lock(path, release: threading.Event, held: threading.Event):
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    con.execute("BEGIN EXCLUSIVE")
    held.set()
    release.wait(30)
    con.execute("ROLLBACK")
    con.close()


@pytest.fixture
def locked(tmp_path):
    """A store whose database another connection holds with an exclusive lock until ``release`` is set."""
    path = tmp_path / "results.sqlite"
    ResultStore(path).put("ft:done", {"a": 1})
    release, held = threading.Event(), threading.Event()
    thread = threading.Thread(target=_hold_lock, args=(path, release, held))
    thread.start()
    assert held.wait(10)
    yield path, release
    release.set()
    thread.join()


def test_a_write_that_outlasts_the_lock_retries_with_back_off(locked, monkeypatch):
    path, release = locked
    monkeypatch.setattr(_store, "_FIRST_BACKOFF", 0.05)
    store = ResultStore.__new__(ResultStore)  # opening would wait for the lock too
    store.path, store.timeout, store.retries = path, 0.05, 50
    pauses = []
    sleep = _store.time.sleep

    def counting_sleep(seconds):
        pauses.append(seconds)
        if len(pauses) == 3:
            release.set()  # the other process lets go after three back-offs
        sleep(seconds)

    monkeypatch.setattr(_store.time, "sleep", counting_sleep)
    store.put("ft:new", {"b": 2})
    assert pauses[:3] == [0.05, 0.1, 0.2]  # doubling pauses
    assert ResultStore(path).get_many(["ft:new"]) == {"ft:new": {"b": 2}}
    assert not store.pending_path.exists()


def test_a_result_is_never_lost_to_a_lock_it_goes_to_a_side_file_and_is_merged(locked, monkeypatch):
    path, release = locked
    monkeypatch.setattr(_store, "_FIRST_BACKOFF", 0.01)
    store = ResultStore.__new__(ResultStore)
    store.path, store.timeout, store.retries = path, 0.05, 2
    with pytest.warns(RuntimeWarning) as record:
        store.put("ft:new", {"b": 2}, seconds=1.5)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith(f"results store {path} stayed locked by another process (")
    assert message.endswith(f"the result of job ft:new went to {tmp_pending(path)}, which the next run merges")
    assert json.loads(tmp_pending(path).read_text())["key"] == "ft:new"
    # While still locked for writes, readers see the result as stored (WAL readers are not blocked).
    assert store.get_many(["ft:new", "ft:done"]) == {"ft:new": {"b": 2}, "ft:done": {"a": 1}}
    assert "ft:new" in store
    release.set()
    reopened = ResultStore(path)  # the next run merges the side file
    assert not tmp_pending(path).exists()
    assert reopened.keys() == ["ft:done", "ft:new"]
    assert reopened.timings(["ft:new"]) == {"ft:new": 1.5}


def tmp_pending(path):
    return path.with_name("results.pending.jsonl")


def test_run_jobs_does_not_rerun_a_job_whose_result_waits_in_the_side_file(tmp_path, job_log):
    path = tmp_path / "results.sqlite"
    job = make_job("seeded", f"{h.MODULE}:seeded_value", seed=5)
    expected = run_jobs([job], tmp_path / "reference.sqlite", progress=False)
    store = ResultStore(path)
    row = (job.key, "seeded", json.dumps(expected[job.key]), 0.1, 0.0, _store._digest(json.dumps(expected[job.key])))
    store._append_pending(row)
    with open(tmp_pending(path), "a") as f:
        f.write('{"key": "seeded:torn", "va')  # a line torn by a crash mid-write: skipped
    assert run_jobs([job], store, progress=False) == expected
    assert h.read_log(job_log) == ["seeded:5"]  # only the reference run computed it
    assert not tmp_pending(path).exists() and store.keys() == [job.key]


@pytest.fixture
def job_log(tmp_path, monkeypatch):
    path = tmp_path / "jobs.log"
    monkeypatch.setenv(h.LOG_ENV, str(path))
    return path
