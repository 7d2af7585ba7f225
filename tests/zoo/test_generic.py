"""Zoos with generic pre-training and multi-domain experts: recipes, build order, caching, provenance."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from transferlab.models._checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint
from transferlab.models._multidomain import load_multidomain
from transferlab.train._fit import evaluate
from transferlab.zoo import _build
from transferlab.zoo._build import build_order, build_zoo, load_member_task, zoo_members
from transferlab.zoo._recipe import MULTIDOMAIN_VARIANTS, ROLES, MemberRecipe, load_recipe

RECIPE = """
name = "mini"
archs = ["mlp", "resnet"]
sources = ["shapes", "textures"]
generic = true
[arch.mlp]
hidden = [8]
[arch.resnet]
width = 2
blocks = [1]
[multidomain]
variants = ["shared", "multibn", "adapters"]
width = 2
blocks = [1]
[presets.t]
train_per_class = 4
test_per_class = 2
train = { epochs = 1, batch_size = 16 }
[presets.plain]
generic = false
multidomain = false
train_per_class = 4
test_per_class = 2
[presets.bn]
multidomain = { variants = ["multibn"], width = 3 }
"""
SINGLE = ["mlp-shapes", "mlp-textures", "resnet-shapes", "resnet-textures"]
GENERIC = ["mlp-generic", "resnet-generic"]
FROM_GENERIC = [f"{m}-from-generic" for m in SINGLE]
MULTI = [f"md-{v}-{s}" for v in MULTIDOMAIN_VARIANTS for s in ("shapes", "textures")]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    path = tmp_path_factory.mktemp("recipe") / "mini.toml"
    path.write_text(RECIPE)
    return path


@pytest.fixture(scope="module")
def built(recipe, tmp_path_factory):
    """The mini zoo built once, with the order in which units were trained or exported."""
    calls = []
    real = (_build._train_member, _build._train_joint, _build._export_member)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_build, "_train_member", lambda m, *a: (calls.append(m.name), real[0](m, *a)))
        mp.setattr(_build, "_train_joint", lambda j, *a: (calls.append(j.name), real[1](j, *a)))
        mp.setattr(_build, "_export_member", lambda m, *a: (calls.append(m.name), real[2](m, *a)))
        zoo = build_zoo(recipe, "t", root=tmp_path_factory.mktemp("zoo"), progress=False)
    return zoo, calls


# -- recipes ------------------------------------------------------------------------------


def test_members_of_every_role(recipe):
    resolved = load_recipe(recipe, "t")
    assert [m.name for m in resolved.members] == SINGLE  # the single-domain experts keep their names
    assert [m.name for m in resolved.all_members] == SINGLE + GENERIC + FROM_GENERIC + MULTI
    roles = {m.name: m.role for m in resolved.all_members}
    assert {roles[n] for n in SINGLE} == {"single"} and {roles[n] for n in GENERIC} == {"generic"}
    assert {roles[n] for n in FROM_GENERIC} == {"from-generic"} and {roles[n] for n in MULTI} == {"multidomain"}
    assert set(roles.values()) == set(ROLES)
    generic = {m.name: m for m in resolved.generic}
    assert generic["mlp-generic"].parts == ("shapes", "textures") and generic["mlp-generic"].init == "scratch"
    for member in resolved.from_generic:
        parent = generic[f"{member.arch}-generic"]
        assert member.init == f"generic:{parent.name}" and member.init_digest == parent.digest
        assert member.train == parent.train and member.arch_config == parent.arch_config
    assert [j.name for j in resolved.joints] == ["md-shared", "md-multibn", "md-adapters"]
    arches = {m.variant: m.arch for m in resolved.multidomain}
    assert arches == {"shared": "resnet", "multibn": "resnet", "adapters": "adapter_resnet"}
    assert all(m.arch_config == {"width": 2, "blocks": [1]} for m in resolved.multidomain)


def test_presets_switch_generic_and_multidomain(recipe):
    plain = load_recipe(recipe, "plain")
    assert plain.all_members == plain.members and plain.joints == ()
    bn = load_recipe(recipe, "bn")
    assert [j.variant for j in bn.joints] == ["multibn"]
    assert bn.joints[0].arch_config == {"width": 3, "blocks": [1]}  # preset keys override the table's


def test_the_generic_digest_flows_into_its_dependants(recipe, tmp_path):
    base = {m.name: m for m in load_recipe(recipe, "t").all_members}
    # More sources change the generic expert, hence every member that starts from it ...
    path = tmp_path / "more.toml"
    path.write_text(RECIPE.replace('sources = ["shapes", "textures"]', 'sources = ["shapes", "textures", "digits"]'))
    more = {m.name: m for m in load_recipe(path, "t").all_members}
    assert more["mlp-generic"].digest != base["mlp-generic"].digest
    assert more["mlp-shapes-from-generic"].digest != base["mlp-shapes-from-generic"].digest
    # ... and every domain of a joint network, but not the single-domain experts.
    assert more["md-shared-shapes"].digest != base["md-shared-shapes"].digest
    assert more["mlp-shapes"].digest == base["mlp-shapes"].digest
    # The init is part of the digest: the same member trained from scratch is another member.
    member = base["mlp-shapes-from-generic"]
    assert MemberRecipe.from_dict(member.to_dict()) == member
    scratch = MemberRecipe.from_dict({**member.to_dict(), "init": "scratch", "init_digest": None})
    assert scratch.digest != member.digest


@pytest.mark.parametrize(
    "text, match",
    [
        ("generic = 1\n", "generic must be true or false"),
        ("[multidomain]\nvariants = ['shared', 'bn']\n", "distinct variants"),
        ("[multidomain]\nvariants = ['shared', 'shared']\n", "distinct variants"),
        ("[multidomain]\nwidht = 4\n", r"unknown key\(s\) \['widht'\]"),
        ("[multidomain]\nwidth = 0\n", "multidomain.width must be an integer >= 1"),
        ("multidomain = 'yes'\n", "multidomain must be a table"),
    ],
)
def test_bad_switches_are_refused(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text('archs = ["mlp"]\nsources = ["shapes"]\n' + text + "[presets.p]\n")
    with pytest.raises(ValueError, match=match):
        load_recipe(path, "p")
    path.write_text('archs = ["mlp"]\nsources = ["shapes"]\n[presets.p]\nmultidomain = true\n')
    with pytest.raises(ValueError, match=r"needs a \[multidomain\] table"):
        load_recipe(path, "p")


def test_builtin_presets():
    tiny = load_recipe("builtin", "tiny")
    assert tiny.all_members == tiny.members  # the demo fine-tunes every member: keep it small
    for preset in ("tiny-all", "small", "full"):
        resolved = load_recipe("builtin", preset)
        n_archs, n_sources = 2, len({m.source for m in resolved.members})
        assert len(resolved.generic) == n_archs and len(resolved.from_generic) == n_archs * n_sources
        assert [j.variant for j in resolved.joints] == list(MULTIDOMAIN_VARIANTS)
        assert len(resolved.multidomain) == 3 * n_sources
    assert len(load_recipe("builtin", "small").all_members) == 37


# -- build order ----------------------------------------------------------------------------


def test_build_order_is_a_stable_topological_sort():
    parents = {"a": ["c"], "b": [], "c": [], "d": ["a", "b"]}
    order = build_order(list("abcd"), key=lambda u: u, parents=lambda u: parents[u])
    assert order == ["b", "c", "a", "d"]
    with pytest.raises(ValueError, match="cycle"):
        build_order(["x", "y"], key=lambda u: u, parents=lambda u: ["y" if u == "x" else "x"])
    with pytest.raises(ValueError, match=r"depends on \['z'\]"):
        build_order(["x"], key=lambda u: u, parents=lambda u: ["z"])


def test_parents_are_built_before_their_dependants(built):
    zoo, calls = built
    assert sorted(calls) == sorted(SINGLE + GENERIC + FROM_GENERIC + MULTI + ["md-shared", "md-multibn", "md-adapters"])
    for member in FROM_GENERIC:
        parent = member.split("-")[0] + "-generic"
        assert calls.index(parent) < calls.index(member)
    for member in MULTI:
        assert calls.index("md-" + member.split("-")[1]) < calls.index(member)
    assert [m.name for m in zoo] == SINGLE + GENERIC + FROM_GENERIC + MULTI
    assert [m.role for m in zoo.by_role("generic")] == ["generic", "generic"]


# -- what was built -------------------------------------------------------------------------


def test_generic_member_is_trained_on_the_union(built):
    zoo, _ = built
    generic = zoo["resnet-generic"]
    assert generic.role == "generic" and generic.source == "shapes+textures"
    task = load_member_task(MemberRecipe.from_dict(generic.metadata["member"]))
    assert task.n_classes == 16 and task.class_names[0] == "shapes/circle"
    assert generic.metadata["source_task"]["fingerprint"] == task.fingerprint
    assert generic.load().num_classes == 16


def test_dependants_start_from_the_generic_stage_weights(recipe, built, tmp_path, monkeypatch):
    zoo, _ = built
    root = tmp_path / "copy"
    shutil.copytree(zoo.root.parent, root)
    generic = load_checkpoint(root / zoo.root.name / "mlp-generic.safetensors").model
    for path in (root / zoo.root.name).glob("*from-generic.safetensors"):
        path.unlink()
    seen = {}
    real_fit = _build.fit

    def spy(model, task, config, **kwargs):
        seen[(model.arch, task.name.split(",")[0])] = {k: v.clone() for k, v in model.state_dict().items()}
        return real_fit(model, task, config, **kwargs)

    monkeypatch.setattr(_build, "fit", spy)
    rebuilt = build_zoo(recipe, "t", root=root, progress=False)
    # Only the four from-generic members were trained, each from the generic stages and a new head.
    assert sorted(seen) == [("mlp", "shapes"), ("mlp", "textures"), ("resnet", "shapes"), ("resnet", "textures")]
    start = seen[("mlp", "shapes")]
    for name, tensor in generic.stages.state_dict().items():
        assert torch.equal(start[f"stages.{name}"], tensor), name
    assert start["head.weight"].shape == (8, generic.feature_dim)  # 8 shapes, not the 16 classes of the union
    member = rebuilt["mlp-shapes-from-generic"]
    assert member.init == "generic:mlp-generic"
    assert member.metadata["init_from"]["tensors_sha256"] == read_checkpoint_metadata(
        root / zoo.root.name / "mlp-generic.safetensors"
    )["tensors_sha256"]


def test_multidomain_members_are_the_joint_domains(built):
    zoo, _ = built
    for variant in MULTIDOMAIN_VARIANTS:
        joint = load_multidomain(zoo.root / f"md-{variant}.joint.safetensors")
        for source in ("shapes", "textures"):
            member = zoo[f"md-{variant}-{source}"]
            assert (member.role, member.metadata["variant"], member.metadata["domain"]) == ("multidomain", variant, source)
            assert member.init == f"joint:md-{variant}"
            model = member.load()
            task = load_member_task(MemberRecipe.from_dict(member.metadata["member"]))
            x = torch.from_numpy(task.x_test.astype("float32") / 255.0)
            with torch.no_grad():
                assert torch.equal(model(x), joint(x, source))
            assert evaluate(model, task)[1] == pytest.approx(member.source_accuracy, abs=0)
    manifest = json.loads((zoo.root / "manifest.json").read_text())
    assert [j["name"] for j in manifest["joints"]] == ["md-shared", "md-multibn", "md-adapters"]
    roles = {m["name"]: m["role"] for m in manifest["members"]}
    assert roles["md-adapters-shapes"] == "multidomain" and roles["resnet-generic"] == "generic"


def test_second_build_trains_nothing_and_list_shows_roles(recipe, built, monkeypatch):
    zoo, _ = built

    def refuse(*args, **kwargs):
        raise AssertionError("a cached unit was built again")

    for name in ("_train_member", "_train_joint", "_export_member"):
        monkeypatch.setattr(_build, name, refuse)
    again = build_zoo(recipe, "t", root=zoo.root.parent, progress=False)
    assert [m.checkpoint for m in again] == [m.checkpoint for m in zoo]
    rows = {r["name"]: r for r in zoo_members(recipe, "t", root=zoo.root.parent)}
    assert all(r["built"] for r in rows.values())
    assert rows["resnet-generic"]["role"] == "generic" and rows["md-shared-shapes"]["role"] == "multidomain"
    assert rows["mlp-textures-from-generic"]["init"] == "generic:mlp-generic"


def test_a_changed_parent_rebuilds_its_dependants_only(recipe, built, tmp_path, monkeypatch):
    zoo, _ = built
    root = tmp_path / "copy"
    shutil.copytree(zoo.root.parent, root)
    folder = root / zoo.root.name
    # New weights for the generic ResNet, same recipe digest (as after a retraining on a GPU).
    checkpoint = load_checkpoint(folder / "resnet-generic.safetensors")
    with torch.no_grad():
        checkpoint.model.head.weight.add_(1.0)
    save_checkpoint(folder / "resnet-generic.safetensors", checkpoint.model, metadata=checkpoint.metadata)
    # And a joint network whose file went missing.
    (folder / "md-multibn.joint.safetensors").unlink()
    rows = {r["name"]: r["built"] for r in zoo_members(recipe, "t", root=root)}
    assert not rows["resnet-shapes-from-generic"] and rows["mlp-shapes-from-generic"]

    done = []
    for name in ("_train_member", "_train_joint", "_export_member"):
        real = getattr(_build, name)
        monkeypatch.setattr(_build, name, lambda unit, *a, real=real: (done.append(unit.name), real(unit, *a)))
    build_zoo(recipe, "t", root=root, progress=False)
    # The joint is retrained; on the CPU it comes back bit-identical, so its domains stay current.
    assert sorted(done) == ["md-multibn", "resnet-shapes-from-generic", "resnet-textures-from-generic"]


def test_a_corrupt_joint_network_and_export_are_rebuilt_and_named(recipe, built, tmp_path, monkeypatch):
    import io

    from rich.console import Console

    zoo, _ = built
    root = tmp_path / "copy"
    shutil.copytree(zoo.root.parent, root)
    folder = root / zoo.root.name
    for name in ("md-shared.joint.safetensors", "md-multibn-textures.safetensors"):
        data = bytearray((folder / name).read_bytes())
        data[-1] ^= 0x01  # one flipped bit in the tensor data
        (folder / name).write_bytes(bytes(data))
    done = []
    for name in ("_train_member", "_train_joint", "_export_member"):
        real = getattr(_build, name)
        monkeypatch.setattr(_build, name, lambda unit, *a, real=real: (done.append(unit.name), real(unit, *a)))
    buffer = io.StringIO()
    again = build_zoo(recipe, "t", root=root, console=Console(file=buffer, width=80))
    # The joint comes back bit-identical on the CPU, so its domains stay current; the corrupt export is redone.
    assert sorted(done) == ["md-multibn-textures", "md-shared"]
    lines = [line for line in buffer.getvalue().splitlines() if "rebuilding" in line]
    assert lines == [
        f"zoo rebuilding {unit}: checkpoint {folder / file} is corrupt: its tensors do not match their recorded SHA-256"
        for unit, file in [("md-shared", "md-shared.joint.safetensors"),
                           ("md-multibn-textures", "md-multibn-textures.safetensors")]
    ]
    for name in ("md-multibn-textures", "md-shared-shapes"):
        assert read_checkpoint_metadata(again[name].checkpoint)["tensors_sha256"] == \
            read_checkpoint_metadata(zoo[name].checkpoint)["tensors_sha256"]
    load_multidomain(folder / "md-shared.joint.safetensors")  # verified on loading: intact again
