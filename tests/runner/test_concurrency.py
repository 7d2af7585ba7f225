"""Two runs on one store do each job once; a killed driver's process workers die with it.

Both tests start drivers as subprocesses (``python -m tests.runner._helpers``).
The lease test runs the 12 gated jobs of the kill test (see ``test_resume``):
jobs from ``GATE_FROM`` on wait for a gate file, so the first run is provably
busy with claimed jobs while the second one starts; the second run logs each
claim, so the test knows when it has looked at the store, with no fixed sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runner import _helpers as h
from transferlab.runner._executors import _watch_parent
from transferlab.runner._jobs import run_jobs
from transferlab.runner._store import LeaseOwner, ResultStore, _pid_alive

TIMEOUT = 120  # seconds; generous for a loaded 2-core machine, never reached when all is well


def _poll(condition, what: str, *procs: subprocess.Popen, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"a driver exited with {proc.returncode} before {what}:\n{proc.stderr.read().decode()}")
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def _driver(args: list[str], env_extra: dict) -> subprocess.Popen:
    env = {**os.environ, **env_extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(h.ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.runner._helpers", *args],
        cwd=h.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so leftovers can be cleaned up below
    )


def _cleanup(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.stdout.close()
        proc.stderr.close()


def _claims(path: Path) -> list[int]:
    return [int(line.split(":")[1]) for line in h.read_log(path)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    path = tmp_path_factory.mktemp("uninterrupted") / "r.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(h.GATE_ENV, raising=False)
        mp.delenv(h.LOG_ENV, raising=False)
        return run_jobs(h.kill_test_jobs(), path, progress=False)


def test_a_second_run_waits_for_the_jobs_a_live_run_holds(tmp_path, uninterrupted):
    store_path = tmp_path / "results.sqlite"
    store = ResultStore(store_path)
    gate = tmp_path / "gate"
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "claims-b")}
    a = _driver([str(store_path), "inprocess"], {h.LOG_ENV: str(logs["a"]), h.GATE_ENV: str(gate)})
    b = None
    try:
        _poll(lambda: len(store) >= h.GATE_FROM and len(h.read_log(logs["a"])) > h.GATE_FROM, "run A at its gate", a)
        b = _driver(
            [str(store_path), "inprocess"],
            {h.LOG_ENV: str(logs["b"]), h.GATE_ENV: str(gate), h.CLAIM_LOG_ENV: str(logs["claims-b"])},
        )
        _poll(lambda: len(_claims(logs["claims-b"])) >= 2, "run B to look twice", a, b)
        gate.touch()  # A may finish now
        out_a, err_a = a.communicate(timeout=TIMEOUT)
        out_b, err_b = b.communicate(timeout=TIMEOUT)
    finally:
        _cleanup(*(p for p in (a, b) if p is not None))
    assert a.returncode == 0, err_a.decode()
    assert b.returncode == 0, err_b.decode()
    assert sorted(h.read_log(logs["a"]), key=int) == [str(i) for i in range(h.N_KILL_JOBS)]  # each job once, in A
    assert h.read_log(logs["b"]) == []  # B ran none of them
    assert set(_claims(logs["claims-b"])) == {0}  # every claim of B found them all held or done
    assert json.loads(out_a) == json.loads(out_b) == json.loads(json.dumps(uninterrupted))
    assert store.keys() == sorted(uninterrupted)


def test_a_dead_runs_leases_are_taken_over(tmp_path, uninterrupted):
    store_path = tmp_path / "results.sqlite"
    store = ResultStore(store_path)
    gate = tmp_path / "gate"
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "claims-b")}
    a = _driver([str(store_path), "inprocess"], {h.LOG_ENV: str(logs["a"]), h.GATE_ENV: str(gate)})
    b = None
    try:
        _poll(lambda: len(store) >= h.GATE_FROM and len(h.read_log(logs["a"])) > h.GATE_FROM, "run A at its gate", a)
        b = _driver(
            [str(store_path), "inprocess"],
            {h.LOG_ENV: str(logs["b"]), h.GATE_ENV: str(gate), h.CLAIM_LOG_ENV: str(logs["claims-b"])},
        )
        _poll(lambda: len(_claims(logs["claims-b"])) >= 1, "run B to look", a, b)
        os.kill(a.pid, signal.SIGKILL)
        a.wait(timeout=TIMEOUT)
        pending = h.N_KILL_JOBS - h.GATE_FROM
        # well before the lease expires (60 s): the dead pid alone frees the jobs
        _poll(lambda: pending in _claims(logs["claims-b"]), "run B to take over A's jobs", b, timeout=30)
        gate.touch()
        out_b, err_b = b.communicate(timeout=TIMEOUT)
    finally:
        _cleanup(*(p for p in (a, b) if p is not None))
    assert b.returncode == 0, err_b.decode()
    assert h.read_log(logs["a"]) == [str(i) for i in range(h.GATE_FROM + 1)]  # A died in job GATE_FROM
    assert sorted(h.read_log(logs["b"]), key=int) == [str(i) for i in range(h.GATE_FROM, h.N_KILL_JOBS)]
    assert json.loads(out_b) == json.loads(json.dumps(uninterrupted))
    assert store.keys() == sorted(uninterrupted)


# ---------------------------------------------------------------------------- orphans


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to list a process's children")
def test_process_workers_and_their_tracker_die_with_a_killed_driver(tmp_path):
    log = tmp_path / "pids.log"
    driver = _driver([str(tmp_path / "results.sqlite"), "sleep"], {h.LOG_ENV: str(log)})
    children: set[int] = set()
    try:
        logged = _poll(lambda: len(h.read_log(log)) >= 2 and h.read_log(log), "two workers", driver)
        workers = {int(pid) for pid in logged}
        children = _children(driver.pid)
        assert workers <= children  # the driver's own workers (and its resource tracker)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=TIMEOUT)
        # Not in the driver's process group's hands: each must end by itself, within seconds.
        _poll(lambda: not any(_pid_alive(pid) for pid in children), "the workers to die", timeout=10)
    finally:
        for pid in children:
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        _cleanup(driver)


def test_the_watchdog_ends_a_worker_whose_parent_is_gone():
    # The portable fallback of the parent-death signal: once the watched parent
    # is gone, the worker is an orphan (another parent, or the pid vanished).
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: that pid no longer is anyone's parent
    exits = []
    _watch_parent(gone.pid, interval=0.01, exit=exits.append)
    assert exits == [1]


def test_leases_bind_while_their_owner_lives_and_until_they_expire(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    me, other = LeaseOwner.here(), LeaseOwner.here()  # two runs in this (live) process
    far = LeaseOwner("far", 1, "another-host")  # a run on another machine: only its expiry tells
    store.put("k:done", 1)
    assert store._claim(["k:done", "k:a", "k:b"], me, 60) == (["k:a", "k:b"], ["k:done"])
    assert store._claim(["k:a", "k:b"], other, 60) == ([], [])  # held by a live owner
    assert store._claim(["k:a"], me, 60) == (["k:a"], [])  # an owner may claim its own again
    assert store._claim(["k:c"], far, -1) == (["k:c"], [])  # born expired
    assert store._claim(["k:c"], other, 60) == (["k:c"], [])  # an expired lease is taken over
    assert store._claim(["k:d"], far, 60) == (["k:d"], [])
    assert store._claim(["k:d"], other, 60) == ([], [])  # unexpired on another host: binds
    store.put("k:a", 2)  # a stored result frees its lease with it
    assert store._claim(["k:a"], other, 60) == ([], ["k:a"])
    store._release(me)
    assert store._claim(["k:b"], other, 60) == (["k:b"], [])
    store._renew(far, -1)  # renewing to the past expires it: it is the expiry that counts
    assert store._claim(["k:d"], other, 60) == (["k:d"], [])
