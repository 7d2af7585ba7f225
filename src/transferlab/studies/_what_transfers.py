"""The what-transfers study: what a pre-trained network gives its fine-tuned descendants.

Neyshabur, Sedghi & Zhang, "What is being transferred in transfer learning?"
(NeurIPS 2020), at our scale (DESIGN.md, "What-transfers study"). A network P is
pre-trained on a source with checkpoints along training. For every target, at
every block size of a block shuffle (the same permutation for train and test,
one per seed), two fine-tunings from P (P-T) and two trainings from random
initialisations (RI-T) are compared: accuracy, mistake agreement, linear CKA
per stage, weight distance per stage, the loss along the straight path between
the two P-T and between the two RI-T solutions (batch norm re-estimated at every
point), and the module criticality of every stage of one P-T and one RI-T run;
and the target accuracy when fine-tuning from each checkpoint of P.

Every pre-training, target and checkpoint run is a job with a deterministic key
in the results store, so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from transferlab._paths import home
from transferlab.analysis import cka, interpolate, mistake_agreement, module_criticality, weight_distance
from transferlab.data import block_shuffle, load_sized
from transferlab.features import extract
from transferlab.models import build_for_spec, load_checkpoint, to_input
from transferlab.studies._what_transfers_report import claims_from, write_what_transfers_report
from transferlab.studies._study import ClaimsResult, JobSpec, Plan, Study, StudyRun, claims_report, study_runner
from transferlab.studies._what_transfers_config import WhatTransfersConfig
from transferlab.train import evaluate, fit

_MODULE = "transferlab.studies._what_transfers"
_PAIRS = (("P-P", "P-T", 0, "P-T", 1), ("RI-RI", "RI-T", 0, "RI-T", 1), ("P-RI", "P-T", 0, "RI-T", 0))
_SIZES = ("train_per_class", "test_per_class")  # what _target reads

PRETRAIN = JobSpec("wt-pretrain", f"{_MODULE}:pretrain_job", WhatTransfersConfig,
                   reads=("source", *_SIZES, "arch", "pretrain", "checkpoint_epochs"))
TARGET = JobSpec("wt-target", f"{_MODULE}:target_job", WhatTransfersConfig,
                 reads=(*_SIZES, "arch", "checkpoint_epochs", "finetune", "interpolation_points", "criticality"))
#: The block size of a checkpoint job (the largest of the preset) is one of its arguments.
CHECKPOINT = JobSpec("wt-checkpoint", f"{_MODULE}:checkpoint_job", WhatTransfersConfig,
                     reads=(*_SIZES, "finetune"))


class WhatTransfersResult(ClaimsResult):
    """Tidy rows of every measure, the verdicts, and where the files went (``config`` is a :class:`WhatTransfersConfig`)."""


def _target(cfg, spec: str, seed: int, block: int):
    task = load_sized(spec, defaults={"train_per_class": cfg.train_per_class, "test_per_class": cfg.test_per_class,
                                      "seed": seed})
    side = task.x_train.shape[-1]
    return task if block >= side else block_shuffle(task, block, seed=seed)


def _build(cfg, task, seed: int):
    return build_for_spec(cfg.arch, task.x_train.shape[1:], task.n_classes, seed=seed)


def _predict(model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return np.concatenate([model(to_input(x[lo : lo + batch_size])).argmax(1).numpy()
                               for lo in range(0, x.shape[0], batch_size)])


def _numpy_state(model) -> dict:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items() if v.is_floating_point()}


# --------------------------------------------------------------------------- jobs


def pretrain_job(*, config: dict, seed: int, device: str = "cpu") -> dict:
    """Pre-train P on the source with checkpoints; returns where they are.

    The folder is named for the digest of what the pre-training reads, so other
    settings share it.
    """
    cfg = PRETRAIN.view(config)
    source = load_sized(cfg.source, defaults={"train_per_class": cfg.train_per_class,
                                              "test_per_class": cfg.test_per_class, "seed": seed})
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    directory = home() / "what-transfers" / f"pretrain-{digest}-seed{seed}"
    model = _build(cfg, source, seed)
    fit(model, source, cfg.pretrain.replace(seed=seed, device=device), checkpoint_epochs=cfg.checkpoint_epochs,
        checkpoint_dir=directory, checkpoint_metadata={"source": cfg.source, "seed": seed}, progress=False)
    return {"dir": str(directory), "source_accuracy": evaluate(model, source, device=device)[1]}


def _checkpoint(directory: str, epoch: int, device: str):
    return load_checkpoint(Path(directory) / f"epoch_{epoch:03d}.safetensors", device=device).model


def _fine_tune(start, task, cfg, seed: int, device: str):
    """``(initial, trained)``: a copy of ``start`` with a new seeded head, then that copy trained."""
    model = copy.deepcopy(start)
    model.replace_head(task.n_classes, seed=seed)
    initial = copy.deepcopy(model)
    fit(model, task, cfg.finetune.replace(seed=seed, device=device), progress=False)
    return initial, model


def target_job(*, config: dict, seed: int, target: str, block: int, pretrained: str, device: str = "cpu") -> dict:
    """Two P-T and two RI-T runs on one (target, block size) and every pairwise measure."""
    cfg = TARGET.view(config)
    task = _target(cfg, target, seed, block)
    p = _checkpoint(pretrained, cfg.checkpoint_epochs[-1], device)
    runs = {}
    for k in (0, 1):
        runs[("P-T", k)] = _fine_tune(p, task, cfg, 100 * seed + k, device)
        runs[("RI-T", k)] = _fine_tune(_build(cfg, task, 10_000 + 100 * seed + k), task, cfg, 100 * seed + k, device)
    common = {"target": target, "block": block, "seed": seed}
    accuracy = [{**common, "model": kind, "run": k, "accuracy": evaluate(m, task, device=device)[1]}
                for (kind, k), (_, m) in runs.items()]
    stages = list(p.stage_names)
    x_test, y_test = task.x_test, task.y_test
    # Predictions and per-stage features once per run: P-T 0 and RI-T 0 each sit in two pairs.
    preds = {run: _predict(m, x_test) for run, (_, m) in runs.items()}
    feats = {(run, stage): extract(m, x_test, stage=stage, device=device) for run, (_, m) in runs.items()
             for stage in stages}
    pairs, curves, criticality = [], [], []
    for name, kind_a, ka, kind_b, kb in _PAIRS:
        ra, rb = (kind_a, ka), (kind_b, kb)
        a, b = runs[ra][1], runs[rb][1]
        row = {**common, "pair": name, **mistake_agreement(preds[ra], preds[rb], y_test)}
        for stage in stages:
            row[f"cka_{stage}"] = cka(feats[(ra, stage)], feats[(rb, stage)])
        distances = weight_distance(_numpy_state(a), _numpy_state(b), groups=[f"stages.{s}." for s in stages])
        row.update({f"l2_{s}": distances[f"stages.{s}."] for s in stages}, l2_total=distances["total"])
        pairs.append(row)
        if name != "P-RI":  # the paper interpolates between two P-T and between two RI-T solutions
            path = interpolate(a, b, task, task, n_points=cfg.interpolation_points, device=device)
            for i, t in enumerate(path["t"]):
                curves.append({**common, "pair": name, "t": t, "train_loss": path["train_loss"][i],
                               "test_loss": path["test_loss"][i], "test_error": path["test_error"][i],
                               "train_barrier": path["train_barrier"], "test_barrier": path["test_barrier"]})
    crit = cfg.criticality
    for kind in ("P-T", "RI-T"):
        initial, trained = runs[(kind, 0)]
        for r in module_criticality(initial, trained, task, epsilon=crit.epsilon, alphas=crit.alphas,
                                    sigmas=crit.sigmas, n_samples=crit.n_samples, seed=seed,
                                    device=device):
            criticality.append({**common, "model": kind, "stage": r["stage"], "depth": stages.index(r["stage"]) + 1,
                                "criticality": r["criticality"], "alpha": r["alpha"], "sigma": r["sigma"]})
    return {"accuracy": accuracy, "pairs": pairs, "interpolation": curves, "criticality": criticality}


def checkpoint_job(
    *, config: dict, seed: int, target: str, block: int, epoch: int, pretrained: str, device: str = "cpu"
) -> dict:
    """Target accuracy when fine-tuning from the pre-training checkpoint of ``epoch`` (blocks of ``block``)."""
    cfg = CHECKPOINT.view(config)
    task = _target(cfg, target, seed, block)
    _, model = _fine_tune(_checkpoint(pretrained, epoch, device), task, cfg, 100 * seed, device)
    return {"target": target, "seed": seed, "epoch": epoch, "accuracy": evaluate(model, task, device=device)[1]}


# --------------------------------------------------------------------------- the study


def _plan(cfg: WhatTransfersConfig, run: StudyRun) -> Plan:
    """Pre-training first (one job per seed, run here); then every target and checkpoint job."""
    pre = {s: PRETRAIN.make(cfg, seed=s, device=run.device) for s in cfg.seeds}
    run.console.print(f"[bold]what-transfers[/] pre-training {len(pre)} network(s) on {cfg.source}")
    pretrained = run.run(list(pre.values()))
    targets, checkpoints = [], []
    for s in cfg.seeds:
        directory = pretrained[pre[s].key]["dir"]
        for target in cfg.targets:
            for block in cfg.block_sizes:
                targets.append(TARGET.make(cfg, seed=s, target=target, block=block, pretrained=directory,
                                           device=run.device))
            for epoch in cfg.checkpoint_epochs:
                checkpoints.append(CHECKPOINT.make(cfg, seed=s, target=target, block=max(cfg.block_sizes),
                                                   epoch=epoch, pretrained=directory, device=run.device))
    message = f"[bold]what-transfers[/] {len(targets)} target and {len(checkpoints)} checkpoint jobs"
    return Plan({"targets": targets, "checkpoints": checkpoints}, message=message)


def _collect(cfg: WhatTransfersConfig, plan: Plan, results: dict) -> dict:
    targets = plan.jobs["targets"]
    tables = {name: [row for job in targets for row in results[job.key][name]]
              for name in ("accuracy", "pairs", "interpolation", "criticality")}
    tables["checkpoints"] = [dict(results[job.key]) for job in plan.jobs["checkpoints"]]
    return tables


WHAT_TRANSFERS = Study("what-transfers", WhatTransfersConfig, plan=_plan, collect=_collect, presets="what_transfers",
                       report=claims_report(WhatTransfersResult, claims_from, write_what_transfers_report))

run_what_transfers = study_runner(
    WHAT_TRANSFERS, "run_what_transfers", __name__, returns=WhatTransfersResult,
    summary="""Run the what-transfers study for one preset and write its tables, figures and report.

Pre-training runs first (one job per seed); then every target, block size and checkpoint job.""",
)
