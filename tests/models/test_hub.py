"""Model adapters: Hugging Face from configs, our checkpoints, any nn.Module; timm and torchvision when installed."""

from __future__ import annotations

import importlib
import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from transferlab.features import extract
from transferlab.models import ConvNet
from transferlab.models._checkpoint import save_checkpoint
from transferlab.models._hub import (
    IMAGENET_MEAN,
    MissingExtraError,
    Preprocessing,
    load_model,
    wrap_module,
)

transformers = pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")


def _images(n=5, h=20, w=26, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(h, w, c), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        models = _hf_models()
    for name, model in models.items():
        model.save_pretrained(root / name)
    (root / "resnet" / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"height": 48, "width": 48}, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}))
    return root


def _hf_models() -> dict:
    """Tiny random-weight models built from configs: nothing is downloaded."""
    return {
        "resnet": transformers.ResNetForImageClassification(transformers.ResNetConfig(
            embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=5)),
        "vit": transformers.ViTForImageClassification(transformers.ViTConfig(
            image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=32, num_labels=4)),
        "convnext": transformers.ConvNextForImageClassification(transformers.ConvNextConfig(
            hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=3)),
        "backbone": transformers.ResNetModel(transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16],
                                                                       depths=[1, 1])),
    }


def test_hf_resnet_features_are_the_pooled_backbone_output(hf_dirs):
    m = load_model(f"hf:{hf_dirs / 'resnet'}")
    assert m.preprocessing.size == (48, 48) and m.preprocessing.mean == (0.5, 0.5, 0.5)  # from the processor file
    x = m.preprocessing(_images())
    assert x.shape == (5, 3, 48, 48)
    with torch.no_grad():
        pooled = m.module.resnet(x).pooler_output.flatten(1)
        logits = m.module(pixel_values=x).logits
    assert torch.allclose(m.features(x), pooled, atol=1e-6)
    assert torch.allclose(m.logits(x), logits)
    assert m.has_head and m.source_classes == 5


def test_hf_vit_takes_its_size_from_the_config_and_reads_the_cls_token(hf_dirs):
    m = load_model(f"hf:{hf_dirs / 'vit'}")
    assert m.preprocessing.size == (32, 32) and m.preprocessing.mean == IMAGENET_MEAN
    x = m.preprocessing(_images())
    with torch.no_grad():
        cls = m.module.vit(x).last_hidden_state[:, 0]
    assert torch.allclose(m.features(x), cls, atol=1e-6)
    assert m.logits(x).shape == (5, 4)


def test_hf_convnext_and_a_backbone_without_head(hf_dirs):
    convnext = load_model(f"hf:{hf_dirs / 'convnext'}")
    assert convnext.features(convnext.preprocessing(_images(2))).shape == (2, 16)
    backbone = load_model(f"hf:{hf_dirs / 'backbone'}")
    assert not backbone.has_head  # its classifier would be random: no LEEP from it
    with pytest.raises(ValueError, match="no source head"):
        backbone.logits(backbone.preprocessing(_images(1)))


def test_our_checkpoint_gives_what_extract_gives(tmp_path):
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = ConvNet(widths=(4, 8), num_classes=3)
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    m = load_model(f"file:{path}")
    assert m.preprocessing.size == (28, 28) and m.preprocessing.channels == 1
    grey = [img[:, :, :1] for img in _images(4, 28, 28)]
    expected = extract(model, np.stack([g.transpose(2, 0, 1) for g in grey]))
    assert np.allclose(m.features(m.preprocessing(grey)).numpy(), expected, atol=1e-5)


def test_any_module_with_a_linear_head_or_a_named_feature_layer():
    net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))
    m = load_model(net, input_size=16)
    x = m.preprocessing(_images(3))
    with torch.no_grad():
        assert torch.allclose(m.features(x), net[:4](x))
    named = wrap_module(net, input_size=(16, 12), feature_layer="1", has_head=False)
    assert named.features(named.preprocessing(_images(3))).shape == (3, 6)  # ReLU maps, average-pooled
    with pytest.raises(ValueError, match="no module"):
        wrap_module(net, feature_layer="nope")


def test_preprocessing_closed_form():
    p = Preprocessing((4, 5), (0.5,), (0.25,), channels=1)
    out = p([np.full((7, 9, 3), 51, dtype=np.uint8)])  # RGB grey 51 -> L 51 -> 0.2
    assert out.shape == (1, 1, 4, 5)
    assert torch.allclose(out, torch.full((1, 1, 4, 5), (0.2 - 0.5) / 0.25))
    with pytest.raises(ValueError, match="one value per channel"):
        Preprocessing((4, 4), (0.5, 0.5), (1.0,), channels=1)


@pytest.mark.parametrize("spec, message", [("resnet18", "KIND:NAME"), ("onnx:x", "unknown model kind"),
                                           ("file:/no/such.safetensors", "does not exist")])
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        load_model(spec)


@pytest.mark.parametrize("spec, extra", [("timm:resnet18", "timm"), ("torchvision:resnet18", "torchvision")])
def test_a_missing_extra_names_the_extra(monkeypatch, spec, extra):
    real = importlib.import_module

    def fake(name, *args):
        if name == extra:
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(MissingExtraError, match=rf"pip install 'transferlab\[{extra}\]'"):
        load_model(spec, pretrained=False)


def test_timm_model_with_random_weights():
    timm = pytest.importorskip("timm", reason="the timm extra is not installed (make test-extras)")
    m = load_model("timm:resnet18", pretrained=False)
    assert m.preprocessing.size == (224, 224)
    x = m.preprocessing(_images(2))
    with torch.no_grad():
        expected = m.module.forward_head(m.module.forward_features(x), pre_logits=True)
    assert torch.allclose(m.features(x), expected, atol=1e-5)
    assert isinstance(timm.__version__, str)


def test_torchvision_model_with_random_weights():
    pytest.importorskip("torchvision", reason="the torchvision extra is not installed (make test-extras)")
    m = load_model("torchvision:resnet18", pretrained=False)
    x = m.preprocessing(_images(2))
    with torch.no_grad():
        body = torch.nn.Sequential(*list(m.module.children())[:-1])
        expected = body(x).flatten(1)
    assert torch.allclose(m.features(x), expected, atol=1e-5)


def test_an_unavailable_hub_model_is_one_clear_error():
    # HF_HUB_OFFLINE=1 in the tests (conftest): a hub id outside the cache cannot load.
    with pytest.raises(ValueError, match="cannot load Hugging Face model 'nobody/no-such-model'"):
        load_model("hf:nobody/no-such-model")


def test_a_folder_with_only_a_pickled_pytorch_model_bin_is_refused_in_one_line(hf_dirs, tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(hf_dirs / "resnet" / "config.json", folder / "config.json")
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04 a dummy pickle: it must never be opened")
    with pytest.raises(ValueError) as caught:
        load_model(f"hf:{folder}")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"Hugging Face folder {str(folder)!r} has only pickled weights (pytorch_model.bin), "
                              "which transferlab never unpickles")
    assert "save_pretrained(folder) writes model.safetensors" in message


def test_a_pickled_bin_beside_safetensors_is_left_unread(hf_dirs, tmp_path):
    folder = shutil.copytree(hf_dirs / "resnet", tmp_path / "both")
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04 junk: reading it would fail")
    m = load_model(f"hf:{folder}")
    reference = load_model(f"hf:{hf_dirs / 'resnet'}")
    x = m.preprocessing(_images(2))
    assert torch.equal(m.features(x), reference.features(x))  # the safetensors weights, not the junk


def test_asking_hugging_face_to_unpickle_is_refused(hf_dirs):
    with pytest.raises(ValueError, match="use_safetensors must be True"):
        load_model(f"hf:{hf_dirs / 'resnet'}", use_safetensors=False)
