"""The correlation study: Alice pre-trains, Bob reuses; task and feature correlation are knobs.

Mohamud & Brink, "An empirical study of task and feature correlations in the
reuse of pre-trained models". The paper does not publish its generator; ours is
in DESIGN.md ("Correlation study") and in :mod:`transferlab.data._pairs` and
:mod:`transferlab.studies._correlation_toy`. Five parts, each over several seeds:

1. the linear toy (feature correlation alpha, task correlation beta): Alice's
   weights against alpha and Bob's accuracy, empirical next to the closed form;
2. concatenated images ``[x_left | x_right]`` with task correlation beta, per
   dataset pair: Bob's accuracy when only his output layer is trained on Alice's
   network, next to chance and to the same probe on a randomly initialised
   network of the same architecture;
3. layer-wise reuse: freeze Alice's first ``l - 1`` stages and fine-tune stages
   ``l..L`` and a new head on Bob's task, for an MLP and a ConvNet;
4. integrated-gradients attribution: the share of the attribution mass on the
   left half for Alice's model and Bob's (Alice's network with his probe head);
5. a semantic case on real data: Alice on one grouping of classes, Bob on a
   related and on an unrelated grouping, with output-layer reuse and full
   fine-tuning.

Every (part, setting, seed) is a job with a deterministic key in the SQLite
store, so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from transferlab._validation import check_scalar
from transferlab.analysis import half_shares, integrated_gradients
from transferlab.data import concat_pairs, k_shot, load_sized, relabel
from transferlab.models import StagedModel, build_for_spec
from transferlab.studies._correlation_config import CorrelationConfig
from transferlab.studies._correlation_toy import run_toy
from transferlab.studies._correlation_report import claims_from, write_correlation_report
from transferlab.studies._study import ClaimsResult, JobSpec, Plan, Study, StudyRun, claims_report, study_runner
from transferlab.features import linear_probe
from transferlab.train import TrainConfig, evaluate, fit

_MODULE = "transferlab.studies._correlation"
_PAIR_SIZES = ("train_per_class", "test_per_class", "n_train", "n_test")  # what make_pairs reads

TOY = JobSpec("corr-toy", f"{_MODULE}:toy_job", CorrelationConfig, reads=("toy",))
PAIR = JobSpec("corr-pair", f"{_MODULE}:pair_job", CorrelationConfig,
               reads=(*_PAIR_SIZES, "alice", "train", "attribution"))
LAYERWISE = JobSpec("corr-layerwise", f"{_MODULE}:layerwise_job", CorrelationConfig,
                    reads=(*_PAIR_SIZES, "train", "layerwise"))
SEMANTIC = JobSpec("corr-semantic", f"{_MODULE}:semantic_job", CorrelationConfig,
                   reads=("alice", "train", "semantic"))


class CorrelationResult(ClaimsResult):
    """Tidy rows of every part, and where the tables, figures and report went (``config`` is a :class:`CorrelationConfig`)."""


# --------------------------------------------------------------------------- building blocks


def make_pairs(cfg, pair, beta: float, seed: int):
    """Alice's and Bob's tasks on concatenated images of ``pair`` at task correlation ``beta``."""
    left, right = (
        load_sized(spec, defaults={"train_per_class": cfg.train_per_class, "test_per_class": cfg.test_per_class,
                                   "seed": seed})
        for spec in pair
    )
    return concat_pairs(left, right, beta, n_train=cfg.n_train, n_test=cfg.n_test, seed=seed)


def _build(arch_config: dict, task, seed: int) -> StagedModel:
    return build_for_spec(arch_config, task.x_train.shape[1:], task.n_classes, seed=seed)


def train_alice(arch_config: dict, task, train: TrainConfig, seed: int, device: str = "cpu") -> StagedModel:
    """A fresh network of ``arch_config`` trained on Alice's task (seeded init and batches)."""
    model = _build(arch_config, task, seed)
    fit(model, task, train.replace(seed=seed, device=device), progress=False)
    return model


def with_probe_head(model: StagedModel, probe) -> StagedModel:
    """A copy of ``model`` whose head is the linear probe folded into one ``nn.Linear``.

    The probe acts on standardised features, ``W (f - m) / s + b``, which is
    the linear map ``(W / s) f + (b - (W / s) m)``.
    """
    bob = copy.deepcopy(model)
    head = bob.replace_head(probe.weight.shape[0])
    weight = probe.weight / probe.scale[None, :]
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight, dtype=head.weight.dtype))
        head.bias.copy_(torch.as_tensor(probe.bias - weight @ probe.mean, dtype=head.bias.dtype))
    return bob


def fine_tune_from_stage(
    alice: StagedModel, task, first_trained: int, train: TrainConfig, seed: int, device: str = "cpu"
) -> tuple[StagedModel, float]:
    """Freeze Alice's first ``first_trained - 1`` stages, train stages ``first_trained..L`` and a new head.

    ``first_trained = 1`` fine-tunes everything; ``L + 1`` trains the head only.
    Returns the trained copy and its test accuracy on ``task``.
    """
    n_stages = len(alice.stage_names)
    first_trained = check_scalar(first_trained, "first_trained", int, min_val=1, max_val=n_stages + 1)
    bob = copy.deepcopy(alice)
    bob.replace_head(task.n_classes, seed=seed)
    bob.freeze_stages(first_trained - 1)
    fit(bob, task, train.replace(seed=seed, device=device), progress=False)
    return bob, evaluate(bob, task, device=device)[1]


#: Fewest SGD steps of Bob's fine-tuning runs in the semantic part (his few-shot data
#: would otherwise give a handful of updates).
_SEMANTIC_MIN_STEPS = 100


def _with_min_steps(train: TrainConfig, n: int, steps: int) -> TrainConfig:
    """``train`` with enough whole epochs over ``n`` samples for at least ``steps`` SGD steps."""
    per_epoch = -(-n // train.batch_size)
    return train.replace(epochs=max(train.epochs, -(-steps // per_epoch)))


def _chance(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class."""
    return float(np.bincount(labels).max() / labels.shape[0])


def _left_share(model, task, n: int, steps: int, device: str, seed: int) -> float:
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.permutation(task.x_test.shape[0])[: min(n, task.x_test.shape[0])])
    attr = integrated_gradients(model, task.x_test[idx], task.y_test[idx], n_steps=steps, device=device)
    return float(half_shares(attr).mean())


# --------------------------------------------------------------------------- jobs (run anywhere)


def toy_job(*, config: dict, seed: int) -> dict:
    """Part 1 for one seed."""
    toy = TOY.view(config).toy
    rows = run_toy(k=toy.k, alphas=toy.alphas, betas=toy.betas, decays=toy.decays,
                   n_train=toy.n_train, n_test=toy.n_test, steps=toy.steps, seed=seed)
    return {"rows": rows}


def pair_job(*, config: dict, pair: list, beta: float, seed: int, device: str = "cpu") -> dict:
    """Parts 2 and 4 for one (pair, beta, seed): Alice, Bob's probe, the random-init probe, attributions."""
    cfg = PAIR.view(config)
    start = time.perf_counter()
    tasks = make_pairs(cfg, pair, beta, seed)
    alice = train_alice(cfg.alice, tasks.alice, cfg.train, seed, device)
    probe = linear_probe(alice, tasks.bob, device=device)
    random_probe = linear_probe(_build(cfg.alice, tasks.alice, seed + 10_000), tasks.bob, device=device)
    bob = with_probe_head(alice, probe)
    n, steps = cfg.attribution.n, cfg.attribution.steps
    return {
        "pair": "|".join(pair),
        "same_source": pair[0] == pair[1],
        "beta": beta,
        "seed": seed,
        "alice_accuracy": evaluate(alice, tasks.alice, device=device)[1],
        "bob_probe_accuracy": probe.test_accuracy,
        "random_init_accuracy": random_probe.test_accuracy,
        "chance": _chance(tasks.bob.y_test),
        "alice_left_share": _left_share(alice, tasks.alice, n, steps, device, seed),
        "bob_left_share": _left_share(bob, tasks.bob, n, steps, device, seed),
        "seconds": time.perf_counter() - start,
    }


def layerwise_job(*, config: dict, arch: str, beta: float, seed: int, device: str = "cpu") -> dict:
    """Part 3 for one (arch, beta, seed): Bob's accuracy for every first trained stage ``l``."""
    cfg = LAYERWISE.view(config)
    lw = cfg.layerwise
    tasks = make_pairs(cfg, lw.pair, beta, seed)
    arch_config = {"arch": arch, **lw.archs[arch]}
    alice = train_alice(arch_config, tasks.alice, cfg.train, seed, device)
    rows = []
    for first in range(1, len(alice.stage_names) + 2):
        _, accuracy = fine_tune_from_stage(alice, tasks.bob, first, lw.train, seed, device)
        rows.append({"arch": arch, "beta": beta, "seed": seed, "first_trained": first,
                     "n_stages": len(alice.stage_names), "bob_accuracy": accuracy})
    return {"rows": rows}


def semantic_job(*, config: dict, seed: int, device: str = "cpu") -> dict:
    """Part 5 for one seed: Alice on one grouping; Bob on a related and an unrelated one.

    Bob has ``bob_shots`` training images per group (all when unset): with plenty
    of data every method reaches the ceiling and the comparison says nothing.
    """
    cfg = SEMANTIC.view(config)
    sem = cfg.semantic
    base = load_sized(sem.source, defaults={"train_per_class": sem.train_per_class,
                                            "test_per_class": sem.test_per_class, "seed": seed})

    def grouping(groups):
        return relabel(base, {f"group{i}": g for i, g in enumerate(groups)})

    alice_task = grouping(sem.alice)
    alice = train_alice(cfg.alice, alice_task, cfg.train, seed, device)
    rows = []
    for relation in ("related", "unrelated"):
        task = grouping(getattr(sem, relation))
        if sem.bob_shots is not None:
            task = k_shot(task, sem.bob_shots, seed=seed)
        random_net = _build(cfg.alice, task, seed + 10_000)
        train = _with_min_steps(cfg.train, len(task.y_train), _SEMANTIC_MIN_STEPS)
        _, finetuned = fine_tune_from_stage(alice, task, 1, train, seed, device)
        _, scratch = fine_tune_from_stage(random_net, task, 1, train, seed, device)
        for method, accuracy in (
            ("output layer (Alice's network)", linear_probe(alice, task, device=device).test_accuracy),
            ("output layer (random network)", linear_probe(random_net, task, device=device).test_accuracy),
            ("full fine-tuning from Alice", finetuned),
            ("training from scratch", scratch),
        ):
            rows.append({"bob_task": relation, "method": method, "seed": seed, "accuracy": accuracy,
                         "chance": _chance(task.y_test)})
    alice_accuracy = evaluate(alice, alice_task, device=device)[1]
    return {"rows": rows, "alice_accuracy": alice_accuracy}


# --------------------------------------------------------------------------- the study


def correlation_jobs(cfg: CorrelationConfig, *, device: str = "cpu") -> dict[str, list]:
    """Every job of the study, by part."""
    jobs = {"toy": [], "pairs": [], "layerwise": [], "semantic": []}
    for seed in cfg.seeds:
        jobs["toy"].append(TOY.make(cfg, seed=seed))
        jobs["semantic"].append(SEMANTIC.make(cfg, seed=seed, device=device))
        for beta in cfg.betas:
            for pair in cfg.pairs:
                jobs["pairs"].append(PAIR.make(cfg, pair=list(pair), beta=beta, seed=seed, device=device))
            for arch in cfg.layerwise.archs:
                jobs["layerwise"].append(LAYERWISE.make(cfg, arch=arch, beta=beta, seed=seed, device=device))
    return jobs


def _plan(cfg: CorrelationConfig, run: StudyRun) -> Plan:
    jobs = correlation_jobs(cfg, device=run.device)
    n_jobs = sum(len(part) for part in jobs.values())
    return Plan(jobs, message=f"[bold]correlation[/] {len(cfg.seeds)} seeds x {len(cfg.betas)} betas: {n_jobs} jobs")


def _collect(cfg: CorrelationConfig, plan: Plan, results: dict) -> dict:
    jobs = plan.jobs
    return {
        "toy": [row for job in jobs["toy"] for row in results[job.key]["rows"]],
        "pairs": [dict(results[job.key]) for job in jobs["pairs"]],
        "layerwise": [row for job in jobs["layerwise"] for row in results[job.key]["rows"]],
        "semantic": [row for job in jobs["semantic"] for row in results[job.key]["rows"]],
    }


CORRELATION = Study("correlation", CorrelationConfig, plan=_plan, collect=_collect, presets="correlation",
                    report=claims_report(CorrelationResult, claims_from, write_correlation_report))

run_correlation = study_runner(
    CORRELATION, "run_correlation", __name__, returns=CorrelationResult,
    summary="Run the correlation study for one preset and write its tables, figures and report.",
)
