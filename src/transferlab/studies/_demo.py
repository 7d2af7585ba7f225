"""The demo: rank a built-in zoo for a target task, and check it by fine-tuning.

The first vertical slice of the model-selection benchmark (Deshpande et al.
2021, "A linearized framework and a new benchmark for model selection for
fine-tuning"): build (or reuse) the zoo, score every expert on the target with
LogME and LEEP, fine-tune every expert on the target over a grid of learning
rates for the ground truth, and report how well each score ranks the experts.
Every expensive step is cached: the zoo as checkpoints, features as arrays, and
fine-tuning results in the SQLite store, so a second run is fast.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from transferlab.data import load_sized, subsample
from transferlab.evaluate import trials_to_best, weighted_kendall
from transferlab.features import FeatureCache
from transferlab.models import load_checkpoint
from transferlab.rank import Ranking, rank_zoo
from transferlab.report import plot_score_vs_accuracy, write_csv
from transferlab.studies._config import StudyConfig, setting
from transferlab.studies._selection import fine_tune_record
from transferlab.studies._study import JobSpec, Plan, Study, StudyRun, run_study
from transferlab.train import TrainConfig, fine_tune
from transferlab.zoo import build_zoo, load_recipe, zoo_root

_DEMO_ROLES = ("single", "generic")


@dataclass(frozen=True)
class DemoPreset(StudyConfig):
    """Sizes of one demo run."""

    zoo_preset: str
    target: str
    target_train_per_class: int = setting(min_val=2)
    target_test_per_class: int = setting(min_val=1)
    score_per_class: int = setting(min_val=2)
    fine_tune: TrainConfig
    lrs: tuple[float, ...] = setting(min_val=0, include_boundaries="neither", min_len=1)
    scores: tuple[str, ...] = setting(("logme", "leep"), min_len=1)


PRESETS: dict[str, DemoPreset] = {
    "tiny": DemoPreset(
        zoo_preset="tiny",
        target="glyphs:digits",
        target_train_per_class=20,
        target_test_per_class=10,
        score_per_class=20,
        fine_tune=TrainConfig(epochs=3, batch_size=32),
        lrs=(0.05, 0.01),
    ),
    "small": DemoPreset(
        zoo_preset="small",
        target="glyphs:greek",
        target_train_per_class=60,
        target_test_per_class=40,
        score_per_class=60,
        fine_tune=TrainConfig(epochs=8, batch_size=32),
        lrs=(0.05, 0.01, 0.002),
    ),
}

#: Fine-tuning one member reads everything but the scores and how many samples they see.
FINETUNE = JobSpec("demo-finetune", "transferlab.studies._demo:finetune_job", DemoPreset,
                   reads=("zoo_preset", "target", "target_train_per_class", "target_test_per_class", "fine_tune",
                          "lrs"))


@dataclass(frozen=True)
class DemoResult:
    """What the demo found and where it wrote it."""

    target: str
    ranking: Ranking
    rows: tuple[dict, ...]
    taus: dict
    trials: dict
    out_dir: Path
    csv_path: Path
    figure_path: Path
    seconds: dict = field(default_factory=dict)


def _load_target(cfg):
    return load_sized(cfg.target, train_per_class=cfg.target_train_per_class, test_per_class=cfg.target_test_per_class)


def finetune_job(*, config: dict, member: str, member_digest: str, device: str = "cpu") -> dict:
    """Fine-tune one zoo member on the demo's target over the preset's learning rates."""
    cfg = FINETUNE.view(config)
    checkpoint = load_checkpoint(zoo_root(load_recipe("builtin", cfg.zoo_preset)) / f"{member}.safetensors",
                                 device=device)
    if checkpoint.metadata.get("member_digest") != member_digest:
        raise ValueError(f"zoo member {member!r} changed since the job was made; rebuild the zoo and rerun")
    result = fine_tune(checkpoint.model, _load_target(cfg), cfg.fine_tune.replace(device=device), lrs=cfg.lrs,
                       head_seed=0, progress=False)
    return fine_tune_record(result)


def _plan(cfg: DemoPreset, run: StudyRun) -> Plan:
    """Build the zoo and rank it here; one fine-tuning job per member."""
    start = time.perf_counter()
    zoo = build_zoo("builtin", cfg.zoo_preset, device=run.device, progress=run.progress, console=run.console)
    # The single-domain experts and the generic ones: the demo fine-tunes every member it ranks,
    # and the study (`transferlab study selection`) covers the rest of the zoo.
    zoo = dataclasses.replace(zoo, members=tuple(m for m in zoo if m.role in _DEMO_ROLES))
    run.seconds["zoo"] = time.perf_counter() - start

    target = _load_target(cfg)
    scored = target
    if cfg.score_per_class < cfg.target_train_per_class:
        scored = subsample(target, train_per_class=cfg.score_per_class)
    run.console.print(
        f"[bold]demo[/] target {cfg.target}: {target.n_classes} classes, "
        f"{len(target.y_train)} train and {len(target.y_test)} test images"
    )
    start = time.perf_counter()
    ranking = rank_zoo(zoo, scored, cfg.scores, cache=FeatureCache(), device=run.device, progress=run.progress,
                       bootstrap=0)
    run.seconds["scoring"] = time.perf_counter() - start
    jobs = [FINETUNE.make(cfg, member=m.name, member_digest=m.metadata["member_digest"], device=run.device)
            for m in zoo]
    return Plan({"finetune": jobs}, context={"ranking": ranking, "title": f"{zoo.recipe.name} zoo fine-tuned on "
                                             f"{cfg.target}"},
                message=f"[bold]demo[/] fine-tuning {len(jobs)} members on {cfg.target}")


def _collect(cfg: DemoPreset, plan: Plan, results: dict) -> dict:
    accuracy = {job.kwargs["member"]: results[job.key] for job in plan.jobs["finetune"]}
    ranking = plan.context["ranking"]
    rows = []
    for row in ranking.rows:
        ft = accuracy[row["model"]]
        rows.append({**row, "fine_tuned_accuracy": ft["best_test_accuracy"], "best_lr": ft["best_lr"]})
    acc = [r["fine_tuned_accuracy"] for r in rows]
    taus = {s: _weighted_kendall_or_none([r[s] for r in rows], acc) for s in cfg.scores}
    trials = {s: trials_to_best([r[s] for r in rows], acc) for s in cfg.scores}
    return {"ranking": ranking, "rows": rows, "taus": taus, "trials": trials, "title": plan.context["title"]}


def _report(cfg: DemoPreset, tables: dict, run: StudyRun) -> DemoResult:
    rows = tables["rows"]
    csv_path = run.out_dir / "ranking.csv"
    write_csv(csv_path, rows)
    figure_path = plot_score_vs_accuracy(rows, cfg.scores, run.out_dir / "score_vs_accuracy.png",
                                         title=tables["title"], taus=tables["taus"])
    seconds = dict(run.seconds)
    seconds["fine_tuning"] = seconds.pop("jobs")
    return DemoResult(cfg.target, tables["ranking"], tuple(rows), tables["taus"], tables["trials"], run.out_dir,
                      csv_path, figure_path, seconds)


DEMO = Study("demo", DemoPreset, plan=_plan, collect=_collect, report=_report, presets=PRESETS)


def run_demo(
    preset: str = "small",
    *,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
    console: Console | None = None,
) -> DemoResult:
    """Build the zoo, rank it for the target, fine-tune every expert, compare.

    ``preset`` is ``"tiny"`` (seconds; tests, CI) or ``"small"`` (minutes on a
    laptop), see :data:`PRESETS`; the files go to ``out_dir`` (default
    ``transferlab-out/demo-<preset>``): ``ranking.csv``, ``score_vs_accuracy.png``,
    ``config.json`` and ``provenance.json``. The other parameters are
    :func:`~transferlab.studies.run_study`'s; the fine-tuning jobs run in this
    process and their results are kept in the results store.
    """
    return run_study(DEMO, preset, out_dir=out_dir, device=device, progress=progress, console=console)


def _weighted_kendall_or_none(scores, accuracies) -> float | None:
    # Undefined (None, never NaN) when every model reached the same accuracy or got the same score.
    try:
        return weighted_kendall(scores, accuracies)
    except ValueError:
        return None
