"""Tests for the score registry: lookup, kinds, traits, discovery, and the rules every spec shares."""

import sys
import textwrap

import numpy as np
import pytest

from transferlab.scores import POOL_SCORES, available_pool_scores, etran, get_pool_score, ncti
from transferlab.scores._leep import leep
from transferlab.scores._logme import logme
from transferlab.scores._registry import (
    GROUPS,
    KINDS,
    MODEL_ONLY_NEEDS,
    NEED_ARGUMENTS,
    NEEDS,
    ScoreSpec,
    Traits,
    _ScoreRegistry,
    available,
    get,
    register_score,
    spec,
)


def test_builtin_scores_are_registered():
    names = available()
    assert {"logme", "leep"} <= set(names)
    assert names == sorted(names)
    assert get("logme") is logme
    assert get("leep") is leep


def test_spec_fields():
    s = spec("logme")
    assert isinstance(s, ScoreSpec)
    assert s.name == "logme" and s.func is logme
    assert s.needs == frozenset({"features"})
    assert s.summary == logme.__doc__.strip().splitlines()[0]
    assert "LogME" in s.reference and "2021" in s.reference
    assert s.kind == "model" and s.direction == 1
    assert isinstance(s.traits, Traits)
    assert s.scale_invariant is s.traits.scale_invariant is True
    assert s.translation_invariant is False  # no intercept in its linear model
    assert spec("leep").needs == frozenset({"source_probs"})
    with pytest.raises(AttributeError):
        s.name = "other"  # frozen
    with pytest.raises(AttributeError):
        s.traits.seeded = True  # frozen too


def test_lookup_ignores_case_and_hyphens():
    assert get("LogME") is logme
    assert get(" LEEP ") is leep


def test_unknown_name_lists_names_and_closest_match():
    with pytest.raises(ValueError, match=r"unknown score 'logmee'\. Did you mean 'logme'\? Available scores: .*leep"):
        get("logmee")
    with pytest.raises(ValueError, match=r"unknown score 'xyzzy'\. Available scores: "):
        spec("xyzzy")
    with pytest.raises(ValueError, match=r"Did you mean 'ncti'\?"):  # pool scores are valid names too
        spec("nctii")
    with pytest.raises(ValueError, match="name must be a string"):
        get(3)


def test_available_filters_by_inputs():
    assert "logme" in available({"features"})
    assert "leep" not in available({"features"})
    assert {"logme", "leep"} <= set(available({"features", "source_probs"}))
    assert "leep" in available("source_probs")
    with pytest.raises(ValueError, match="have must be a subset"):
        available({"pixels"})


def test_available_by_kind():
    model, pool, every = available(), available(kind="pool"), available(kind=None)
    assert pool == ["etran", "ncti"]
    assert not set(pool) & set(model)  # the default lists per-model scores only, as before
    assert every == sorted(model + pool)
    assert available(kind="model") == model
    assert available({"source_probs"}, kind="pool") == []  # a pool score reads features
    assert available({"features"}, kind=None) == sorted(available({"features"}) + pool)
    with pytest.raises(ValueError, match=r"kind must be one of 'model', 'pool', None; got 'pools'"):
        available(kind="pools")


def test_registering_twice_is_an_error():
    with pytest.raises(ValueError, match="score 'logme' is already registered"):
        register_score("logme", needs={"features"}, reference="someone")(lambda features, labels: 0.0)
    with pytest.raises(ValueError, match="score 'ncti' is already registered"):  # across kinds too
        register_score("ncti", needs={"features"}, reference="someone")(lambda features, labels: 0.0)
    assert get("logme") is logme  # unchanged


def test_fresh_registry_register_and_duplicate():
    reg = _ScoreRegistry()

    def my_score(features, labels):
        """My score: a test double.

        More text.
        """
        return 0.0

    reg.register_score("my_score", needs="features", reference="Doe 2024")(my_score)
    assert reg.available() == ["my_score"]
    assert reg.spec("my_score").summary == "My score: a test double."
    assert reg.spec("MY-SCORE").func is my_score
    assert reg.spec("my_score").traits == Traits(seeded=False)  # the defaults, seeded from the signature
    with pytest.raises(ValueError, match="already registered"):
        reg.register_score("my_score", needs="features", reference="Doe 2024")(my_score)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "Bad Name", "needs": {"features"}, "reference": "x"}, "lower-case identifier"),
        ({"name": "ok", "needs": set(), "reference": "x"}, "non-empty subset"),
        ({"name": "ok", "needs": {"pixels"}, "reference": "x"}, "non-empty subset"),
        ({"name": "ok", "needs": {"features"}, "reference": " "}, "reference must name the paper"),
        ({"name": "ok", "needs": {"features"}, "reference": "x", "kind": "batch"}, "kind must be one of"),
        (
            {"name": "ok", "needs": {"features"}, "reference": "x", "scale_invarient": True},
            r"unknown trait 'scale_invarient'\. Did you mean 'scale_invariant'\?",
        ),
        ({"name": "ok", "needs": {"features"}, "reference": "x", "min_per_class": 3}, "min_per_class must be 1 or 2"),
        ({"name": "ok", "needs": {"features"}, "reference": "x", "constant": "nan"}, "constant must be one of"),
        ({"name": "ok", "needs": {"features"}, "reference": "x", "stochastic": 1}, "stochastic must be True or False"),
        ({"name": "ok", "needs": {"features"}, "reference": "x", "resample": "no"}, "resample must be True or False"),
        (
            {"name": "ok", "needs": {"features"}, "reference": "x", "group": "baselines"},
            "group must be one of 'prior', 'baseline', 'score'; got 'baselines'",
        ),
        ({"name": "ok", "needs": {"features"}, "reference": "x", "group": None}, "group must be one of"),
    ],
)
def test_register_validates_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        register_score(**kwargs)


@pytest.mark.parametrize(
    "kwargs, func, message",
    [
        ({"direction": -1}, lambda features, labels: 0.0, r"direction must be \+1 \(higher is better\); got -1"),
        ({"seeded": True}, lambda features, labels: 0.0, "declares seeded=True but its function takes no seed"),
        ({"seeded": False}, lambda features, labels, seed=0: 0.0, "declares seeded=False but its function takes a"),
        ({"per_member_seed": True}, lambda features, labels: 0.0, "per_member_seed=True but takes no seed"),
        ({"stochastic": True}, lambda features, labels: 0.0, "stochastic=True but takes no seed"),
        ({"kind": "pool", "needs": {"source_probs"}}, lambda pool, labels: [0.0], r"needs must be \{'features'\}"),
        ({"group": "prior"}, lambda features, labels: 0.0, "a prior reads nothing of the target"),
        ({"needs": {"parameters"}}, lambda labels, n_parameters: 0.0, "declare group='prior'; got group='score'"),
    ],
)
def test_a_spec_must_agree_with_its_function(kwargs, func, message):
    reg = _ScoreRegistry()
    decorator = reg.register_score("odd", **{"needs": {"features"}, "reference": "Doe 2024", **kwargs})
    with pytest.raises(ValueError, match=message):
        decorator(func)
    assert reg.available(kind=None) == []


def test_seeded_is_read_from_the_signature_or_declared():
    reg = _ScoreRegistry()
    reg.register_score("plain", needs="features", reference="x")(lambda features, labels: 0.0)
    reg.register_score("with_seed", needs="features", reference="x")(lambda features, labels, *, seed=0: 0.0)
    reg.register_score("options", needs="features", reference="x", seeded=True)(lambda features, labels, **kw: 0.0)
    assert [reg.spec(n).seeded for n in ("plain", "with_seed", "options")] == [False, True, True]
    assert spec("random").seeded and spec("nleep").seeded and not spec("logme").seeded


def test_max_samples_is_the_default_of_the_max_samples_keyword():
    reg = _ScoreRegistry()
    reg.register_score("every", needs="features", reference="x")(lambda features, labels: 0.0)
    reg.register_score("capped", needs="features", reference="x")(
        lambda features, labels, *, max_samples=500, seed=0: 0.0)
    reg.register_score("uncapped", needs="features", reference="x")(
        lambda features, labels, *, max_samples=None: 0.0)
    reg.register_score("numpy_int", needs="features", reference="x")(
        lambda features, labels, *, max_samples=np.int64(7): 0.0)
    reg.register_score("anything", needs="features", reference="x", seeded=False)(
        lambda features, labels, **options: 0.0)
    assert [reg.spec(n).max_samples for n in ("every", "capped", "uncapped", "numpy_int", "anything")] == [
        None, 500, None, 7, None]
    # The registered scores whose method is quadratic in N declare their cap; LogME and LEEP read every sample.
    assert spec("knn").max_samples == 10_000 and spec("linear_probe").max_samples == 10_000
    assert spec("parc").max_samples == 2000 and spec("logme").max_samples is None
    assert spec("leep").max_samples is None


# --------------------------------------------------------------------------- discovery


def test_a_new_module_with_one_decorator_is_found(tmp_path, monkeypatch):
    # A throw-away package whose registry discovers its modules: the score module is never
    # imported by hand, yet the first lookup finds the score it registers.
    package = tmp_path / "my_scores"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from transferlab.scores._registry import _ScoreRegistry\n"
        "REGISTRY = _ScoreRegistry(package=__name__)\n"
    )
    (package / "_helpers.py").write_text("CONSTANT = 2.0\n")  # registers nothing: harmless
    (package / "_centroid_gap.py").write_text(
        textwrap.dedent(
            '''
            import numpy as np

            from my_scores import REGISTRY
            from my_scores._helpers import CONSTANT


            @REGISTRY.register_score(
                "centroid_gap",
                needs={"features"},
                reference="Doe 2024",
                # a distance between class means: translation-invariant, not scale-invariant
                min_per_class=1,
                translation_invariant=True,
            )
            def centroid_gap(features, labels):
                """Centroid gap: distance between the means of classes 0 and 1."""
                f, y = np.asarray(features, float), np.asarray(labels)
                return float(np.linalg.norm(f[y == 0].mean(axis=0) - f[y == 1].mean(axis=0)) * CONSTANT / 2)
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_scores

    try:
        assert "my_scores._centroid_gap" not in sys.modules
        found = my_scores.REGISTRY.spec("centroid_gap")
        assert "my_scores._centroid_gap" in sys.modules
        assert my_scores.REGISTRY.available() == ["centroid_gap"]
        assert found.summary == "Centroid gap: distance between the means of classes 0 and 1."
        assert found.translation_invariant and not found.scale_invariant and found.min_per_class == 1
        value = found.compute(np.array([0, 0, 1, 1]), features=np.array([[0.0], [2.0], [4.0], [6.0]]))
        assert value == 4.0  # means 1 and 5
    finally:
        for name in [m for m in sys.modules if m == "my_scores" or m.startswith("my_scores.")]:
            del sys.modules[name]


def test_every_module_of_the_package_is_imported_on_first_lookup():
    import pkgutil

    import transferlab.scores as package

    spec("logme")
    for module in pkgutil.iter_modules(package.__path__):
        assert f"transferlab.scores.{module.name}" in sys.modules


# --------------------------------------------------------------------------- pool scores


def _pool_problem():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 10)
    strengths_dims = ((3.0, 4), (0.5, 6), (1.5, 3))
    pool = [s * np.eye(3)[labels] @ rng.normal(size=(3, d)) + rng.normal(size=(30, d)) for s, d in strengths_dims]
    return pool, labels


def test_pool_specs_are_in_the_registry():
    for name, func in (("ncti", ncti), ("etran", etran)):
        s = spec(name)
        assert s.kind == "pool" and s.func is func and s.needs == frozenset({"features"})
        assert s.direction == 1 and not s.seeded and not s.per_member_seed


def test_compute_pool_returns_one_float_per_candidate():
    pool, labels = _pool_problem()
    for name, func in (("ncti", ncti), ("etran", etran)):
        values = spec(name).compute_pool(pool, labels)
        assert isinstance(values, list) and all(type(v) is float for v in values)
        assert values == func(pool, labels).tolist()
    assert spec("etran").compute_pool(iter(pool), labels) == etran(pool, labels).tolist()  # any iterable
    expected = etran(pool, labels, energy_weight=0.5).tolist()
    assert spec("etran").compute_pool(pool, labels, energy_weight=0.5) == expected
    with pytest.raises(ValueError, match=r"score 'etran' has no option 'energy_weigth'\. Did you mean 'energy_weight'"):
        spec("etran").compute_pool(pool, labels, energy_weigth=0.5)


def test_compute_and_compute_pool_refuse_the_other_kind():
    pool, labels = _pool_problem()
    with pytest.raises(ValueError, match=r"score 'ncti' is pool-level .*call compute_pool"):
        spec("ncti").compute(labels, features=pool[0])
    with pytest.raises(ValueError, match=r"score 'logme' is a per-model score: call compute"):
        spec("logme").compute_pool(pool, labels)


@pytest.mark.parametrize(
    "returned, message",
    [
        (lambda pool: np.zeros(len(pool) - 1), r"must return one finite value per candidate \(3\)"),
        (lambda pool: np.full(len(pool), np.nan), "must return one finite value per candidate"),
        (lambda pool: np.zeros((len(pool), 1)), "must return one finite value per candidate"),
    ],
)
def test_compute_pool_validates_what_the_score_returns(returned, message):
    reg = _ScoreRegistry()
    reg.register_score("broken", kind="pool", needs="features", reference="Doe 2024")(
        lambda pool, labels: returned(pool)
    )
    pool, labels = _pool_problem()
    with pytest.raises(ValueError, match=message):
        reg.spec("broken").compute_pool(pool, labels)


def test_pool_aliases_are_views_of_the_registry():
    assert available_pool_scores() == available(kind="pool") == sorted(POOL_SCORES)
    assert dict(POOL_SCORES) == {name: spec(name).func for name in available(kind="pool")}
    assert get_pool_score(" ETran ") is etran and "ncti" in POOL_SCORES and "logme" not in POOL_SCORES
    with pytest.raises(TypeError):
        POOL_SCORES["other"] = ncti  # read-only
    with pytest.raises(
        ValueError, match=r"unknown pool score 'nctii'\. Did you mean 'ncti'\? Available pool scores: etran, ncti"
    ):
        get_pool_score("nctii")
    message = r"unknown pool score 'logme'\. Available pool scores: etran, ncti; 'logme' is a per-model score"
    with pytest.raises(ValueError, match=message):
        get_pool_score("logme")
    with pytest.raises(ValueError, match="name must be a string"):
        get_pool_score(None)


# --------------------------------------------------------------------------- shared rules
# Finite Python floats, float32 == float64, NaN naming the argument, sample-order
# invariance and every declared trait are checked for every registered score, whatever
# it needs, in test_misuse.py and test_properties.py.


@pytest.mark.parametrize("name", available(kind=None))
def test_every_spec_is_well_formed(name):
    s = spec(name)
    assert s.needs <= NEEDS and s.needs
    assert s.kind in KINDS and s.direction == 1
    assert s.summary and s.reference
    assert isinstance(s.traits.seeded, bool)  # resolved at registration
    for field in ("min_per_class", "constant", "scale_invariant", "translation_invariant",
                  "label_permutation_invariant", "stochastic", "seeded", "per_member_seed", "resample"):
        assert getattr(s, field) == getattr(s.traits, field)
    assert s.group in GROUPS
    assert (s.group == "prior") == (s.needs <= MODEL_ONLY_NEEDS)


# --------------------------------------------------------------------------- groups and resampling


def test_groups_and_resampling_of_the_builtin_scores():
    groups = {name: spec(name).group for name in available(kind=None)}
    assert sorted(n for n, g in groups.items() if g == "prior") == ["parameters", "source_accuracy"]
    assert sorted(n for n, g in groups.items() if g == "baseline") == ["knn", "linear_probe", "random"]
    assert groups["logme"] == groups["ncti"] == "score"
    not_resampled = sorted(n for n in available(kind=None) if not spec(n).resample)
    assert not_resampled == ["f_otce", "jc_otce", "knn", "linear_probe", "nleep", "otce", "pactran_dirichlet",
                             "pactran_gamma", "pactran_gaussian", "parameters", "parc", "rsa", "source_accuracy", "tmi"]


def test_group_and_resample_are_declared_and_read():
    reg = _ScoreRegistry()
    reg.register_score("plain", needs="features", reference="x")(lambda features, labels: 0.0)
    reg.register_score("base", needs="features", reference="x", group="baseline", resample=False)(
        lambda features, labels: 0.0
    )
    reg.register_score("size", needs={"parameters"}, reference="x", group="prior")(lambda labels, n_parameters: 1.0)
    assert (reg.spec("plain").group, reg.spec("plain").resample) == ("score", True)  # the defaults
    assert (reg.spec("base").group, reg.spec("base").resample) == ("baseline", False)
    assert reg.spec("base").traits.resample is False
    assert reg.spec("size").group == "prior" and reg.available({"parameters"}) == ["size"]
    with pytest.raises(ValueError, match="group must be one of"):
        ScoreSpec(name="x", func=lambda features, labels: 0.0, needs=frozenset({"features"}), summary="s",
                  reference="r", group="other")


def test_the_priors_needs_reach_the_function_by_their_keywords():
    assert NEED_ARGUMENTS["source_accuracy"] == ("source_accuracy",)
    assert NEED_ARGUMENTS["parameters"] == ("n_parameters",)
    assert MODEL_ONLY_NEEDS == {"source_accuracy", "parameters"} and MODEL_ONLY_NEEDS <= NEEDS
    labels = np.array([0, 1, 1])
    assert spec("parameters").compute(labels, n_parameters=7, features=np.eye(3)) == 7.0
    assert spec("source_accuracy").compute(labels, source_accuracy=0.25) == 0.25
    with pytest.raises(ValueError, match=r"score 'parameters' needs n_parameters .*got n_parameters=None"):
        spec("parameters").compute(labels, source_accuracy=0.25)
