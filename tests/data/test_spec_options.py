"""Task-spec options are checked when parsed, win over defaults, and never lose silently to an argument.

Independent references: each expected task is loaded straight from its loader
(``load_shapes``, ``load_glyphs``, ``load_digits`` + ``subsample``) with the
values the spec names, and compared array for array.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from transferlab.data import load_sized, parse_spec, subsample
from transferlab.data import _sources
from transferlab.data._digits import load_digits
from transferlab.data._glyphs import load_glyphs
from transferlab.data._procedural import load_shapes

# --------------------------------------------------------------------------- parse_spec: values


@pytest.mark.parametrize(
    "spec, message",
    [
        ("shapes,seed=abc",
         "invalid option seed=abc in spec 'shapes,seed=abc': seed must be an integer >= 0; got 'abc'"),
        ("shapes,seed=-2", "invalid option seed=-2 in spec 'shapes,seed=-2': seed must be an integer >= 0; got -2"),
        ("shapes,seed=1.5", "invalid option seed=1.5 in spec 'shapes,seed=1.5': seed must be an integer >= 0; got 1.5"),
        ("shapes,seed=true", "invalid option seed=true in spec 'shapes,seed=true': seed must be an integer >= 0; "
                             "got True"),
        ("glyphs:greek,n_train_per_class=-1", "invalid option n_train_per_class=-1 in spec "
         "'glyphs:greek,n_train_per_class=-1': n_train_per_class must be an integer >= 1; got -1"),
        ("textures,n_test_per_class=0", "invalid option n_test_per_class=0 in spec 'textures,n_test_per_class=0': "
         "n_test_per_class must be an integer >= 1; got 0"),
        ("digits,test_fraction=1.5", "invalid option test_fraction=1.5 in spec 'digits,test_fraction=1.5': "
         "test_fraction must be a finite number in (0, 1); got 1.5"),
        ("digits,test_fraction=nan", "invalid option test_fraction=nan in spec 'digits,test_fraction=nan': "
         "test_fraction must be a finite number in (0, 1); got nan"),
        ("fashion,download=yes", "invalid option download=yes in spec 'fashion,download=yes': "
         "download must be a bool; got 'yes'"),
        ("shapes,seed", "spec options must be key=value; got 'seed' in spec 'shapes,seed'"),
        ("shapes,colour=red", "unknown option of 'shapes': 'colour' (in spec 'shapes,colour=red'); "
         "valid: n_train_per_class, n_test_per_class, seed"),
    ],
)
def test_a_malformed_value_names_the_option_and_the_value(spec, message):
    with pytest.raises(ValueError) as info:
        parse_spec(spec)
    assert str(info.value) == message


def test_a_text_option_keeps_digits_as_written():
    assert parse_spec("fashion,path=2024") == ("fashion", None, {"path": "2024"})


def test_every_source_declares_what_each_option_accepts():
    for src in _sources._SOURCES.values():
        assert set(src.kinds) == set(src.options), src.name
    shapes = _sources._SOURCES["shapes"]
    with pytest.raises(ValueError, match="every option needs a kind"):
        _sources._register(dataclasses.replace(shapes, name="shapes-2", kinds={"seed": _sources._SEED}))


# --------------------------------------------------------------------------- load_sized: who wins


def test_spec_seed_wins_over_the_default_seed():
    task = load_sized("shapes,seed=3", train_per_class=4, test_per_class=2, defaults={"seed": 0})
    direct = load_shapes(n_train_per_class=4, n_test_per_class=2, seed=3)
    np.testing.assert_array_equal(task.x_train, direct.x_train)
    assert task.fingerprint == direct.fingerprint
    assert task.name == "shapes,n_test_per_class=2,n_train_per_class=4,seed=3"
    plain = load_sized("shapes", train_per_class=4, test_per_class=2)  # seed 0: other images
    assert not np.array_equal(plain.x_train, task.x_train)


def test_spec_size_wins_over_the_default_size():
    task = load_sized("glyphs:greek,n_train_per_class=5", defaults={"train_per_class": 100, "test_per_class": 2})
    direct = load_glyphs("greek", n_train_per_class=5, n_test_per_class=2, seed=0)
    np.testing.assert_array_equal(task.x_train, direct.x_train)
    np.testing.assert_array_equal(np.bincount(task.y_train), np.full(task.n_classes, 5))


def test_defaults_fill_what_the_spec_leaves_out():
    task = load_sized("shapes,n_test_per_class=1", defaults={"train_per_class": 3, "test_per_class": 9, "seed": 7})
    assert task.recipe == load_shapes(n_train_per_class=3, n_test_per_class=1, seed=7).recipe


def test_an_explicit_argument_equal_to_the_spec_is_accepted():
    task = load_sized("shapes,seed=3,n_train_per_class=4", train_per_class=4, test_per_class=1, seed=3)
    assert task.recipe == load_shapes(n_train_per_class=4, n_test_per_class=1, seed=3).recipe


@pytest.mark.parametrize(
    "spec, arguments, message",
    [
        ("glyphs:greek,n_train_per_class=5", {"train_per_class": 50},
         "train_per_class=50 conflicts with n_train_per_class=5 in spec 'glyphs:greek,n_train_per_class=5'; "
         "give it in one place: drop n_train_per_class from the spec, or pass train_per_class=5"),
        ("shapes,seed=3", {"seed": 0},
         "seed=0 conflicts with seed=3 in spec 'shapes,seed=3'; "
         "give it in one place: drop seed from the spec, or pass seed=3"),
        ("digits,seed=3", {"seed": 1},
         "seed=1 conflicts with seed=3 in spec 'digits,seed=3'; "
         "give it in one place: drop seed from the spec, or pass seed=3"),
    ],
)
def test_an_explicit_argument_that_differs_from_the_spec_raises(spec, arguments, message):
    with pytest.raises(ValueError) as info:
        load_sized(spec, **arguments)
    assert str(info.value) == message


def test_a_stored_source_is_subsampled_with_the_spec_seed():
    task = load_sized("digits,seed=3", train_per_class=5, defaults={"seed": 1})
    expected = subsample(load_digits(seed=3), train_per_class=5, seed=3)
    np.testing.assert_array_equal(task.x_train, expected.x_train)
    np.testing.assert_array_equal(task.y_train, expected.y_train)


def test_a_stored_source_without_a_spec_seed_is_subsampled_with_the_argument():
    task = load_sized("digits", train_per_class=5, seed=4)
    expected = subsample(load_digits(seed=0), train_per_class=5, seed=4)
    np.testing.assert_array_equal(task.y_train, expected.y_train)
    np.testing.assert_array_equal(task.x_train, expected.x_train)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"train_per_class": 0}, "train_per_class must be an integer >= 1 or None; got 0"),
        ({"seed": "abc"}, "seed must be an integer >= 0 or None; got 'abc'"),
        ({"defaults": {"seed": -1}}, "defaults['seed'] must be an integer >= 0 or None; got -1"),
        ({"defaults": {"n_train_per_class": 5}},
         "defaults takes only train_per_class, test_per_class, seed; got 'n_train_per_class'"),
    ],
)
def test_bad_arguments_are_refused(arguments, message):
    with pytest.raises(ValueError) as info:
        load_sized("shapes", **arguments)
    assert str(info.value) == message


# --------------------------------------------------------------------------- studies and the zoo


def test_a_study_target_spec_wins_over_the_study_sizes():
    from transferlab.studies._selection_config import TargetSpec, build_target

    config = SimpleNamespace(train_per_class=50, test_per_class=2, seed=0)
    task = build_target(TargetSpec("shapes,seed=3,n_train_per_class=4"), "full", config)
    assert task.recipe == load_shapes(n_train_per_class=4, n_test_per_class=2, seed=3).recipe


def test_a_malformed_study_target_fails_when_the_config_is_made():
    from transferlab.studies._selection_config import TargetSpec

    with pytest.raises(ValueError, match=r"invalid option seed=abc in spec 'shapes,seed=abc'"):
        TargetSpec("shapes,seed=abc")


def _member(source: str, train_per_class: int, seed: int):
    return SimpleNamespace(
        source=source,
        metadata={"member": {"source": source, "train_per_class": train_per_class, "train": {"seed": seed}}},
    )


def test_a_member_source_task_keeps_the_spec_options_and_is_capped():
    from transferlab.rank._zoo import _ZooTarget

    shared = _ZooTarget(None, None, "cpu", False, source_per_class=4, gradient_dim=8, seed=0)
    task = shared.source_task(_member("shapes,n_train_per_class=9,seed=5", train_per_class=200, seed=2))
    # As built: 9 per class with seed 5 (the spec's), then 4 per class of them.
    built = load_shapes(n_train_per_class=9, n_test_per_class=1, seed=5)
    expected = subsample(built, train_per_class=4, seed=2)
    np.testing.assert_array_equal(task.x_train, expected.x_train)
    np.testing.assert_array_equal(np.bincount(task.y_train), np.full(task.n_classes, 4))


def test_a_member_source_task_without_spec_options_renders_the_cap():
    from transferlab.rank._zoo import _ZooTarget

    shared = _ZooTarget(None, None, "cpu", False, source_per_class=4, gradient_dim=8, seed=0)
    task = shared.source_task(_member("shapes", train_per_class=200, seed=2))
    direct = load_shapes(n_train_per_class=4, n_test_per_class=1, seed=2)
    np.testing.assert_array_equal(task.x_train, direct.x_train)
