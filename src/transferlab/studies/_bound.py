"""The transfer-bound study: bound the linear-probe loss on a target from the source task.

Mehra, Zhang & Hamm, "Analysis of Task Transferability in Large Pre-trained
Classifiers" (2023), on the built-in zoo (DESIGN.md, "Transfer-bound study").
For every (zoo member, target):

1. the member's penultimate features on its own source task, and a linear head
   on them trained with a gradient-norm penalty
   (:func:`~transferlab.train.fit_smooth_head`);
2. the transforms ``A, b, B, D`` that minimise the bound on the training splits
   (:func:`~transferlab.analysis.fit_transforms`);
3. the bound and its three terms on the test splits
   (:func:`~transferlab.analysis.transfer_bound`), next to the real target loss
   and accuracy of a linear probe trained on the target's train features
   (:func:`~transferlab.train.fit_linear_probe`), and LogME and LEEP of the
   member on the target.

Features are standardised per task with the train-split statistics (as in the
paper's code). Every pair is a job with a deterministic key in the results
store, so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console

from transferlab._paths import home
from transferlab.analysis._bound import transfer_bound
from transferlab.analysis._bound_fit import fit_transforms
from transferlab.data._ops import subsample
from transferlab.features._cache import FeatureCache
from transferlab.models._checkpoint import load_checkpoint
from transferlab.runner._jobs import make_job, run_jobs
from transferlab.runner._store import ResultStore
from transferlab.scores._leep import leep
from transferlab.scores._logme import logme
from transferlab.studies._bound_config import BoundConfig, load_bound_config
from transferlab.studies._presets import job_payload, job_resources
from transferlab.studies._selection_config import TargetSpec, build_target
from transferlab.train._probe import _standardise, fit_linear_probe
from transferlab.train._smooth_head import fit_smooth_head
from transferlab.zoo._build import build_zoo, load_member_task, zoo_root
from transferlab.zoo._recipe import MemberRecipe, load_recipe

_MODULE = "transferlab.studies._bound"


@dataclass(frozen=True)
class BoundResult:
    """One row per (member, target), the summary across pairs, the verdicts, and where the files went."""

    config: BoundConfig
    pairs: tuple[dict, ...]
    summary: tuple[dict, ...]
    claims: tuple[dict, ...]
    out_dir: Path | None = None
    files: dict = field(default_factory=dict)


def _config_from(payload: dict) -> BoundConfig:
    return load_bound_config(payload["preset"], path=payload.get("path"))


def _shrink(task, *, train: int, test: int, seed: int):
    """At most ``train`` / ``test`` samples per class (fewer where a class has fewer)."""
    low_train = int(np.bincount(task.y_train).min())
    low_test = int(np.bincount(task.y_test).min())
    return subsample(task, train_per_class=min(train, low_train), test_per_class=min(test, low_test), seed=seed)


# --------------------------------------------------------------------------- the job


def pair_job(*, config: dict, member: str, member_digest: str, target: dict, device: str = "cpu") -> dict:
    """The bound, its terms, the probe's real loss, LogME and LEEP for one (member, target)."""
    cfg = _config_from(config)
    recipe = load_recipe(cfg.zoo, cfg.zoo_preset)
    checkpoint = load_checkpoint(zoo_root(recipe) / f"{member}.safetensors", device=device)
    if checkpoint.metadata.get("member_digest") != member_digest:
        raise ValueError(f"zoo member {member!r} changed since the job was made; rebuild the zoo and rerun")
    model = checkpoint.model
    seconds = {}
    start = time.perf_counter()
    source = _shrink(load_member_task(MemberRecipe.from_dict(checkpoint.metadata["member"])),
                     train=cfg.source_per_class, test=cfg.source_eval_per_class, seed=cfg.seed)
    task = build_target(TargetSpec(**target), "full", cfg)
    cache = FeatureCache()
    fs_train, fs_test = (cache.features(model, source, split=s, device=device) for s in ("train", "test"))
    ft_train, ft_test = (cache.features(model, task, split=s, device=device) for s in ("train", "test"))
    probs = cache.source_probabilities(model, task, split="train", device=device)
    seconds["features"] = time.perf_counter() - start

    # Per task, with the train split's statistics (as the paper's code and the linear probe do).
    zs_train, zs_test, _, _ = _standardise(fs_train, fs_test)
    zt_train, zt_test, _, _ = _standardise(ft_train, ft_test)
    start = time.perf_counter()
    head = fit_smooth_head(zs_train, source.y_train, n_classes=source.n_classes, seed=cfg.seed, device=device,
                           **cfg.head)
    seconds["head"] = time.perf_counter() - start
    start = time.perf_counter()
    fit = fit_transforms(zs_train, source.y_train, zt_train, task.y_train, head_weight=head.weight,
                         head_bias=head.bias, seed=cfg.seed, device=device, progress=False, **cfg.transform)
    seconds["transforms"] = time.perf_counter() - start
    start = time.perf_counter()
    bound = transfer_bound(zs_test, source.y_test, zt_test, task.y_test, fit.transform,
                           head_weight=head.weight, head_bias=head.bias)
    seconds["bound"] = time.perf_counter() - start
    start = time.perf_counter()
    probe = fit_linear_probe(ft_train, task.y_train, ft_test, task.y_test, n_classes=task.n_classes,
                             weight_decay=cfg.probe_weight_decay, device=device)
    seconds["probe"] = time.perf_counter() - start
    start = time.perf_counter()
    scores = {"logme": logme(ft_train, task.y_train), "leep": leep(probs, task.y_train)}
    seconds["scores"] = time.perf_counter() - start
    label_map = fit.transform.label_map
    return {
        **bound.to_dict(),
        "probe_loss": probe.test_loss,
        "probe_accuracy": probe.test_accuracy,
        **scores,
        "source_classes": int(source.n_classes),
        "target_classes": int(task.n_classes),
        "head_source_accuracy": head.train_accuracy,
        "head_max_gradient_norm": head.max_gradient_norm,
        "label_map_top_mass": float(label_map.max(axis=0).mean()),
        "feature_map_condition": float(np.linalg.cond(fit.transform.feature_map)),
        "objective_first": float(fit.history["objective"][0]),
        "objective_last": float(fit.history["objective"][-1]),
        "seconds": seconds,
    }


# --------------------------------------------------------------------------- the study


def run_bound(
    preset: str = "small",
    *,
    path=None,
    out_dir=None,
    executor: str = "inprocess",
    max_workers: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    console: Console | None = None,
) -> BoundResult:
    """Run the transfer-bound study for one preset and write its tables, figures and report.

    Parameters
    ----------
    preset : {"tiny", "small", "full"} or a preset of ``path``
    path : path, optional
        A TOML file of presets of the same shape as ``presets/bound.toml``.
    out_dir : path, optional
        Default ``transferlab-out/bound-<preset>``.
    executor : {"inprocess", "process", "ray"}
        Where the pair jobs run; results always return to the driver's store.
    max_workers : int, optional
        Parallel jobs for the process executor.
    device : str
        ``"cpu"`` or ``"cuda"``.
    progress : bool
        Progress bars and status lines on stderr.
    """
    from transferlab.studies._bound_report import summarise_bound, write_bound_report

    cfg = load_bound_config(preset, path=path)
    console = console or Console(stderr=True, quiet=not progress)
    out_dir = Path(out_dir) if out_dir is not None else Path("transferlab-out") / f"bound-{preset}"
    for target in cfg.targets:  # fail early on a target that cannot be built
        build_target(target, "full", cfg)
    zoo = build_zoo(cfg.zoo, cfg.zoo_preset, device=device, progress=progress, console=console)
    members = [m for m in zoo if m.role in cfg.roles]
    if not members:
        raise ValueError(f"zoo {cfg.zoo!r} ({cfg.zoo_preset}) has no member with a role in {list(cfg.roles)}")
    payload, resources = job_payload(cfg, path), job_resources(device)
    jobs = [make_job("bound-pair", f"{_MODULE}:pair_job", resources, config=payload, member=m.name,
                     member_digest=m.metadata["member_digest"], target=t.to_dict(), device=device)
            for m in members for t in cfg.targets]
    console.print(f"[bold]bound[/] {len(members)} members x {len(cfg.targets)} targets: {len(jobs)} pair jobs")
    store = ResultStore(home() / "results.sqlite")
    results = run_jobs(jobs, store, executor=executor, max_workers=max_workers, progress=progress)
    by_name = {m.name: m for m in members}
    pairs = []
    for job in jobs:
        r = dict(results[job.key])
        m = by_name[job.kwargs["member"]]
        seconds = r.pop("seconds")
        pairs.append({"model": m.name, "arch": m.arch, "source": m.source, "role": m.role,
                      "target": TargetSpec(**job.kwargs["target"]).name, **r,
                      **{f"seconds_{k}": float(v) for k, v in seconds.items()}})
    summary, claims = summarise_bound(cfg, pairs)
    files = write_bound_report(cfg, out_dir, pairs, summary, claims)
    return BoundResult(config=cfg, pairs=tuple(pairs), summary=tuple(summary), claims=tuple(claims),
                       out_dir=out_dir, files=files)
