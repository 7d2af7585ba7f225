"""Candidates as saveable StagedModels (transferlab.models._hf_arch) and what load_model("file:") reads back."""

from __future__ import annotations

import copy
import json
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from transferlab.models import (
    FINETUNABLE_KINDS,
    HFClassifier,
    MissingExtraError,
    Preprocessing,
    StagedModel,
    build,
    count_parameters,
    load_checkpoint,
    load_model,
    read_checkpoint_metadata,
    save_checkpoint,
    to_finetunable,
)
from transferlab.models._checkpoint import METADATA_KEY

transformers = pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")

CLASS_NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]


def _images(n=4, h=20, w=26, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(h, w, c), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Spec -> source: tiny Hugging Face models from configs (as in examples/byo_example.py; nothing is
    downloaded) saved as folders, and a convnet checkpoint of our own."""
    root = tmp_path_factory.mktemp("candidates")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        models = {
            "resnet": transformers.ResNetForImageClassification(transformers.ResNetConfig(
                embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=10)),
            "vit": transformers.ViTForImageClassification(transformers.ViTConfig(
                image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=64, num_labels=10)),
            "convnext": transformers.ConvNextForImageClassification(transformers.ConvNextConfig(
                hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=3)),
        }
    for name, model in models.items():
        model.save_pretrained(root / name)
    # The resnet states its preprocessing (48 x 48, its own statistics); the others take the defaults.
    (root / "resnet" / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"height": 48, "width": 48}, "image_mean": [0.5, 0.4, 0.3], "image_std": [0.25, 0.2, 0.3]}))
    convnet = build("convnet", in_channels=1, widths=[4, 8], num_classes=10, seed=0)
    save_checkpoint(root / "convnet.safetensors", convnet, metadata={"class_names": [str(i) for i in range(10)]})
    specs = {f"hf:{root / name}": name for name in models}
    specs[f"file:{root / 'convnet.safetensors'}"] = "convnet"
    return specs


def _spec(sources, name):
    return next(spec for spec, kind in sources.items() if kind == name)


@pytest.mark.parametrize("name", ["resnet", "vit", "convnext", "convnet"])
def test_features_are_the_candidates_features(sources, name):
    source = load_model(_spec(sources, name))
    x = source.preprocessing(_images(5))
    before = copy.deepcopy(source.module.state_dict())
    state = torch.get_rng_state()
    model = to_finetunable(source, 6, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left as it was
    assert isinstance(model, StagedModel) and not model.training
    assert model.arch == ("convnet" if name == "convnet" else "hf")
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model(x)
    # The features are where the candidate reads them (the input of its classifier's last Linear).
    np.testing.assert_allclose(features.numpy(), source.features(x).numpy(), rtol=1e-5, atol=1e-5)
    # The head: a fresh nn.Linear(feature_dim, 6) drawn from the seed alone, applied to those features.
    with torch.random.fork_rng():
        torch.manual_seed(3)
        reference = nn.Linear(source.features(x).shape[1], 6)
    assert torch.equal(model.head.weight, reference.weight) and torch.equal(model.head.bias, reference.bias)
    np.testing.assert_allclose(logits.numpy(), (features @ reference.weight.T + reference.bias).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    # The candidate itself is untouched: same weights, still its own classifier.
    after = source.module.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], v) for k, v in before.items())
    assert source.logits(x).shape[1] == (3 if name == "convnext" else 10)


def test_hf_config_is_json_and_rebuilds_the_same_shapes(sources):
    source = load_model(_spec(sources, "vit"))
    model = to_finetunable(source, 4)
    assert json.loads(json.dumps(model.config)) == model.config
    assert model.config["model_type"] == "vit" and model.config["in_channels"] == 3
    assert model.config["num_classes"] == 4 and model.stage_names == ["backbone"]
    assert {"id2label", "label2id", "num_labels", "model_type", "transformers_version"}.isdisjoint(
        model.config["hf_config"])
    rebuilt = build("hf", **model.config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    # Every weight of the candidate but its classifier is in the backbone, under the same name.
    backbone = {k.removeprefix("stages.backbone.model."): v for k, v in model.state_dict().items()
                if k.startswith("stages.backbone.")}
    source_weights = {k: v for k, v in source.module.state_dict().items() if not k.startswith("classifier.")}
    assert backbone.keys() == source_weights.keys()
    assert all(torch.equal(backbone[k], v) for k, v in source_weights.items())
    # 32 -> 4 classes: the candidate's parameters less its 32*10+10 classifier, plus a 32*4+4 head.
    assert count_parameters(model) == count_parameters(source.module) - (32 * 10 + 10) + (32 * 4 + 4)


def test_freezing_the_backbone_is_a_linear_probe(sources):
    model = to_finetunable(load_model(_spec(sources, "resnet")), 3)
    reference = copy.deepcopy(model)
    model.freeze_stages(1)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    model.train()
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    opt.step()
    frozen, old = model.stages.state_dict(), reference.stages.state_dict()
    assert all(torch.equal(frozen[k], v) for k, v in old.items())  # weights and batch-norm statistics
    assert not torch.equal(model.head.weight, reference.head.weight)


@pytest.mark.parametrize("name", ["resnet", "convnet"])
def test_saved_candidate_loads_back_with_its_preprocessing(sources, tmp_path, name):
    spec = _spec(sources, name)
    source = load_model(spec)
    model = to_finetunable(source, 6, seed=1)
    with torch.no_grad():  # stands in for fine-tuning: the saved weights are not the candidate's
        model.head.weight.mul_(2.0)
        next(model.stages.parameters()).add_(0.01)
    path = save_checkpoint(tmp_path / "chosen.safetensors", model, metadata={
        "preprocessing": source.preprocessing.to_dict(), "class_names": CLASS_NAMES, "source_spec": spec})
    loaded = load_model(f"file:{path}")
    assert loaded.preprocessing == source.preprocessing
    if name == "resnet":  # the candidate's own size and statistics, not the 28 x 28 default of our sources
        assert loaded.preprocessing == Preprocessing((48, 48), (0.5, 0.4, 0.3), (0.25, 0.2, 0.3), 3)
    assert loaded.class_names == tuple(CLASS_NAMES) and loaded.source_classes == 6
    assert loaded.feature_layer == "head" and loaded.has_head
    images = _images(5, c=source.preprocessing.channels)
    x = loaded.preprocessing(images)
    with torch.no_grad():
        expected = model(x)
    assert torch.equal(loaded.logits(x), expected)
    assert torch.equal(loaded.features(x), model.forward_features(x))
    assert read_checkpoint_metadata(path)["metadata"]["source_spec"] == spec


def test_checkpoint_without_preprocessing_keeps_the_default(sources):
    loaded = load_model(_spec(sources, "convnet"))
    assert loaded.preprocessing == Preprocessing((28, 28), (0.0,), (1.0,), 1)
    assert loaded.class_names == tuple(str(i) for i in range(10))


def test_hf_checkpoint_is_checked_on_the_meta_device_before_allocating(sources, tmp_path):
    path = save_checkpoint(tmp_path / "hf.safetensors", to_finetunable(load_model(_spec(sources, "resnet")), 2))
    with safe_open(str(path), framework="pt") as fh:
        document = json.loads(fh.metadata()[METADATA_KEY])
    document["config"]["hf_config"]["hidden_sizes"] = [8, 24]  # another network than the tensors
    save_file(load_file(str(path)), str(path), metadata={METADATA_KEY: json.dumps(document)})
    with pytest.raises(ValueError, match="tensors do not match arch 'hf'.*wrong shapes"):
        load_checkpoint(path)


def _rewrite_metadata(path, **metadata):
    with safe_open(str(path), framework="pt") as fh:
        document = json.loads(fh.metadata()[METADATA_KEY])
    document["metadata"].update(metadata)
    save_file(load_file(str(path)), str(path), metadata={METADATA_KEY: json.dumps(document)})


@pytest.mark.parametrize("metadata, match", [
    ({"preprocessing": {"size": [28, 28], "mean": [0.0], "std": [1.0]}}, r"'preprocessing'.*missing \['channels'\]"),
    ({"preprocessing": {"size": [28], "mean": [0.0], "std": [1.0], "channels": 1}}, "'size' must be"),
    ({"preprocessing": {"size": [28, 28], "mean": [0.0], "std": [0.0], "channels": 1}}, "'std' must be positive"),
    ({"preprocessing": "imagenet"}, "'preprocessing'.*must be a dict"),
    ({"preprocessing": Preprocessing((28, 28)).to_dict()}, "3-channel images for a model of 1 input channels"),
    ({"class_names": ["a", "b"]}, "'class_names'.*10 strings"),
])
def test_unusable_metadata_is_one_clear_error(sources, tmp_path, metadata, match):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(open(_spec(sources, "convnet").removeprefix("file:"), "rb").read())
    _rewrite_metadata(path, **metadata)
    with pytest.raises(ValueError, match=match) as info:
        load_model(f"file:{path}")
    assert str(path) in str(info.value)


def test_preprocessing_from_dict_inverts_to_dict():
    pre = Preprocessing((32, 48), (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), 3)
    assert Preprocessing.from_dict(pre.to_dict()) == pre
    assert Preprocessing.from_dict(json.loads(json.dumps(pre.to_dict()))) == pre


@pytest.mark.parametrize("changes, match", [
    ({"size": [0, 28]}, "'size' must be .*two positive integers"),
    ({"size": [28.0, 28]}, "'size' must be"),
    ({"size": "28x28"}, "'size' must be"),
    ({"channels": 2}, "'channels' must be 1 or 3; got 2"),
    ({"channels": True}, "'channels' must be 1 or 3"),
    ({"mean": [0.5, 0.5]}, "'mean' must be 3 finite number"),
    ({"std": [0.2, 0.2, float("nan")]}, "'std' must be 3 finite number"),
    ({"std": [0.2, -0.1, 0.2]}, "'std' must be positive"),
    ({"extra": 1}, r"unknown \['extra'\]"),
])
def test_preprocessing_from_dict_names_the_bad_key(changes, match):
    data = {**Preprocessing((28, 28)).to_dict(), **changes}
    with pytest.raises(ValueError, match=match):
        Preprocessing.from_dict(data)


def test_a_candidate_read_elsewhere_than_its_classifier_input_is_refused(sources):
    assert FINETUNABLE_KINDS == ("file", "hf", "timm", "torchvision")  # and wrap_module networks
    # A candidate read at another layer than its classifier's input would change its features.
    source = load_model(_spec(sources, "convnet"))
    moved = type(source)(source.name, source.module, source.preprocessing, feature_layer="stages.conv1")
    with pytest.raises(ValueError, match="default feature layer"):
        to_finetunable(moved, 2)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 1; got 0"):
        to_finetunable(source, 0)
    with pytest.raises(ValueError, match="must be an ExternalModel"):
        to_finetunable(source.module, 2)


@pytest.mark.parametrize("config, match", [
    ({"model_type": "no-such-model", "hf_config": {}}, "cannot build a Hugging Face image classifier"),
    ({"model_type": "bert", "hf_config": {}}, "cannot build a Hugging Face image classifier of model_type 'bert'"),
    ({"model_type": "resnet", "hf_config": {"num_channels": 1}}, r"num_channels \(1\) differs from in_channels"),
    ({"model_type": "", "hf_config": {}}, "model_type must be a non-empty string"),
    ({"model_type": "resnet", "hf_config": [1]}, "hf_config must be a dict"),
])
def test_bad_hf_configs_are_refused(config, match):
    with pytest.raises(ValueError, match=match):
        build("hf", **config)


def test_hf_arch_without_transformers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'transferlab\[hf\]'"):
        HFClassifier("resnet", {"embedding_size": 4, "hidden_sizes": [4], "depths": [1]})
