"""Tests of fine_tune: the LR grid, freezing, the validation split and k-shot tasks."""


import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import TinyConvNet, TinyMLP, tiny_task
from transferlab.train._config import TrainConfig
from transferlab.train._fine_tune import FineTuneResult, _stratified_split, fine_tune
from transferlab.train._fit import evaluate

FAST = TrainConfig(epochs=3, batch_size=16)


@pytest.fixture(scope="module")
def task():
    return tiny_task(n_classes=3, n_per_class=20, seed=1)


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_frozen_stages_are_unchanged_and_the_callers_model_untouched(task):
    model = TinyConvNet(num_classes=5, seed=0)  # a "pre-trained" model with another label set
    model.train()
    before = _snapshot(model)
    result = fine_tune(model, task, FAST, lrs=(0.05,), freeze=1, val_fraction=0.0, progress=False)

    tuned = result.model
    assert tuned is not model and tuned.num_classes == 3 and tuned.frozen_stages == 1
    # stage conv1 frozen: weights and batch-norm statistics bit-identical to the original
    for key, value in tuned.stages["conv1"].state_dict().items():
        assert torch.equal(value, before[f"stages.conv1.{key}"]), key
    # stage conv2 trained: its weights and its batch-norm running statistics moved
    after2 = tuned.stages["conv2"].state_dict()
    assert not torch.equal(after2["0.weight"], before["stages.conv2.0.weight"])
    assert not torch.equal(after2["1.running_mean"], before["stages.conv2.1.running_mean"])
    # the caller's model: same tensors, same head, nothing frozen, same mode
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.num_classes == 5 and model.frozen_stages == 0 and model.training
    assert all(p.requires_grad for p in model.parameters())


def test_lr_grid_records_every_lr_and_keeps_the_best(task):
    lrs = (0.3, 0.03, 0.003)
    result = fine_tune(TinyMLP(seed=0), task, FAST, lrs=lrs, val_fraction=0.25, progress=False)
    assert isinstance(result, FineTuneResult)
    assert [row["lr"] for row in result.per_lr] == list(lrs)
    test_accs = [row["test_accuracy"] for row in result.per_lr]
    val_accs = [row["val_accuracy"] for row in result.per_lr]
    assert result.best_test_accuracy == max(test_accs)
    assert result.best_lr == lrs[test_accs.index(max(test_accs))]  # list.index: the first maximum
    assert result.val_selected_lr == lrs[val_accs.index(max(val_accs))]
    assert result.val_selected_test_accuracy == test_accs[val_accs.index(max(val_accs))]
    assert result.val_selected_test_accuracy <= result.best_test_accuracy
    # the returned model (select="test") is the run with the best test accuracy
    assert evaluate(result.model, task)[1] == result.best_test_accuracy
    # 25% of 20 samples per class held out: 5 per class
    assert (result.n_train, result.n_val) == (45, 15)
    assert all(row["final_train_loss"] > 0 and row["seconds"] > 0 for row in result.per_lr)
    assert result.notes == () and result.select == "test" and result.freeze == 0
    assert result.config == FAST


def test_select_val_returns_the_validation_choice(task):
    lrs = (0.3, 0.003)
    result = fine_tune(TinyMLP(seed=0), task, FAST, lrs=lrs, select="val", progress=False)
    val_accs = [row["val_accuracy"] for row in result.per_lr]
    assert result.select == "val"
    assert evaluate(result.model, task)[1] == result.val_selected_test_accuracy
    assert result.val_selected_lr == lrs[int(np.argmax(val_accs))]


def test_fine_tune_is_reproducible(task):
    runs = [
        fine_tune(TinyMLP(seed=0), task, FAST, lrs=(0.05,), head_seed=3, progress=False) for _ in range(2)
    ]
    for key, value in runs[0].model.state_dict().items():
        assert torch.equal(value, runs[1].model.state_dict()[key]), key
    assert runs[0].per_lr[0]["test_accuracy"] == runs[1].per_lr[0]["test_accuracy"]


def test_without_validation_only_the_test_protocol_is_available(task):
    result = fine_tune(TinyMLP(), task, FAST, lrs=(0.05, 0.01), val_fraction=0, progress=False)
    assert result.val_selected_lr is None and result.val_selected_test_accuracy is None
    assert all(row["val_accuracy"] is None and row["val_loss"] is None for row in result.per_lr)
    assert (result.n_train, result.n_val) == (60, 0)


def test_one_shot_task_disables_validation_with_a_note():
    one_shot = tiny_task(n_classes=3, n_per_class=1, n_test_per_class=5, seed=2)
    result = fine_tune(TinyMLP(), one_shot, FAST, lrs=(0.05,), select="val", progress=False)
    assert (result.n_train, result.n_val) == (3, 0)  # every sample trains
    assert result.val_selected_lr is None and result.per_lr[0]["val_accuracy"] is None
    assert result.select == "test"
    assert any("validation disabled: class 'c0' has 1 training sample" in note for note in result.notes)
    assert any("fell back to 'test'" in note for note in result.notes)


def test_two_shot_task_keeps_one_sample_per_class_to_train():
    two_shot = tiny_task(n_classes=3, n_per_class=2, n_test_per_class=5, seed=2)
    result = fine_tune(TinyMLP(), two_shot, FAST, lrs=(0.05,), val_fraction=0.2, progress=False)
    # round(0.2 * 2) = 0, raised to the minimum of 1 per class; at most n_c - 1 = 1
    assert (result.n_train, result.n_val) == (3, 3)
    assert result.val_selected_lr == 0.05 and result.notes == ()


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(2, 30), min_size=2, max_size=5),
    val_fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 1000),
)
def test_stratified_split_properties(counts, val_fraction, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(labels)
    fit_idx, val_idx, note = _stratified_split(labels, val_fraction, seed, [f"c{i}" for i in range(len(counts))])
    assert note is None
    assert np.intersect1d(fit_idx, val_idx).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([fit_idx, val_idx])), np.arange(labels.size))
    for c, n_c in enumerate(counts):
        n_val = int(np.sum(labels[val_idx] == c))
        assert n_val == min(max(int(np.floor(val_fraction * n_c + 0.5)), 1), n_c - 1)
    again = _stratified_split(labels, val_fraction, seed, [f"c{i}" for i in range(len(counts))])
    np.testing.assert_array_equal(again[1], val_idx)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lrs": ()}, "lrs must be a non-empty sequence"),
        ({"lrs": 0.1}, "lrs must be a non-empty sequence"),
        ({"lrs": (0.1, 0.1)}, "lrs must not repeat"),
        ({"lrs": (0.1, -0.01)}, r"lrs\[1\] must be a positive finite number; got -0.01"),
        ({"freeze": 3}, r"freeze must be an integer in \[0, 2\]; got 3"),
        ({"freeze": -1}, r"freeze must be an integer in \[0, 2\]; got -1"),
        ({"head_seed": -1}, "head_seed must be an integer >= 0 or None; got -1"),
        ({"select": "best"}, "select must be one of"),
        ({"val_fraction": 1.0}, r"val_fraction must be a finite number in \[0, 1\); got 1.0"),
        ({"select": "val", "val_fraction": 0}, "select='val' needs a validation split"),
    ],
)
def test_fine_tune_validates_its_arguments(task, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fine_tune(TinyMLP(), task, FAST, progress=False, **kwargs)


def test_fine_tune_needs_a_staged_model_and_a_task(task):
    with pytest.raises(ValueError, match="model must be a StagedModel"):
        fine_tune(torch.nn.Linear(3, 3), task, progress=False)
    with pytest.raises(ValueError, match="task must be a transferlab Task"):
        fine_tune(TinyMLP(), (task.x_train, task.y_train), progress=False)
