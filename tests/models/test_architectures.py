"""Tests of the built-in architectures and the registry (transferlab.models._mlp/_convnet/_resnet/_registry)."""

from __future__ import annotations

import copy
import inspect
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from transferlab.features._extract import extract
from transferlab.models._base import StagedModel
from transferlab.models._convnet import ConvNet
from transferlab.models._mlp import MLP
from transferlab.models._registry import (
    _REGISTRY,
    available_archs,
    build,
    count_parameters,
    get_arch,
    register_arch,
)
from transferlab.models._resnet import BasicBlock, ResNet
from tests.helpers import provided_network, registry_archs  # noqa: F401 -- provided_network: a fixture

# Small configurations, and the per-stage activation shapes (C, H, W) or (D,) derived by hand:
# 3x3 convs with padding 1 keep the size, each 2x2 pool (ceil mode) or stride-2 block halves it.
CONFIGS = {
    "mlp": {"in_shape": [1, 28, 28], "hidden": [32, 16], "num_classes": 5},
    "convnet": {"in_channels": 1, "widths": [8, 16, 12], "num_classes": 5},
    "resnet": {"in_channels": 1, "width": 4, "blocks": [1, 2, 1], "num_classes": 5},
    "adapter_resnet": {"in_channels": 1, "width": 4, "blocks": [1, 2, 1], "num_classes": 5},
    # A Hugging Face ResNet of basic blocks (transformers, the "hf" extra), built from its config.
    "hf": {"model_type": "resnet", "hf_config": {"embedding_size": 4, "hidden_sizes": [4, 8], "depths": [1, 1],
                                                 "layer_type": "basic"}, "in_channels": 1, "num_classes": 5},
    # timm's smallest ResNet (the timm extra), one channel; its fc's input (96) is the features.
    # (zero_init_last off: a block whose last BN starts at 0 passes no gradient to its first BN at step 1.)
    "hub": {"library": "timm", "name": "test_resnet", "options": {"in_chans": 1, "zero_init_last": False},
            "feature_layer": None,
            "take": "input", "feature_dim": 96, "in_channels": 1, "num_classes": 5},
    # A wrapped plain network (tests.helpers.TinyNetwork, given by the provided_network fixture).
    "module": {"feature_layer": None, "take": "input", "feature_dim": 4, "module_class": "TinyNetwork",
               "in_channels": 1, "num_classes": 5},
}
STAGE_SHAPES = {
    "mlp": {(28, 28): {"fc1": (32,), "fc2": (16,)}},
    "convnet": {
        (28, 28): {"conv1": (8, 14, 14), "conv2": (16, 7, 7), "conv3": (12, 7, 7)},
        (28, 56): {"conv1": (8, 14, 28), "conv2": (16, 7, 14), "conv3": (12, 7, 14)},
        (8, 8): {"conv1": (8, 4, 4), "conv2": (16, 2, 2), "conv3": (12, 2, 2)},
    },
    "resnet": {
        (28, 28): {"stem": (4, 28, 28), "layer1": (4, 28, 28), "layer2": (8, 14, 14), "layer3": (16, 7, 7)},
        (28, 56): {"stem": (4, 28, 56), "layer1": (4, 28, 56), "layer2": (8, 14, 28), "layer3": (16, 7, 14)},
        (8, 8): {"stem": (4, 8, 8), "layer1": (4, 8, 8), "layer2": (8, 4, 4), "layer3": (16, 2, 2)},
    },
}
# Parameter counts of CONFIGS, summed by hand (weights + biases; convs have no bias, BN has 2C):
# mlp:     784*32+32 + 32*16+16 + 16*5+5                                        = 25733
# convnet: (9*8+16) + (9*8*16+32) + (9*16*12+24) + (12*5+5)                     = 3089
# resnet:  stem 9*4+8=44; layer1 2*(9*16+8)=304; layer2 (288+16+576+16+32+16)=944
#          + 2*(576+16)=1184; layer3 (1152+32+2304+32+128+32)=3680; head 16*5+5=85 = 6241
# adapter_resnet: resnet + one 1x1 adapter (conv in*out, BN 2*out) beside each 3x3 conv of
#          every block: layer1 (16+8)+(16+8)=48; layer2 (32+16)+(64+16)=128 + 2*(64+16)=160;
#          layer3 (128+32)+(256+32)=448; 48+128+160+448 = 784 more        = 7025
STAGE_SHAPES["adapter_resnet"] = STAGE_SHAPES["resnet"]  # adapters keep every shape
# hf: one stage, the backbone, whose output is the pooled (N, 8) input of the replaced classifier Linear.
STAGE_SHAPES["hf"] = {size: {"backbone": (8,)} for size in [(28, 28), (28, 56), (8, 8)]}
# hf: 7x7 stem conv 49*1*4=196 + BN 8 = 204; stage1 (4->4, stride 1, no shortcut) 2*(9*16+8) = 304;
#     stage2 (4->8, stride 2) 1x1 shortcut 32+16 + (9*32+16) + (9*64+16) = 944; head 8*5+5 = 45 -> 1497
# hub and module: one stage, the backbone, whose output is the pooled input of the network's last Linear.
STAGE_SHAPES["hub"] = {size: {"backbone": (96,)} for size in [(28, 28), (28, 56), (8, 8)]}
STAGE_SHAPES["module"] = {size: {"backbone": (4,)} for size in [(28, 28), (28, 56), (8, 8)]}
# module: conv 9*4+4 = 40, BN 8 (fc made Identity), head 4*5+5 = 25 -> 73. hub: timm's own count of the
# network without its classifier (num_classes=0), plus the head 96*5+5 = 485 (computed in the test).
PARAM_COUNTS = {"mlp": 25733, "convnet": 3089, "resnet": 6241, "adapter_resnet": 7025, "hf": 1497, "module": 73,
                "hub": None}

ARCHS = registry_archs()


@pytest.fixture(autouse=True)
def _network(provided_network):
    """The "module" architecture's network (tests.helpers.TinyNetwork) for every test."""
SIZES = [pytest.param(arch.values[0], size, marks=arch.marks) if hasattr(arch, "values") else (arch, size)
         for arch in ARCHS for size in STAGE_SHAPES.get(getattr(arch, "values", [arch])[0], {})]


def _param_count(arch: str) -> int:
    if arch != "hub":
        return PARAM_COUNTS[arch]
    import timm

    network = timm.create_model("test_resnet", pretrained=False, in_chans=1, num_classes=0)
    return sum(p.numel() for p in network.parameters()) + 96 * 5 + 5


def _model(arch: str, seed: int = 0) -> StagedModel:
    return build(arch, seed=seed, **CONFIGS[arch])


def _batch(size: tuple[int, int], n: int = 4, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, *size, generator=gen)


def test_every_registered_arch_has_expectations():
    assert set(CONFIGS) == set(STAGE_SHAPES) == set(PARAM_COUNTS) == set(available_archs())
    assert {"mlp", "convnet", "resnet"} <= set(available_archs())


@pytest.mark.parametrize("arch", ARCHS)
def test_arch_attribute_and_class(arch):
    model = _model(arch)
    assert model.arch == arch == get_arch(arch).arch
    assert isinstance(model, StagedModel)


@pytest.mark.parametrize("arch, size", SIZES)
def test_output_and_stage_shapes(arch, size):
    model = _model(arch).eval()
    x = _batch(size)
    expected = STAGE_SHAPES[arch][size]
    assert model.stage_names == list(expected)
    with torch.no_grad():
        assert tuple(model(x).shape) == (4, 5)
        for stage, shape in expected.items():
            assert tuple(model.forward_stages(x, stage).shape) == (4, *shape)
            assert tuple(model.forward_features(x, stage).shape) == (4, shape[0])
    assert model.feature_dim == list(expected.values())[-1][0]


@pytest.mark.parametrize("arch", ARCHS)
def test_parameter_count_golden(arch):
    model = _model(arch)
    expected = _param_count(arch)
    assert count_parameters(model) == expected
    assert count_parameters(model, trainable_only=True) == expected


@pytest.mark.parametrize("arch", ARCHS)
def test_features_are_gap_of_stage_output(arch):
    model = _model(arch).eval()
    size = next(iter(STAGE_SHAPES[arch]))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 1, *size), dtype=np.uint8)
    captured = {}
    hooks = [
        module.register_forward_hook(lambda _m, _i, out, name=name: captured.__setitem__(name, out.detach()))
        for name, module in model.stages.items()
    ]
    with torch.no_grad():
        logits = model(torch.from_numpy(images).float() / 255.0)
    for h in hooks:
        h.remove()
    for stage in model.stage_names:
        act = captured[stage].double()
        reference = act.mean(dim=(2, 3)) if act.ndim == 4 else act  # global average pool in float64
        np.testing.assert_allclose(extract(model, images, stage=stage), reference.numpy(), rtol=1e-5, atol=1e-6)
    last = captured[model.stage_names[-1]].double()
    last = last.mean(dim=(2, 3)) if last.ndim == 4 else last
    w, b = model.head.weight.detach().double(), model.head.bias.detach().double()
    np.testing.assert_allclose(logits.numpy(), (last @ w.T + b).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_replace_head_changes_only_the_head(arch):
    model = _model(arch)
    before = copy.deepcopy(model.stages.state_dict())
    old_head = model.head
    head = model.replace_head(7, seed=3)
    assert model.head is head and head is not old_head
    assert (head.in_features, head.out_features) == (model.feature_dim, 7)
    assert model.config["num_classes"] == 7 and model.num_classes == 7
    after = model.stages.state_dict()
    assert list(after) == list(before)
    for name, tensor in before.items():
        assert torch.equal(after[name], tensor), name
    x = _batch(next(iter(STAGE_SHAPES[arch])))
    assert tuple(model(x).shape) == (4, 7)
    other = _model(arch, seed=1)
    other.replace_head(7, seed=3)
    assert torch.equal(other.head.weight, head.weight)  # the head depends on its seed only


def _sgd_step(model: StagedModel, x: torch.Tensor, seed: int = 0) -> None:
    """One SGD step (momentum, weight decay) on all parameters, random labels, in train mode."""
    model.train()
    labels = torch.randint(0, model.num_classes, (x.shape[0],), generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), labels).backward()
    opt.step()


@pytest.mark.parametrize("arch", ARCHS)
def test_freeze_stages_keeps_frozen_stages_bit_identical(arch):
    size = next(iter(STAGE_SHAPES[arch]))
    x = _batch(size, n=8)
    n_stages = len(STAGE_SHAPES[arch][size])
    for n_frozen in range(n_stages + 1):
        model = _model(arch)
        reference = copy.deepcopy(model)
        model.freeze_stages(n_frozen)
        assert model.frozen_stages == n_frozen
        _sgd_step(model, x)
        for i, stage in enumerate(model.stage_names):
            new = dict(model.stages[stage].named_parameters())
            old = dict(reference.stages[stage].named_parameters())
            new_buf = dict(model.stages[stage].named_buffers())
            old_buf = dict(reference.stages[stage].named_buffers())
            for name in old:
                same = torch.equal(new[name], old[name])
                assert same == (i < n_frozen), f"l={n_frozen} {stage}.{name} changed={not same}"
            for name in old_buf:
                if name.endswith("num_batches_tracked"):
                    assert int(new_buf[name]) == int(old_buf[name]) + (i >= n_frozen), f"{stage}.{name}"
                else:
                    same = torch.equal(new_buf[name], old_buf[name])
                    assert same == (i < n_frozen), f"l={n_frozen} {stage}.{name} changed={not same}"
        assert not torch.equal(model.head.weight, reference.head.weight)


@pytest.mark.parametrize("arch", ARCHS)
def test_freeze_all_stages_leaves_only_the_head(arch):
    model = _model(arch)
    model.freeze_stages(len(model.stage_names))
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["head.weight", "head.bias"]
    assert count_parameters(model, trainable_only=True) == model.feature_dim * 5 + 5
    model.train()
    assert all(not m.training for stage in model.stages.values() for m in stage.modules())
    assert model.head.training
    model.freeze_stages(0)
    assert count_parameters(model, trainable_only=True) == _param_count(arch)
    n = len(model.stage_names)
    with pytest.raises(ValueError, match=rf"^n must be an integer in \[0, {n}\]; got {n + 1}$"):
        model.freeze_stages(n + 1)


@pytest.mark.parametrize("arch", ARCHS)
def test_config_round_trip(arch):
    model = _model(arch)
    signature = inspect.signature(type(model).__init__).parameters
    assert set(model.config) == set(signature) - {"self"}
    assert json.loads(json.dumps(model.config)) == model.config  # JSON-friendly
    rebuilt = build(arch, **model.config)
    assert type(rebuilt) is type(model)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    assert rebuilt.config == model.config


@pytest.mark.parametrize("arch", ARCHS)
def test_build_seed_is_reproducible_and_leaves_global_rng(arch):
    state = torch.get_rng_state()
    a, b, c = _model(arch, seed=5), _model(arch, seed=5), _model(arch, seed=6)
    assert torch.equal(torch.get_rng_state(), state)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name
    assert not torch.equal(a.head.weight, c.head.weight)


def test_default_configs_match_the_documented_signatures():
    assert MLP().config == {"in_shape": [1, 28, 28], "hidden": [256, 128], "num_classes": 10}
    assert ConvNet().config == {"in_channels": 1, "widths": [32, 64, 128], "num_classes": 10}
    assert ResNet().config == {"in_channels": 1, "width": 16, "blocks": [1, 1, 1], "num_classes": 10}
    assert ResNet(width=16, blocks=(1, 1, 1)).feature_dim == 64
    assert ResNet(width=8, blocks=(2, 2)).feature_dim == 16


def test_mlp_rejects_other_input_shapes():
    model = _model("mlp")
    with pytest.raises(ValueError, match=r"MLP input must have shape \(N, 1, 28, 28\).*\(4, 1, 28, 56\)"):
        model(_batch((28, 56)))


def test_resnet_shortcuts_and_residual_identity():
    model = _model("resnet").eval()
    blocks = {name: list(model.stages[name]) for name in ("layer1", "layer2", "layer3")}
    assert all(isinstance(b, BasicBlock) for bs in blocks.values() for b in bs)
    assert isinstance(blocks["layer1"][0].shortcut, nn.Identity)
    assert isinstance(blocks["layer2"][1].shortcut, nn.Identity)
    for first in (blocks["layer2"][0], blocks["layer3"][0]):
        assert first.conv1.stride == (2, 2) and first.shortcut.conv.stride == (2, 2)
        assert first.shortcut.conv.kernel_size == (1, 1)
    # With the last batch norm of an identity block zeroed, y = ReLU(0 + x) = x for x >= 0.
    block = blocks["layer2"][1]
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
        x = torch.rand(2, 8, 5, 5)
        assert torch.equal(block(x), x)


def test_conv_init_is_he_normal_fan_out():
    conv = ConvNet(widths=(32, 64, 128)).stages["conv3"].conv.weight.detach().double()
    # kaiming_normal_(mode="fan_out"): std = sqrt(2 / (out_channels * 3 * 3)); 73728 draws.
    np.testing.assert_allclose(conv.std().item(), np.sqrt(2.0 / (128 * 9)), rtol=0.02)
    np.testing.assert_allclose(conv.mean().item(), 0.0, atol=0.002)


def _reference_count(arch: str, config: dict) -> int:
    """Closed-form parameter count, written independently of the model code."""
    k = config["num_classes"]
    if arch == "mlp":
        dims = [int(np.prod(config["in_shape"])), *config["hidden"]]
        return sum(a * b + b for a, b in zip(dims, dims[1:])) + dims[-1] * k + k
    if arch == "convnet":
        chans = [config["in_channels"], *config["widths"]]
        return sum(9 * a * b + 2 * b for a, b in zip(chans, chans[1:])) + chans[-1] * k + k
    w, cin = config["width"], config["in_channels"]
    total, c = 9 * cin * w + 2 * w, w
    for i, n in enumerate(config["blocks"]):
        out = w * 2**i
        for j in range(n):
            total += 9 * c * out + 2 * out + 9 * out * out + 2 * out
            if c != out or (i > 0 and j == 0):
                total += c * out + 2 * out
            c = out
    return total + c * k + k


@settings(max_examples=25, deadline=None)
@given(
    arch=st.sampled_from(["mlp", "convnet", "resnet"]),
    channels=st.integers(1, 3),
    dims=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    num_classes=st.integers(1, 4),
)
def test_parameter_count_matches_closed_form(arch, channels, dims, num_classes):
    config = {
        "mlp": {"in_shape": [channels, 5, 4], "hidden": dims},
        "convnet": {"in_channels": channels, "widths": dims},
        "resnet": {"in_channels": channels, "width": dims[0], "blocks": [1 + d % 2 for d in dims]},
    }[arch] | {"num_classes": num_classes}
    model = build(arch, seed=0, **config)
    assert count_parameters(model) == _reference_count(arch, config)
    assert model.config == config


# -- registry -----------------------------------------------------------------------------


def test_unknown_arch_lists_names_and_closest_match():
    with pytest.raises(ValueError, match=r"unknown arch 'resnt'.*'convnet', 'hf', 'hub', 'mlp', 'module', 'resnet'.*did you mean 'resnet'"):
        build("resnt")


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(ValueError, match="'mlp' is already registered"):

        @register_arch("mlp")
        class Again(MLP):
            pass

    assert _REGISTRY["mlp"] is MLP


def test_register_arch_requires_a_staged_model():
    with pytest.raises(ValueError, match="StagedModel subclass"):
        register_arch("not-a-model")(nn.Linear)
    assert "not-a-model" not in _REGISTRY


@pytest.mark.parametrize(
    "arch, config, match",
    [
        ("mlp", {"foo": 1}, r"unknown config keys \['foo'\] for arch 'mlp'"),
        ("mlp", {"hidden": []}, "hidden must have at least one entry"),
        ("mlp", {"in_shape": [28, 28]}, "in_shape must have 3 entries"),
        ("convnet", {"widths": [8, 0]}, r"widths\[1\] must be an integer >= 1; got 0"),
        ("convnet", {"widths": "abc"}, "widths must be a sequence of integers"),
        ("resnet", {"blocks": [1.5]}, r"blocks\[0\] must be an integer"),
        ("resnet", {"width": True}, "width must be an integer"),
        ("resnet", {"num_classes": 0}, "num_classes must be an integer >= 1; got 0"),
        ("convnet", {"widths": [4]}, None),
    ],
)
def test_invalid_configs_raise_value_error(arch, config, match):
    if match is None:  # the control case builds
        assert build(arch, **config).feature_dim == 4
        return
    with pytest.raises(ValueError, match=match):
        build(arch, **config)


def test_count_parameters_rejects_non_modules():
    with pytest.raises(ValueError, match="model must be a torch.nn.Module"):
        count_parameters(np.zeros(3))
