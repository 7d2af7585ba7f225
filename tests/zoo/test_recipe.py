"""Zoo recipes: presets resolve, unknown keys are refused, digests track what matters."""

from __future__ import annotations

import pytest

from transferlab.zoo._recipe import available_recipes, load_recipe


def test_builtin_is_shipped():
    assert "builtin" in available_recipes()


@pytest.mark.parametrize("preset", ["tiny", "small", "full"])
def test_members_are_archs_times_sources(preset):
    recipe = load_recipe("builtin", preset)
    archs = {m.arch for m in recipe.members}
    sources = {m.source for m in recipe.members}
    assert archs == {"convnet", "resnet"}
    assert len(recipe.members) == len(archs) * len(sources)
    assert len({m.name for m in recipe.members}) == len(recipe.members)


def test_tiny_needs_no_fashion_files():
    # CI and tests must not depend on a package being installed.
    assert all(not m.source.startswith("fashion") for m in load_recipe("builtin", "tiny").members)


def test_preset_overrides_arch_config_and_training():
    tiny = {m.arch: m for m in load_recipe("builtin", "tiny").members}
    small = {m.arch: m for m in load_recipe("builtin", "small").members}
    assert tiny["convnet"].arch_config == {"widths": [8, 16]}
    assert small["convnet"].arch_config == {"widths": [32, 64, 128]}
    assert tiny["convnet"].train.epochs == 2 and small["convnet"].train.epochs == 5
    assert tiny["convnet"].digest != small["convnet"].digest


def _write(tmp_path, text):
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def test_unknown_keys_are_refused(tmp_path):
    path = _write(tmp_path, 'archs = ["mlp"]\nsources = ["shapes"]\nepochz = 3\n[presets.p]\n')
    with pytest.raises(ValueError, match="epochz"):
        load_recipe(path, "p")
    path = _write(tmp_path, 'archs = ["mlp"]\nsources = ["shapes"]\n[presets.p]\ntrain = { epochz = 1 }\n')
    with pytest.raises(ValueError, match="epochz"):
        load_recipe(path, "p")


def test_unknown_recipe_and_preset(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'builtin'"):
        load_recipe("bulitin", "tiny")
    with pytest.raises(ValueError, match="presets are"):
        load_recipe("builtin", "huge")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_recipe(_write(tmp_path, "archs = [\n"), "p")
