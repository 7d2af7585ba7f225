"""The source registry and the task-spec grammar."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferlab.data import _fashion, _sources
from transferlab.data._digits import load_digits
from transferlab.data._glyphs import available_charsets, glyph_fonts, load_glyphs
from transferlab.data._idx import write_idx
from transferlab.data._procedural import load_shapes
from transferlab.data._sources import SourceInfo, list_sources, load_task, parse_spec

TINY = {"n_train_per_class": 2, "n_test_per_class": 1}


@pytest.fixture
def tiny_fashion(tmp_path, monkeypatch):
    """A synthetic Fashion-MNIST in $TRANSFERLAB_DATA, and no Debian folder."""
    folder = tmp_path / "home" / "fashion-mnist"
    for split, n in (("train", 10), ("t10k", 10)):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    monkeypatch.setenv("TRANSFERLAB_DATA", str(tmp_path / "home"))
    monkeypatch.setattr(_fashion, "_SYSTEM_DIR", tmp_path / "no-system")
    return folder


def test_list_sources(tiny_fashion):
    infos = list_sources()
    assert [s.name for s in infos] == ["fashion", "digits", "glyphs", "shapes", "textures"]
    assert all(isinstance(s, SourceInfo) and s.available for s in infos)
    by_name = {s.name: s for s in infos}
    assert by_name["fashion"].location == str(tiny_fashion)
    assert by_name["glyphs"].variants == available_charsets()
    assert by_name["glyphs"].location == f"rendered from {len(glyph_fonts())} fonts"
    assert by_name["shapes"].location == "procedural"
    assert by_name["digits"].variants == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        infos[0].name = "other"  # type: ignore[misc]


def test_fashion_unavailable_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(_fashion, "_SYSTEM_DIR", tmp_path / "no-system")
    info = list_sources()[0]
    assert info.name == "fashion" and info.available is False
    assert "apt-get install dataset-fashion-mnist" in info.location


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("fashion", ("fashion", None, {})),
        ("digits", ("digits", None, {})),
        ("glyphs:greek", ("glyphs", "greek", {})),
        ("glyphs:latin-upper,n_train_per_class=100", ("glyphs", "latin-upper", {"n_train_per_class": 100})),
        ("shapes,seed=3", ("shapes", None, {"seed": 3})),
        (" Glyphs : Digits , seed = 2 ", ("glyphs", "digits", {"seed": 2})),
        ("digits,test_fraction=0.25", ("digits", None, {"test_fraction": 0.25})),
        ("digits,test_fraction=1e-1", ("digits", None, {"test_fraction": 0.1})),
        ("fashion,download=true,path=/data/fm", ("fashion", None, {"download": True, "path": "/data/fm"})),
        ("fashion,path=none", ("fashion", None, {"path": None})),
        ("glyphs,fonts=matplotlib", ("glyphs", None, {"fonts": "matplotlib"})),
    ],
)
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


def test_parsed_values_have_python_types():
    _, _, opts = parse_spec("digits,seed=7,test_fraction=0.5")
    assert type(opts["seed"]) is int and type(opts["test_fraction"]) is float


@pytest.mark.parametrize(
    "spec, match",
    [
        (
            "fashon",
            r"unknown source: 'fashon'.*valid: fashion, digits, glyphs, shapes, textures.*did you mean 'fashion'",
        ),
        ("glyph:greek", "did you mean 'glyphs'"),
        ("mnist", "unknown source: 'mnist'"),
        ("glyphs:greke", r"unknown variant of 'glyphs': 'greke'.*greek-upper.*did you mean 'greek'"),
        ("glyphs:latin", "did you mean 'latin-upper'"),
        ("digits:odd", "source 'digits' takes no variant"),
        ("glyphs:", "empty variant"),
        ("shapes,sed=1", r"unknown option of 'shapes': 'sed'.*n_train_per_class.*did you mean 'seed'"),
        ("shapes,seed", "options must be key=value"),
        ("shapes,=3", "options must be key=value"),
        ("shapes,seed=1,seed=2", "given twice"),
        ("", "non-empty string"),
        ("   ", "non-empty string"),
    ],
)
def test_parse_spec_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_spec(spec)


def test_spec_must_be_a_string():
    with pytest.raises(ValueError, match="spec must be a non-empty string"):
        parse_spec(3)  # type: ignore[arg-type]


def test_load_task_matches_the_loader():
    task = load_task("shapes,seed=3,n_train_per_class=2,n_test_per_class=1")
    direct = load_shapes(seed=3, **TINY)
    np.testing.assert_array_equal(task.x_train, direct.x_train)
    assert task.recipe == direct.recipe
    assert task.fingerprint == direct.fingerprint
    assert task.name == "shapes,n_test_per_class=1,n_train_per_class=2,seed=3"


def test_keyword_option_equal_to_the_spec_is_accepted():
    task = load_task("shapes,seed=3", seed=3, **TINY)
    assert task.recipe["seed"] == 3
    assert task.name == "shapes,n_test_per_class=1,n_train_per_class=2,seed=3"


def test_keyword_option_that_differs_from_the_spec_raises():
    with pytest.raises(ValueError) as info:
        load_task("shapes,seed=3", seed=4, **TINY)
    assert str(info.value) == (
        "seed is set twice, to different values: seed=3 in spec 'shapes,seed=3' and seed=4 as an argument; "
        "give it in one place"
    )


def test_name_is_normalised():
    a = load_task(" Shapes , seed=0, n_test_per_class=1,n_train_per_class=2 ")
    assert a.name == "shapes,n_test_per_class=1,n_train_per_class=2"  # seed=0 is the default
    b = load_task("digits,test_fraction=0.30")
    assert b.name == "digits"
    c = load_task("glyphs:Greek", **TINY)
    assert c.name == "glyphs:greek,n_test_per_class=1,n_train_per_class=2"


def test_variant_goes_to_the_loader():
    task = load_task("glyphs:greek-lower", **TINY)
    assert task.recipe == load_glyphs("greek-lower", **TINY).recipe
    default = load_task("glyphs", **TINY)
    assert default.recipe["charset"] == "latin-upper"


def test_digits_and_fashion_through_specs(tiny_fashion):
    np.testing.assert_array_equal(load_task("digits,seed=1").y_test, load_digits(seed=1).y_test)
    fashion = load_task("fashion")
    assert fashion.name == "fashion" and len(fashion.y_train) == 10


@pytest.mark.parametrize("name", list(_sources._SOURCES))
def test_every_source_loads_through_its_spec(name, tiny_fashion):
    src = _sources._SOURCES[name]
    options = TINY if "n_train_per_class" in src.options else {}
    specs = [name] + [f"{name}:{v}" for v in src.variants]
    for spec in specs:
        task = load_task(spec, **options)
        assert task.x_train.dtype == np.uint8 and task.image_shape == (1, 28, 28)
        assert task.recipe["source"] == name


def test_unknown_keyword_option_raises():
    with pytest.raises(ValueError, match="unknown option of 'digits': 'n_train_per_class'"):
        load_task("digits", n_train_per_class=3)


def test_invalid_option_value_is_refused_by_the_parser():
    with pytest.raises(ValueError, match="n_train_per_class must be an integer"):
        load_task("shapes,n_train_per_class=many")


def test_invalid_keyword_value_comes_from_the_loader():
    with pytest.raises(ValueError, match="n_train_per_class must be an integer >= 1; got 0"):
        load_task("shapes", n_train_per_class=0)


def test_registering_twice_raises():
    existing = _sources._SOURCES["shapes"]
    with pytest.raises(ValueError, match="already registered"):
        _sources._register(existing)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    n=st.integers(1, 500),
    source=st.sampled_from(["shapes", "textures"]),
)
def test_normalised_name_parses_back_to_the_same_options(seed, n, source):
    options = {"seed": seed, "n_train_per_class": n}
    name = _sources._normalised(source, None, options, _sources._SOURCES[source])
    src, variant, parsed = parse_spec(name)
    assert (src, variant) == (source, None)
    defaults = _sources._SOURCES[source].options
    assert parsed == {k: v for k, v in options.items() if v != defaults[k]}
