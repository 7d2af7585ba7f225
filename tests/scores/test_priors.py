"""The priors (source accuracy, parameter count): validated scalars, target-blind, and their inputs in the rankers."""

import numpy as np
import pytest
from safetensors import safe_open

from transferlab.rank import ArrayCandidate, rank, rank_zoo
from transferlab.scores import parameters, source_accuracy, spec
from transferlab.features._cache import FeatureCache

from tests.rank.test_rank_zoo import target, zoo  # noqa: F401  (the tiny zoo and target fixtures)

LABELS = np.repeat([0, 1, 2], 4)


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0, np.float32(0.25), np.array(0.75), 1])
def test_source_accuracy_returns_the_accuracy(value):
    out = source_accuracy(LABELS, source_accuracy=value)
    assert type(out) is float and out == float(np.asarray(value))


@pytest.mark.parametrize("value", [1, 11_689_512, np.int64(25_557_032), np.array(7)])
def test_parameters_returns_the_count_as_a_float(value):
    out = parameters(LABELS, n_parameters=value)
    assert type(out) is float and out == int(np.asarray(value))


@pytest.mark.parametrize(
    "value, message",
    [
        (np.nan, r"source_accuracy must be a finite number in \[0, 1\]; got nan"),
        (np.inf, r"source_accuracy must be a finite number in \[0, 1\]"),
        (1.5, r"source_accuracy must be a finite number in \[0, 1\]; got 1.5"),
        (-0.1, r"source_accuracy must be a finite number in \[0, 1\]"),
        (93.2, r"source_accuracy must be a finite number in \[0, 1\]; got 93.2"),
        (True, r"source_accuracy must be a finite number in \[0, 1\]"),
        ("0.9", r"source_accuracy must be a finite number in \[0, 1\]"),
        (np.array([0.5, 0.6]), r"source_accuracy must be a single number \(a float or a 0-d array\); got shape \(2,\)"),
    ],
)
def test_source_accuracy_validates_its_input(value, message):
    with pytest.raises(ValueError, match=message):
        source_accuracy(LABELS, source_accuracy=value)


@pytest.mark.parametrize(
    "value, message",
    [
        (0, "n_parameters must be an integer >= 1; got 0"),
        (-5, "n_parameters must be an integer >= 1"),
        (1e6, "n_parameters must be an integer >= 1; got 1000000.0"),
        (np.nan, "n_parameters must be an integer >= 1"),
        (True, "n_parameters must be an integer >= 1"),
        (np.array([3, 4]), r"n_parameters must be a single number"),
    ],
)
def test_parameters_validates_its_input(value, message):
    with pytest.raises(ValueError, match=message):
        parameters(LABELS, n_parameters=value)


def test_labels_are_validated_and_otherwise_ignored():
    assert source_accuracy(["b", "a", "a"], source_accuracy=0.5) == source_accuracy(LABELS, source_accuracy=0.5)
    assert parameters([0, 1], n_parameters=3) == 3.0  # a class of one sample is fine
    with pytest.raises(ValueError, match="labels must contain at least 2 classes"):
        source_accuracy([0, 0, 0], source_accuracy=0.5)
    with pytest.raises(ValueError, match="labels must be non-empty"):
        parameters([], n_parameters=3)
    with pytest.raises(ValueError, match="labels must be integers or strings"):
        parameters([0.5, 1.0], n_parameters=3)


def test_specs():
    for name, need in (("source_accuracy", "source_accuracy"), ("parameters", "parameters")):
        s = spec(name)
        assert s.group == "prior" and s.resample is False and s.needs == {need}
        assert s.min_per_class == 1 and not s.seeded and "Renggli" in s.reference
        # They read no features: translation and scale do not apply (declared False, as LEEP's).
        assert not s.scale_invariant and not s.translation_invariant


def test_rank_over_array_candidates_with_priors():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 10)
    small = ArrayCandidate("small", {"features": rng.normal(size=(20, 3)) + y[:, None], "source_accuracy": 0.71,
                                     "n_parameters": 1_000})
    large = ArrayCandidate("large", {"features": rng.normal(size=(20, 3)), "source_accuracy": np.array(0.93),
                                     "n_parameters": 5_000_000})
    assert small.provides == {"features", "source_accuracy", "parameters"}
    ranking = rank([small, large], y, ["source_accuracy", "parameters", "knn"], progress=False)
    by_model = {row["model"]: row for row in ranking.rows}
    assert by_model["small"]["source_accuracy"] == 0.71 and by_model["large"]["source_accuracy"] == 0.93
    assert by_model["small"]["parameters"] == 1000.0 and by_model["large"]["parameters"] == 5e6
    assert [row["model"] for row in ranking.rows][0] == "large"  # sorted by the first score, source accuracy
    # A candidate without the prior's input gets None (like LEEP without a head).
    bare = ArrayCandidate("bare", {"features": rng.normal(size=(20, 3))})
    ranking = rank([small, bare], y, ["parameters"], progress=False)
    assert {row["model"]: row["parameters"] for row in ranking.rows} == {"small": 1000.0, "bare": None}
    # A bad recorded value fails naming the member and the argument.
    wrong = ArrayCandidate("wrong", {"features": rng.normal(size=(20, 3)), "source_accuracy": 93.0})
    with pytest.raises(ValueError, match=r"score 'source_accuracy' failed for member 'wrong': source_accuracy must be"):
        rank([wrong], y, ["source_accuracy"], progress=False)


def _checkpoint_values(path) -> int:
    """The number of values in a checkpoint's tensors (the MLP members have no buffers: all are parameters)."""
    with safe_open(str(path), framework="numpy") as fh:
        return sum(int(np.prod(fh.get_slice(key).get_shape())) for key in fh.keys())


def test_a_zoo_ranking_has_the_priors_of_every_member(zoo, target, tmp_path):  # noqa: F811
    ranking = rank_zoo(zoo, target, ["source_accuracy", "parameters"], cache=FeatureCache(tmp_path),
                       progress=False)
    by_model = {row["model"]: row for row in ranking.rows}
    for member in zoo:
        row = by_model[member.name]
        assert row["source_accuracy"] == float(member.metadata["metrics"]["source_test_accuracy"])
        assert row["parameters"] == float(_checkpoint_values(member.checkpoint))
        assert row["parameters"] > 1000


def test_outside_models_give_their_size_and_a_recorded_source_accuracy(tmp_path):
    import torch
    from PIL import Image

    from transferlab.models import ConvNet
    from transferlab.models._checkpoint import save_checkpoint
    from transferlab.rank import MODEL_INPUTS, model_candidates, rank_models

    rng = np.random.default_rng(0)
    for k, c in enumerate(("dark", "light")):
        (tmp_path / "images" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 60, size=(28, 28), dtype=np.uint8) + 150 * k).save(
                tmp_path / "images" / c / f"{i}.png")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = ConvNet(widths=(4, 8), num_classes=10)
    expected_size = sum(p.numel() for p in net.parameters())
    recorded = save_checkpoint(tmp_path / "recorded.safetensors", net, metadata={"test_accuracy": 0.83})
    zoo_like = save_checkpoint(tmp_path / "zoo.safetensors", net, metadata={"metrics": {"source_test_accuracy": 0.6}})
    percent = save_checkpoint(tmp_path / "percent.safetensors", net, metadata={"source_accuracy": 83.0})
    bare = save_checkpoint(tmp_path / "bare.safetensors", net)
    models = [f"file:{p}" for p in (recorded, zoo_like, percent, bare)]
    assert MODEL_INPUTS >= {"parameters", "source_accuracy"}

    from transferlab.data._external import load_data

    data = load_data(tmp_path / "images")
    provides = {c.name: c.provides for c in model_candidates(models, data, progress=False)}
    assert provides[models[0]] == provides[models[1]] == {"features", "source_probs", "parameters", "source_accuracy"}
    assert provides[models[2]] == provides[models[3]] == {"features", "source_probs", "parameters"}  # none guessed

    ranking = rank_models(models, data, ["parameters", "source_accuracy"], progress=False)
    by_model = {row["model"]: row for row in ranking.rows}
    assert all(by_model[m]["parameters"] == float(expected_size) for m in models)
    assert [by_model[m]["source_accuracy"] for m in models] == [0.83, 0.6, None, None]
