"""The misuse table: every registered per-model score against every kind of bad or unusual input.

One parametrized test runs each (score, case) pair. A case either expects a
``ValueError`` whose message names the offending argument, or a documented
correct value: a finite Python float, equal (where the math says so) to the
value on the clean input. What a case cannot know from the needs alone (does
the score accept a class with one sample? a constant feature matrix? is it
scale-invariant? does renaming the classes leave it unchanged?) is read from
the score's spec, ``spec(name).traits``, declared next to its
``@register_score`` decorator. Pool-level scores have their own validation
tests in ``test_pool.py`` and share the property tests of ``test_properties.py``.

Inputs for every need (features, source probabilities, gradients, source
features and labels, probe features) come from one seeded generator in
:func:`make_inputs`, so every score is exercised on the same data.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from transferlab.scores import available, spec

#: Array arguments aligned with the target samples (one row per label).
TARGET_ARRAYS = ("features", "gradients", "source_probs", "probe_features")
#: Arguments whose values are features (scaled by the magnitude case; not probabilities).
FEATURE_LIKE = ("features", "gradients", "source_features", "probe_features")
#: The argument a single-input case corrupts: the first of these the score reads.
PRIMARY_ORDER = ("features", "gradients", "source_probs", "probe_features", "source_features")
#: Scalar facts about the model (the priors' inputs): no rows, no columns.
SCALARS = ("source_accuracy", "n_parameters")


# --------------------------------------------------------------------------- inputs


def make_inputs(
    needs,
    *,
    seed: int = 0,
    n_classes: int = 3,
    n_per_class: int = 8,
    n_features: int = 5,
    n_source_classes: int = 4,
    n_source_per_class: int = 6,
) -> dict:
    """Valid inputs for a score with these ``needs``, as keyword arguments of ``ScoreSpec.compute``.

    Every array is drawn from one ``default_rng(seed)`` stream in a fixed order,
    whatever the needs, so two scores see the same numbers. Features, gradients
    and probe features are class means plus unit noise (informative but not
    separable); source probabilities are a softmax of logits that depend on the
    class; source features come from ``n_source_classes`` source classes with
    their own means, in the same dimension as ``features``. The priors'
    scalars are 0-d arrays (they have ``.copy()`` like the arrays): a source
    accuracy of 0.75 and 1234 parameters.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    n = labels.shape[0]
    onehot = np.eye(n_classes)[labels]

    def informative(dim: int) -> np.ndarray:
        return 1.5 * onehot @ rng.normal(size=(n_classes, dim)) + rng.normal(size=(n, dim))

    features = informative(n_features)
    logits = 2.0 * onehot @ rng.normal(size=(n_classes, 4)) + rng.normal(size=(n, 4))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    gradients = informative(max(n_features, 6))
    source_labels = np.repeat(np.arange(n_source_classes), n_source_per_class)
    source_features = 1.5 * np.eye(n_source_classes)[source_labels] @ rng.normal(
        size=(n_source_classes, n_features)
    ) + rng.normal(size=(source_labels.shape[0], n_features))
    probe_features = informative(max(n_features - 1, 4))
    everything = {
        "features": features,
        "source_probs": probs,
        "gradients": gradients,
        "source_features": source_features,
        "source_labels": source_labels,
        "probe_features": probe_features,
        "source_accuracy": np.array(0.75),
        "n_parameters": np.array(1234),
    }
    wanted = {"labels"}
    for need in needs:
        wanted |= {"source_features", "source_labels"} if need == "source_features" else set()
        wanted |= {"probe_features"} if need == "probe" else ({need} if need in everything else set())
        wanted |= {"n_parameters"} if need == "parameters" else set()
    return {"labels": labels, **{k: v for k, v in everything.items() if k in wanted}}


def _arrays(inputs: dict, names) -> list[str]:
    return [k for k in names if k in inputs]


def _primary(inputs: dict) -> str:
    return _arrays(inputs, PRIMARY_ORDER)[0]


def _call(name: str, inputs: dict) -> float:
    return spec(name).compute(**inputs)


def _finite_float(value) -> float:
    assert type(value) is float, f"expected a Python float, got {type(value).__name__}"
    assert np.isfinite(value), f"expected a finite value, got {value}"
    return value


def _naming(argument: str, text: str) -> str:
    """A regex for ``text`` after ``argument`` as a whole word (``features`` never matches ``source_features``)."""
    return rf"(?<![a-z_]){argument} {text}"


def _take_rows(inputs: dict, rows: np.ndarray) -> dict:
    out = dict(inputs)
    out["labels"] = inputs["labels"][rows]
    for k in _arrays(inputs, TARGET_ARRAYS):
        out[k] = inputs[k][rows]
    return out


# --------------------------------------------------------------------------- cases
# Each case takes (name, inputs) and asserts; it returns nothing.


def _non_finite(bad: float):
    def case(name, inputs):
        for arg in _arrays(inputs, TARGET_ARRAYS + ("source_features",)):
            corrupt = dict(inputs)
            corrupt[arg] = inputs[arg].copy()
            corrupt[arg][1, 0] = bad
            with pytest.raises(ValueError, match=_naming(arg, "must be finite")):
                _call(name, corrupt)
        for arg in _arrays(inputs, SCALARS):  # a scalar's message names it and what it must be
            with pytest.raises(ValueError, match=_naming(arg, "must be")):
                _call(name, dict(inputs, **{arg: bad}))

    return case


def _one_dimensional(name, inputs):
    for arg in _arrays(inputs, TARGET_ARRAYS + ("source_features",)):
        corrupt = dict(inputs, **{arg: inputs[arg][:, 0]})
        with pytest.raises(ValueError, match=_naming(arg, "must be 2-D")):
            _call(name, corrupt)


def _length_mismatch(name, inputs):
    for arg in _arrays(inputs, TARGET_ARRAYS):
        corrupt = dict(inputs, **{arg: inputs[arg][:-1]})
        with pytest.raises(ValueError, match=rf"(?<![a-z_])({arg}|labels)\b"):
            _call(name, corrupt)
    if "source_labels" in inputs:
        corrupt = dict(inputs, source_labels=inputs["source_labels"][:-1])
        with pytest.raises(ValueError, match=r"source_(labels|features)\b"):
            _call(name, corrupt)


def _empty(name, inputs):
    corrupt = _take_rows(inputs, np.arange(0))
    names = "|".join(("labels", *_arrays(inputs, TARGET_ARRAYS)))
    with pytest.raises(ValueError, match=rf"(?<![a-z_])({names}) must be non-empty"):
        _call(name, corrupt)


def _single_class(name, inputs):
    corrupt = dict(inputs, labels=np.zeros_like(inputs["labels"]))
    with pytest.raises(ValueError, match="labels must contain at least 2 classes"):
        _call(name, corrupt)


def _class_with_one_sample(name, inputs):
    y = inputs["labels"]
    last = int(y.max())
    rows = np.concatenate([np.flatnonzero(y != last), np.flatnonzero(y == last)[:1]])
    small = _take_rows(inputs, rows)
    if spec(name).min_per_class <= 1:
        _finite_float(_call(name, small))
    else:
        with pytest.raises(ValueError, match=r"every class in labels needs at least \d+ samples"):
            _call(name, small)


def _non_integral_float_labels(name, inputs):
    corrupt = dict(inputs, labels=inputs["labels"] + 0.5)
    with pytest.raises(ValueError, match="labels must be integers"):
        _call(name, corrupt)


def _relabelled(mapping, source_mapping):
    # Allowed: the value equals the value with labels 0..C-1. The mappings reorder
    # the classes too (np.unique sorts them), so this also checks class renaming.
    def case(name, inputs):
        expected = _call(name, inputs)
        renamed = dict(inputs, labels=np.asarray(mapping)[inputs["labels"]])
        if "source_labels" in inputs:
            renamed["source_labels"] = np.asarray(source_mapping)[inputs["source_labels"]]
        value = _finite_float(_call(name, renamed))
        if spec(name).label_permutation_invariant:
            np.testing.assert_allclose(value, expected, rtol=1e-7, atol=1e-10)

    return case


def _negative_probabilities(name, inputs):
    corrupt = dict(inputs, source_probs=inputs["source_probs"].copy())
    corrupt["source_probs"][2] = np.eye(corrupt["source_probs"].shape[1])[0] * 1.25
    corrupt["source_probs"][2, 1] = -0.25  # the row still sums to 1
    with pytest.raises(ValueError, match="source_probs must be non-negative"):
        _call(name, corrupt)


def _rows_not_summing_to_one(name, inputs):
    corrupt = dict(inputs, source_probs=inputs["source_probs"] * 0.9)
    with pytest.raises(ValueError, match="source_probs must sum to 1"):
        _call(name, corrupt)


def _constant(name, inputs):
    arg = _primary(inputs)
    constant = dict(inputs)
    if arg == "source_probs":  # the constant probability matrix: uniform rows
        constant[arg] = np.full_like(inputs[arg], 1.0 / inputs[arg].shape[1])
    else:  # every row the same vector: zero variance in every column
        constant[arg] = np.broadcast_to(inputs[arg][0], inputs[arg].shape).copy()
    if spec(name).constant == "finite":
        _finite_float(_call(name, constant))
    else:
        with pytest.raises(ValueError, match=rf"(?<![a-z_]){arg}\b"):
            _call(name, constant)


def _constant_column(name, inputs):
    # One dead unit (a zero column) among informative ones is ordinary input: finite.
    arg = _primary(inputs)
    if arg == "source_probs":
        pytest.skip("a zero column of probabilities is a source class without mass (see the LEEP tests)")
    dead = dict(inputs)
    for k in _arrays(inputs, FEATURE_LIKE):
        dead[k] = inputs[k].copy()
        dead[k][:, 0] = 0.0
    _finite_float(_call(name, dead))


def _fewer_samples_than_dimensions(name, inputs):
    wide = make_inputs(spec(name).needs, n_features=60)
    assert wide["labels"].shape[0] < 60
    _finite_float(_call(name, wide))


def _large_magnitude(name, inputs):
    big = dict(inputs)
    for k in _arrays(inputs, FEATURE_LIKE):
        big[k] = inputs[k] * 1e12
    value = _finite_float(_call(name, big))
    if spec(name).scale_invariant:
        np.testing.assert_allclose(value, _call(name, inputs), rtol=1e-6, atol=1e-9)


def _float32(name, inputs):
    # Computed in float64: float32 input equals the float64 copy of the same numbers, to
    # 1e-9 relative (arithmetic in float32 would be off by ~1e-7: this tolerance catches it).
    single = dict(inputs)
    for k in _arrays(inputs, (*FEATURE_LIKE, "source_probs")):
        single[k] = inputs[k].astype(np.float32)
    double = {k: (v.astype(np.float64) if k in single and v.dtype == np.float32 else v) for k, v in single.items()}
    np.testing.assert_allclose(_finite_float(_call(name, single)), _call(name, double), rtol=1e-9, atol=1e-12)


#: name -> (the case, whether it applies to a score with these inputs).
CASES = {
    "nan": (_non_finite(np.nan), lambda inputs: True),
    "inf": (_non_finite(np.inf), lambda inputs: True),
    "one_dimensional": (_one_dimensional, lambda inputs: True),
    "length_mismatch": (_length_mismatch, lambda inputs: True),
    "empty": (_empty, lambda inputs: True),
    "single_class": (_single_class, lambda inputs: True),
    "class_with_one_sample": (_class_with_one_sample, lambda inputs: True),
    "non_integral_float_labels": (_non_integral_float_labels, lambda inputs: True),
    "string_labels": (_relabelled(["zeta", "alpha", "mu"], ["s3", "s1", "s0", "s2"]), lambda inputs: True),
    "negative_non_contiguous_labels": (_relabelled([7, -3, 42], [-1, 10, 5, 0]), lambda inputs: True),
    "negative_probabilities": (_negative_probabilities, lambda inputs: "source_probs" in inputs),
    "rows_not_summing_to_one": (_rows_not_summing_to_one, lambda inputs: "source_probs" in inputs),
    "constant": (_constant, lambda inputs: bool(_arrays(inputs, PRIMARY_ORDER))),
    "constant_column": (_constant_column, lambda inputs: bool(_arrays(inputs, FEATURE_LIKE))),
    "n_smaller_than_d": (_fewer_samples_than_dimensions, lambda inputs: bool(_arrays(inputs, FEATURE_LIKE))),
    "magnitude_1e12": (_large_magnitude, lambda inputs: bool(_arrays(inputs, FEATURE_LIKE))),
    "float32": (_float32, lambda inputs: True),
}


#: The cases about class labels: they apply to the scores that take classes (spec(name).targets).
CLASS_CASES = frozenset({"single_class", "class_with_one_sample", "non_integral_float_labels", "string_labels",
                         "negative_non_contiguous_labels"})


def _pairs():
    for name in available():
        inputs = make_inputs(spec(name).needs)
        for case, (_, applies) in CASES.items():
            if applies(inputs) and (case not in CLASS_CASES or "classes" in spec(name).targets):
                yield pytest.param(name, case, id=f"{name}-{case}")


@pytest.mark.parametrize("name, case", list(_pairs()))
def test_misuse(name, case):
    inputs = make_inputs(spec(name).needs)
    snapshot = {k: v.copy() for k, v in inputs.items()}
    CASES[case][0](name, inputs)
    for k, v in snapshot.items():  # no case may modify the caller's arrays
        np.testing.assert_array_equal(inputs[k], v, err_msg=f"{name} modified {k} in place")


def test_the_inputs_cover_every_need():
    # Every need has a builder, so no score is skipped for lack of input.
    from transferlab.scores._registry import NEED_ARGUMENTS, NEEDS

    inputs = make_inputs(NEEDS)
    for need in NEEDS:
        for arg in NEED_ARGUMENTS[need]:
            assert arg in inputs and (inputs[arg].shape[0] > 0 if arg not in SCALARS else inputs[arg].ndim == 0)
    n = inputs["labels"].shape[0]
    assert all(inputs[k].shape[0] == n for k in TARGET_ARRAYS)
    assert inputs["source_features"].shape[1] == inputs["features"].shape[1]
    np.testing.assert_allclose(inputs["source_probs"].sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # One stream: the arrays do not depend on which needs were asked for.
    np.testing.assert_array_equal(make_inputs({"features"})["features"], inputs["features"])


def test_naming_regex_tells_features_from_source_features():
    assert re.search(_naming("features", "must be finite"), "features must be finite")
    assert not re.search(_naming("features", "must be finite"), "source_features must be finite")


# --------------------------------------------------------------------------- shared validator helpers
# The helpers of _validation.py that give every score the same wording for the
# inputs beyond (features, labels): gradients, source features, probe features.


def test_check_features_labels_names_other_per_sample_matrices():
    from transferlab._validation import check_features_labels

    with pytest.raises(ValueError, match=r"gradients must be finite"):
        check_features_labels([[np.nan], [1.0]], [0, 1], name="gradients")
    with pytest.raises(ValueError, match=r"gradients must be 2-D \(n_samples, n_features\); got shape \(2,\)"):
        check_features_labels([0.0, 1.0], [0, 1], name="gradients")
    with pytest.raises(ValueError, match=r"labels must have one entry per sample \(n_samples=2\); got 3 \(gradients has 2 rows\)"):
        check_features_labels([[0.0], [1.0]], [0, 1, 1], name="gradients")


def test_check_source_features():
    from transferlab._validation import check_source_features

    S, ys, classes = check_source_features(np.float32([[1, 2], [3, 4], [5, 6]]), ["b", "a", "b"], n_features=2)
    assert S.dtype == np.float64 and ys.tolist() == [1, 0, 1] and classes.tolist() == ["a", "b"]
    # One source class is a valid source set (unless min_classes=2 is asked for).
    assert check_source_features([[0.0], [1.0]], [7, 7])[1].tolist() == [0, 0]
    with pytest.raises(ValueError, match="source_labels must contain at least 2 classes"):
        check_source_features([[0.0], [1.0]], [7, 7], min_classes=2)
    with pytest.raises(ValueError, match=r"source_features must have the same number of features as features \(3"):
        check_source_features([[0.0, 1.0]], [0], n_features=3)
    with pytest.raises(ValueError, match=r"source_labels must have one entry per sample \(n_samples=2\); got 1 \(source_features has 2 rows\)"):
        check_source_features([[0.0], [1.0]], [0])
    with pytest.raises(ValueError, match="source_features must be finite"):
        check_source_features([[np.inf], [1.0]], [0, 1])
    with pytest.raises(ValueError, match=r"every class in source_labels needs at least 2 samples; class 'x' has 1"):
        check_source_features([[0.0], [1.0], [2.0]], ["x", "y", "y"], min_per_class=2)
    with pytest.raises(ValueError, match="min_classes must be 1 or 2"):
        check_source_features([[0.0]], [0], min_classes=0)


def test_check_rows():
    from transferlab._validation import check_rows

    probe = np.arange(6.0).reshape(3, 2)
    out = check_rows(probe, 3, name="probe_features")
    np.testing.assert_array_equal(out, probe)
    assert out is not probe and out.dtype == np.float64
    with pytest.raises(ValueError, match=r"probe_features must have one row per sample of features \(n_samples=4\); got 3 rows"):
        check_rows(probe, 4, name="probe_features")
    with pytest.raises(ValueError, match=r"probe_features must be 2-D"):
        check_rows(probe[:, 0], 3, name="probe_features")
    with pytest.raises(ValueError, match="probe_features must be finite"):
        check_rows([[np.nan]], 1, name="probe_features")


# --------------------------------------------------------------------------- registry dispatch


def test_compute_names_the_missing_input_and_the_score():
    inputs = make_inputs({"features", "source_probs", "source_features"})
    with pytest.raises(ValueError, match=r"score 'leep' needs source_probs .*got source_probs=None"):
        spec("leep").compute(inputs["labels"], features=inputs["features"])
    with pytest.raises(ValueError, match=r"score 'logme' needs features"):
        spec("logme").compute(inputs["labels"], source_probs=inputs["source_probs"])
    ds = [n for n in available() if "source_features" in spec(n).needs]
    for name in ds:  # both arrays of the need are required
        with pytest.raises(ValueError, match=rf"score '{name}' needs source_labels"):
            spec(name).compute(inputs["labels"], features=inputs["features"], source_features=inputs["source_features"])


def test_compute_passes_needs_by_keyword_and_ignores_the_rest():
    from transferlab.scores._registry import _ScoreRegistry

    reg = _ScoreRegistry()
    seen = {}

    def odd_order(labels, probe_features, *, features, scale=1.0):
        """A test double whose arguments come in an unusual order."""
        seen.update(labels=labels, probe_features=probe_features, features=features, scale=scale)
        return 1.5

    reg.register_score("odd", needs={"features", "probe"}, reference="Doe 2024")(odd_order)
    labels, feats, probe = np.array([0, 1]), np.ones((2, 3)), np.zeros((2, 1))
    value = reg.spec("odd").compute(labels, features=feats, probe_features=probe, source_probs=np.eye(2), scale=2.0)
    assert value == 1.5
    assert seen["features"] is feats and seen["probe_features"] is probe and seen["labels"] is labels
    assert seen["scale"] == 2.0
    with pytest.raises(ValueError, match=r"score 'odd' has no option 'scal'\. Did you mean 'scale'\? Its options are: scale"):
        reg.spec("odd").compute(labels, features=feats, probe_features=probe, scal=2.0)
    with pytest.raises(ValueError, match=r"needs probe_features"):
        reg.spec("odd").compute(labels, features=feats)


def test_compute_equals_calling_the_function():
    inputs = make_inputs({"features"})
    direct = spec("logme").func(inputs["features"], inputs["labels"], max_iter=7)
    assert spec("logme").compute(inputs["labels"], features=inputs["features"], max_iter=7) == direct
