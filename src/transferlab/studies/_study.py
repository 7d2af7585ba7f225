"""One shape for every study, and the one function that runs them.

A :class:`Study` is

- a configuration: a frozen :class:`~transferlab.studies._config.StudyConfig`
  dataclass, read from a preset (``to_dict``/``from_dict`` follow its fields);
- its jobs (:class:`JobSpec`): each kind of job names the config fields it
  reads; its key holds exactly those fields and its worker rebuilds them from
  the payload alone, so editing one setting reruns only the jobs that read it,
  and a worker on another machine needs no preset file;
- ``plan``: the jobs one config needs (the driver may build a zoo or run
  prerequisite jobs first);
- ``collect``: the results of the jobs as tables;
- ``report``: tables, figures and ``report.md`` written, and the study's
  result object.

:func:`run_study` owns the rest: the results store
(``$TRANSFERLAB_HOME/results.sqlite``), the executor, the output folder
(default ``transferlab-out/<study>-<preset>``), ``config.json`` (the resolved
configuration) and ``provenance.json`` (versions, git commit, executor, wall
time).
"""

from __future__ import annotations

import inspect
import json
import platform
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from transferlab import __version__
from transferlab._atomic import atomic_write_bytes
from transferlab._paths import home
from transferlab._validation import check_int
from transferlab.models import check_device
from transferlab.runner import Job, ResultStore, make_job, run_jobs, usable_cpus
from transferlab.studies._config import StudyConfig, load_preset, preset_names


@dataclass(frozen=True)
class JobSpec:
    """One kind of job of a study: its worker function and the config fields it reads.

    Parameters
    ----------
    kind : str
        The prefix of its keys in the results store (``"finetune"``, ...).
    func : str
        Import path of the worker, ``"package.module:function"``. The worker is
        called with ``config=`` (the fields ``reads`` as JSON) and the job's
        other keyword arguments, and starts with ``cfg = SPEC.view(config)``.
    config : type
        The study's :class:`~transferlab.studies._config.StudyConfig` class.
    reads : tuple of str
        The config fields the worker reads: they, and nothing else of the
        config, make the job's key. Reading another field raises
        :class:`~transferlab.studies._config.UndeclaredFieldError`.
    """

    kind: str
    func: str
    config: type
    reads: tuple[str, ...]

    def __post_init__(self) -> None:
        known = {f for f in self.config.__dataclass_fields__}
        unknown = [n for n in self.reads if n not in known]
        if unknown:
            raise ValueError(f"job {self.kind!r} reads {unknown}, which {self.config.__name__} does not have")

    def make(self, cfg: StudyConfig, **kwargs: Any) -> Job:
        """The job for ``cfg`` and the worker's other keyword arguments (JSON-serialisable).

        A ``device`` starting with ``"cuda"`` asks Ray for a GPU (not part of the key).
        """
        device = kwargs.get("device")
        resources = {"num_gpus": 1} if device is not None and str(device).startswith("cuda") else None
        return make_job(self.kind, self.func, resources, config=cfg.part(self.reads), **kwargs)

    def view(self, payload: Mapping[str, Any]):
        """The config the worker may read, rebuilt from the job's ``config`` payload alone."""
        return self.config.view(payload, self.reads)


@dataclass(frozen=True)
class Plan:
    """What a study's ``plan`` hands to :func:`run_study`.

    Parameters
    ----------
    jobs : mapping of str to list of Job
        The jobs by part, in the order they run and are collected.
    context : mapping
        What the driver built that ``collect`` needs (a zoo, a ranking).
    message : str, optional
        A status line printed before the jobs run.
    """

    jobs: Mapping[str, Sequence[Job]]
    context: Mapping[str, Any] = field(default_factory=dict)
    message: str | None = None


@dataclass
class StudyRun:
    """The settings of one run of a study, handed to its ``plan`` and ``report``."""

    study: str
    preset: str
    path: Path | None
    out_dir: Path
    store: ResultStore
    executor: Any
    max_workers: int | None
    device: str
    progress: bool
    console: Console
    seconds: dict = field(default_factory=dict)

    def run(self, jobs: Sequence[Job]) -> dict[str, Any]:
        """Run the jobs not yet in the store on this run's executor; every result by key."""
        return run_jobs(jobs, self.store, executor=self.executor, max_workers=self.max_workers,
                        progress=self.progress)


@dataclass(frozen=True)
class ClaimsResult:
    """The result of a study judged by claims: its config, its tables, the claims, and where the files went.

    Parameters
    ----------
    config : StudyConfig
        The resolved configuration.
    tables : dict
        Tidy rows by table name (each also written as ``<name>.csv``).
    claims : tuple of dict
        ``{"claim", "setting", "supported", "numbers"}`` per claim checked.
    out_dir : Path, optional
    files : dict
        What was written, by name.
    """

    config: Any
    tables: dict
    claims: tuple[dict, ...]
    out_dir: Path | None = None
    files: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    """A study: its config, its jobs, how their results are collected, and its report.

    Parameters
    ----------
    name : str
        The study's name: its command (``transferlab study <name>``) and the
        prefix of its default output folder.
    config : type
        Its :class:`~transferlab.studies._config.StudyConfig` dataclass.
    plan : callable
        ``plan(cfg, run) -> Plan``: the jobs (see :class:`JobSpec`).
    collect : callable
        ``collect(cfg, plan, results) -> tables``; ``results`` by job key.
    report : callable
        ``report(cfg, tables, run) -> result``: writes into ``run.out_dir``.
    presets : str or mapping
        The built-in TOML file ``presets/<presets>.toml``, or ``{name: config}``
        for a study without preset files.
    parallel_jobs : bool, default False
        Its jobs each pin themselves to one CPU thread (so their numbers do not
        depend on the machine): ``executor="auto"`` runs them side by side in
        worker processes, one per CPU.
    """

    name: str
    config: type
    plan: Callable[[Any, StudyRun], Plan]
    collect: Callable[[Any, Plan, dict], Any]
    report: Callable[[Any, Any, StudyRun], Any]
    presets: str | Mapping[str, Any]
    parallel_jobs: bool = False

    def load(self, preset: str, *, path: str | Path | None = None):
        """The resolved config of ``preset`` (from ``path``, a TOML file of the built-in's shape, if given)."""
        if isinstance(self.presets, str):
            return load_preset(self.config, preset, path=path, builtin=self.presets, study=self.name)
        if path is not None:
            raise ValueError(f"the {self.name} study has no preset files; got path={str(path)!r}")
        if preset not in self.presets:
            raise ValueError(f"unknown {self.name} preset {preset!r}; presets are {sorted(self.presets)}")
        return self.presets[preset]

    def preset_names(self, path: str | Path | None = None) -> list[str]:
        """The presets of ``path`` (or the built-in ones), sorted."""
        if isinstance(self.presets, str):
            return preset_names(path, self.presets)
        return sorted(self.presets)


def run_study(
    study: Study,
    preset: str = "small",
    *,
    path: str | Path | None = None,
    out_dir: str | Path | None = None,
    executor: Any = "auto",
    max_workers: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    console: Console | None = None,
):
    """Run a study for one preset: its jobs, its tables and figures, its config and provenance.

    Parameters
    ----------
    study : Study
    preset : str, default "small"
        ``"tiny"`` (tests, CI), ``"small"`` (a 2-core CPU) or ``"full"`` (GPU), or
        a preset of ``path``.
    path : path, optional
        A TOML file of presets of the same shape as the built-in one.
    out_dir : path, optional
        Where the tables, figures, ``report.md``, ``config.json`` and
        ``provenance.json`` go; default ``transferlab-out/<study>-<preset>``.
    executor : {"auto", "inprocess", "process", "ray"} or Executor
        Where the jobs run. Results always return to the driver's store
        (``$TRANSFERLAB_HOME/results.sqlite``), so the numbers do not depend on
        it; a finished job is never run again. ``"auto"``: worker processes, one
        per usable CPU (or ``max_workers``), for a study whose jobs run on one
        thread each (``Study.parallel_jobs``: the selection benchmark) on the CPU;
        in this process otherwise.
    max_workers : int, optional
        Parallel jobs for the process executor (tasks in flight for Ray).
    device : str
        ``"cpu"`` or ``"cuda"``.
    progress : bool
        Progress bars and status lines on stderr.
    console : rich.console.Console, optional
        Where the status lines go.

    Returns
    -------
    object
        The study's result (``study.report``'s).
    """
    if not isinstance(study, Study):
        raise ValueError(f"study must be a Study (e.g. transferlab.studies._selection.SELECTION); got {study!r}")
    check_device(device, here=executor in ("auto", "inprocess", "process"))  # Ray may have the GPUs
    executor, max_workers = _resolve_executor(study, executor, max_workers, device)
    started, start = time.time(), time.perf_counter()
    cfg = study.load(preset, path=path)
    out_dir = Path(out_dir) if out_dir is not None else Path("transferlab-out") / f"{study.name}-{preset}"
    run = StudyRun(
        study=study.name, preset=preset, path=None if path is None else Path(path), out_dir=out_dir,
        store=ResultStore(home() / "results.sqlite"), executor=executor, max_workers=max_workers, device=device,
        progress=progress, console=console or Console(stderr=True, quiet=not progress),
    )
    plan = study.plan(cfg, run)
    if plan.message:
        run.console.print(plan.message)
    jobs = [job for part in plan.jobs.values() for job in part]
    jobs_start = time.perf_counter()
    results = run.run(jobs) if jobs else {}
    run.seconds["jobs"] = time.perf_counter() - jobs_start
    tables = study.collect(cfg, plan, results)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = study.report(cfg, tables, run)
    _write_json(out_dir / "config.json", cfg.to_dict())
    _write_json(out_dir / "provenance.json", provenance(run, started=started, seconds=time.perf_counter() - start,
                                                        n_jobs=len({job.key for job in jobs})))
    return result


def _resolve_executor(study: Study, executor: Any, max_workers: int | None, device: str) -> tuple[Any, int | None]:
    """``"auto"`` made concrete (see :func:`run_study`); any other executor unchanged."""
    if not (isinstance(executor, str) and executor == "auto"):
        return executor, max_workers
    workers = usable_cpus() if max_workers is None else check_int(max_workers, "max_workers")
    if study.parallel_jobs and str(device) == "cpu" and workers > 1:
        return "process", workers
    return "inprocess", None


def claims_report(result_type: type, claims_from: Callable, write_report: Callable) -> Callable:
    """The ``report`` of a study whose result is a :class:`ClaimsResult`: its tables and the claims checked on them.

    ``claims_from(cfg, tables)`` judges the claims; ``write_report(cfg, out_dir,
    tables, claims)`` writes the files and returns them by name.
    """

    def report(cfg, tables: dict, run: StudyRun):
        claims = claims_from(cfg, tables)
        files = write_report(cfg, run.out_dir, tables, claims)
        return result_type(config=cfg, tables=tables, claims=tuple(claims), out_dir=run.out_dir, files=files)

    return report


def study_runner(study: Study, name: str, module: str, summary: str, returns: type) -> Callable:
    """The public ``run_<study>(preset, *, path, out_dir, ...)``: :func:`run_study` for one study.

    Its signature is :func:`run_study`'s without ``study``; its docstring is
    ``summary`` followed by :func:`run_study`'s parameters.
    """
    signature = inspect.signature(run_study)
    parameters = list(signature.parameters.values())[1:]
    runner_signature = signature.replace(parameters=parameters, return_annotation=returns.__name__)

    def runner(*args, **kwargs):
        bound = runner_signature.bind(*args, **kwargs)
        return run_study(study, *bound.args, **bound.kwargs)

    doc = inspect.getdoc(run_study) or ""
    params = doc[doc.index("Parameters"):doc.index("Returns")].replace("study : Study\n", "")
    runner.__signature__ = runner_signature
    runner.__name__ = runner.__qualname__ = name
    runner.__module__ = module
    runner.__doc__ = f"{summary.strip()}\n\n{params}Returns\n-------\n{returns.__name__}\n"
    return runner


# --------------------------------------------------------------------------- provenance


def _write_json(path: Path, data: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def git_commit(folder: str | Path | None = None) -> str | None:
    """The commit of the git checkout that holds transferlab's source, or None (never raises).

    None when git is missing, the package is not in a git checkout (an
    installed wheel), or the checkout around it does not track the package
    (a virtual environment inside some other repository).
    """
    folder = Path(folder) if folder is not None else Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=5,
                                  check=False)
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    if git("ls-files", "--error-unmatch", "__init__.py") is None:
        return None
    return git("rev-parse", "HEAD") or None


def provenance(run: StudyRun, *, started: float, seconds: float, n_jobs: int) -> dict[str, Any]:
    """What made the results of ``run``: code versions, where the jobs ran, when and how long."""
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover - torch is a core dependency
        torch_version = None
    executor = run.executor if isinstance(run.executor, str) else type(run.executor).__name__
    return {
        "study": run.study,
        "preset": run.preset,
        "presets_file": None if run.path is None else str(run.path),
        "transferlab": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch_version,
        "executor": executor,
        "max_workers": run.max_workers,
        "device": run.device,
        "jobs": n_jobs,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_seconds": seconds,
    }
