"""Tests of transferlab.models._checkpoint: safetensors checkpoints with metadata."""

from __future__ import annotations

import json
import os
import pickle
import stat

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from transferlab.models import _checkpoint
from transferlab.models._base import StagedModel
from transferlab.models._checkpoint import (
    FORMAT_VERSION,
    METADATA_KEY,
    Checkpoint,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from transferlab.models._mlp import MLP
from transferlab.models._registry import _REGISTRY, available_archs, build
from tests.helpers import provided_network, registry_archs  # noqa: F401 -- provided_network: a fixture

CONFIGS = {
    "mlp": {"in_shape": [1, 8, 8], "hidden": [12, 6], "num_classes": 3},
    "convnet": {"in_channels": 1, "widths": [4, 8], "num_classes": 3},
    "resnet": {"in_channels": 1, "width": 4, "blocks": [1, 1], "num_classes": 3},
    "adapter_resnet": {"in_channels": 1, "width": 4, "blocks": [1, 1], "num_classes": 3},
    "hf": {"model_type": "resnet", "hf_config": {"embedding_size": 4, "hidden_sizes": [4, 8], "depths": [1, 1],
                                                 "layer_type": "basic"}, "in_channels": 1, "num_classes": 3},
    "hub": {"library": "timm", "name": "test_resnet", "options": {"in_chans": 1}, "feature_layer": None,
            "take": "input", "feature_dim": 96, "in_channels": 1, "num_classes": 3},
    "module": {"feature_layer": None, "take": "input", "feature_dim": 4, "module_class": "TinyNetwork",
               "in_channels": 1, "num_classes": 3},
}
METADATA = {
    "source_task": "fashion:classes=0-4:seed=0:fp=3f2a9c",
    "train": {"lr": 0.05, "epochs": 2, "nesterov": True, "milestones": (1, 2), "note": None},
    "metrics": {"test_accuracy": np.float64(0.8125), "n_test": np.int64(32)},
}
# What METADATA reads back as: JSON types (tuples become lists, NumPy scalars Python numbers).
METADATA_JSON = {
    "source_task": "fashion:classes=0-4:seed=0:fp=3f2a9c",
    "train": {"lr": 0.05, "epochs": 2, "nesterov": True, "milestones": [1, 2], "note": None},
    "metrics": {"test_accuracy": 0.8125, "n_test": 32},
}


def _trained(arch: str, steps: int = 2) -> StagedModel:
    """A small model after a few SGD steps, so batch-norm statistics differ from their defaults."""
    model = build(arch, seed=0, **CONFIGS[arch])
    gen = torch.Generator().manual_seed(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(steps):
        x = torch.rand(6, 1, 8, 8, generator=gen)
        y = torch.randint(0, 3, (6,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


@pytest.fixture
def saved(tmp_path):
    """A saved convnet checkpoint and the model it came from."""
    model = _trained("convnet")
    path = save_checkpoint(tmp_path / "expert.safetensors", model, metadata=METADATA)
    return path, model


def _rewrite_document(path, **changes):
    """Rewrite a checkpoint's metadata document (tensors and checksum kept) with some keys changed."""
    with safe_open(str(path), framework="pt") as fh:
        document = json.loads(fh.metadata()[METADATA_KEY])
    tensors = load_file(str(path))
    document.update(changes)
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(document)})


@pytest.mark.parametrize("arch", registry_archs())
def test_round_trip_is_bit_exact(tmp_path, arch, provided_network):
    model = _trained(arch)
    path = save_checkpoint(tmp_path / f"{arch}.safetensors", model, metadata=METADATA)
    assert path == tmp_path / f"{arch}.safetensors" and path.is_file()
    ckpt = load_checkpoint(path)
    assert isinstance(ckpt, Checkpoint)
    assert (ckpt.arch, ckpt.config, ckpt.path) == (arch, CONFIGS[arch], path)
    assert ckpt.metadata == METADATA_JSON
    assert type(ckpt.model) is type(model) and not ckpt.model.training
    original, loaded = model.state_dict(), ckpt.model.state_dict()
    assert list(loaded) == list(original)
    for name, tensor in original.items():  # parameters and BN running_mean/var/num_batches_tracked
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name
    tracked = [name for name in loaded if name.endswith("num_batches_tracked")]
    assert all(int(loaded[name]) == 2 for name in tracked) and (arch == "mlp") == (not tracked)
    model.eval()
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(ckpt.model(x), model(x))
        for stage in model.stage_names:
            assert torch.equal(ckpt.model.forward_features(x, stage), model.forward_features(x, stage))
    with pytest.raises(Exception):  # frozen dataclass
        ckpt.arch = "other"


def test_read_metadata_returns_the_document(saved):
    path, model = saved
    document = read_checkpoint_metadata(path)
    assert document["format_version"] == FORMAT_VERSION
    assert document["arch"] == "convnet" and document["config"] == model.config
    assert document["metadata"] == METADATA_JSON
    assert len(document["tensors_sha256"]) == 64


def test_read_metadata_reads_only_the_header(saved):
    path, _ = saved
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # corrupt the last tensor byte: the header is untouched
    path.write_bytes(bytes(data))
    assert read_checkpoint_metadata(path)["arch"] == "convnet"
    with pytest.raises(ValueError, match="tensors do not match their recorded SHA-256"):
        load_checkpoint(path)


def test_replaced_head_and_float64_round_trip(tmp_path):
    model = _trained("mlp")
    model.replace_head(7, seed=0)
    model = model.double()
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "m.safetensors", model))
    assert ckpt.config["num_classes"] == 7 and ckpt.metadata == {}
    assert ckpt.model.head.weight.dtype == torch.float64
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(ckpt.model(x), model.eval()(x))


def test_save_is_atomic_and_leaves_no_temporary_files(saved, monkeypatch):
    path, model = saved
    good = path.read_bytes()

    def failing_save_file(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(_checkpoint, "save_file", failing_save_file)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _trained("convnet", steps=3))
    assert path.read_bytes() == good
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    monkeypatch.undo()
    save_checkpoint(path, model, metadata={"again": 1})
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert read_checkpoint_metadata(path)["metadata"] == {"again": 1}


def test_save_creates_parent_folders_with_ordinary_permissions(tmp_path):
    path = save_checkpoint(tmp_path / "a" / "b" / "m.safetensors", _trained("mlp", steps=0))
    assert path.is_file()
    mode = stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's 0600


@pytest.mark.parametrize(
    "metadata, match",
    [
        ({"bad": object()}, r"metadata must be JSON-serialisable.*object at metadata\['bad'\]"),
        ({"a": {1: "x"}}, r"metadata must have string keys.*key 1"),
        ({"arr": np.zeros(3)}, r"got ndarray at metadata\['arr'\]"),
        ([("a", 1)], "metadata must be a mapping"),
    ],
)
def test_non_serialisable_metadata_is_refused(tmp_path, metadata, match):
    with pytest.raises(ValueError, match=match):
        save_checkpoint(tmp_path / "m.safetensors", _trained("mlp", steps=0), metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_unregistered_model_is_refused(tmp_path):
    class Unregistered(MLP):
        pass

    with pytest.raises(ValueError, match="registered architecture.*Unregistered"):
        save_checkpoint(tmp_path / "m.safetensors", Unregistered(in_shape=(1, 8, 8), hidden=(4,)))
    with pytest.raises(ValueError, match="model must be a StagedModel"):
        save_checkpoint(tmp_path / "m.safetensors", nn.Linear(2, 2))


def test_missing_file(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        read_checkpoint_metadata(path)


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _flip_length_prefix(data: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in data[:8]) + data[8:]


def _flip_header_json(data: bytes) -> bytes:
    return data[:8] + b"X" + data[9:]  # the header's opening "{"


def _random_bytes(data: bytes) -> bytes:
    return np.random.default_rng(0).integers(0, 256, size=len(data), dtype=np.uint8).tobytes()


@pytest.mark.parametrize("corrupt", [_truncate, _flip_length_prefix, _flip_header_json, _random_bytes, lambda d: b""])
def test_corrupt_files_raise_value_error_naming_the_file(saved, corrupt):
    path, _ = saved
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(ValueError, match=r"expert\.safetensors is not a valid safetensors file"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match=r"expert\.safetensors is not a valid safetensors file"):
        read_checkpoint_metadata(path)


@pytest.mark.parametrize("metadata", [None, {"format": "pt"}])
def test_safetensors_without_our_metadata(tmp_path, metadata):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2, 2)}, str(path), metadata=metadata)
    with pytest.raises(ValueError, match=r"foreign\.safetensors is a safetensors file but not a transferlab checkpoint"):
        load_checkpoint(path)


def test_tensors_of_another_config_are_refused(saved):
    path, _ = saved
    _rewrite_document(path, config={"in_channels": 1, "widths": [4, 8, 16], "num_classes": 3})
    with pytest.raises(ValueError, match=r"tensors do not match arch 'convnet'.*missing tensors stages\.conv3\.bn\.bias"):
        load_checkpoint(path)


def test_tensors_of_another_shape_are_refused(saved):
    path, _ = saved
    _rewrite_document(path, config={"in_channels": 1, "widths": [4, 9], "num_classes": 3})
    with pytest.raises(ValueError, match=r"wrong shapes \(.*stages\.conv2\.bn\.bias: expected \(9,\), got \(8,\)"):
        load_checkpoint(path)


def test_tensors_of_another_arch_are_refused(saved):
    path, _ = saved
    _rewrite_document(path, arch="resnet", config={"in_channels": 1, "width": 4, "blocks": [1], "num_classes": 3})
    with pytest.raises(ValueError, match=r"expert\.safetensors: tensors do not match arch 'resnet'.*unexpected tensors"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"arch": "transformer"}, r"cannot be rebuilt \(arch 'transformer'.*unknown arch 'transformer'"),
        ({"config": {"widths": []}}, r"cannot be rebuilt.*widths must have at least one entry"),
        ({"config": {"depth": 3}}, r"cannot be rebuilt.*unknown config keys \['depth'\]"),
        ({"format_version": FORMAT_VERSION + 1}, "newer than this transferlab reads"),
        ({"config": [1, 2]}, "must hold 'config' of type dict"),
    ],
)
def test_bad_documents_are_refused(saved, changes, match):
    path, _ = saved
    _rewrite_document(path, **changes)
    with pytest.raises(ValueError, match=match):
        load_checkpoint(path)


def test_document_that_is_not_json(saved):
    path, _ = saved
    save_file(load_file(str(path)), str(path), metadata={METADATA_KEY: "{not json"})
    with pytest.raises(ValueError, match=r"expert\.safetensors has unreadable 'transferlab' metadata"):
        read_checkpoint_metadata(path)


def test_loading_never_unpickles(saved, monkeypatch):
    path, model = saved

    def forbidden(*args, **kwargs):
        raise AssertionError("the checkpoint loader must not unpickle")

    for target, name in [(torch, "load"), (torch.serialization, "load"), (pickle, "load"), (pickle, "loads")]:
        monkeypatch.setattr(target, name, forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    ckpt = load_checkpoint(path)
    assert torch.equal(ckpt.model.head.weight, model.head.weight)
    assert read_checkpoint_metadata(path)["arch"] == "convnet"


class _TiedMLP(MLP):
    """An MLP whose last two hidden layers share one weight matrix (tied tensors)."""

    arch = "tied-mlp-test"

    def __init__(self, in_shape=(1, 8, 8), hidden=(6, 6, 6), num_classes=3):
        super().__init__(in_shape=in_shape, hidden=hidden, num_classes=num_classes)
        self.stages["fc3"].linear.weight = self.stages["fc2"].linear.weight


def test_shared_tensors_are_saved_and_stay_tied(tmp_path, monkeypatch):
    monkeypatch.setitem(_REGISTRY, _TiedMLP.arch, _TiedMLP)
    model = _TiedMLP()
    with pytest.raises(RuntimeError):  # what safetensors does with shared tensors by itself
        save_file(model.state_dict(), str(tmp_path / "raw.safetensors"))
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "tied.safetensors", model))
    loaded = ckpt.model.stages
    assert loaded["fc3"].linear.weight is loaded["fc2"].linear.weight
    assert torch.equal(loaded["fc3"].linear.weight, model.stages["fc2"].linear.weight)
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(ckpt.model(x), model.eval()(x))


# -- one loader for every kind of checkpoint file -----------------------------------------------
def _single_and_joint(tmp_path):
    """A model checkpoint and a joint multi-domain one, both named expert.safetensors (in two folders)."""
    from transferlab.models._multidomain import MultiDomainResNet, save_multidomain

    single = save_checkpoint(tmp_path / "single" / "expert.safetensors", _trained("convnet"))
    joint_model = MultiDomainResNet(["a", "b"], [2, 3], "multibn", width=2, blocks=(1,), seed=0)
    joint = save_multidomain(tmp_path / "joint" / "expert.safetensors", joint_model)  # creates its folder too
    return single, joint


def _flip_last_tensor_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


@pytest.mark.parametrize("corrupt", [_truncate, _flip_header_json, _random_bytes, _flip_last_tensor_byte])
def test_model_and_joint_checkpoints_fail_through_one_loader(tmp_path, corrupt):
    from transferlab.models import load_model
    from transferlab.models._multidomain import load_multidomain

    single, joint = _single_and_joint(tmp_path)
    messages = {}
    for path, loaders in [(single, [load_checkpoint, lambda p: load_model(f"file:{p}")]), (joint, [load_multidomain])]:
        path.write_bytes(corrupt(path.read_bytes()))
        for load in loaders:
            with pytest.raises(ValueError) as info:
                load(path)
            message = str(info.value)
            assert str(path) in message  # names the file
            messages.setdefault(path, set()).add(message.replace(str(path), "<file>").split(": ", 1)[0])
    # The same form for both kinds (safetensors' own detail after the first colon aside).
    assert messages[single] == messages[joint] and len(messages[single]) == 1
    if corrupt is _flip_last_tensor_byte:
        assert messages[joint] == {"checkpoint <file> is corrupt"}
    else:
        assert messages[joint] == {"checkpoint <file> is not a valid safetensors file (corrupt or truncated?)"}


def test_each_loader_names_the_kind_it_expects(tmp_path):
    from transferlab.models._multidomain import load_multidomain, read_multidomain_metadata

    single, joint = _single_and_joint(tmp_path)
    with pytest.raises(ValueError, match=r"expert\.safetensors is a safetensors file but not a transferlab checkpoint"
                                         r".*'transferlab-multidomain'.*save it with save_checkpoint"):
        load_checkpoint(joint)
    with pytest.raises(ValueError, match=r"not a transferlab multi-domain checkpoint.*save it with save_multidomain"):
        load_multidomain(single)
    with pytest.raises(ValueError, match="not a transferlab multi-domain checkpoint"):
        read_multidomain_metadata(single)
    with pytest.raises(FileNotFoundError, match=r"checkpoint .*nope\.safetensors does not exist"):
        load_multidomain(tmp_path / "nope.safetensors")


def test_joint_tensors_must_match_the_rebuilt_model(tmp_path):
    from transferlab.models._multidomain import MULTIDOMAIN_KEY, load_multidomain

    _, joint = _single_and_joint(tmp_path)
    with safe_open(str(joint), framework="pt") as fh:
        document = json.loads(fh.metadata()[MULTIDOMAIN_KEY])
    document["config"]["width"] = 3
    save_file(load_file(str(joint)), str(joint), metadata={MULTIDOMAIN_KEY: json.dumps(document)})
    with pytest.raises(ValueError, match=r"tensors do not match a MultiDomainResNet with config .*wrong shapes"):
        load_multidomain(joint)


def test_a_float64_joint_model_round_trips_bit_exactly(tmp_path):
    from transferlab.models._multidomain import MultiDomainResNet, load_multidomain, save_multidomain

    model = MultiDomainResNet(["a", "b"], [2, 3], "adapters", width=2, blocks=(1,), seed=1).double().eval()
    loaded = load_multidomain(save_multidomain(tmp_path / "joint.safetensors", model))
    assert loaded.heads[0].weight.dtype == torch.float64
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        for domain in ("a", "b"):
            assert torch.equal(loaded(x, domain), model(x, domain))


def test_loaded_checkpoint_carries_the_verified_digest(saved):
    path, model = saved
    ckpt = load_checkpoint(path)
    assert ckpt.tensors_sha256 == read_checkpoint_metadata(path)["tensors_sha256"]
    assert len(ckpt.tensors_sha256) == 64
    other = save_checkpoint(path.with_name("other.safetensors"), _trained("convnet", steps=3))
    assert load_checkpoint(other).tensors_sha256 != ckpt.tensors_sha256  # other weights, other digest


# -- crafted architectures are refused before anything is allocated ---------------------------------
def _recording_builder(monkeypatch):
    """Patch the loader's builder to record the default device of every call (meta: nothing allocated)."""
    devices = []
    real = _checkpoint.build

    def recording(*args, **kwargs):
        devices.append(torch.get_default_device().type)
        return real(*args, **kwargs)

    monkeypatch.setattr(_checkpoint, "build", recording)
    return devices


@pytest.mark.parametrize(
    "config, match",
    [
        # 9 * 10**14 values in the first convolution alone: the size guard stops the meta build.
        ({"in_channels": 1, "widths": [10**7, 10**7], "num_classes": 3},
         r"describes a model of more than 1,073,741,824 values, the most transferlab loads, "
         r"and the file holds 14 tensors of 401 values"),
        # 10**5 stages of 4 channels: the guard stops at 2 * 14 + 64 = 92 tensors, long before 10**5 stages.
        ({"in_channels": 1, "widths": [4] * 10**5, "num_classes": 3},
         r"describes a model of more than 92 tensors, and the file holds 14 tensors"),
        # Within the cap (3.6e8 values) but not the file's shapes: refused from the header.
        ({"in_channels": 10**7, "widths": [4, 8], "num_classes": 3},
         r"wrong shapes \(stages\.conv1\.conv\.weight: expected \(4, 10000000, 3, 3\), got \(4, 1, 3, 3\)"),
    ],
)
def test_a_crafted_architecture_is_refused_before_allocating(tmp_path, monkeypatch, config, match):
    import time

    # convnet widths (4, 8), 3 classes: convs 4*1*9 + 8*4*9 = 324, head 8*3 + 3 = 27, BN weight, bias, mean, var
    # 4 * (4 + 8) = 48, and 2 counters: 401 values in 14 tensors.
    path = save_checkpoint(tmp_path / "crafted.safetensors", build("convnet", seed=0, widths=[4, 8], num_classes=3))
    _rewrite_document(path, config=config)
    devices = _recording_builder(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match) as info:
        load_checkpoint(path)
    assert time.perf_counter() - start < 20  # the unguarded loader allocated 3.6 PB, or 10**5 layers, here
    assert devices == ["meta"]  # the architecture was only ever built on the meta device
    assert str(path) in str(info.value) and len(str(info.value)) < 1000  # a 10**5-entry config is cut short


def test_a_file_over_the_cap_is_refused_from_its_header(saved, monkeypatch):
    path, model = saved
    n_values = sum(t.numel() for t in model.state_dict().values())
    monkeypatch.setattr(_checkpoint, "MAX_PARAMETERS", n_values - 1)
    devices = _recording_builder(monkeypatch)
    match = rf"holds {n_values:,} values, more than the {n_values - 1:,} transferlab loads"
    with pytest.raises(ValueError, match=match):
        load_checkpoint(path)
    assert devices == []  # refused before the architecture was built at all
    monkeypatch.setattr(_checkpoint, "MAX_PARAMETERS", n_values)
    assert torch.equal(load_checkpoint(path).model.head.weight, model.head.weight)
    assert devices == ["meta", "cpu"]  # checked on meta, then built once for real


@pytest.mark.parametrize(
    "name, dtype, match",
    [
        ("head.weight", torch.int32, r"wrong dtypes \(head\.weight: expected one of F16/BF16/F32/F64, got I32\)"),
        ("stages.conv1.bn.num_batches_tracked", torch.float32,
         r"wrong dtypes \(stages\.conv1\.bn\.num_batches_tracked: expected a dtype that is not floating, got F32\)"),
    ],
)
def test_tensors_of_another_kind_of_dtype_are_refused(saved, name, dtype, match):
    path, _ = saved
    tensors = load_file(str(path))
    tensors[name] = tensors[name].to(dtype)
    with safe_open(str(path), framework="pt") as fh:
        header = fh.metadata()
    document = json.loads(header[METADATA_KEY])
    document["tensors_sha256"] = _checkpoint._tensors_digest(tensors)  # a consistent, crafted file
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(document)})
    with pytest.raises(ValueError, match=match):
        load_checkpoint(path)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("arch", ["convnet", "resnet"])
def test_a_half_precision_checkpoint_loads_as_float32_with_its_exact_values(tmp_path, arch, dtype):
    model = _trained(arch).to(dtype).eval()
    path = save_checkpoint(tmp_path / "half.safetensors", model)
    with safe_open(str(path), framework="pt") as fh:
        assert fh.get_slice("head.weight").get_dtype() == {torch.float16: "F16", torch.bfloat16: "BF16"}[dtype]
    ckpt = load_checkpoint(path)
    original, loaded = model.state_dict(), ckpt.model.state_dict()
    assert list(loaded) == list(original)
    for name, tensor in original.items():
        if tensor.is_floating_point():
            # Widening is exact: the float32 values are the saved half-precision values.
            assert loaded[name].dtype == torch.float32 and torch.equal(loaded[name].to(dtype), tensor), name
            assert torch.equal(loaded[name], tensor.float()), name
        else:
            assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name
    # It computes what the saved model computes in float32, on the float32 images extractors feed it.
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(ckpt.model(x), model.float()(x))


def test_a_half_precision_joint_model_loads_as_float32(tmp_path):
    from transferlab.models._multidomain import MultiDomainResNet, load_multidomain, save_multidomain

    model = MultiDomainResNet(["a", "b"], [2, 3], "adapters", width=2, blocks=(1,), seed=1).half().eval()
    loaded = load_multidomain(save_multidomain(tmp_path / "joint.safetensors", model))
    for name, tensor in model.state_dict().items():
        expected = tensor.float() if tensor.is_floating_point() else tensor
        assert loaded.state_dict()[name].dtype == expected.dtype and torch.equal(loaded.state_dict()[name], expected)


def test_read_metadata_with_verify_reads_the_tensors(saved):
    path, _ = saved
    assert read_checkpoint_metadata(path, verify=True) == read_checkpoint_metadata(path)
    path.write_bytes(_flip_last_tensor_byte(path.read_bytes()))
    assert read_checkpoint_metadata(path)["arch"] == "convnet"  # the header alone is fine
    match = r"expert\.safetensors is corrupt: its tensors do not match their recorded SHA-256"
    with pytest.raises(ValueError, match=match):
        read_checkpoint_metadata(path, verify=True)
