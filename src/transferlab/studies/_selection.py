"""The model-selection benchmark: rank a zoo with every score, check by fine-tuning.

Deshpande, Achille, Ravichandran, Li, Zancato, Fowlkes, Bhotika, Soatto &
Perona, "A linearized framework and a new benchmark for model selection for
fine-tuning", 2021. For every target task and data regime (full, 20-shot,
5-shot; the test split always full):

1. every per-model score of the suite ranks the zoo from at most K training
   samples per class;
2. every member is fine-tuned over a grid of initial learning rates (new head,
   SGD with Nesterov momentum, step decay); the ground truth is the best test
   accuracy over the grid (the paper's protocol), and the test accuracy of the
   learning rate chosen on a validation split is kept beside it;
3. each score's ranking is compared with the ground truth (weighted Kendall tau,
   Spearman, Pearson, top-1/top-3 gain over the generic expert, relative top-k
   accuracy, trials to the best model, and their expectations under random
   selection), then averaged over targets with bootstrap 95% intervals;
4. the cost of brute force (fine-tuning everything) is set against scoring plus
   fine-tuning the top 1 and top 3.

Every scoring and fine-tuning run is a job with a deterministic key in the
SQLite store (:mod:`transferlab.runner`): a finished job is never redone, so an
interrupted study resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transferlab.data import subsample
from transferlab.features import FeatureCache
from transferlab.models import load_checkpoint
from transferlab.rank import rank_zoo
from transferlab.runner import cpu_threads
from transferlab.scores import spec as score_spec
from transferlab.studies._selection_config import (
    SelectionConfig,
    TargetSpec,
    build_target,
    fine_tune_config,
    long_budget,
)
from transferlab.studies._study import JobSpec, Plan, Study, StudyRun, study_runner
from transferlab.train import fine_tune
from transferlab.zoo import build_zoo, load_recipe, zoo_root

_MODULE = "transferlab.studies._selection"
_TARGET_FIELDS = ("train_per_class", "test_per_class", "seed")  # what build_target reads

#: Scoring reads the zoo, the target's sizes and the scores: not the fine-tuning grid.
SCORE = JobSpec("score", f"{_MODULE}:score_job", SelectionConfig,
                reads=("zoo", "zoo_preset", *_TARGET_FIELDS, "score_per_class", "scores"))
#: Fine-tuning reads the zoo, the target's sizes and the training grid: not the scores.
FINETUNE = JobSpec("finetune", f"{_MODULE}:finetune_job", SelectionConfig,
                   reads=("zoo", "zoo_preset", *_TARGET_FIELDS, "train", "steps", "lrs", "val_fraction"))
#: CPU threads of every scoring and fine-tuning job (part of its key): one, so that its numbers do not
#: depend on the machine's cores or the executor (torch splits a gradient's reductions across threads);
#: the study runs jobs side by side instead (``Study.parallel_jobs``).
JOB_THREADS = 1


@dataclass(frozen=True)
class SelectionResult:
    """Everything the benchmark measured, as tidy rows, and where it wrote them."""

    config: SelectionConfig
    finetune: tuple[dict, ...]
    scores: tuple[dict, ...]
    metrics: tuple[dict, ...]
    summary: tuple[dict, ...]
    cost: tuple[dict, ...]
    #: The paper's claims, each judged by a statistic's interval (``claims.csv``).
    claims: tuple[dict, ...] = ()
    out_dir: Path | None = None
    files: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- jobs (run anywhere)


def score_job(*, config: dict, target: dict, regime: str, zoo_digest: str, device: str = "cpu",
              score_seed: int | None = None, threads: int | None = None) -> dict:
    """Score every zoo member for one (target, regime) with every score of the preset.

    ``zoo_digest`` is the recipe digest the job was made for: part of its key, so
    a changed zoo is scored again. ``score_seed`` (default: the preset's seed)
    draws the K scoring samples per class and seeds the scores; the target task
    itself is always built with the preset's seed (the one fine-tuned). ``threads``:
    the CPU threads it runs on (None: the caller's).
    """
    with cpu_threads(threads):
        return _score(SCORE.view(config), target, regime, zoo_digest, device, score_seed)


def _score(cfg: SelectionConfig, target: dict, regime: str, zoo_digest: str, device: str, score_seed) -> dict:
    zoo = build_zoo(cfg.zoo, cfg.zoo_preset, device=device, progress=False)
    if zoo.recipe.digest != zoo_digest:
        raise ValueError("the zoo changed since the job was made; rerun the study")
    task = build_target(TargetSpec(**target), regime, cfg)
    seed = cfg.seed if score_seed is None else score_seed
    counts = min(int(c) for c in _class_counts(task))
    scored = subsample(task, train_per_class=min(cfg.score_per_class, counts), seed=seed)
    start = time.perf_counter()
    ranking = rank_zoo(zoo, scored, cfg.scores, cache=FeatureCache(), device=device, progress=False, seed=seed,
                       bootstrap=0)
    order = {member.name: i for i, member in enumerate(zoo)}
    rows = sorted(ranking.rows, key=lambda r: order[r["model"]])  # zoo order: not the decision's
    return {
        "rows": [{k: v for k, v in r.items() if k != "consensus_rank"} for r in rows],
        "scores": list(ranking.columns),
        "seconds": dict(ranking.seconds),
        "wall_seconds": time.perf_counter() - start,
        "n_scored": int(len(scored.y_train)),
    }


def finetune_job(*, config: dict, member: str, member_digest: str, target: dict, regime: str, device: str = "cpu",
                 threads: int | None = None) -> dict:
    """Fine-tune one member on one (target, regime) over the preset's LR grid, on ``threads`` CPU threads."""
    with cpu_threads(threads):
        return _finetune(FINETUNE.view(config), member, member_digest, target, regime, device)


def _finetune(cfg: SelectionConfig, member: str, member_digest: str, target: dict, regime: str, device: str) -> dict:
    recipe = load_recipe(cfg.zoo, cfg.zoo_preset)
    checkpoint = load_checkpoint(zoo_root(recipe) / f"{member}.safetensors", device=device)
    if checkpoint.metadata.get("member_digest") != member_digest:
        raise ValueError(f"zoo member {member!r} changed since the job was made; rebuild the zoo and rerun")
    task = build_target(TargetSpec(**target), regime, cfg)
    start = time.perf_counter()
    result = fine_tune(
        checkpoint.model,
        task,
        fine_tune_config(cfg, task).replace(device=device, seed=cfg.seed),
        lrs=cfg.lrs,
        head_seed=cfg.seed,
        val_fraction=cfg.val_fraction,
        progress=False,
    )
    return {**fine_tune_record(result), "seconds": time.perf_counter() - start}


def fine_tune_record(result) -> dict:
    """What a fine-tuning job stores of a :class:`~transferlab.train.FineTuneResult` (JSON)."""
    return {
        "best_test_accuracy": result.best_test_accuracy,
        "best_lr": result.best_lr,
        "val_selected_test_accuracy": result.val_selected_test_accuracy,
        "val_selected_lr": result.val_selected_lr,
        "per_lr": [dict(r) for r in result.per_lr],
    }


def _class_counts(task) -> np.ndarray:
    return np.bincount(task.y_train, minlength=task.n_classes)


# --------------------------------------------------------------------------- the study


def selection_jobs(cfg: SelectionConfig, zoo, *, device: str = "cpu") -> tuple[list, list]:
    """The scoring jobs (one per target and regime) and the fine-tuning jobs (one per member too)."""
    scoring, tuning = [], []
    for target in cfg.targets:
        for regime in cfg.regimes:
            common = {"target": target.to_dict(), "regime": regime, "device": device, "threads": JOB_THREADS}
            scoring.append(SCORE.make(cfg, zoo_digest=zoo.recipe.digest, **common))
            tuning += _tuning(cfg, zoo, common)
    return scoring, tuning


def _tuning(cfg: SelectionConfig, zoo, common: dict) -> list:
    return [FINETUNE.make(cfg, member=m.name, member_digest=m.metadata["member_digest"], **common) for m in zoo]


def setup_jobs(cfg: SelectionConfig, zoo, *, device: str = "cpu") -> dict[str, list]:
    """The scoring jobs of the scoring setups, by setup name (``"K=5"``, ``"seed=1"``), each varied alone.

    One job per target and regime of ``setup_regimes``; the default setup is the
    study's own scoring jobs.
    """
    regimes = cfg.setup_regimes or cfg.regimes
    out = {}
    for k in cfg.setup_score_per_class:
        varied = dataclasses.replace(cfg, score_per_class=k, setup_score_per_class=())
        out[f"K={k}"] = [SCORE.make(varied, zoo_digest=zoo.recipe.digest, target=t.to_dict(), regime=r, device=device,
                                    threads=JOB_THREADS) for t in cfg.targets for r in regimes]
    for seed in cfg.setup_seeds:
        out[f"seed={seed}"] = [SCORE.make(cfg, zoo_digest=zoo.recipe.digest, target=t.to_dict(), regime=r,
                                          device=device, score_seed=seed, threads=JOB_THREADS)
                             for t in cfg.targets for r in regimes]
    return out


def truth_jobs(cfg: SelectionConfig, zoo, *, device: str = "cpu") -> list:
    """The fine-tuning jobs of the ground-truth check: ``truth_factor`` times the budget on its targets."""
    if cfg.truth_factor is None:
        return []
    longer = long_budget(cfg)
    targets = [cfg.targets[i] for i in cfg.truth_targets] if cfg.truth_targets else list(cfg.targets)
    return [job for t in targets for r in (cfg.truth_regimes or cfg.regimes)
            for job in _tuning(longer, zoo, {"target": t.to_dict(), "regime": r, "device": device,
                                             "threads": JOB_THREADS})]


def _plan(cfg: SelectionConfig, run: StudyRun) -> Plan:
    start = time.perf_counter()
    zoo = build_zoo(cfg.zoo, cfg.zoo_preset, device=run.device, progress=run.progress, console=run.console)
    run.seconds["zoo"] = time.perf_counter() - start
    for regime in cfg.regimes:  # fail early on a regime the targets cannot hold
        for target in cfg.targets:
            build_target(target, regime, cfg)
    for name in cfg.scores or ():
        if name != "all":  # every registered score (rank.split_score_names)
            score_spec(name)
    scoring, tuning = selection_jobs(cfg, zoo, device=run.device)
    setups = setup_jobs(cfg, zoo, device=run.device)
    longer = truth_jobs(cfg, zoo, device=run.device)
    extra = sum(len(v) for v in setups.values())
    message = (f"[bold]selection[/] {len(zoo)} members x {len(cfg.targets)} targets x {len(cfg.regimes)} regimes: "
               f"{len(scoring)} scoring and {len(tuning)} fine-tuning jobs"
               + (f"; stability: {extra} scoring jobs of {len(setups)} other setups" if setups else "")
               + (f"; ground-truth check: {len(longer)} fine-tuning jobs at {cfg.truth_factor}x the budget"
                  if longer else ""))
    jobs = {"score": scoring, "finetune": tuning, "score_setups": [j for v in setups.values() for j in v],
            "finetune_long": longer}
    return Plan(jobs, context={"zoo": zoo, "setups": {name: [j.key for j in v] for name, v in setups.items()}},
                message=message)


def _finetune_rows(jobs, results: dict, members: dict) -> tuple[list, list]:
    """``(rows, per_lr_rows)`` of fine-tuning jobs: one row per job, one per learning rate of each."""
    rows, per_lr = [], []
    for job in jobs:
        r = results[job.key]
        kw = job.kwargs
        m = members[kw["member"]]
        rows.append({
            "target": TargetSpec(**kw["target"]).name,
            "regime": kw["regime"],
            "model": m.name,
            "arch": m.arch,
            "source": m.source,
            "role": getattr(m, "role", "single"),
            "best_test_accuracy": r["best_test_accuracy"],
            "best_lr": r["best_lr"],
            "val_selected_test_accuracy": r["val_selected_test_accuracy"],
            "seconds": r["seconds"],
        })
        per_lr += [{**{k: rows[-1][k] for k in ("target", "regime", "model")}, "lr": p["lr"],
                    "test_accuracy": p["test_accuracy"]} for p in r["per_lr"]]
    return rows, per_lr


def _score_rows(jobs, results: dict) -> tuple[list, list]:
    """``(rows, seconds)`` of scoring jobs: one row per member and (target, regime); the timings per job."""
    rows, seconds = [], []
    for job in jobs:
        r = results[job.key]
        kw = job.kwargs
        target = TargetSpec(**kw["target"]).name
        rows += [{"target": target, "regime": kw["regime"], **row} for row in r["rows"]]
        seconds.append({"target": target, "regime": kw["regime"], "scores": r["scores"], **r["seconds"]})
    return rows, seconds


def _collect(cfg: SelectionConfig, plan: Plan, results: dict) -> dict:
    from transferlab.studies._selection_report import evaluate_selection
    from transferlab.studies._selection_stability import stability_analyses
    from transferlab.studies._selection_truth import truth_sensitivity

    zoo = plan.context["zoo"]
    members = {m.name: m for m in zoo}
    finetune_rows, per_lr_rows = _finetune_rows(plan.jobs["finetune"], results, members)
    score_rows, score_seconds = _score_rows(plan.jobs["score"], results)
    by_key = {job.key: job for job in plan.jobs.get("score_setups", ())}
    setups = {name: _score_rows([by_key[k] for k in keys], results)[0]
              for name, keys in plan.context.get("setups", {}).items()}
    evaluation = evaluate_selection(cfg, zoo, finetune_rows, score_rows, score_seconds)
    names = list(dict.fromkeys(r["score"] for r in evaluation["metrics"]))
    evaluation["stability"] = stability_analyses(  # re-evaluation of the cached results only
        cfg, list(members), finetune_rows, score_rows, per_lr_rows, names, setups=setups,
    )
    long_rows, _ = _finetune_rows(plan.jobs.get("finetune_long", ()), results, members)
    evaluation["truth"] = truth_sensitivity(cfg, list(members), finetune_rows, long_rows, score_rows, names)
    return {"finetune": finetune_rows, "scores": score_rows, "evaluation": evaluation}


def _report(cfg: SelectionConfig, tables: dict, run: StudyRun) -> SelectionResult:
    from transferlab.studies._selection_report import write_report

    evaluation = tables["evaluation"]
    files = write_report(cfg, run.out_dir, tables["finetune"], tables["scores"], evaluation)
    return SelectionResult(
        config=cfg,
        finetune=tuple(tables["finetune"]),
        scores=tuple(tables["scores"]),
        metrics=tuple(evaluation["metrics"]),
        summary=tuple(evaluation["summary"]),
        cost=tuple(evaluation["cost"]),
        claims=tuple(evaluation.get("claims", ())),
        out_dir=run.out_dir,
        files=files,
        seconds=run.seconds,
    )


SELECTION = Study("selection", SelectionConfig, plan=_plan, collect=_collect, report=_report, presets="selection",
                  parallel_jobs=True)

run_selection = study_runner(
    SELECTION, "run_selection", __name__, returns=SelectionResult,
    summary="Run the model-selection benchmark for one preset and write its tables, report and figures.",
)
