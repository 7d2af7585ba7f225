"""The one training loop behind fit and fit_multidomain: interleaving, checks, evaluation, checkpoints, bar."""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from torch import nn

from tests.helpers import TinyMLP, tiny_task
from transferlab.models import MultiDomainResNet
from transferlab.train import NonFiniteLossError, TrainConfig, fit, fit_multidomain
from transferlab.train import _loop
from transferlab.train._loop import Stream, run_epochs


@pytest.fixture(scope="module")
def tasks():
    # 2 x 16 = 32 and 3 x 10 = 30 training images of 1 x 12 x 12.
    return {"a": tiny_task(n_classes=2, n_per_class=16, seed=0), "b": tiny_task(n_classes=3, n_per_class=10, seed=1)}


def _joint(seed: int = 0) -> MultiDomainResNet:
    return MultiDomainResNet(["a", "b"], [2, 3], "multibn", width=2, blocks=(1,), seed=seed)


def _record_bar(monkeypatch) -> list[dict]:
    """Replace the loop's progress bar by one that records its label, total, steps and end-of-epoch fields."""
    bars: list[dict] = []

    @contextmanager
    def bar(description, total, *, enabled=True):
        record = {"description": description, "total": total, "steps": 0, "epochs": []}
        bars.append(record)

        def advance(n=1, **fields):
            record["steps"] += n
            if n == 0:
                record["epochs"].append(fields)

        yield advance

    monkeypatch.setattr(_loop, "progress_bar", bar)
    return bars


def test_both_trainers_report_through_the_same_bar(tasks, monkeypatch):
    bars = _record_bar(monkeypatch)
    config = TrainConfig(epochs=2, batch_size=8, lr=0.01)
    result = fit(TinyMLP(num_classes=2), tasks["a"], config, progress=False)
    fit_multidomain(_joint(), tasks, config, progress=False)
    single, joint = bars
    # Batches per epoch: 32 images -> 4 of 8; 30 images -> 8, 8, 8, 6 (4 batches).
    assert (single["description"], single["total"], single["steps"]) == ("training", 2 * 4, 2 * 4)
    assert (joint["description"], joint["total"], joint["steps"]) == ("multi-domain", 2 * (4 + 4), 2 * (4 + 4))
    assert [f["epoch"] for f in single["epochs"]] == [f["epoch"] for f in joint["epochs"]] == [1, 2]
    assert [f["loss"] for f in single["epochs"]] == [row["train_loss"] for row in result.history]
    assert all(math.isfinite(f["loss"]) for f in joint["epochs"])


def _with_nan_parameter(model: nn.Module) -> nn.Module:
    # A trainable parameter that no forward pass reads: the loss stays finite, the weights do not.
    model.unused = nn.Parameter(torch.full((2,), math.nan))
    return model


@pytest.mark.parametrize(
    "make, config",
    [
        (lambda m: m, TrainConfig(epochs=3, batch_size=8, lr=1e6)),
        (_with_nan_parameter, TrainConfig(epochs=2, batch_size=8, lr=0.01)),
    ],
    ids=["huge-lr", "nan-parameter"],
)
def test_both_trainers_stop_on_a_non_finite_loss_the_same_way(tasks, make, config):
    with pytest.raises(NonFiniteLossError) as single:
        fit(make(TinyMLP(num_classes=2)), tasks["a"], config, progress=False)
    with pytest.raises(NonFiniteLossError) as joint:
        fit_multidomain(make(_joint()), tasks, config, progress=False)
    pattern = rf"training loss became (nan|inf|-inf) in epoch \d of {config.epochs} \(lr=.*\).*try a lower lr"
    for error in (single, joint):
        assert isinstance(error.value, FloatingPointError) and isinstance(error.value, ValueError)
        assert error.match(pattern)
    if make is _with_nan_parameter:  # the parameter check at the end of epoch 1, word for word
        assert str(single.value) == str(joint.value)
        assert str(single.value).startswith("training loss became nan in epoch 1 of 2 (lr=0.01)")


def test_the_loop_interleaves_streams_evaluates_and_checkpoints(tmp_path):
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    calls: list[tuple[int, int]] = []

    def stream(i: int, n: int) -> Stream:
        x, y = torch.rand(n, 1, 4, 4, generator=gen), torch.randint(0, 3, (n,), generator=gen)
        return Stream(x, y, lambda batch: (calls.append((i, batch.shape[0])), model(batch))[1])

    streams = [stream(0, 10), stream(1, 25)]
    saved = []

    def checkpoint(epoch, metrics):
        saved.append((epoch, metrics))
        return tmp_path / f"epoch{epoch}"

    config = TrainConfig(epochs=3, batch_size=4, lr=0.01)
    run = run_epochs(
        model,
        streams,
        config,
        params=list(model.parameters()),
        eval_streams=streams[:1],
        eval_epochs={2, 3},
        checkpoint=checkpoint,
        checkpoint_epochs={0, 2},
        progress=False,
    )
    # Stream 0: 10 -> batches 4, 4, 2 at fractions 1/6, 1/2, 5/6 of the epoch. Stream 1: 25 -> 4, 4, 4, 4, 4, 5
    # (a last batch of one joins the one before) at 1/12, 3/12, ..., 11/12. Sorted by fraction:
    epoch = [(1, 4), (0, 4), (1, 4), (1, 4), (0, 4), (1, 4), (1, 4), (0, 2), (1, 5)]
    evaluation = [(0, 10)]  # stream 0 in one evaluation batch
    assert calls == epoch + epoch + evaluation + epoch + evaluation
    assert [row["epoch"] for row in run.history] == [1, 2, 3]
    assert [row["eval_accuracy"] is None for row in run.history] == [True, False, False]
    assert run.last_evaluation == [(run.history[-1]["eval_loss"], run.history[-1]["eval_accuracy"])]
    for row in run.history:  # train accuracy counts correct predictions among the 35 samples
        np.testing.assert_allclose(row["train_accuracy"] * 35, round(row["train_accuracy"] * 35), atol=1e-9)
    assert saved == [(0, None), (2, run.history[1])]
    assert run.checkpoints == [tmp_path / "epoch0", tmp_path / "epoch2"]
    assert model.training  # the mode it came in


def test_the_loop_pools_the_evaluation_over_streams(tasks):
    # Two evaluation streams: the history pools samples; last_evaluation keeps each stream.
    model = TinyMLP(num_classes=3, seed=2)
    x, y = (torch.as_tensor(np.array(v)) for v in tasks["b"].split("test"))
    x = x.float() / 255
    halves = [Stream(x[:12], y[:12], model), Stream(x[12:], y[12:], model)]
    run = run_epochs(model, halves[:1], TrainConfig(epochs=1, batch_size=6, lr=1e-3), params=list(model.parameters()),
                     eval_streams=halves, eval_epochs={1}, progress=False)
    model.eval()
    with torch.no_grad():
        logits = model(x).double()
    loss = torch.nn.functional.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(1) == y).double().mean().item()
    np.testing.assert_allclose(run.history[0]["eval_loss"], loss, rtol=1e-12)
    np.testing.assert_allclose(run.history[0]["eval_accuracy"], accuracy, rtol=1e-12)
    parts = run.last_evaluation
    assert len(parts) == 2
    np.testing.assert_allclose((12 * parts[0][1] + 18 * parts[1][1]) / 30, accuracy, rtol=1e-12)
