"""Tests of TrainConfig, fit and evaluate on tiny models and tasks."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import TinyConvNet, TinyMLP, tiny_task
from transferlab.models._base import to_input
from transferlab.train._config import TrainConfig
from transferlab.train._fit import (
    FitResult,
    NonFiniteLossError,
    _batch_bounds,
    evaluate,
    fit,
)


@pytest.fixture(scope="module")
def task():
    return tiny_task(n_classes=3, n_per_class=20, seed=0)


# -- TrainConfig -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"epochs": 0}, "epochs must be an integer >= 1; got 0"),
        ({"epochs": 2.5}, "epochs must be an integer >= 1; got 2.5"),
        ({"epochs": True}, "epochs must be an integer >= 1; got True"),
        ({"batch_size": -1}, "batch_size must be an integer >= 1; got -1"),
        ({"eval_every": 0}, "eval_every must be an integer >= 1; got 0"),
        ({"lr": 0.0}, "lr must be a positive finite number; got 0.0"),
        ({"lr": math.nan}, "lr must be a positive finite number; got nan"),
        ({"lr": "0.1"}, "lr must be a positive finite number; got '0.1'"),
        ({"momentum": 1.0}, r"momentum must be a finite number in \[0, 1\); got 1.0"),
        ({"momentum": -0.1}, r"momentum must be a finite number in \[0, 1\); got -0.1"),
        ({"momentum": 0.0}, "nesterov=True requires momentum > 0"),
        ({"nesterov": 1}, "nesterov must be a bool; got 1"),
        ({"weight_decay": -1e-4}, "weight_decay must be a finite number >= 0; got -0.0001"),
        ({"lr_step": 0}, "lr_step must be an integer >= 1 or None; got 0"),
        ({"lr_gamma": 0.0}, r"lr_gamma must be a finite number in \(0, 1\]; got 0.0"),
        ({"lr_gamma": 1.5}, r"lr_gamma must be a finite number in \(0, 1\]; got 1.5"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"device": ""}, "device must be a non-empty string"),
    ],
)
def test_config_rejects_invalid_values(overrides, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**overrides)
    with pytest.raises(ValueError, match=match):
        TrainConfig().replace(**overrides)


def test_config_accepts_numpy_scalars_and_coerces():
    config = TrainConfig(epochs=np.int64(3), lr=1, momentum=0.0, nesterov=np.bool_(False))
    assert type(config.epochs) is int and config.epochs == 3
    assert type(config.lr) is float and config.lr == 1.0
    assert config.nesterov is False


def test_config_unknown_keys_are_rejected_with_a_suggestion():
    with pytest.raises(ValueError, match=r"'lrr' \(did you mean 'lr'\?\)"):
        TrainConfig.from_dict({"lrr": 0.1, "epochs": 2})
    with pytest.raises(ValueError, match="unknown TrainConfig keys: 'colour'"):
        TrainConfig().replace(colour="red")
    with pytest.raises(ValueError, match="values must be a mapping"):
        TrainConfig.from_dict([("lr", 0.1)])


def test_config_missing_keys_take_defaults():
    assert TrainConfig.from_dict({"epochs": 3}) == TrainConfig(epochs=3)


@settings(max_examples=50, deadline=None)
@given(
    epochs=st.integers(1, 200),
    lr=st.floats(1e-6, 10.0),
    momentum=st.floats(0.01, 0.99),
    lr_step=st.none() | st.integers(1, 50),
    seed=st.integers(0, 2**31),
)
def test_config_round_trips_through_dict(epochs, lr, momentum, lr_step, seed):
    config = TrainConfig(epochs=epochs, lr=lr, momentum=momentum, lr_step=lr_step, seed=seed)
    assert TrainConfig.from_dict(config.to_dict()) == config
    milestones = config.milestones()
    assert list(milestones) == sorted(set(milestones))
    assert all(0 < m < epochs for m in milestones)


@pytest.mark.parametrize(
    "epochs, lr_step, expected",
    [
        (10, None, (5, 7)),  # 50% and 75% of 10 epochs
        (8, None, (4, 6)),
        (2, None, (1,)),  # 2 // 2 == 3 * 2 // 4 == 1: one decay
        (1, None, ()),  # the 0-epoch milestone is dropped
        (7, 3, (3, 6)),
        (3, 5, ()),
    ],
)
def test_config_milestones(epochs, lr_step, expected):
    assert TrainConfig(epochs=epochs, lr_step=lr_step).milestones() == expected


# -- fit ---------------------------------------------------------------------------------------
def test_fit_is_bit_reproducible_for_a_seed(task):
    config = TrainConfig(epochs=3, batch_size=16, lr=0.05, seed=7)
    states = []
    for _ in range(2):
        model = TinyConvNet(seed=0)
        fit(model, task, config, progress=False)
        states.append(model.state_dict())
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    # ... and the seed matters (the test above could not pass by accident).
    other = TinyConvNet(seed=0)
    fit(other, task, config.replace(seed=8), progress=False)
    assert not torch.equal(other.head.weight, states[0]["head.weight"])


def test_fit_leaves_the_global_rng_alone(task):
    before = torch.get_rng_state()
    fit(TinyMLP(), task, TrainConfig(epochs=1, batch_size=16), progress=False)
    assert torch.equal(torch.get_rng_state(), before)


def test_fit_learns_the_tiny_task(task):
    model = TinyConvNet(seed=0)
    result = fit(model, task, TrainConfig(epochs=10, batch_size=16, lr=0.05), eval_data=task, progress=True)
    assert isinstance(result, FitResult)
    assert [row["epoch"] for row in result.history] == list(range(1, 11))
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.final_eval_accuracy > 0.9
    assert result.final_eval_accuracy == result.history[-1]["eval_accuracy"]
    # the reported evaluation is what evaluate() says about the trained model
    loss, accuracy = evaluate(model, task)
    assert accuracy == result.final_eval_accuracy
    np.testing.assert_allclose(loss, result.history[-1]["eval_loss"], rtol=1e-12)
    assert result.checkpoints == () and result.seconds > 0


@pytest.mark.parametrize(
    "epochs, lr_step",
    [(7, 3), (8, None)],
)
def test_lr_schedule_matches_closed_form(task, epochs, lr_step):
    lr, gamma = 0.04, 0.5
    config = TrainConfig(epochs=epochs, batch_size=32, lr=lr, lr_step=lr_step, lr_gamma=gamma)
    result = fit(TinyMLP(), task, config, progress=False)
    used = [row["lr"] for row in result.history]
    e = np.arange(epochs)  # 0-based epoch
    if lr_step is not None:
        expected = lr * gamma ** (e // lr_step)
    else:  # decays at 50% and 75% of the epochs: epochs 4 and 6 of 8
        expected = lr * gamma ** ((e >= epochs // 2).astype(int) + (e >= 3 * epochs // 4))
    np.testing.assert_allclose(used, expected, rtol=1e-12)


def test_eval_every_and_final_epoch(task):
    result = fit(TinyMLP(), task, TrainConfig(epochs=5, batch_size=32, eval_every=2), eval_data=task, progress=False)
    evaluated = [row["epoch"] for row in result.history if row["eval_accuracy"] is not None]
    assert evaluated == [2, 4, 5]
    assert fit(TinyMLP(), task, TrainConfig(epochs=1), progress=False).final_eval_accuracy is None


def test_fit_accepts_arrays_and_matches_the_task_path(task):
    config = TrainConfig(epochs=2, batch_size=16)
    a, b = TinyMLP(seed=1), TinyMLP(seed=1)
    fit(a, task, config, progress=False)
    fit(b, (np.array(task.x_train), list(task.y_train)), config, progress=False)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka


def test_fit_does_not_modify_the_callers_arrays(task):
    x = np.array(task.x_train, dtype=np.float32) / 255
    y = np.array(task.y_train)
    x0, y0 = x.copy(), y.copy()
    fit(TinyMLP(), (x, y), TrainConfig(epochs=1, batch_size=16), progress=False)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


def test_non_finite_loss_from_a_huge_lr_raises(task):
    with pytest.raises(NonFiniteLossError, match=r"in epoch \d+ of 3 .*lower lr"):
        fit(TinyMLP(), task, TrainConfig(epochs=3, batch_size=16, lr=1e6), progress=False)


def test_non_finite_loss_from_nan_weights_raises(task):
    model = TinyMLP()
    with torch.no_grad():
        model.head.bias[0] = math.nan
    with pytest.raises(FloatingPointError, match=r"became nan in epoch 1 of 2"):
        fit(model, task, TrainConfig(epochs=2, batch_size=16), progress=False)
    with pytest.raises(ValueError):  # also a ValueError, for callers who catch those
        fit(model, task, TrainConfig(epochs=2, batch_size=16), progress=False)


@pytest.mark.parametrize(
    "make_data, match",
    [
        (lambda t: (np.full((4, 1, 12, 12), np.nan, dtype=np.float32), np.zeros(4, dtype=int)), "contain NaN"),
        (lambda t: (t.x_train, t.y_train + 5), r"labels must lie in 0..2 .*replace_head"),
        (lambda t: (t.x_train, t.y_train[:-1]), "labels must be 1-D with 60 entries"),
        (lambda t: (t.x_train, t.y_train.astype(float)), "labels must be integers"),
        (lambda t: (t.x_train[:, 0, 0], t.y_train), r"must be \(n_samples, channels, height, width\)"),
        (lambda t: (t.x_train[:0], t.y_train[:0]), "is empty"),
        (lambda t: (t.x_train.astype(np.int64), t.y_train), r"must be uint8 \(0..255\) or float"),
        (lambda t: t.x_train, "must be a Task or an \\(images, labels\\) pair"),
    ],
)
def test_fit_validates_its_data(task, make_data, match):
    with pytest.raises(ValueError, match=match):
        fit(TinyMLP(), make_data(task), TrainConfig(epochs=1), progress=False)


def test_fit_validates_model_config_and_trainable_parameters(task):
    with pytest.raises(ValueError, match="model must be a torch.nn.Module"):
        fit("resnet", task, progress=False)
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        fit(TinyMLP(), task, {"epochs": 1}, progress=False)
    model = TinyMLP()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(model, task, progress=False)


def test_fit_validates_checkpoint_arguments(task, tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint_epochs must lie in 0..2"):
        fit(TinyMLP(), task, TrainConfig(epochs=2), checkpoint_epochs=[3], checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="checkpoint_dir is required"):
        fit(TinyMLP(), task, TrainConfig(epochs=2), checkpoint_epochs=[1], progress=False)


def test_checkpoints_are_written_at_the_chosen_epochs(task, tmp_path):
    checkpoint = pytest.importorskip(
        "transferlab.models._checkpoint",
        reason="transferlab.models._checkpoint (save_checkpoint) is not importable yet",
    )
    from transferlab.models._registry import build

    # Checkpoints rebuild the model from the architecture registry, so a registered arch is needed.
    model = build("convnet", in_channels=1, widths=[4, 8], num_classes=3, seed=0)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainConfig(epochs=3, batch_size=16)
    result = fit(
        model,
        task,
        config,
        checkpoint_epochs=(3, 0, 2),
        checkpoint_dir=tmp_path / "run",
        checkpoint_metadata={"expert": "tiny", "epoch": -1},
        progress=False,
    )
    expected = [tmp_path / "run" / f"epoch_{e:03d}.safetensors" for e in (0, 2, 3)]
    assert list(result.checkpoints) == expected
    assert sorted((tmp_path / "run").glob("*.safetensors")) == expected

    first = checkpoint.load_checkpoint(expected[0])
    last = checkpoint.load_checkpoint(expected[-1])
    for key, value in first.model.state_dict().items():  # epoch 0 = before training
        assert torch.equal(value, initial[key]), key
    for key, value in last.model.state_dict().items():  # after the last epoch
        assert torch.equal(value, model.state_dict()[key]), key
    assert not torch.equal(last.model.head.weight, initial["head.weight"])
    assert last.metadata["expert"] == "tiny"
    assert last.metadata["epoch"] == 3  # fit's keys win over the caller's
    assert last.metadata["train_config"] == config.to_dict()
    np.testing.assert_allclose(last.metadata["metrics"]["train_loss"], result.history[-1]["train_loss"], rtol=1e-15)
    assert first.metadata["metrics"] is None


# -- evaluate and batching ---------------------------------------------------------------------
def test_evaluate_matches_a_full_batch_reference(task):
    model = TinyConvNet(seed=3)
    model.train()
    loss, accuracy = evaluate(model, task, batch_size=7)  # 60 test images: 8 full batches and one of 4
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        logits = model(to_input(np.array(task.x_test))).double()
    labels = torch.as_tensor(np.array(task.y_test))
    np.testing.assert_allclose(loss, F.cross_entropy(logits, labels).item(), rtol=1e-6)
    assert accuracy == (logits.argmax(1) == labels).double().mean().item()
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1; got 0"):
        evaluate(model, task, batch_size=0)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 500), batch_size=st.integers(1, 64))
def test_batch_bounds_cover_the_data_once(n, batch_size):
    bounds = _batch_bounds(n, batch_size)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [stop - start for start, stop in bounds]
    assert all(s == batch_size for s in sizes[:-1])
    if n > 1 and batch_size > 1:
        assert sizes[-1] >= 2  # never a lone sample for batch norm
    assert sizes[-1] <= batch_size + 1
    # the expected number of batches: ceil(n / batch_size), minus one if a lone sample was merged
    merged = 1 < batch_size < n and n % batch_size == 1
    assert len(bounds) == math.ceil(n / batch_size) - merged
