"""Building a zoo: trained once, cached with provenance, resumed after a crash."""

from __future__ import annotations

import json

import pytest

from transferlab.zoo import _build
from transferlab.zoo._build import build_zoo, zoo_members

RECIPE = """
name = "mini"
archs = ["mlp"]
sources = ["shapes", "textures"]
[arch.mlp]
hidden = [16]
[presets.t]
train_per_class = 6
test_per_class = 4
train = { epochs = 1, batch_size = 16 }
"""


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "mini.toml"
    path.write_text(RECIPE)
    return path


def test_build_then_reuse(recipe, tmp_path, monkeypatch):
    zoo = build_zoo(recipe, "t", root=tmp_path / "zoo", progress=False)
    assert [m.name for m in zoo] == ["mlp-shapes", "mlp-textures"]
    for member in zoo:
        assert member.checkpoint.is_file()
        assert 0.0 <= member.source_accuracy <= 1.0
        assert member.metadata["source_task"]["fingerprint"]
        assert member.metadata["train_config"]["epochs"] == 1
        model = member.load()
        assert model.num_classes == len(member.metadata["class_names"])
    manifest = json.loads((zoo.root / "manifest.json").read_text())
    assert [m["name"] for m in manifest["members"]] == ["mlp-shapes", "mlp-textures"]
    assert manifest["members"][0]["provenance"]["torch"]

    def refuse(*args, **kwargs):
        raise AssertionError("a cached member was trained again")

    monkeypatch.setattr(_build, "_train_member", refuse)
    again = build_zoo(recipe, "t", root=tmp_path / "zoo", progress=False)
    assert [m.checkpoint for m in again] == [m.checkpoint for m in zoo]
    rows = zoo_members(recipe, "t", root=tmp_path / "zoo")
    assert all(r["built"] for r in rows)


def test_interrupted_build_keeps_finished_members(recipe, tmp_path, monkeypatch):
    real = _build._train_member
    trained = []

    def crash_on_second(member, path, device, progress):
        if member.name == "mlp-textures":
            raise KeyboardInterrupt
        trained.append(member.name)
        real(member, path, device, progress)

    monkeypatch.setattr(_build, "_train_member", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        build_zoo(recipe, "t", root=tmp_path / "zoo", progress=False)
    assert [r["built"] for r in zoo_members(recipe, "t", root=tmp_path / "zoo")] == [True, False]

    resumed = []

    def record(member, path, device, progress):
        resumed.append(member.name)
        real(member, path, device, progress)

    monkeypatch.setattr(_build, "_train_member", record)
    build_zoo(recipe, "t", root=tmp_path / "zoo", progress=False)
    assert trained == ["mlp-shapes"] and resumed == ["mlp-textures"]


def test_a_changed_recipe_retrains_only_what_changed(recipe, tmp_path, monkeypatch):
    build_zoo(recipe, "t", root=tmp_path / "zoo", progress=False)
    recipe.write_text(RECIPE.replace('sources = ["shapes", "textures"]', 'sources = ["shapes", "digits"]'))
    trained = []
    real = _build._train_member
    monkeypatch.setattr(_build, "_train_member", lambda m, *a: (trained.append(m.name), real(m, *a)))
    build_zoo(recipe, "t", root=tmp_path / "zoo", progress=False)
    assert trained == ["mlp-digits"]


def test_a_corrupt_member_fails_as_any_checkpoint_does(recipe, tmp_path):
    from transferlab.models import load_checkpoint

    zoo = build_zoo(recipe, "t", root=tmp_path / "zoo", progress=False)
    member = zoo["mlp-shapes"]
    data = member.checkpoint.read_bytes()
    member.checkpoint.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # one tensor byte
    messages = []
    for load in (member.load, lambda: load_checkpoint(member.checkpoint)):
        with pytest.raises(ValueError, match="tensors do not match their recorded SHA-256") as info:
            load()
        messages.append(str(info.value))
    assert messages[0] == messages[1] and str(member.checkpoint) in messages[0]
