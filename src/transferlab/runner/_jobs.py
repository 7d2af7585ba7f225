"""Jobs: units of expensive work with deterministic keys, and the driver that runs them.

A :class:`Job` names its function by import path (``"package.module:function"``)
and carries JSON-serialisable keyword arguments, so it pickles to any process or
Ray worker, and its result is JSON, so it fits the :class:`ResultStore`.
:func:`run_jobs` skips every job whose key is stored, runs the others on an
executor (:mod:`transferlab.runner._executors`) and stores each result, in the
driver, the moment it arrives: killing the driver loses at most the jobs in flight.
"""

from __future__ import annotations

import copy
import importlib
import json
import numbers
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferlab._progress import progress_bar
from transferlab._validation import check_scalar
from transferlab.runner._store import LeaseOwner, ResultStore, job_key

_FUNC_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
#: Seconds a claimed job's lease lasts; the driver renews its leases every third of it while it runs.
_LEASE_SECONDS = 60.0
#: Seconds between two looks at the store while waiting for jobs another run holds.
_POLL_SECONDS = 0.5


class JobError(RuntimeError):
    """A job raised: the message names the job's key and function and carries its traceback.

    Raised by :func:`execute_job` wherever the job ran (this process, a worker of a
    process pool, a Ray worker); it pickles, so it crosses process boundaries intact.

    Parameters
    ----------
    key : str
        The failed job's key.
    func : str
        The failed job's function path.
    error : str
        One line: the exception's type and message.
    details : str
        The traceback where the job ran (may be empty).
    """

    def __init__(self, key: str, func: str, error: str, details: str = ""):
        self.key = key
        self.func = func
        self.error = error
        self.details = details
        message = f"job {key} ({func}) failed: {error}"
        if details:
            message += "\n\nwhere it ran:\n" + details.rstrip()
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.key, self.func, self.error, self.details))


@dataclass(frozen=True)
class Job:
    """One unit of expensive work.

    Parameters
    ----------
    key : str
        Deterministic key of the result (see :func:`make_job`, which derives it).
    func : str
        Import path of the function, ``"package.module:function"`` (``"module:Class.method"``
        also resolves). Called as ``function(**kwargs)``; it must return a
        JSON-serialisable value (NumPy scalars are converted).
    kwargs : dict
        JSON-serialisable keyword arguments. Stored as their JSON round trip
        (a tuple arrives as a list), a private copy of the caller's dict.
    resources : dict
        What one run needs, for executors that schedule (Ray): ``num_cpus``
        (default 1), ``num_gpus``, ``memory`` (bytes) and custom resource names,
        each a non-negative number. Not part of the key: where a job runs does not
        change its result. The in-process and process executors ignore it.
    """

    key: str
    func: str
    kwargs: dict = field(default_factory=dict)
    resources: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"key must be a non-empty string; got {self.key!r}")
        _check_func_path(self.func)
        object.__setattr__(self, "kwargs", _json_copy(self.kwargs, "kwargs", self.key))
        object.__setattr__(self, "resources", _check_resources(self.resources, self.key))

    def __hash__(self) -> int:
        return hash((self.key, self.func))


@dataclass(frozen=True)
class JobResult:
    """What an executor brings back from one job: its result as JSON text and its wall time.

    Parameters
    ----------
    payload : str
        The JSON text of the job's return value.
    seconds : float
        Wall time of the call where it ran.
    """

    payload: str
    seconds: float

    @property
    def value(self) -> Any:
        """The job's return value, decoded from :attr:`payload`."""
        return json.loads(self.payload)


def make_job(kind: str, func: str | Callable, /, resources: dict | None = None, **kwargs: Any) -> Job:
    """Build a :class:`Job` whose key is ``job_key(kind, func=func, **kwargs)``.

    Parameters
    ----------
    kind : str
        What the job does (``"finetune"``, ``"score"``, ...): the key's prefix.
        Non-empty, without ``":"``.
    func : str or callable
        ``"package.module:function"``, or a module-level function (turned into its
        path; lambdas, nested functions and functions of ``__main__`` are refused
        because a worker could not import them).
    resources : dict, optional
        See :class:`Job`; not part of the key.
    **kwargs
        The function's JSON-serialisable keyword arguments (not named ``func``).

    Returns
    -------
    Job

    Examples
    --------
    >>> job = make_job("demo", "json:dumps", obj=[1, 2])
    >>> job.key == job_key("demo", func="json:dumps", obj=[1, 2])
    True
    >>> execute_job(job).value
    '[1, 2]'
    """
    if not isinstance(kind, str) or not kind or ":" in kind:
        raise ValueError(f"kind must be a non-empty string without ':'; got {kind!r}")
    if "func" in kwargs:
        raise ValueError("kwargs must not contain 'func': that name is the job's function path in its key")
    func = _func_path(func)
    _check_func_path(func)
    try:
        key = job_key(kind, func=func, **kwargs)
    except ValueError as exc:
        raise ValueError(f"kwargs of a {kind!r} job must be JSON-serialisable: {exc}") from None
    return Job(key, func, kwargs, dict(resources or {}))


def resolve_function(path: str) -> Callable:
    """Import ``"package.module:function"`` (or ``"module:Class.method"``) and return the callable."""
    _check_func_path(path)
    module_name, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"func {path!r} must name a callable; got {type(obj).__name__}")
    return obj


def execute_job(job: Job) -> JobResult:
    """Run one job where this is called and return its JSON result and wall time.

    Every executor runs this (pickled by reference) in its workers. An exception
    of the job becomes a :class:`JobError` naming the key; ``KeyboardInterrupt``
    and ``SystemExit`` pass through.

    Parameters
    ----------
    job : Job

    Returns
    -------
    JobResult
    """
    start = time.perf_counter()
    try:
        function = resolve_function(job.func)
        value = function(**copy.deepcopy(job.kwargs))
    except Exception as exc:
        raise JobError(job.key, job.func, _one_line(exc), traceback.format_exc()) from exc
    seconds = time.perf_counter() - start
    try:
        payload = json.dumps(value, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise JobError(
            job.key,
            job.func,
            f"its result must be JSON-serialisable (dicts, lists, str, numbers, None); "
            f"got {type(value).__name__}: {exc}. Return arrays as .tolist()",
        ) from None
    return JobResult(payload, seconds)


def run_jobs(
    jobs: Iterable[Job],
    store: ResultStore | str | Path,
    *,
    executor: Any = "inprocess",
    max_workers: int | None = None,
    progress: bool = True,
    on_result: Callable[[Job, Any], None] | None = None,
) -> dict[str, Any]:
    """Run every job not yet in ``store`` and return all results by key.

    Jobs whose key is stored are not run again. The others run on the executor;
    the driver (this process) writes each result to the store in its own
    transaction as soon as it arrives, so killing the driver (SIGINT, SIGKILL)
    loses at most the jobs in flight and running the same jobs again finishes
    the rest. Jobs with the same key run once.

    Two runs on one store at once do each job once: a run first claims its
    pending jobs with a lease in the store (its pid, host and an expiry it
    renews while it runs). Jobs a live run holds are not run again here: this
    run waits for their results (polling the store) and returns them with its
    own. A lease whose process died, or that expired, is taken over.

    Parameters
    ----------
    jobs : iterable of Job
        Duplicates (same key) are allowed when they agree on ``func`` and ``kwargs``.
    store : ResultStore or path
        Where results live (a path opens a :class:`ResultStore`).
    executor : {"inprocess", "process", "ray"} or Executor
        Where pending jobs run; see :func:`~transferlab.runner._executors.get_executor`.
        Results do not depend on it.
    max_workers : int, optional
        Parallel jobs for an executor given by name: processes of ``"process"``
        (default: the usable CPUs), tasks in flight for ``"ray"``; must be None
        or 1 for ``"inprocess"`` and None for an Executor instance.
    progress : bool
        Show a progress bar (finished/total and how many came from the store).
    on_result : callable, optional
        ``on_result(job, value)`` after each newly computed result is stored
        (not for results read from the store).

    Returns
    -------
    dict
        ``{job.key: result}`` for every distinct key of ``jobs``, in input order;
        stored and fresh results alike are decoded from JSON.

    Raises
    ------
    JobError
        When a job raises: the message names its key and carries its traceback.
        Results finished before it stay stored; pending jobs are cancelled.
    """
    from transferlab.runner._executors import get_executor

    unique = _unique_jobs(jobs)
    if not isinstance(store, ResultStore):
        if not isinstance(store, (str, Path)):
            raise ValueError(f"store must be a ResultStore or a path; got {type(store).__name__}")
        store = ResultStore(store)
    if on_result is not None and not callable(on_result):
        raise ValueError(f"on_result must be callable or None; got {type(on_result).__name__}")
    runner = get_executor(executor, max_workers)

    store.merge_pending()
    found = store.get_many(unique)
    pending = [job for key, job in unique.items() if key not in found]
    results = dict(found)
    with progress_bar("jobs", len(unique), enabled=progress) as advance:
        advance(len(found), cached=len(found))
        if pending:
            _run_claimed(runner, pending, store, results, advance, on_result)
    return {key: results[key] for key in unique}


def _run_claimed(runner, pending: list[Job], store: ResultStore, results: dict, advance, on_result) -> None:
    """Claim the pending jobs, run those claimed, and wait for those another live run holds."""
    owner = LeaseOwner.here()
    remaining = {job.key: job for job in pending}
    stop = threading.Event()
    renewer = threading.Thread(target=_renew_leases, args=(store, owner, stop), daemon=True)
    renewer.start()
    try:
        while remaining:
            claimed, stored = store._claim(list(remaining), owner, _LEASE_SECONDS)
            if stored:  # finished by another run since we looked
                values = store.get_many(stored)
                for key in stored:
                    results[key] = values[key]
                    del remaining[key]
                advance(len(stored))
            if claimed:
                _drain(runner, [remaining[key] for key in claimed], store, results, advance, on_result)
                for key in claimed:
                    del remaining[key]
            elif remaining:  # all held by other live runs: wait for their results
                advance(0, waiting=len(remaining))
                time.sleep(_POLL_SECONDS)
    finally:
        stop.set()
        renewer.join()
        try:
            store._release(owner)
        except ValueError:  # locked or damaged: the leases expire on their own
            pass


def _renew_leases(store: ResultStore, owner: LeaseOwner, stop: threading.Event) -> None:
    while not stop.wait(_LEASE_SECONDS / 3):
        try:
            store._renew(owner, _LEASE_SECONDS)
        except ValueError:  # locked or unreachable for now: the next turn tries again
            pass


def _drain(runner, pending: list[Job], store: ResultStore, results: dict, advance, on_result) -> None:
    waiting = {job.key for job in pending}
    stream = runner.map_unordered(pending)
    try:
        for job, outcome in stream:
            if getattr(job, "key", None) not in waiting:
                raise RuntimeError(f"executor {runner!r} returned a job that was not pending or came twice: {job!r}")
            if not isinstance(outcome, JobResult):
                raise RuntimeError(
                    f"executor {runner!r} returned {type(outcome).__name__} for job {job.key}; "
                    "expected the JobResult of execute_job(job)"
                )
            value = outcome.value
            store.put(job.key, value, seconds=outcome.seconds)  # one transaction per result
            waiting.discard(job.key)
            results[job.key] = value
            advance(1)
            if on_result is not None:
                on_result(job, value)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # cancels whatever the executor still has queued or running
    if waiting:
        raise RuntimeError(
            f"executor {runner!r} finished without the results of {len(waiting)} jobs: {sorted(waiting)[:5]}"
        )


def _unique_jobs(jobs: Iterable[Job]) -> dict[str, Job]:
    if isinstance(jobs, (Job, str, bytes)):
        raise ValueError(f"jobs must be an iterable of Job; got a single {type(jobs).__name__}")
    unique: dict[str, Job] = {}
    for i, job in enumerate(jobs):
        if not isinstance(job, Job):
            raise ValueError(f"jobs must contain Job objects (see make_job); item {i} is {type(job).__name__}")
        seen = unique.get(job.key)
        if seen is None:
            unique[job.key] = job
        elif (seen.func, seen.kwargs) != (job.func, job.kwargs):
            raise ValueError(
                f"jobs holds two different jobs with key {job.key!r}: {seen.func}({seen.kwargs}) "
                f"and {job.func}({job.kwargs}); build keys with make_job"
            )
    return unique


def _check_func_path(func: Any) -> None:
    if not isinstance(func, str) or not _FUNC_PATH.match(func):
        raise ValueError(f"func must be an import path 'package.module:function'; got {func!r}")


def _func_path(func: str | Callable) -> str:
    if isinstance(func, str):
        return func
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", None)
    if not callable(func) or module is None or qualname is None:
        raise ValueError(f"func must be an import path 'package.module:function' or a function; got {func!r}")
    if "<" in qualname or module == "__main__":
        raise ValueError(
            f"func {module}:{qualname} cannot be imported by a worker; "
            "define it at the top level of an importable module, or pass its path as a string"
        )
    return f"{module}:{qualname}"


def _json_copy(value: Any, name: str, key: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{name} of job {key} must be a dict; got {type(value).__name__}")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise ValueError(f"{name} of job {key} must have string names; got {bad[:3]}")
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} of job {key} must be JSON-serialisable: {exc}") from None


def _check_resources(resources: Any, key: str) -> dict:
    if not isinstance(resources, dict):
        raise ValueError(f"resources of job {key} must be a dict; got {type(resources).__name__}")
    clean = {}
    for name, amount in resources.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"resources of job {key} must have non-empty string names; got {name!r}")
        if name in ("CPU", "GPU"):
            raise ValueError(f"resources of job {key}: write num_{name.lower()}, not {name!r}")
        # an int stays an int, a float a float: the amounts are handed to Ray as given
        what = f"resources of job {key}: {name}"
        clean[name] = check_scalar(amount, what, (numbers.Integral, numbers.Real), min_val=0)
    return clean


def _json_default(obj: Any) -> Any:
    # NumPy scalars (np.int64, np.bool_, ...) are what array code returns most often.
    if type(obj).__module__ == "numpy" and getattr(obj, "shape", None) == () and hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
