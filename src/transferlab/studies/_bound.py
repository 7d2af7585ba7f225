"""The transfer-bound study: bound the linear-probe loss on a target from the source task.

Mehra, Zhang & Hamm, "Analysis of Task Transferability in Large Pre-trained
Classifiers" (2023), on the built-in zoo (DESIGN.md, "Transfer-bound study").
For every (zoo member, target):

1. the member's penultimate features on its own source task, and a linear head
   on them trained with a gradient-norm penalty
   (:func:`~transferlab.analysis.fit_smooth_head`);
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

from transferlab.analysis import fit_smooth_head, fit_transforms, transfer_bound
from transferlab.data import subsample
from transferlab.features import FeatureCache
from transferlab.models import load_checkpoint
from transferlab.scores import leep, logme
from transferlab.studies._bound_config import BoundConfig
from transferlab.studies._selection_config import TargetSpec, build_target
from transferlab.studies._study import JobSpec, Plan, Study, StudyRun, study_runner
from transferlab.train import fit_linear_probe, standardise
from transferlab.zoo import MemberRecipe, build_zoo, load_member_task, load_recipe, zoo_root

#: A pair reads everything but the choice of members (``roles``) and of targets (its arguments).
PAIR = JobSpec("bound-pair", "transferlab.studies._bound:pair_job", BoundConfig,
               reads=("zoo", "zoo_preset", "train_per_class", "test_per_class", "source_per_class",
                      "source_eval_per_class", "head", "transform", "probe_weight_decay", "seed"))


@dataclass(frozen=True)
class BoundResult:
    """One row per (member, target), the summary across pairs, the verdicts, and where the files went."""

    config: BoundConfig
    pairs: tuple[dict, ...]
    summary: tuple[dict, ...]
    claims: tuple[dict, ...]
    out_dir: Path | None = None
    files: dict = field(default_factory=dict)


def _shrink(task, *, train: int, test: int, seed: int):
    """At most ``train`` / ``test`` samples per class (fewer where a class has fewer)."""
    low_train = int(np.bincount(task.y_train).min())
    low_test = int(np.bincount(task.y_test).min())
    return subsample(task, train_per_class=min(train, low_train), test_per_class=min(test, low_test), seed=seed)


# --------------------------------------------------------------------------- the job


def pair_job(*, config: dict, member: str, member_digest: str, target: dict, device: str = "cpu") -> dict:
    """The bound, its terms, the probe's real loss, LogME and LEEP for one (member, target)."""
    cfg = PAIR.view(config)
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
    zs_train, zs_test, _, _ = standardise(fs_train, fs_test)
    zt_train, zt_test, _, _ = standardise(ft_train, ft_test)
    start = time.perf_counter()
    head = fit_smooth_head(zs_train, source.y_train, n_classes=source.n_classes, seed=cfg.seed, device=device,
                           **cfg.head.to_dict())
    seconds["head"] = time.perf_counter() - start
    start = time.perf_counter()
    fit = fit_transforms(zs_train, source.y_train, zt_train, task.y_train, head_weight=head.weight,
                         head_bias=head.bias, seed=cfg.seed, device=device, progress=False, **cfg.transform.to_dict())
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


def _plan(cfg: BoundConfig, run: StudyRun) -> Plan:
    for target in cfg.targets:  # fail early on a target that cannot be built
        build_target(target, "full", cfg)
    zoo = build_zoo(cfg.zoo, cfg.zoo_preset, device=run.device, progress=run.progress, console=run.console)
    members = [m for m in zoo if m.role in cfg.roles]
    if not members:
        raise ValueError(f"zoo {cfg.zoo!r} ({cfg.zoo_preset}) has no member with a role in {list(cfg.roles)}")
    jobs = [PAIR.make(cfg, member=m.name, member_digest=m.metadata["member_digest"], target=t.to_dict(),
                      device=run.device)
            for m in members for t in cfg.targets]
    message = f"[bold]bound[/] {len(members)} members x {len(cfg.targets)} targets: {len(jobs)} pair jobs"
    return Plan({"pairs": jobs}, context={"members": {m.name: m for m in members}}, message=message)


def _collect(cfg: BoundConfig, plan: Plan, results: dict) -> dict:
    from transferlab.studies._bound_report import summarise_bound

    by_name = plan.context["members"]
    pairs = []
    for job in plan.jobs["pairs"]:
        r = dict(results[job.key])
        m = by_name[job.kwargs["member"]]
        seconds = r.pop("seconds")
        pairs.append({"model": m.name, "arch": m.arch, "source": m.source, "role": m.role,
                      "target": TargetSpec(**job.kwargs["target"]).name, **r,
                      **{f"seconds_{k}": float(v) for k, v in seconds.items()}})
    summary, claims = summarise_bound(cfg, pairs)
    return {"pairs": pairs, "summary": summary, "claims": claims}


def _report(cfg: BoundConfig, tables: dict, run: StudyRun) -> BoundResult:
    from transferlab.studies._bound_report import write_bound_report

    files = write_bound_report(cfg, run.out_dir, tables["pairs"], tables["summary"], tables["claims"])
    return BoundResult(config=cfg, pairs=tuple(tables["pairs"]), summary=tuple(tables["summary"]),
                       claims=tuple(tables["claims"]), out_dir=run.out_dir, files=files)


BOUND = Study("bound", BoundConfig, plan=_plan, collect=_collect, report=_report, presets="bound")

run_bound = study_runner(
    BOUND, "run_bound", __name__, returns=BoundResult,
    summary="Run the transfer-bound study for one preset and write its tables, figures and report.",
)
