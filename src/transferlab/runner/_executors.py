"""Where jobs run: in this process, in a local process pool, or on a Ray cluster.

Every executor does one thing: ``map_unordered(jobs)`` yields ``(job,
execute_job(job))`` for every job, in the order they finish, wherever they ran.
Results go back to the driver, which alone writes the store, so the same jobs
give the same results on each executor. Closing the iterator early (an error,
Ctrl-C) cancels what is still queued or running.
"""

from __future__ import annotations

import contextlib
import difflib
import multiprocessing
import numbers
import os
import signal
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from transferlab._cpus import usable_cpus
from transferlab._malloc import keep_freed_memory
from transferlab._validation import check_scalar
from transferlab.runner._jobs import Job, JobError, JobResult, execute_job
from transferlab.runner._store import _pid_alive

#: Resource names of a Job that map to Ray's own task options (the rest are custom resources).
_RAY_OPTIONS = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}


class Executor(ABC):
    """Runs jobs somewhere and brings their results back to the driver."""

    #: Short name used by :func:`get_executor`.
    name: str = ""

    @abstractmethod
    def map_unordered(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, JobResult]]:
        """Yield ``(job, execute_job(job))`` for every job, as each finishes.

        Raises the :class:`~transferlab.runner._jobs.JobError` of the first job
        that fails. Closing the iterator cancels the jobs still queued or running.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class InProcessExecutor(Executor):
    """Runs jobs one after another in this process (the default; easiest to debug)."""

    name = "inprocess"

    def map_unordered(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, JobResult]]:
        for job in jobs:
            yield job, execute_job(job)


class ProcessExecutor(Executor):
    """Runs jobs in a local pool of ``max_workers`` processes started with ``spawn``.

    Workers import each job's function by its path, so the function must live in
    an importable module, and a driver script must guard its entry point with
    ``if __name__ == "__main__":`` (``spawn`` imports the main module in each worker).
    A fresh pool serves each :meth:`map_unordered` call. When the call ends early
    (a job failed, Ctrl-C, the iterator was closed), queued jobs are cancelled and
    the workers terminated: their unfinished jobs are lost, never half-stored.
    Workers die with the driver even when it is killed with ``SIGKILL``: on Linux
    each asks the kernel for ``SIGKILL`` when its parent dies (``PR_SET_PDEATHSIG``),
    and everywhere a watchdog thread ends it once the parent's pid is gone (within
    half a second); the resource tracker of ``multiprocessing`` then ends too.

    Parameters
    ----------
    max_workers : int, optional
        Worker processes; default the CPUs this process may use.
    """

    name = "process"

    def __init__(self, max_workers: int | None = None):
        if max_workers is None:
            max_workers = usable_cpus()
        self.max_workers = _check_max_workers(max_workers)

    def __repr__(self) -> str:
        return f"ProcessExecutor(max_workers={self.max_workers})"

    def map_unordered(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, JobResult]]:
        jobs = list(jobs)
        if not jobs:
            return
        pool = ProcessPoolExecutor(
            max_workers=min(self.max_workers, len(jobs)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        )
        finished = False
        try:
            futures = {pool.submit(execute_job, job): job for job in jobs}
            waiting = set(futures)
            while waiting:
                done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                # Successes first: a failure in the same batch must not lose finished results.
                for future in sorted(done, key=lambda f: f.exception() is not None):
                    job = futures[future]
                    try:
                        outcome = future.result()
                    except BrokenProcessPool as exc:
                        raise JobError(
                            job.key,
                            job.func,
                            "a worker process died abruptly (killed, out of memory, or a crash in native code) "
                            "while this job was queued or running",
                        ) from exc
                    yield job, outcome
            finished = True
        finally:
            if finished:
                pool.shutdown(wait=True)
            else:
                _terminate_pool(pool)


class RayExecutor(Executor):
    """Runs each job as a Ray task, with the job's ``resources`` as the task's demands.

    ``ray`` is imported when the executor is built (install ``transferlab[ray]``).
    When Ray is not initialised yet, the first run calls ``ray.init`` (a local
    cluster, or ``address``) with ``include_dashboard=False`` and
    ``log_to_driver=False``; the executor never shuts Ray down, so later runs
    reuse it (``ray.shutdown()`` ends it).

    A job's ``num_cpus`` (default 1), ``num_gpus`` and ``memory`` become the task's
    options of those names; any other resource name becomes a custom resource.
    Ray waits forever for a task that no node can hold, so before submitting
    anything the executor checks every job against the resources of the cluster's
    live nodes and raises a ``ValueError`` naming the job and the missing resource
    (``check_resources=False`` skips this, for autoscaling clusters that add nodes
    on demand).

    Parameters
    ----------
    address : str, optional
        Cluster to connect to (``"auto"``, ``"ray://host:10001"``); None starts a
        local one when Ray is not initialised.
    num_cpus, num_gpus : int, optional
        Size of a local cluster started here (ignored with ``address``).
    max_in_flight : int, optional
        Tasks submitted at once; default all (Ray queues them).
    check_resources : bool
        Refuse jobs that no live node can run (see above).
    init_kwargs : dict, optional
        Further keyword arguments of ``ray.init`` (``runtime_env``, ...).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
        max_in_flight: int | None = None,
        check_resources: bool = True,
        init_kwargs: dict | None = None,
    ):
        _import_ray()
        max_in_flight = check_scalar(
            max_in_flight, "max_in_flight", (numbers.Integral, type(None)), min_val=0, include_boundaries="right"
        )
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_in_flight = max_in_flight
        self.check_resources = bool(check_resources)
        self.init_kwargs = dict(init_kwargs or {})
        self._remote = None

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, max_in_flight={self.max_in_flight})"

    def _ray(self):
        ray = _import_ray()
        if not ray.is_initialized():
            options = {"include_dashboard": False, "log_to_driver": False, **self.init_kwargs}
            if self.address is not None:
                options["address"] = self.address
            else:
                options.update(
                    {k: v for k, v in (("num_cpus", self.num_cpus), ("num_gpus", self.num_gpus)) if v is not None}
                )
            ray.init(**options)
        if self._remote is None:
            self._remote = ray.remote(execute_job)
        return ray

    def map_unordered(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, JobResult]]:
        jobs = list(jobs)
        if not jobs:
            return
        ray = self._ray()
        if self.check_resources:
            nodes = _live_node_resources(ray)
            for job in jobs:
                problem = _infeasible(job.resources, nodes)
                if problem:
                    raise ValueError(f"job {job.key} ({job.func}) cannot run on this Ray cluster: {problem}")
        queue = deque(jobs)
        running: dict[Any, Job] = {}
        try:
            while queue or running:
                while queue and (self.max_in_flight is None or len(running) < self.max_in_flight):
                    job = queue.popleft()
                    running[self._remote.options(**ray_task_options(job.resources)).remote(job)] = job
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    job = running.pop(ref)
                    yield job, _ray_result(ray, ref, job)
        finally:
            for ref in running:
                with contextlib.suppress(Exception):  # already finished or gone: nothing to cancel
                    ray.cancel(ref, force=True)


_EXECUTORS = {"inprocess": InProcessExecutor, "process": ProcessExecutor, "ray": RayExecutor}


def get_executor(executor: str | Executor = "inprocess", max_workers: int | None = None) -> Executor:
    """Resolve an executor name (with ``max_workers``) or pass an :class:`Executor` through.

    Parameters
    ----------
    executor : {"inprocess", "process", "ray"} or Executor
    max_workers : int, optional
        ``"process"``: worker processes; ``"ray"``: tasks in flight; ``"inprocess"``:
        None or 1. Must be None with an Executor instance (configure it instead).

    Returns
    -------
    Executor
    """
    if isinstance(executor, Executor):
        if max_workers is not None:
            raise ValueError(
                f"max_workers must be None when executor is an instance ({executor!r}); set it in its constructor"
            )
        return executor
    if not isinstance(executor, str) or executor not in _EXECUTORS:
        names = sorted(_EXECUTORS)
        close = difflib.get_close_matches(str(executor), names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"executor must be one of {names} or an Executor; got {executor!r}{hint}")
    max_workers = _check_max_workers(max_workers)
    if executor == "inprocess":
        if max_workers not in (None, 1):
            raise ValueError(f"max_workers must be None or 1 for the inprocess executor; got {max_workers}")
        return InProcessExecutor()
    if executor == "process":
        return ProcessExecutor(max_workers)
    return RayExecutor(max_in_flight=max_workers)


def ray_task_options(resources: dict) -> dict:
    """Ray task options for a job's ``resources``: ``num_cpus`` (default 1), ``num_gpus``, ``memory``, custom.

    Examples
    --------
    >>> ray_task_options({"num_gpus": 1, "tpu_slice": 0.5})
    {'num_cpus': 1, 'num_gpus': 1, 'resources': {'tpu_slice': 0.5}}
    """
    options: dict[str, Any] = {"num_cpus": 1}
    custom = {}
    for name, amount in resources.items():
        if name in _RAY_OPTIONS:
            options[name] = amount
        else:
            custom[name] = amount
    if custom:
        options["resources"] = custom
    return options


def _demand(resources: dict) -> dict[str, float]:
    """A job's resources in Ray's node vocabulary (CPU, GPU, memory, custom), zeros dropped."""
    demand = {"CPU": 1}
    for name, amount in resources.items():
        demand[_RAY_OPTIONS.get(name, name)] = amount
    return {name: float(amount) for name, amount in demand.items() if amount > 0}


def _infeasible(resources: dict, nodes: list[dict[str, float]]) -> str:
    """Why no node among ``nodes`` (each a dict of total resources) can run the job; '' when one can."""
    demand = _demand(resources)
    if any(all(node.get(name, 0.0) >= amount for name, amount in demand.items()) for node in nodes):
        return ""
    if not nodes:
        return "the cluster has no live node"
    inverse = {v: k for k, v in _RAY_OPTIONS.items()}
    for name, amount in demand.items():
        most = max(node.get(name, 0.0) for node in nodes)
        if most < amount:
            asked = inverse.get(name, name)
            return (
                f"it asks for {asked}={amount:g} but no node has that much {name} (at most {most:g} on one node); "
                f"lower the job's resources or start Ray with more {name}"
            )
    return f"it asks for {resources} and no single node has all of them; lower the job's resources"


def _live_node_resources(ray) -> list[dict[str, float]]:
    try:
        return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive", True)]
    except Exception:  # ray.nodes is a developer API: fall back to the cluster's totals
        return [dict(ray.cluster_resources())]


def _ray_result(ray, ref, job: Job) -> JobResult:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, JobError):
            raise cause from None
        raise JobError(job.key, job.func, f"the Ray task failed: {type(exc).__name__}", str(exc)) from None
    except ray.exceptions.RayError as exc:  # worker died, task cancelled, object lost, ...
        raise JobError(job.key, job.func, f"the Ray task failed: {type(exc).__name__}: {exc}") from exc


def _check_max_workers(max_workers: Any) -> int | None:
    """``max_workers`` as a positive ``int``, or ``None``."""
    return check_scalar(max_workers, "max_workers", (numbers.Integral, type(None)), min_val=0, include_boundaries="right")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError(
            "the Ray executor needs the optional dependency ray: pip install 'transferlab[ray]'"
        ) from None
    return ray


def _terminate_pool(pool: ProcessPoolExecutor) -> None:
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


#: Seconds between two checks of the watchdog of a worker on its parent.
_WATCH_INTERVAL = 0.5
#: ``prctl`` option that asks for a signal when the parent dies (linux/prctl.h).
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Initializer of a pool worker: end this process when ``parent_pid`` (the driver) dies.

    The kernel sends the death signal when the *thread* that started the worker
    ends; the pool starts its workers from the thread that submits the jobs,
    which :meth:`ProcessExecutor.map_unordered` keeps until the pool is shut down.
    """
    keep_freed_memory()  # workers run torch jobs: see transferlab._malloc
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):  # no libc by that name, a sandbox refusing prctl: the watchdog stays
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="transferlab-watchdog", daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the signal was asked for
        os._exit(1)


def _watch_parent(parent_pid: int, interval: float = _WATCH_INTERVAL, exit=os._exit) -> None:
    """Call ``exit(1)`` once this process's parent is no longer ``parent_pid`` or that pid has gone."""
    while True:
        if os.getppid() != parent_pid or not _pid_alive(parent_pid):
            exit(1)
            return
        time.sleep(interval)


