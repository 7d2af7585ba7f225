"""Jobs with deterministic keys, the SQLite results store, and the executors that run jobs."""

from transferlab._cpus import usable_cpus
from transferlab.runner._executors import (
    Executor,
    InProcessExecutor,
    ProcessExecutor,
    RayExecutor,
    get_executor,
)
from transferlab.runner._jobs import Job, JobError, JobResult, execute_job, make_job, resolve_function, run_jobs
from transferlab.runner._store import ResultStore, job_key
from transferlab.runner._threads import cpu_threads

__all__ = [
    "Executor",
    "InProcessExecutor",
    "Job",
    "JobError",
    "JobResult",
    "ProcessExecutor",
    "RayExecutor",
    "ResultStore",
    "execute_job",
    "get_executor",
    "job_key",
    "make_job",
    "cpu_threads",
    "resolve_function",
    "run_jobs",
    "usable_cpus",
]
