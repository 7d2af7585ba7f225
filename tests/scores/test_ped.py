"""Tests for PED's potential-energy-decline transform and the ``"ped+<score>"`` compositions.

References used here share no code with the module: a closed-form trajectory of
two classes on a line (each step's overlap is 0.99 of the last), the one-step
"touching" case, and a slow reference written like the authors' loop
(``lixiaotong97/PED``, ``One_Step_PED``/``PED_Score``): every step re-standardises,
recomputes every class mean *and radius*, loops over the ordered pairs and
moves every sample, with the target's own statistics in place of ImageNet's.
The compositions are not in ``available()``, so the common property tests do
not see them: the invariance checks for a few of them are here.
"""

import inspect

import numpy as np
import pytest

from tests.scores.test_properties import BREAKERS, _scaled, _translated, random_inputs, values
from transferlab.rank import ArrayCandidate, rank, split_score_names
from transferlab.scores import available, get, spec
from transferlab.scores._ped import ped_transform


def _ped_reference(X, y, t=0.1, nsigma=0.6, exit_ratio=0.5, max_steps=6, kappa=1.0):
    """The dynamics step by step, every sample moved, every statistic recomputed (no constant columns)."""
    X = np.array(X, dtype=float)
    y = np.asarray(y)
    m, s = X.mean(axis=0), X.std(axis=0)
    classes = sorted(set(y.tolist()))
    first = None
    for _ in range(max_steps):
        Z = (X - m) / s
        mu = {c: Z[y == c].mean(axis=0) for c in classes}
        radius = {c: np.sqrt(np.sum(Z[y == c].var(axis=0))) for c in classes}
        move = {c: np.zeros(X.shape[1]) for c in classes}
        for a in classes:
            for b in classes:
                if a == b:
                    continue
                diff = mu[a] - mu[b]
                d = np.sqrt(np.sum(diff**2))
                overlap = max(nsigma * (radius[a] + radius[b]) - d, 0.0)
                if d > 0:
                    move[a] += min(0.5 * kappa * t * t * overlap, overlap) * diff / d
        change = sum(np.sum(np.abs(move[c])) for c in classes)
        if first is None:
            first = change
        if first == 0 or change / first <= exit_ratio:
            break
        for i in range(X.shape[0]):
            Z[i] += move[y[i]]
        X = Z * s + m
    return X


def _overlapping(seed, counts=(7, 5, 6), d=3, strength=0.5):
    """Classes whose spheres overlap at the default nsigma (means ~strength apart, unit noise)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    X = strength * rng.normal(size=(len(counts), d))[y] + rng.normal(size=(y.shape[0], d))
    return X, y


# --------------------------------------------------------------------------- the transform


def test_two_classes_on_a_line_closed_form():
    # Classes {-1, 1} and {2, 4}: radius 1 each (in units of x), means 0 and 3; nsigma=2 gives the
    # reach 2 * (1 + 1) = 4 and overlap 1. A step moves each class by t^2/2 = 0.005 of the overlap,
    # so the gap grows by 0.01 overlap: the next overlap is 0.99 of the last, the change ratio 0.99
    # > 0.5, and all six steps run. Standardising divides and multiplies by the same s: it cancels.
    moved = ped_transform([[-1.0], [1.0], [2.0], [4.0]], [0, 0, 1, 1], nsigma=2.0)
    shift = 0.005 * sum(0.99**k for k in range(6))
    np.testing.assert_allclose(moved.ravel(), [-1 - shift, 1 - shift, 2 + shift, 4 + shift], rtol=0, atol=1e-14)
    # max_steps cuts the sum
    moved = ped_transform([[-1.0], [1.0], [2.0], [4.0]], [0, 0, 1, 1], nsigma=2.0, max_steps=2)
    shift = 0.005 * (1 + 0.99)
    np.testing.assert_allclose(moved.ravel(), [-1 - shift, 1 - shift, 2 + shift, 4 + shift], rtol=0, atol=1e-14)


def test_a_full_step_separates_the_spheres_and_stops():
    # t = 2: t^2 / 2 = 2 > 1, so each class moves by the whole overlap (1) at once: means -1 and 4,
    # no overlap left, the second step moves nothing (ratio 0) and is not taken.
    moved = ped_transform([[-1.0], [1.0], [2.0], [4.0]], [0, 0, 1, 1], nsigma=2.0, time_step=2.0)
    np.testing.assert_allclose(moved.ravel(), [-2.0, 0.0, 3.0, 5.0], rtol=0, atol=1e-14)


def test_the_exit_ratio_stops_a_fading_motion():
    # force_constant scales the step: t^2 kappa / 2 = 0.4 moves each class by 0.4 overlap, the gap
    # grows by 0.8 overlap, the next overlap is 0.2 of the last: ratio 0.2 <= 0.5, one step only.
    moved = ped_transform([[-1.0], [1.0], [2.0], [4.0]], [0, 0, 1, 1], nsigma=2.0, force_constant=80.0)
    np.testing.assert_allclose(moved.ravel(), [-1.4, 0.6, 2.4, 4.4], rtol=0, atol=1e-14)
    # with exit_ratio 0.1 the second (0.2) and third (0.04 <= 0.1: not taken) decide
    moved = ped_transform([[-1.0], [1.0], [2.0], [4.0]], [0, 0, 1, 1], nsigma=2.0, force_constant=80.0,
                          exit_ratio=0.1)
    np.testing.assert_allclose(moved.ravel(), [-1.48, 0.52, 2.48, 4.48], rtol=0, atol=1e-14)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "options", [{}, {"nsigma": 0.3}, {"nsigma": 2.0, "time_step": 1.0}, {"exit_ratio": 0.9, "force_constant": 3.0}]
)
def test_matches_the_step_by_step_reference(seed, options):
    X, y = _overlapping(seed, d=2 + seed % 3)
    reference = _ped_reference(
        X, y, t=options.get("time_step", 0.1), nsigma=options.get("nsigma", 0.6),
        exit_ratio=options.get("exit_ratio", 0.5), kappa=options.get("force_constant", 1.0),
    )
    moved = ped_transform(X, y, **options)
    np.testing.assert_allclose(moved, reference, rtol=1e-11, atol=1e-11)
    if options.get("nsigma", 0.6) >= 0.6:  # the check means something: the classes did move
        assert not np.allclose(moved, X)


def test_separated_classes_and_constant_input_are_left_unchanged():
    y = np.repeat([0, 1], 5)
    far = np.column_stack([100.0 * y + np.arange(10) % 5, np.cos(np.arange(10))])
    np.testing.assert_array_equal(ped_transform(far, y), far)
    constant = np.full((10, 3), 2.5)
    np.testing.assert_array_equal(ped_transform(constant, y), constant)
    X, yy = _overlapping(0)
    np.testing.assert_array_equal(ped_transform(X, yy, max_steps=0), X)


def test_a_constant_column_stays_exactly_constant():
    X, y = _overlapping(1)
    with_dead = np.column_stack([X[:, :1], np.full(X.shape[0], 0.1), X[:, 1:]])
    moved = ped_transform(with_dead, y)
    np.testing.assert_array_equal(moved[:, 1], with_dead[:, 1])
    np.testing.assert_allclose(np.delete(moved, 1, axis=1), ped_transform(X, y), rtol=1e-12, atol=1e-12)


def test_identical_class_means_have_no_direction_and_do_not_move():
    # Two classes with the same mean overlap completely but have no direction to repel along.
    X = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    np.testing.assert_array_equal(ped_transform(X, [0, 0, 1, 1], nsigma=2.0), X)


def test_classes_move_rigidly_and_the_input_is_not_modified():
    X, y = _overlapping(2)
    before = X.copy()
    moved = ped_transform(X, y)
    np.testing.assert_array_equal(X, before)
    assert moved.dtype == np.float64 and moved is not X
    for c in np.unique(y):
        shifts = moved[y == c] - X[y == c]
        np.testing.assert_allclose(shifts, np.broadcast_to(shifts[0], shifts.shape), rtol=0, atol=1e-12)


def test_equivariant_to_translation_scaling_renaming_and_order():
    X, y = _overlapping(3)
    moved = ped_transform(X, y)
    shift = np.array([1e3, -7.0, 0.5])
    np.testing.assert_allclose(ped_transform(0.37 * X + shift, y), 0.37 * moved + shift, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ped_transform(1e-150 * X, y), 1e-150 * moved, rtol=1e-10)
    np.testing.assert_allclose(ped_transform(1e150 * X, y), 1e150 * moved, rtol=1e-10)
    renamed = np.array(["c", "a", "b"])[y]
    np.testing.assert_allclose(ped_transform(X, renamed), moved, rtol=1e-12, atol=1e-12)
    order = np.random.default_rng(0).permutation(y.shape[0])
    np.testing.assert_allclose(ped_transform(X[order], y[order]), moved[order], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ped_transform(X.astype(np.float32), y), ped_transform(X.astype(np.float32)
                               .astype(np.float64), y), rtol=0, atol=0)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"time_step": 0.0}, "time_step"),
        ({"nsigma": -0.6}, "nsigma"),
        ({"exit_ratio": 1.0}, "exit_ratio"),
        ({"exit_ratio": -0.1}, "exit_ratio"),
        ({"max_steps": -1}, "max_steps"),
        ({"max_steps": 2.5}, "max_steps"),
        ({"force_constant": np.inf}, "force_constant"),
    ],
)
def test_invalid_options_are_refused_by_name(options, message):
    X, y = _overlapping(0)
    with pytest.raises(ValueError, match=message):
        ped_transform(X, y, **options)


def test_invalid_arrays_are_refused_by_name():
    X, y = _overlapping(0)
    with pytest.raises(ValueError, match="features"):
        ped_transform(np.where(np.arange(X.size).reshape(X.shape) == 4, np.nan, X), y)
    with pytest.raises(ValueError, match="labels"):
        ped_transform(X, y[:-1])
    with pytest.raises(ValueError, match="labels"):
        ped_transform(X, np.zeros_like(y))  # a single class


# --------------------------------------------------------------------------- the compositions


@pytest.mark.parametrize("base", ["logme", "sfda", "hscore", "gbc", "transrate"])
def test_composition_is_the_base_score_of_the_moved_features(base):
    X, y = _overlapping(4)
    composite = spec(f"ped+{base}")
    expected = get(base)(features=ped_transform(X, y), labels=y)
    assert composite.compute(y, features=X) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    # the dynamics' options reach the transform, with the prefix; the base's reach the base
    expected = get(base)(features=ped_transform(X, y, nsigma=1.5, exit_ratio=0.2), labels=y)
    got = composite.compute(y, features=X, ped_nsigma=1.5, ped_exit_ratio=0.2)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_composition_passes_base_options_and_seeds():
    X, y = _overlapping(5)
    assert spec("ped+nleep").seeded
    np.testing.assert_allclose(
        spec("ped+nleep").compute(y, features=X, seed=3),
        get("nleep")(features=ped_transform(X, y), labels=y, seed=3),
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match=r"no option 'ped_nsigmaa'\. Did you mean 'ped_nsigma'\?"):
        spec("ped+logme").compute(y, features=X, ped_nsigmaa=1.0)


def test_the_composite_spec():
    s = spec("ped+logme")
    base = spec("logme")
    assert s.name == "ped+logme" and s.kind == "model" and s.group == "score" and s.direction == 1
    assert s.needs == base.needs and "features" in s.needs
    assert "Li, Hu, Ge, Shan & Duan" in s.reference and base.reference in s.reference
    for trait in ("min_per_class", "constant", "scale_invariant", "translation_invariant",
                  "label_permutation_invariant", "stochastic", "seeded", "per_member_seed", "resample"):
        assert getattr(s, trait) == getattr(base, trait), trait
    assert spec(" PED + LogME ") is s and get("ped+logme") is s.func
    assert spec("ped+domain_similarity").needs == spec("domain_similarity").needs
    # unweighted dynamics: the bootstrap must resample rows, not pass weights to the base
    assert "sample_weight" not in inspect.signature(s.func).parameters
    assert not any("+" in name for name in available(kind=None))


@pytest.mark.parametrize(
    "name, message",
    [
        ("ped+leep", r"'leep' does not read them"),
        ("ped+source_accuracy", r"'source_accuracy' does not read them"),
        ("ped+ncti", r"'ncti' is a pool score"),
        ("ped+random", r"'random' is a baseline"),
        ("ped+knn", r"'knn' is a baseline"),
        ("ped+logmee", r"score 'ped\+logmee': unknown score 'logmee'\. Did you mean 'logme'\?"),
        ("ped+ped+logme", r"compositions do not nest"),
        ("pde+logme", r"'pde' is not a composition \(compositions: 'ped\+<score>'\)"),
        ("ped+", r"unknown score ''"),
    ],
)
def test_bases_that_cannot_compose_are_refused(name, message):
    with pytest.raises(ValueError, match=message):
        spec(name)


# The compositions' declared invariances (the base's), checked as the common tests do, on inputs
# where the classes overlap (nsigma=2, so that the transform moves them); declared-False ones must fail.
COMPOSED = ["ped+logme", "ped+sfda", "ped+hscore", "ped+gbc"]
WIDE = {"ped_nsigma": 2.0}


@pytest.mark.parametrize("name", COMPOSED)
@pytest.mark.parametrize("seed", [0, 1])
def test_composite_invariances_hold_where_declared_and_fail_where_not(name, seed):
    s = spec(name)
    inputs = random_inputs(name, seed, (6, 5, 7), 4, 1.0)
    base = values(name, inputs, **WIDE)
    assert not np.allclose(ped_transform(inputs["features"], inputs["labels"], nsigma=2.0), inputs["features"])
    order = np.random.default_rng(seed).permutation(inputs["labels"].shape[0])
    shuffled = dict(inputs, features=inputs["features"][order], labels=inputs["labels"][order])
    np.testing.assert_allclose(values(name, shuffled, **WIDE), base, rtol=1e-7, atol=1e-9)
    renamed = dict(inputs, labels=np.array(["x", "b", "q"])[inputs["labels"]])
    np.testing.assert_allclose(values(name, renamed, **WIDE), base, rtol=1e-7, atol=1e-9)
    for trait, moved in (("translation_invariant", _translated(inputs, seed, 10.0)),
                         ("scale_invariant", _scaled(inputs, 0.37))):
        if getattr(s, trait):
            np.testing.assert_allclose(values(name, moved, **WIDE), base, rtol=1e-7, atol=1e-9)
        else:
            assert not np.allclose(values(name, BREAKERS[trait](inputs), **WIDE), base, rtol=1e-4, atol=1e-6)


def test_scale_invariant_composite_far_from_unit_scale():
    inputs = random_inputs("ped+hscore", 2, (6, 5, 7), 4, 1.0)
    base = values("ped+hscore", inputs, **WIDE)
    for factor in (1e-300, 1e-150, 1e150, 1e300):
        np.testing.assert_allclose(values("ped+hscore", _scaled(inputs, factor), **WIDE), base, rtol=1e-7)


def test_composition_through_rank():
    assert split_score_names("ped+logme, tmi".split(", ")) == (("ped+logme", "tmi"), ())
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 10)
    arrays = {
        "good": 2.0 * y[:, None] + rng.normal(size=(30, 4)),
        "overlapping": 0.5 * y[:, None] + rng.normal(size=(30, 4)),
        "noise": rng.normal(size=(30, 4)),
    }
    candidates = [ArrayCandidate(n, {"features": F}) for n, F in arrays.items()]
    ranking = rank(candidates, y, ["PED+LogME", "logme"], progress=False, bootstrap=3)
    assert ranking.scores == ("ped+logme", "logme")
    by_model = {row["model"]: row for row in ranking.rows}
    for model, F in arrays.items():
        expected = get("logme")(features=ped_transform(F, y), labels=y)
        assert by_model[model]["ped+logme"] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="'knn' is a baseline"):
        rank(candidates, y, ["ped+knn"], progress=False, bootstrap=0)
