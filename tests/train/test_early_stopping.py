"""Early stopping on the evaluation loss (``fit(patience=...)``) and the step budget (``TrainConfig.steps``).

The expected stop epochs are derived here from the recorded history with the
documented rule (an evaluation improves when ``L < L* (1 - 1e-12)``; stop after
``patience`` evaluations in a row without improvement), and the restored
weights are checked by evaluating the model again, not by trusting the result.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from tests.helpers import TinyConvNet, tiny_task
from transferlab.models import MultiDomainResNet
from transferlab.train import FitResult, TrainConfig, evaluate, fit, fit_multidomain

#: The field names of TrainConfig.to_dict() before ``steps`` existed (study job keys and zoo digests hash them).
_FIELDS_BEFORE_STEPS = [
    "epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "lr_step", "lr_gamma", "seed", "device",
    "eval_every",
]


@pytest.fixture(scope="module")
def task():
    return tiny_task(n_classes=3, n_per_class=20, seed=0)


def _mlp(seed: int = 0) -> nn.Module:
    """A plain ``nn.Sequential`` (not a StagedModel), with dropout so that the layer seeding matters."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Flatten(), nn.Linear(144, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 3))


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _expected_stop(eval_losses, patience):
    """(best_epoch, stopped_epoch) by the documented rule, from a history's eval_loss column (None = not evaluated)."""
    best, best_epoch, bad = math.inf, None, 0
    for epoch, loss in enumerate(eval_losses, start=1):
        if loss is None:
            continue
        if loss < best * (1 - 1e-12):
            best, best_epoch, bad = loss, epoch, 0
        else:
            bad += 1
            if bad == patience:
                return best_epoch, epoch
    return best_epoch, None


def _noisy_labels(task, seed=1):
    """Random training labels: the model memorises noise, so the loss on the true test labels stalls and rises."""
    return task.x_train, np.random.default_rng(seed).integers(0, 3, size=task.y_train.shape)


# -- (a) a patience that never runs out changes nothing ----------------------------------------------
def test_patience_that_never_runs_out_is_bit_identical_to_no_patience(task):
    config = TrainConfig(epochs=6, batch_size=16, lr=0.2)
    eval_data = (task.x_test, task.y_test)
    plain, patient = _mlp(), _mlp()
    a = fit(plain, _noisy_labels(task), config, eval_data=eval_data, progress=False)
    # Six evaluations: the first always improves, so at most five in a row can fail; patience 6 never runs out.
    b = fit(patient, _noisy_labels(task), config, eval_data=eval_data, progress=False, patience=6, restore_best=False)
    assert b.stopped_epoch is None
    assert a.history == b.history
    assert _same_weights(plain, patient)
    losses = [row["eval_loss"] for row in a.history]
    assert b.best_epoch == int(np.argmin(losses)) + 1
    assert a.best_epoch is None and a.stopped_epoch is None


def test_patience_never_running_out_with_restore_best_when_the_last_epoch_is_best(task):
    # An easy task at a small LR: the eval loss falls every epoch, so the best epoch is the last one.
    config = TrainConfig(epochs=5, batch_size=16, lr=0.05)
    plain, patient = TinyConvNet(), TinyConvNet()
    a = fit(plain, task, config, eval_data=task, progress=False)
    losses = [row["eval_loss"] for row in a.history]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses  # the premise
    b = fit(patient, task, config, eval_data=task, progress=False, patience=1)
    assert (b.best_epoch, b.stopped_epoch) == (5, None)
    assert a.history == b.history
    assert _same_weights(plain, patient)  # batch-norm buffers included
    assert b.final_eval_accuracy == a.final_eval_accuracy


# -- (b) stopping early on an overfitting run -------------------------------------------------------
@pytest.mark.parametrize("patience, lr", [(2, 0.2), (3, 0.05), (3, 0.2)])
def test_overfitting_run_stops_where_the_rule_says_and_restores_the_best(task, patience, lr):
    eval_data = (task.x_test, task.y_test)
    model = _mlp()
    result = fit(model, _noisy_labels(task), TrainConfig(epochs=40, batch_size=16, lr=lr), eval_data=eval_data,
                 progress=False, patience=patience)
    losses = [row["eval_loss"] for row in result.history]
    best_epoch, stopped = _expected_stop(losses, patience)
    assert stopped is not None, losses  # the setup does overfit within the budget
    assert (result.best_epoch, result.stopped_epoch) == (best_epoch, stopped)
    assert len(result.history) == stopped  # nothing ran after the stop
    assert result.best_epoch == int(np.argmin(losses)) + 1
    assert result.best_epoch < stopped  # the restore changes the weights
    # The model holds the best epoch's weights: its eval loss is the lowest recorded one (same weights, same sums).
    loss, accuracy = evaluate(model, eval_data)
    assert loss == pytest.approx(min(losses), rel=1e-12)
    assert accuracy == result.history[best_epoch - 1]["eval_accuracy"] == result.final_eval_accuracy


def test_without_restore_best_the_last_epoch_is_kept(task):
    eval_data = (task.x_test, task.y_test)
    model = _mlp()
    result = fit(model, _noisy_labels(task), TrainConfig(epochs=40, batch_size=16, lr=0.2), eval_data=eval_data,
                 progress=False, patience=2, restore_best=False)
    assert result.stopped_epoch is not None and result.best_epoch < result.stopped_epoch
    loss, accuracy = evaluate(model, eval_data)
    assert loss == pytest.approx(result.history[-1]["eval_loss"], rel=1e-12)
    assert accuracy == result.final_eval_accuracy == result.history[-1]["eval_accuracy"]


def test_epochs_without_evaluation_do_not_count(task):
    eval_data = (task.x_test, task.y_test)
    result = fit(_mlp(), _noisy_labels(task), TrainConfig(epochs=40, batch_size=16, lr=0.2, eval_every=2),
                 eval_data=eval_data, progress=False, patience=2)
    losses = [row["eval_loss"] for row in result.history]
    assert losses[0] is None and losses[1] is not None
    best_epoch, stopped = _expected_stop(losses, 2)
    assert stopped is not None and stopped % 2 == 0
    assert (result.best_epoch, result.stopped_epoch) == (best_epoch, stopped)


def test_early_stopping_leaves_the_seeded_trajectory_alone(task):
    """The epochs run before the stop are those of the run without patience, row for row."""
    eval_data = (task.x_test, task.y_test)
    config = TrainConfig(epochs=12, batch_size=16, lr=0.2)
    full = fit(_mlp(), _noisy_labels(task), config, eval_data=eval_data, progress=False)
    stopped = fit(_mlp(), _noisy_labels(task), config, eval_data=eval_data, progress=False, patience=2)
    assert stopped.stopped_epoch is not None
    assert stopped.history == full.history[: stopped.stopped_epoch]


def test_fit_result_defaults_keep_old_constructions_working():
    result = FitResult(history=({"train_loss": 1.0},), final_eval_accuracy=None, seconds=0.0, checkpoints=(),
                       config=TrainConfig())
    assert result.best_epoch is None and result.stopped_epoch is None
    assert result.to_dict()["best_epoch"] is None


# -- (c) the step budget ----------------------------------------------------------------------------
class _StepCounter:
    """Counts optimiser steps (a global post-step hook) and records each training batch (a forward pre-hook)."""

    def __init__(self, model: nn.Module):
        self.steps = 0
        self.batches: list[torch.Tensor] = []
        self._handles = [
            register_optimizer_step_post_hook(self._count),
            model.register_forward_pre_hook(self._record),
        ]

    def _count(self, optimizer, args, kwargs):
        self.steps += 1

    def _record(self, module, inputs):
        if module.training:
            self.batches.append(inputs[0].detach().clone())

    def close(self):
        for handle in self._handles:
            handle.remove()


def _counted_fit(model, data, config, **kwargs):
    counter = _StepCounter(model)
    try:
        result = fit(model, data, config, progress=False, **kwargs)
    finally:
        counter.close()
    return result, counter


def test_steps_five_with_four_batches_per_epoch_takes_exactly_five_steps(task):
    data = (task.x_train[:40], task.y_train[:40])  # 40 samples, batch 10: 4 batches per epoch
    model = _mlp()
    result, counter = _counted_fit(model, data, TrainConfig(batch_size=10, lr=0.05, steps=5), eval_data=data)
    assert counter.steps == 5
    assert [b.shape[0] for b in counter.batches] == [10] * 5
    assert result.config.epochs == 2 and result.config.steps == 5  # ceil(5 / 4)
    assert [row["epoch"] for row in result.history] == [1, 2]
    # The milestones count the 2 epochs run: 2 // 2 = 1 and 3 * 2 // 4 = 1, so epoch 2 runs at lr * gamma.
    assert [row["lr"] for row in result.history] == pytest.approx([0.05, 0.005])
    # The cut epoch's running accuracy is over the 10 samples it saw.
    assert result.history[-1]["train_accuracy"] * 10 == pytest.approx(round(result.history[-1]["train_accuracy"] * 10))


def test_the_cut_epoch_starts_like_an_uncut_one_and_whole_epochs_match_an_epoch_budget(task):
    data = (task.x_train[:40], task.y_train[:40])
    cut_model, whole_model, epoch_model = _mlp(), _mlp(), _mlp()
    _, cut = _counted_fit(cut_model, data, TrainConfig(batch_size=10, lr=0.05, steps=5))
    _, whole = _counted_fit(whole_model, data, TrainConfig(batch_size=10, lr=0.05, steps=8))
    _, by_epochs = _counted_fit(epoch_model, data, TrainConfig(batch_size=10, lr=0.05, epochs=2))
    assert (cut.steps, whole.steps, by_epochs.steps) == (5, 8, 8)
    assert all(torch.equal(a, b) for a, b in zip(cut.batches, whole.batches[:5]))
    assert _same_weights(whole_model, epoch_model)  # steps = 2 whole epochs is the 2-epoch run, bit for bit


def test_steps_override_epochs_and_count_every_batch_including_a_merged_last_one(task):
    # 41 samples at batch 10: the last batch of one joins the one before, so an epoch is 4 batches, not 5.
    data = (task.x_train[:41], task.y_train[:41])
    result, counter = _counted_fit(_mlp(), data, TrainConfig(epochs=50, batch_size=10, steps=9))
    assert counter.steps == 9
    assert result.config.epochs == 3  # ceil(9 / 4); the epochs=50 of the config is replaced
    assert [b.shape[0] for b in counter.batches] == [10, 10, 10, 11] * 2 + [10]


def test_early_stopping_within_a_step_budget(task):
    eval_data = (task.x_test, task.y_test)
    result, counter = _counted_fit(_mlp(), _noisy_labels(task), TrainConfig(batch_size=16, lr=0.2, steps=160),
                                   eval_data=eval_data, patience=2)
    assert result.config.epochs == 40  # 60 samples at batch 16: 4 batches per epoch
    assert result.stopped_epoch is not None
    assert counter.steps == 4 * result.stopped_epoch


def test_multidomain_counts_the_steps_of_every_domain():
    tasks = {d: tiny_task(n_classes=2, n_per_class=8, seed=s) for d, s in (("a", 0), ("b", 1))}  # 16 samples each
    model = MultiDomainResNet(["a", "b"], [2, 2], "adapters", width=2, blocks=(1,), seed=0)
    counter = _StepCounter(model)
    try:
        fit_multidomain(model, tasks, TrainConfig(batch_size=8, steps=3), progress=False)
    finally:
        counter.close()
    assert counter.steps == 3  # 2 + 2 batches per epoch: one epoch, cut after 3
    assert [b.shape[0] for b in counter.batches] == [8] * 3


def test_config_steps_serialisation_keeps_the_old_dicts():
    assert list(TrainConfig().to_dict()) == _FIELDS_BEFORE_STEPS
    assert list(TrainConfig(epochs=3, lr_step=2).to_dict()) == _FIELDS_BEFORE_STEPS
    with_steps = TrainConfig(steps=7)
    assert with_steps.to_dict() == {**TrainConfig().to_dict(), "steps": 7}
    assert TrainConfig.from_dict(with_steps.to_dict()) == with_steps
    assert TrainConfig.from_dict(TrainConfig().to_dict()).steps is None
    assert with_steps.replace(steps=None) == TrainConfig()


# -- (d) bad input ----------------------------------------------------------------------------------
def test_patience_without_eval_data_is_refused(task):
    with pytest.raises(ValueError, match="patience=2 .*needs eval_data"):
        fit(_mlp(), task, TrainConfig(epochs=1), patience=2, progress=False)


@pytest.mark.parametrize("patience, shown", [(0, "0"), (-1, "-1"), (1.5, "1.5"), (True, "True"), ("2", "'2'")])
def test_patience_must_be_a_positive_integer(task, patience, shown):
    with pytest.raises(ValueError, match=f"patience must be an integer >= 1; got {shown}"):
        fit(_mlp(), task, TrainConfig(epochs=1), eval_data=task, patience=patience, progress=False)


@pytest.mark.parametrize("steps, shown", [(0, "0"), (-3, "-3"), (2.5, "2.5"), (False, "False")])
def test_steps_must_be_a_positive_integer_or_none(steps, shown):
    with pytest.raises(ValueError, match=f"steps must be an integer >= 1 or None; got {shown}"):
        TrainConfig(steps=steps)
    with pytest.raises(ValueError, match=f"steps must be an integer >= 1 or None; got {shown}"):
        TrainConfig().replace(steps=steps)


def test_restore_best_must_be_a_bool(task):
    with pytest.raises(ValueError, match="restore_best must be a bool; got 'yes'"):
        fit(_mlp(), task, TrainConfig(epochs=1), eval_data=task, patience=1, restore_best="yes", progress=False)


def test_bad_input_leaves_the_model_untouched(task):
    model, fresh = _mlp(), _mlp()
    with pytest.raises(ValueError, match="patience"):
        fit(model, task, TrainConfig(epochs=1), patience=1, progress=False)
    assert _same_weights(model, fresh)
