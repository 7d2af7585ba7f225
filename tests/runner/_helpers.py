"""Job functions for the runner tests, importable by path from worker processes.

Processes share no memory, so a job records that it ran by appending one line
to the file named by ``$TRANSFERLAB_TEST_JOB_LOG`` (when set). Environment
variables are not part of a job's key, so the same jobs can log to a different
file in every run.

Run as a script (``python -m tests.runner._helpers STORE EXECUTOR``), it is the
driver of the kill test: it runs :func:`kill_test_jobs` into STORE.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

LOG_ENV = "TRANSFERLAB_TEST_JOB_LOG"
FAIL_ENV = "TRANSFERLAB_TEST_FAIL"
GATE_ENV = "TRANSFERLAB_TEST_GATE"
#: Jobs of the kill test with an index at least this wait for the gate file (when the gate is set).
GATE_FROM = 4
N_KILL_JOBS = 12
ROOT = Path(__file__).resolve().parents[2]
#: This module by import path (not ``__name__``, which is ``"__main__"`` when run as the driver).
MODULE = "tests.runner._helpers"


def _log(line: object) -> None:
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a") as f:  # one short O_APPEND write: whole lines even from many processes
            f.write(f"{line}\n")


def read_log(path: str | Path) -> list[str]:
    """The lines logged to ``path`` (empty when no job wrote there)."""
    path = Path(path)
    return path.read_text().split() if path.exists() else []


def seeded_value(seed: int, n: int = 3) -> dict:
    """A deterministic value: the first ``n`` standard normals of NumPy's PCG64 stream for ``seed``."""
    _log(f"seeded:{seed}")
    x = np.random.default_rng(seed).standard_normal(n)
    return {"seed": seed, "n": np.int64(n), "values": x.tolist(), "sum": np.float64(x.sum())}


def torch_value(seed: int) -> float:
    """A tiny seeded torch computation in float64: sum of tanh(A @ B) for 4x3 and 3x2 normals."""
    import torch

    _log(f"torch:{seed}")
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(4, 3, generator=g, dtype=torch.float64)
    b = torch.randn(3, 2, generator=g, dtype=torch.float64)
    return float(torch.tanh(a @ b).sum())


def maybe_fail(i: int) -> int:
    """Returns ``i * i``; raises a ValueError when ``str(i)`` is listed in ``$TRANSFERLAB_TEST_FAIL``."""
    _log(f"maybe_fail:{i}")
    if str(i) in os.environ.get(FAIL_ENV, "").split(","):
        raise ValueError(f"job {i} was told to fail")
    return i * i


def returns_none() -> None:
    _log("none")


def returns_array() -> object:
    return np.arange(3)


def slow_job(i: int, seed: int) -> dict:
    """Logs ``i``, sleeps 0.2 s and returns a seeded value.

    When ``$TRANSFERLAB_TEST_GATE`` names a file, jobs with ``i >= GATE_FROM`` then
    wait until that file exists: the kill test leaves it missing, so its first run
    stores exactly the jobs below ``GATE_FROM`` and then stays busy, whatever the
    speed of the machine. A waiting worker whose parent (the driver) died exits.
    """
    _log(i)
    time.sleep(0.2)
    gate = os.environ.get(GATE_ENV)
    if gate and i >= GATE_FROM:
        parent = os.getppid()
        deadline = time.monotonic() + 300
        while not os.path.exists(gate) and time.monotonic() < deadline:
            if os.getppid() != parent:  # orphaned pool worker: the driver was killed
                os._exit(1)
            time.sleep(0.02)
    x = np.random.default_rng([seed, i]).standard_normal(2)
    return {"i": i, "x": x.tolist()}


def kill_test_jobs(n: int = N_KILL_JOBS) -> list:
    """The jobs of the kill test, in index order."""
    from transferlab.runner._jobs import make_job

    return [make_job("killtest", f"{MODULE}:slow_job", i=i, seed=7) for i in range(n)]


def sleep_job(i: int, seconds: float) -> int:
    """Logs this process's pid, then sleeps ``seconds``: a worker busy when its driver is killed."""
    _log(os.getpid())
    time.sleep(seconds)
    return i


#: A file the lease-test driver appends ``claimed:<n>`` to after each claim (when set).
CLAIM_LOG_ENV = "TRANSFERLAB_TEST_CLAIM_LOG"


def _main(argv: list[str]) -> None:
    import json

    from transferlab.runner import _jobs, _store
    from transferlab.runner._jobs import make_job, run_jobs

    store, executor = argv[:2]
    if executor == "sleep":  # the orphan test: two process workers that sleep until killed
        jobs = [make_job("sleep", f"{MODULE}:sleep_job", i=i, seconds=300) for i in range(2)]
        run_jobs(jobs, store, executor="process", max_workers=2, progress=False)
        return
    claim_log = os.environ.get(CLAIM_LOG_ENV)
    if claim_log:  # the lease test: say what each claim got, and look at the store often
        claim = _store.ResultStore._claim

        def logged_claim(self, keys, owner, seconds):
            claimed, stored = claim(self, keys, owner, seconds)
            with open(claim_log, "a") as f:
                f.write(f"claimed:{len(claimed)}\n")
            return claimed, stored

        _store.ResultStore._claim = logged_claim
        _jobs._POLL_SECONDS = 0.05
    results = run_jobs(
        kill_test_jobs(), store, executor=executor, max_workers=2 if executor == "process" else None, progress=False
    )
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    _main(sys.argv[1:])
