"""timm, torchvision and wrapped networks as saveable models (transferlab.models._network_arch) and fine-tuned.

The reference for every conversion is the candidate itself: the new model's
features must be what :class:`ExternalModel` reads from the same network on the
same batch, and a saved model must load back with the same outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from transferlab.data import load_data
from transferlab.models import (
    ExternalModel,
    HubClassifier,
    ModuleClassifier,
    load_model,
    save_checkpoint,
    to_finetunable,
    wrap_module,
)
from transferlab.rank import finetune, finetuned_metadata
from tests.helpers import TinyNetwork


def _wrapped(**kwargs) -> ExternalModel:
    torch.manual_seed(0)
    return wrap_module(TinyNetwork(), input_size=8, channels=1, mean=(0.5,), std=(0.25,), **kwargs)


def _batch(model: ExternalModel, n: int = 5) -> torch.Tensor:
    return torch.rand(n, model.preprocessing.channels, *model.preprocessing.size,
                      generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("feature_layer", [None, "bn", "conv"])
def test_a_wrapped_network_keeps_its_features_and_gets_a_seeded_head(feature_layer):
    model = _wrapped(feature_layer=feature_layer)
    staged = to_finetunable(model, 3, seed=4)
    assert isinstance(staged, ModuleClassifier) and staged.stage_names == ["backbone"]
    x = _batch(model)
    with torch.no_grad():
        torch.testing.assert_close(staged.forward_features(x), model.features_and_logits(x)[0], rtol=0, atol=0)
    assert staged.num_classes == 3 and staged.feature_dim == 4
    assert torch.equal(staged.head.weight, to_finetunable(model, 3, seed=4).head.weight)
    assert not torch.equal(staged.head.weight, to_finetunable(model, 3, seed=5).head.weight)
    assert isinstance(model.module.fc, nn.Linear)  # the candidate is not changed


def test_a_saved_wrapped_network_loads_back_only_with_the_same_network(tmp_path):
    model = _wrapped()
    staged = to_finetunable(model, 3, seed=0)
    path = save_checkpoint(tmp_path / "wrapped.safetensors", staged, metadata={})
    with pytest.raises(ValueError, match=r"network of class 'TinyNetwork'.*module=<an instance of that network>"):
        load_model(f"file:{path}")
    with pytest.raises(ValueError, match=r"holds a 'TinyNetwork' network; module is a 'Sequential'"):
        load_model(f"file:{path}", module=nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="module must be a torch.nn.Module"):
        load_model(f"file:{path}", module="TinyNetwork")
    with pytest.raises(ValueError, match="takes only module="):
        load_model(f"file:{path}", pretrained=False)
    back = load_model(f"file:{path}", module=TinyNetwork())
    x = _batch(model)
    with torch.no_grad():
        assert torch.equal(back.module(x), staged(x))


def test_a_model_that_says_nothing_of_how_it_was_made_is_refused():
    model = _wrapped()
    bare = ExternalModel("mine", model.module, model.preprocessing)
    with pytest.raises(ValueError, match="'mine' cannot be saved and rebuilt"):
        to_finetunable(bare, 2)


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    """Three classes of 8 x 8 one-channel images that differ in brightness, 24 each."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 24)
    images = np.clip(rng.normal(60 + 70 * labels[:, None, None], 20, size=(72, 8, 8)), 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("tiny") / "tiny.npz"
    np.savez(path, images=images, labels=labels)
    return path


def test_finetune_a_wrapped_network_and_reload_it_with_its_test_accuracy(tiny_images, tmp_path):
    images = load_data(tiny_images, seed=0)
    model = _wrapped()
    chosen, record = finetune(model, images, lrs=[0.1, 0.03], steps=20, batch_size=16, seed=0)
    assert record["lr"] in (0.1, 0.03) and len(record["per_lr"]) == 2
    path = save_checkpoint(tmp_path / "chosen.safetensors", chosen.to("cpu"), metadata=finetuned_metadata(record))
    back = load_model(f"file:{path}", module=TinyNetwork())
    assert back.class_names == tuple(images.class_names)
    logits = back.logits(back.preprocessing(list(images.x_test)))
    accuracy = float(np.mean(logits.argmax(1).numpy() == images.y_test))
    assert accuracy == pytest.approx(record["test_accuracy"], abs=1e-12)
    assert record["test_accuracy"] > 1 / 3  # brightness separates the classes


def test_finetune_with_a_frozen_backbone_leaves_the_network_unchanged(tiny_images):
    images = load_data(tiny_images, seed=0)
    model = _wrapped()
    before = to_finetunable(model, images.n_classes).stages["backbone"].state_dict()
    chosen, _ = finetune(model, images, lrs=[0.1], steps=10, batch_size=16, freeze="backbone")
    after = chosen.stages["backbone"].state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


# -- timm and torchvision (the extras: make test-extras) ----------------------------------------------


@pytest.mark.parametrize("spec, options", [
    ("timm:test_resnet", {"in_chans": 1}),
    ("timm:test_vit", {}),
    ("timm:test_convnext", {}),
    ("torchvision:resnet18", {}),
    ("torchvision:mobilenet_v3_small", {}),
])
def test_hub_networks_rebuild_by_name_and_load_back(spec, options, tmp_path):
    library = spec.partition(":")[0]
    pytest.importorskip(library, reason=f"the {library} extra is not installed (make test-extras)")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = load_model(spec, pretrained=False, **options)
    staged = to_finetunable(model, 4, seed=0)
    assert isinstance(staged, HubClassifier)
    assert staged.config["library"] == library and staged.config["options"] == options
    x = _batch(model, n=2)
    with torch.no_grad():
        torch.testing.assert_close(staged.forward_features(x), model.features_and_logits(x)[0])
        path = save_checkpoint(tmp_path / "hub.safetensors", staged, metadata={})
        back = load_model(f"file:{path}")  # rebuilt from the library by name: no download, no network object
        torch.testing.assert_close(back.module(x), staged(x), rtol=0, atol=0)


def test_finetune_a_timm_network(tiny_images, tmp_path):
    pytest.importorskip("timm", reason="the timm extra is not installed (make test-extras)")
    images = load_data(tiny_images, seed=0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = load_model("timm:test_resnet", pretrained=False, in_chans=1)
    chosen, record = finetune(model, images, lrs=[0.05], steps=6, batch_size=16, seed=0)
    path = save_checkpoint(tmp_path / "timm.safetensors", chosen.to("cpu"), metadata=finetuned_metadata(record))
    back = load_model(f"file:{path}")
    logits = back.logits(back.preprocessing(list(images.x_test)))
    assert float(np.mean(logits.argmax(1).numpy() == images.y_test)) == pytest.approx(record["test_accuracy"])
