"""Building a zoo: trained once, cached with provenance, resumed after a crash."""

from __future__ import annotations

import io
import json

import pytest
import torch
from rich.console import Console

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


def _flip_tensor_byte(path, offset_from_end=1):
    """Flip every bit of one byte of the tensor data (the header is untouched)."""
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


def _recording_console():
    buffer = io.StringIO()
    return Console(file=buffer, width=60, force_terminal=False), buffer  # narrow: a long line must not wrap


def test_a_corrupt_member_is_rebuilt_and_named(recipe, tmp_path, monkeypatch):
    from transferlab.models import load_checkpoint, read_checkpoint_metadata

    zoo = build_zoo(recipe, "t", root=tmp_path / "zoo", progress=False)
    fresh = {m.name: load_checkpoint(m.checkpoint).model.state_dict() for m in zoo}
    digests = {m.name: read_checkpoint_metadata(m.checkpoint)["tensors_sha256"] for m in zoo}
    target = zoo["mlp-textures"].checkpoint
    _flip_tensor_byte(target)
    assert [r["built"] for r in zoo_members(recipe, "t", root=tmp_path / "zoo")] == [True, False]

    trained = []
    real = _build._train_member
    monkeypatch.setattr(_build, "_train_member", lambda m, *a: (trained.append(m.name), real(m, *a)))
    console, buffer = _recording_console()
    again = build_zoo(recipe, "t", root=tmp_path / "zoo", console=console)
    assert trained == ["mlp-textures"]  # exactly the corrupt member, nothing else
    lines = [line for line in buffer.getvalue().splitlines() if "rebuilding" in line]
    assert lines == [
        f"zoo rebuilding mlp-textures: checkpoint {target} is corrupt: its tensors do not match their recorded SHA-256"
    ]
    # Training is deterministic: the rebuilt member is the member a fresh build gives, bit for bit.
    rebuilt = load_checkpoint(again["mlp-textures"].checkpoint).model.state_dict()
    assert list(rebuilt) == list(fresh["mlp-textures"])
    assert all(torch.equal(rebuilt[k], fresh["mlp-textures"][k]) for k in rebuilt)
    assert read_checkpoint_metadata(target)["tensors_sha256"] == digests["mlp-textures"]
    assert all(r["built"] for r in zoo_members(recipe, "t", root=tmp_path / "zoo"))


def test_a_member_with_a_corrupt_header_is_rebuilt_and_named(recipe, tmp_path, monkeypatch):
    zoo = build_zoo(recipe, "t", root=tmp_path / "zoo", progress=False)
    target = zoo["mlp-shapes"].checkpoint
    target.write_bytes(target.read_bytes()[:20])  # truncated inside the header
    trained = []
    real = _build._train_member
    monkeypatch.setattr(_build, "_train_member", lambda m, *a: (trained.append(m.name), real(m, *a)))
    console, buffer = _recording_console()
    build_zoo(recipe, "t", root=tmp_path / "zoo", console=console)
    assert trained == ["mlp-shapes"]
    lines = [line for line in buffer.getvalue().splitlines() if "rebuilding" in line]
    assert len(lines) == 1 and lines[0].startswith(
        f"zoo rebuilding mlp-shapes: checkpoint {target} is not a valid safetensors file (corrupt or truncated?)"
    )


def test_a_stale_or_missing_member_is_trained_without_a_corruption_line(recipe, tmp_path):
    zoo = build_zoo(recipe, "t", root=tmp_path / "zoo", progress=False)
    zoo["mlp-shapes"].checkpoint.unlink()
    console, buffer = _recording_console()
    build_zoo(recipe, "t", root=tmp_path / "zoo", console=console)
    assert "training mlp-shapes (1/2)" in buffer.getvalue() and "rebuilding" not in buffer.getvalue()


def test_a_fully_cached_build_writes_nothing(recipe, tmp_path, monkeypatch):
    zoo = build_zoo(recipe, "t", root=tmp_path / "zoo", progress=False)
    manifest = zoo.root / "manifest.json"
    content, mtime = manifest.read_bytes(), manifest.stat().st_mtime_ns
    files = {p: p.stat().st_mtime_ns for p in zoo.root.iterdir()}

    def refuse(*args, **kwargs):
        raise AssertionError("a fully cached build wrote a file")

    monkeypatch.setattr(_build, "atomic_write_bytes", refuse)
    for name in ("_train_member", "_train_joint", "_export_member"):
        monkeypatch.setattr(_build, name, refuse)
    build_zoo(recipe, "t", root=tmp_path / "zoo", progress=False)
    assert manifest.read_bytes() == content and manifest.stat().st_mtime_ns == mtime
    assert {p: p.stat().st_mtime_ns for p in zoo.root.iterdir()} == files

    # A manifest that is missing (or differs) is written again, with the content a full build gives.
    monkeypatch.undo()
    manifest.unlink()
    build_zoo(recipe, "t", root=tmp_path / "zoo", progress=False)
    assert manifest.read_bytes() == content


_CONCURRENT_DRIVER = """
import sys, time
from transferlab.zoo import _build
real = _build._train_member
def logged(unit, *args, **kwargs):
    with open(sys.argv[3], "a") as log:
        log.write(unit.name + "\\n")
    time.sleep(1.0)  # hold the claim long enough for the other build to reach it
    return real(unit, *args, **kwargs)
_build._train_member = logged
_build.build_zoo(sys.argv[1], "t", root=sys.argv[2], progress=False)
"""


def test_two_builds_at_once_train_each_member_once(recipe, tmp_path):
    # Each member is claimed (an flock that dies with its process) before it is trained, and checked
    # again once claimed: the second build waits for the first and then finds the member built.
    import subprocess
    import sys

    log = tmp_path / "trained.log"
    args = [sys.executable, "-c", _CONCURRENT_DRIVER, str(recipe), str(tmp_path / "zoo"), str(log)]
    runs = [subprocess.Popen(args, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    assert sorted(log.read_text().split()) == ["mlp-shapes", "mlp-textures"]
    assert all(r["built"] for r in zoo_members(recipe, "t", root=tmp_path / "zoo"))


def test_a_claim_is_exclusive_across_processes(tmp_path):
    import subprocess
    import sys
    import time

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, pathlib; from transferlab.zoo._build import _claim\n"
         "with _claim(pathlib.Path(sys.argv[1]), 'm'):\n    print('held', flush=True); time.sleep(1.5)",
         str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    start = time.perf_counter()
    with _build._claim(tmp_path, "m"):
        waited = time.perf_counter() - start
    holder.wait(timeout=30)
    assert waited > 0.5  # it had to wait for the holder to let go
