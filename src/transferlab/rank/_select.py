"""Select: rank the candidates, fine-tune the top k, keep the best (Deshpande et al. 2021).

Deshpande, Achille, Ravichandran, Li, Zancato, Fowlkes, Bhotika, Soatto & Perona,
"A linearized framework and a new benchmark for model selection for fine-tuning"
(2021): scoring every candidate and fine-tuning only the top few costs a small
fraction of fine-tuning them all (brute force) and loses little accuracy.

:func:`select` ranks the candidates as :func:`~transferlab.rank.rank_models`
does, fine-tunes the first ``top_k`` of the order of one score (or of the
consensus rank), each one a job in the results store (a killed run resumes; a
larger ``top_k`` runs only the new candidates), and keeps the one with the best
*validation* accuracy (the test split only reports). :func:`finetune_job` is the
job: a new head on the candidate's feature layer, the candidate's own
preprocessing, a grid of learning rates chosen on a validation split carved
from the training images, a budget in steps or epochs, early stopping on the
validation loss, seeded; the fine-tuned model is written as a safetensors
checkpoint that :func:`transferlab.models.load_model` reads back (``file:``).
"""

from __future__ import annotations

import copy
import math
import numbers
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transferlab._paths import home
from transferlab._validation import check_scalar, check_seed
from transferlab.data import load_data
from transferlab.models import check_device, load_model, parse_spec, save_checkpoint, to_finetunable
from transferlab.rank._models import rank_models
from transferlab.rank._ranking import Ranking
from transferlab.runner import JobError, ResultStore, job_key, make_job, run_jobs
from transferlab.train import TrainConfig, evaluate, fit, stratified_split

#: The default grid of learning rates (SGD with Nesterov momentum, as ``train.fit``).
LRS = (0.03, 0.01)
#: How many candidates are fine-tuned by default (at most the number of candidates).
TOP_K = 3
#: The default budget: optimiser steps per learning rate.
STEPS = 30
#: Freezing choices: ``"none"`` fine-tunes everything; ``"backbone"`` trains the new head only (a linear
#: probe); an integer freezes that many first stages.
FREEZE = ("none", "backbone")
_JOB = "transferlab.rank._select:finetune_job"


@dataclass(frozen=True)
class Selection:
    """The outcome of :func:`select`.

    Attributes
    ----------
    ranking : Ranking
        The ranking of every candidate (as ``transferlab rank`` gives it).
    by : str
        What ordered the candidates: a score's name, or ``"consensus"``.
    rows : tuple of dict
        One per candidate, in selection order: ``model``, ``position`` (1 = first
        to fine-tune), ``score`` (the ordering value), ``fine_tuned`` and, for the
        fine-tuned ones, ``val_accuracy``, ``test_accuracy``, ``lr``,
        ``best_epoch``, ``seconds``, ``checkpoint``.
    chosen : str
        The fine-tuned candidate with the best validation accuracy (ties: the
        earlier in the order).
    checkpoint : Path
        The chosen model, saved as ``selected.safetensors`` in the output folder
        (or its place in the store when no folder was given).
    seconds : dict
        ``ranking`` (wall time of the ranking), ``fine_tuning`` (sum over the
        fine-tuned candidates, as measured by their jobs), ``total``.
    brute_force_seconds : float
        The mean measured fine-tuning time times the number of candidates.
    cost_ratio : float
        ``(ranking + fine_tuning) / brute_force_seconds``, the paper's cost ratio.
    regret : dict
        With every candidate fine-tuned (``top_k="all"``): for each ranking column,
        ``top1`` and ``top3``, the test accuracy points lost by fine-tuning only
        its first (first three) against the best candidate. Empty otherwise.
    settings : dict
        The fine-tuning settings (learning rates, budget, freezing, seed, ...).
    """

    ranking: Ranking
    by: str
    rows: tuple[dict, ...]
    chosen: str
    checkpoint: Path
    seconds: dict
    brute_force_seconds: float
    cost_ratio: float
    regret: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready dict of everything above (the ranking as :meth:`Ranking.to_dict`)."""
        return {
            "by": self.by, "chosen": self.chosen, "checkpoint": str(self.checkpoint),
            "rows": [dict(r) for r in self.rows], "seconds": dict(self.seconds),
            "brute_force_seconds": self.brute_force_seconds, "cost_ratio": self.cost_ratio,
            "regret": dict(self.regret), "settings": dict(self.settings), "ranking": self.ranking.to_dict(),
        }


def select(
    models,
    data,
    *,
    score: str | None = None,
    scores=None,
    top_k: int | str | None = None,
    lrs=LRS,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int = 32,
    freeze: str | int = "none",
    val_fraction: float = 0.2,
    patience: int | None = 3,
    seed: int = 0,
    device: str = "cpu",
    bootstrap: int = 100,
    executor: str = "inprocess",
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> Selection:
    """Rank ``models`` on ``data``, fine-tune the top ``top_k`` and keep the best on validation.

    Parameters
    ----------
    models : sequence of str
        Candidate specs: ``file:``, ``hf:``, ``timm:``, ``torchvision:`` (each
        fine-tuned and saved through :func:`transferlab.models.to_finetunable`;
        a network from ``wrap_module`` goes through :func:`finetune`).
    data : str or Path
        An image folder (one subfolder per class), a ``.csv`` or an ``.npz``
        (:func:`transferlab.data.load_data`, split with ``seed``).
    score : str, optional
        The score whose order picks the top k; default: the ranking's consensus
        order (its recommendation's).
    scores : str or sequence of str, optional
        The ranking's columns (as ``rank``); ``score`` is added when missing.
    top_k : int or "all", optional
        How many candidates to fine-tune (default: 3, or every candidate when
        there are fewer); ``"all"`` is brute force, which also reports each
        score's regret. More than the candidates is an error.
    lrs : sequence of float, default (0.03, 0.01)
        The learning-rate grid; each candidate keeps the rate with the best
        validation accuracy (ties: lower validation loss, then the first).
    steps, epochs : int, optional
        The budget per learning rate, in optimiser steps or epochs (one of
        them); default :data:`STEPS` steps.
    batch_size : int, default 32
    freeze : {"none", "backbone"} or int, default "none"
        ``"backbone"`` trains the new head only: a linear probe. An integer ``k``
        freezes the first ``k`` stages where the candidate's stages are known
        (our ``file:`` networks: e.g. ``conv1``, ``conv2``, ...; ``hf:``,
        ``timm:`` and ``torchvision:`` models are one stage, their backbone); a candidate with fewer stages is
        refused when it is fine-tuned.
    val_fraction : float, default 0.2
        Share of each class's training images held out to choose the rate and
        to stop early (at least one per class; a class needs two images).
    patience : int or None, default 3
        Stop when the validation loss has not improved for this many epochs,
        keeping the best epoch's weights; None trains the whole budget.
    seed : int, default 0
        Seeds the data split, the ranking, the new heads and the training.
    device : str, default "cpu"
    bootstrap : int, default 100
        The ranking's bootstrap resamples (0: none).
    executor : {"inprocess", "process", "ray"}
        Where the fine-tuning jobs run.
    out_dir : str or Path, optional
        Where ``selected.safetensors`` is copied.
    progress : bool, default True

    Returns
    -------
    Selection

    Raises
    ------
    ValueError
        On an unknown score or spec, ``top_k`` outside ``1..len(models)``, a
        data folder with fewer than two classes or fewer than two training
        images in a class, a candidate kind that cannot be fine-tuned and saved,
        or a bad budget.
    """
    specs = [models] if isinstance(models, str) else [str(m) for m in models]
    if not specs:
        raise ValueError("models is empty: nothing to select from")
    for spec in specs:
        parse_spec(spec)
    if len(set(specs)) != len(specs):
        raise ValueError(f"models repeat a spec: {specs}")
    if score is not None:
        score = _normalise(score)  # an unknown score fails before anything runs
    k = _check_top_k(top_k, len(specs))
    settings = _check_settings(lrs, steps, epochs, batch_size, freeze, val_fraction, patience, seed)
    check_device(device)
    start = time.perf_counter()
    data_path = str(Path(data).resolve())  # the jobs reload it by this path (and check its fingerprint)
    images = load_data(data_path, seed=settings["seed"])
    if isinstance(score, str):
        scores = _with_score(scores, score)
    ranking = rank_models(specs, images, scores, seed=settings["seed"], device=device, progress=progress,
                          bootstrap=bootstrap)
    ranking_seconds = time.perf_counter() - start
    by, order, values = _order(ranking, score)
    chosen_specs = order[:k]
    jobs = {name: _job(name, data_path, images.fingerprint, settings, device) for name in chosen_specs}
    store = ResultStore(home() / "results.sqlite")
    try:
        results = run_jobs(list(jobs.values()), store, executor=executor, progress=progress)
    except JobError as exc:
        if not exc.error.startswith("ValueError"):
            raise
        spec = next((name for name, job in jobs.items() if job.key == exc.key), exc.key)
        raise ValueError(f"fine-tuning {spec} failed: {exc.error.removeprefix('ValueError: ')}") from exc
    outcome = {name: results[job.key] for name, job in jobs.items()}
    rows = []
    for position, name in enumerate(order, 1):
        row = {"model": name, "position": position, "score": values[name], "fine_tuned": name in outcome}
        if name in outcome:
            r = outcome[name]
            row.update(val_accuracy=r["val_accuracy"], test_accuracy=r["test_accuracy"], lr=r["lr"],
                       best_epoch=r["best_epoch"], seconds=r["seconds"], checkpoint=r["checkpoint"])
        rows.append(row)
    tuned = [r for r in rows if r["fine_tuned"]]
    best = max(tuned, key=lambda r: (r["val_accuracy"], -r["position"]))
    source = Path(best["checkpoint"])
    if not source.is_file():  # the store kept the result but the file was removed: rebuild it (seeded)
        finetune_job(**jobs[best["model"]].kwargs)
    checkpoint = source
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        checkpoint = Path(out_dir) / "selected.safetensors"
        shutil.copyfile(source, checkpoint)
    fine_tuning = float(sum(r["seconds"] for r in tuned))
    brute_force = float(np.mean([r["seconds"] for r in tuned])) * len(specs)
    spent = ranking_seconds + fine_tuning
    return Selection(
        ranking=ranking, by=by, rows=tuple(rows), chosen=best["model"], checkpoint=checkpoint,
        seconds={"ranking": ranking_seconds, "fine_tuning": fine_tuning, "total": spent},
        brute_force_seconds=brute_force, cost_ratio=spent / brute_force if brute_force > 0 else math.nan,
        regret=_regret(ranking, outcome) if k == len(specs) else {},
        settings={**settings, "top_k": k, "device": device, "data": data_path},
    )


def finetune_job(*, spec: str, data: str, fingerprint: str, lrs: list, steps: int | None, epochs: int | None,
                 batch_size: int, freeze: str, val_fraction: float, patience: int | None, seed: int,
                 device: str, checkpoint: str) -> dict:
    """Fine-tune one candidate (a results-store job); returns JSON accuracies and the checkpoint path.

    :func:`finetune` on the candidate ``spec`` and the images in ``data``
    (which must still have ``fingerprint``); the kept model is saved to
    ``checkpoint`` with its metadata (source spec, class names, preprocessing,
    accuracies, settings).
    """
    images = load_data(data, seed=seed)
    if images.fingerprint != fingerprint:
        raise ValueError(f"the data in {data!r} changed since it was ranked (fingerprint {images.fingerprint[:12]} "
                         f"!= {fingerprint[:12]}); run select again")
    model = load_model(spec)
    chosen, record = finetune(model, images, lrs=lrs, steps=steps, epochs=epochs, batch_size=batch_size,
                              freeze=freeze, val_fraction=val_fraction, patience=patience, seed=seed, device=device)
    record = {"source_spec": spec, **record, "data": data, "data_fingerprint": fingerprint}
    Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(checkpoint, chosen.to("cpu"), metadata=finetuned_metadata(record))
    return {**record, "checkpoint": str(checkpoint)}


def finetuned_metadata(record: dict) -> dict:
    """The checkpoint metadata of a model that :func:`finetune` returned with ``record``.

    What ``load_model("file:...")`` reads back: the preprocessing, the class
    names, the test accuracy, and the whole record under ``"select"``.
    """
    return {"select": {k: v for k, v in record.items() if k not in ("best_epoch", "seconds")},
            "test_accuracy": record["test_accuracy"], "class_names": list(record["class_names"]),
            "preprocessing": record["preprocessing"]}


def finetune(model, images, *, lrs=LRS, steps: int | None = None, epochs: int | None = None, batch_size: int = 32,
             freeze: str | int = "none", val_fraction: float = 0.2, patience: int | None = 3, seed: int = 0,
             device: str = "cpu"):
    """Fine-tune one candidate on ``images``: ``(model, record)``, the kept model and a JSON record.

    The candidate gets a new seeded head for the target classes on its feature
    layer (:func:`transferlab.models.to_finetunable`: ``file:``, ``hf:``,
    ``timm:``, ``torchvision:`` or any network from
    :func:`~transferlab.models.wrap_module`); the training images go through
    its own preprocessing; ``val_fraction`` of each class is held out
    (:func:`transferlab.train.stratified_split`, seeded). For each learning
    rate a copy is trained (:func:`transferlab.train.fit`, early stopping on
    the validation loss), and the rate with the best validation accuracy (then
    the lower validation loss, then the first) is kept; only then is the test
    split evaluated. Save the model with
    ``save_checkpoint(path, model, metadata=finetuned_metadata(record))``
    (a wrapped network then loads back with ``load_model("file:...", module=...)``).

    Parameters
    ----------
    model : ExternalModel or str
        A candidate (:func:`~transferlab.models.load_model`, or its spec).
    images : ImageData
        The target task (:func:`transferlab.data.load_data`).
    lrs, steps, epochs, batch_size, freeze, val_fraction, patience, seed, device
        As :func:`select` (``steps`` defaults to :data:`STEPS` when neither is given).

    Returns
    -------
    model : StagedModel
        The fine-tuned candidate (on ``device``).
    record : dict
        The chosen ``lr``, ``val_accuracy``, ``test_accuracy``, ``test_loss``,
        ``per_lr`` results, ``class_names``, ``preprocessing``, the settings,
        ``best_epoch`` and ``seconds``.
    """
    model = load_model(model)
    settings = _check_settings(lrs, steps, epochs, batch_size, freeze, val_fraction, patience, seed)
    lrs, steps, epochs, batch_size, freeze, val_fraction, patience, seed = (settings[k] for k in (
        "lrs", "steps", "epochs", "batch_size", "freeze", "val_fraction", "patience", "seed"))
    check_device(device)
    net = to_finetunable(model, images.n_classes, seed=seed)
    fit_idx, val_idx, note = stratified_split(images.y_train, val_fraction, seed, images.class_names)
    if val_idx is None:
        raise ValueError(f"fine-tuning needs a validation split: {note or 'val_fraction is 0'}")
    x_train = _pixels(model, images.x_train)
    x_test = _pixels(model, images.x_test)
    fit_data = (x_train[fit_idx], images.y_train[fit_idx])
    val_data = (x_train[val_idx], images.y_train[val_idx])
    per_lr, best = [], None
    start = time.perf_counter()
    for lr in lrs:
        candidate = copy.deepcopy(net)
        if freeze != "none":
            stages = len(candidate.stage_names)
            if freeze != "backbone" and freeze > stages:
                raise ValueError(f"freeze is {freeze} stages but {model.name} has {stages} "
                                 f"({', '.join(candidate.stage_names)})")
            candidate.freeze_stages(stages if freeze == "backbone" else freeze)
        config = TrainConfig(epochs=epochs or 1, steps=steps, batch_size=batch_size, lr=float(lr), seed=seed,
                             device=device)
        result = fit(candidate, fit_data, config, eval_data=val_data, patience=patience, progress=False)
        val_loss, val_accuracy = evaluate(candidate, val_data, device=device)
        per_lr.append({"lr": float(lr), "val_accuracy": val_accuracy, "val_loss": val_loss,
                       "best_epoch": result.best_epoch, "stopped_epoch": result.stopped_epoch})
        key = (val_accuracy, -val_loss)
        if best is None or key > best[0]:
            best = (key, float(lr), candidate, result)
    _, lr, chosen, result = best
    test_loss, test_accuracy = evaluate(chosen, (x_test, images.y_test), device=device)
    record = {
        "class_names": list(images.class_names), "preprocessing": model.preprocessing.to_dict(),
        "lr": lr, "lrs": [float(x) for x in lrs], "freeze": freeze, "val_fraction": val_fraction,
        "patience": patience, "steps": steps, "epochs": epochs, "batch_size": batch_size, "seed": seed,
        "val_accuracy": next(r["val_accuracy"] for r in per_lr if r["lr"] == lr),
        "test_accuracy": test_accuracy, "test_loss": test_loss, "per_lr": per_lr,
        "best_epoch": result.best_epoch, "seconds": time.perf_counter() - start,
    }
    return chosen, record


def _pixels(model, images) -> np.ndarray:
    """The images through the candidate's own preprocessing, in batches: float32 (N, C, H, W)."""
    batches = [model.preprocessing(list(images[i:i + 64])).numpy() for i in range(0, len(images), 64)]
    return np.concatenate(batches).astype(np.float32, copy=False)


def _job(spec: str, data: str, fingerprint: str, settings: dict, device: str):
    kwargs = dict(spec=spec, data=data, fingerprint=fingerprint, device=device,
                  **{k: settings[k] for k in ("lrs", "steps", "epochs", "batch_size", "freeze", "val_fraction",
                                              "patience", "seed")})
    digest = job_key("select-finetune", func=_JOB, **kwargs).split(":")[1]
    kwargs["checkpoint"] = str(home() / "select" / f"{digest}.safetensors")
    return make_job("select-finetune", _JOB, **kwargs)


def _order(ranking: Ranking, score: str | None) -> tuple[str, list[str], dict]:
    """``(by, models in selection order, model -> ordering value)``."""
    if score is None:
        return "consensus", [r["model"] for r in ranking.rows], {r["model"]: r.get("consensus_rank")
                                                                  for r in ranking.rows}
    name = next(n for n in ranking.columns if n == _normalise(score))
    rows = sorted(ranking.rows, key=lambda r: (r[name] is None, -(r[name] or 0.0)))
    return name, [r["model"] for r in rows], {r["model"]: r[name] for r in rows}


def _regret(ranking: Ranking, outcome: dict) -> dict:
    """Test accuracy points lost by each column's first (first three) against the best candidate."""
    best = max(r["test_accuracy"] for r in outcome.values())
    out = {}
    for name in ("consensus", *ranking.columns):
        _, order, _ = _order(ranking, None if name == "consensus" else name)
        accuracies = [outcome[m]["test_accuracy"] for m in order if m in outcome]
        out[name] = {"top1": 100.0 * (best - accuracies[0]), "top3": 100.0 * (best - max(accuracies[:3]))}
    return out


def _normalise(name: str) -> str:
    from transferlab.scores import spec

    return spec(name).name


def _with_score(scores, score: str):
    from transferlab.rank._ranking import default_scores

    name = _normalise(score)
    names = list(default_scores()) if scores is None else ([scores] if isinstance(scores, str) else list(scores))
    return names if name in names else [name, *names]


def _check_top_k(top_k, n: int) -> int:
    if top_k is None:
        return min(TOP_K, n)
    if isinstance(top_k, str) and top_k.strip().lower() == "all":
        return n
    k = check_scalar(top_k, "top_k", numbers.Integral, min_val=1)
    if k > n:
        raise ValueError(f"top_k is {k} but there {'is only 1 candidate' if n == 1 else f'are only {n} candidates'}; "
                         f"give at most {n}, or 'all'")
    return k


def _check_settings(lrs, steps, epochs, batch_size, freeze, val_fraction, patience, seed) -> dict:
    lrs = [lrs] if isinstance(lrs, numbers.Real) else list(lrs)
    if not lrs:
        raise ValueError("lrs is empty: give at least one learning rate")
    lrs = [float(check_scalar(lr, "lrs", numbers.Real, min_val=0, include_boundaries="neither")) for lr in lrs]
    if steps is not None and epochs is not None:
        raise ValueError("give the budget once: steps or epochs, not both")
    if steps is None and epochs is None:
        steps = STEPS
    if steps is not None:
        steps = check_scalar(steps, "steps", numbers.Integral, min_val=1)
    if epochs is not None:
        epochs = check_scalar(epochs, "epochs", numbers.Integral, min_val=1)
    if isinstance(freeze, str) and freeze.strip().isdigit():
        freeze = int(freeze)
    if isinstance(freeze, str) or isinstance(freeze, bool) or not isinstance(freeze, numbers.Integral):
        if freeze not in FREEZE:
            raise ValueError(f"freeze must be one of {FREEZE} or a number of stages; got {freeze!r}")
    else:
        freeze = check_scalar(freeze, "freeze", numbers.Integral, min_val=0)
        freeze = "none" if freeze == 0 else freeze
    if patience is not None:
        patience = check_scalar(patience, "patience", numbers.Integral, min_val=1)
    return {
        "lrs": lrs, "steps": steps, "epochs": epochs,
        "batch_size": check_scalar(batch_size, "batch_size", numbers.Integral, min_val=1),
        "freeze": freeze,
        "val_fraction": float(check_scalar(val_fraction, "val_fraction", numbers.Real, min_val=0, max_val=1,
                                           include_boundaries="neither")),
        "patience": patience, "seed": check_seed(seed),
    }



