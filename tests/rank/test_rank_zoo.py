"""Ranking a zoo (rank_zoo over ZooCandidates): every input computed once per member, every score via the registry."""

from __future__ import annotations

import numpy as np
import pytest

from transferlab.data._sized import load_sized
from transferlab.features import _cache
from transferlab.features._cache import FeatureCache
from transferlab.features._extract import extract, source_probabilities
from transferlab.features._gradients import per_sample_gradients
from transferlab.scores import available_pool_scores
from transferlab.scores._registry import NEEDS, available, spec
from transferlab.rank import (
    Ranking,
    ZooCandidate,
    DEFAULT_SCORES,
    default_scores,
    rank_zoo,
    split_score_names,
)
from transferlab.zoo._build import build_zoo

# Two MLP experts, one epoch each on six images per class: seconds to build.
RECIPE = """
name = "mini"
archs = ["mlp"]
sources = ["shapes", "textures"]
[arch.mlp]
hidden = [16]
[presets.t]
train_per_class = 6
test_per_class = 2
train = { epochs = 1, batch_size = 16 }
"""


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mini-zoo")
    path = folder / "mini.toml"
    path.write_text(RECIPE)
    return build_zoo(path, "t", root=folder / "zoo", progress=False)


@pytest.fixture(scope="module")
def target():
    # 8 shape classes, 5 images each: N = 40.
    return load_sized("shapes", train_per_class=5, test_per_class=1, seed=3)


@pytest.fixture(scope="module")
def ranked(zoo, target, tmp_path_factory):
    cache = FeatureCache(tmp_path_factory.mktemp("features"))
    ranking = rank_zoo(zoo, target, "all", cache=cache, progress=False, gradient_dim=32, source_per_class=4,
                       bootstrap=0)
    return ranking, cache


def test_default_scores_are_the_short_list_in_order():
    assert default_scores() == DEFAULT_SCORES == (
        "logme", "leep", "nce", "knn", "linear_probe", "source_accuracy", "parameters")
    assert default_scores()[0] == "logme", "the recommendation's primary score is LogME"
    assert default_scores({"features"}) == ("logme", "knn", "linear_probe")
    assert set(default_scores()).isdisjoint(available_pool_scores())
    assert {spec(n).group for n in default_scores()} == {"score", "baseline", "prior"}


def test_all_is_every_registered_score():
    per_model, pooled = split_score_names("all")
    classes = [n for n in available() if "classes" in spec(n).targets]  # "all" of a class target
    assert sorted(per_model) == classes and per_model[0] == "logme"
    assert sorted(pooled) == sorted(available_pool_scores())
    assert split_score_names(["ALL"]) == (per_model, pooled)


def test_all_ranking_has_every_score_finite_and_sorted_by_consensus(ranked, zoo):
    ranking, _ = ranked
    assert isinstance(ranking, Ranking)
    classes = [n for n in available() if "classes" in spec(n).targets]  # "all" of a class target
    assert sorted(ranking.scores) == classes and sorted(ranking.pool_scores) == sorted(available_pool_scores())
    assert sorted(row["model"] for row in ranking.rows) == sorted(m.name for m in zoo)
    for row in ranking.rows:
        for name in ranking.columns:
            assert type(row[name]) is float and np.isfinite(row[name]), (row["model"], name)
        assert row["parameters"] >= 1 and 0 <= row["source_accuracy"] <= 1
    consensus = [row["consensus_rank"] for row in ranking.rows]
    assert consensus == sorted(consensus)
    as_dict = ranking.to_dict()
    assert as_dict["scores"] == list(ranking.scores) and len(as_dict["rows"]) == len(zoo)


def test_random_baseline_gets_a_seed_per_member_and_target(ranked, zoo, target):
    # Same seed for every member would give every member the same number (see `random`);
    # the same seeds on every target would repeat one ranking on every target.
    ranking, _ = ranked
    values = ranking.column("random")
    assert len(set(values.tolist())) == len(zoo)
    from transferlab.rank._ranking import _member_seed

    for row in ranking.rows:  # seeded by the member's name and the target: reproducible
        seed = _member_seed(0, f"{row['model']}@{target.fingerprint}")
        assert row["random"] == spec("random").func(np.zeros((2, 1)), [0, 1], seed=seed)


def test_values_equal_direct_computation(ranked, zoo, target):
    # Independent path: extract with the model directly, call the score functions.
    ranking, _ = ranked
    for member in zoo:
        row = next(r for r in ranking.rows if r["model"] == member.name)
        model = member.load()
        feats = extract(model, target.x_train)
        probs = source_probabilities(model, target.x_train)
        np.testing.assert_allclose(row["logme"], spec("logme").func(feats, target.y_train), rtol=1e-10)
        np.testing.assert_allclose(row["leep"], spec("leep").func(probs, target.y_train), rtol=1e-10)
        grads = per_sample_gradients(model, target.x_train, dim=32, seed=0)
        np.testing.assert_allclose(row["lgc"], spec("lgc").func(grads, target.y_train), rtol=1e-10)
        # Source features: the member's source task, at most source_per_class=4 per class
        # (the recipe trained on 6), with the recipe's seed.
        source = load_sized(member.source, train_per_class=4, test_per_class=1, seed=member.metadata["member"]["train"]["seed"])
        expected = spec("domain_similarity").func(
            feats, target.y_train, source_features=extract(model, source.x_train), source_labels=source.y_train
        )
        np.testing.assert_allclose(row["domain_similarity"], expected, rtol=1e-10)


def test_each_input_is_computed_once_per_member_and_then_cached(zoo, target, tmp_path, monkeypatch):
    calls = {"features": 0, "source_probs": 0, "gradients": 0, "probe": 0}
    real = {
        "features": FeatureCache.features,
        "source_probs": FeatureCache.source_probabilities,
        "gradients": FeatureCache.gradients,
        "probe": FeatureCache.probe,
    }

    def counting(kind):
        def wrapper(self, *args, **kwargs):
            calls[kind] += 1
            return real[kind](self, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(FeatureCache, "features", counting("features"))
    monkeypatch.setattr(FeatureCache, "source_probabilities", counting("source_probs"))
    monkeypatch.setattr(FeatureCache, "gradients", counting("gradients"))
    monkeypatch.setattr(FeatureCache, "probe", counting("probe"))
    cache = FeatureCache(tmp_path)
    names = [n for n in available() if spec(n).needs & {"features", "source_probs", "gradients", "probe", "source_features"}
             and "classes" in spec(n).targets]
    first = rank_zoo(zoo, target, names, cache=cache, progress=False, gradient_dim=32, source_per_class=4)
    needs = set().union(*(spec(n).needs for n in names))
    m = len(zoo)
    # features: target features, plus the source features, once per member each.
    assert calls["features"] == m * (("features" in needs) + ("source_features" in needs))
    assert calls["source_probs"] == m * ("source_probs" in needs)
    assert calls["gradients"] == m * ("gradients" in needs)
    assert calls["probe"] == ("probe" in needs)  # once per target, not per member
    misses = cache.misses
    assert misses == sum(calls.values())

    def refuse(*args, **kwargs):
        raise AssertionError("a cached array was computed again")

    monkeypatch.setattr(_cache, "extract", refuse)
    monkeypatch.setattr(_cache, "source_probabilities", refuse)
    second = rank_zoo(zoo, target, names, cache=cache, progress=False, gradient_dim=32, source_per_class=4)
    assert cache.misses == misses
    assert second.rows == first.rows


def test_gradient_options_change_the_cache_key(zoo, target, tmp_path):
    cache = FeatureCache(tmp_path)
    model = zoo.members[0].load()
    a = cache.gradients(model, target, dim=16, seed=0)
    b = cache.gradients(model, target, dim=16, seed=1)
    c = cache.gradients(model, target, dim=8, seed=0)
    assert a.shape == (target.y_train.shape[0], 16) and c.shape == (target.y_train.shape[0], 8)
    assert not np.array_equal(a, b)
    assert cache.misses == 3
    np.testing.assert_array_equal(cache.gradients(model, target, dim=16, seed=0), a)
    assert cache.hits == 1


def test_pool_scores_are_separate_columns(zoo, target, tmp_path):
    pool = available_pool_scores()
    if not pool:
        pytest.skip("no pool-level score registered")
    ranking = rank_zoo(zoo, target, ["logme", *pool], cache=FeatureCache(tmp_path), progress=False, gradient_dim=32)
    assert ranking.scores == ("logme",) and ranking.pool_scores == tuple(pool)
    assert ranking.columns == ("logme", *pool)
    for name in pool:
        values = ranking.column(name)
        assert values.shape == (len(zoo),) and np.all(np.isfinite(values))
    # Only pool-level names: the rows are sorted by the first of them.
    only = rank_zoo(zoo, target, pool[:1], cache=FeatureCache(tmp_path), progress=False)
    assert only.scores == () and list(only.column(pool[0])) == sorted(only.column(pool[0]), reverse=True)


def test_score_names_are_validated():
    with pytest.raises(ValueError, match=r"unknown score 'logmee'\. Did you mean 'logme'\?"):
        split_score_names(["logmee"])
    with pytest.raises(ValueError, match="at least one score"):
        split_score_names([])
    with pytest.raises(ValueError, match=r"score 'leep' needs \['source_probs'\]"):
        split_score_names(["leep"], have={"features"})
    assert split_score_names(["LogME", "logme", "leep"]) == (("logme", "leep"), ())
    assert split_score_names(None) == (default_scores(), ())


def test_bad_arguments(zoo, target, tmp_path):
    with pytest.raises(ValueError, match="source_per_class must be an integer >= 1"):
        rank_zoo(zoo, target, ["logme"], cache=FeatureCache(tmp_path), source_per_class=0, progress=False)
    with pytest.raises(ValueError, match="gradient_dim must be an integer >= 1"):
        rank_zoo(zoo, target, ["logme"], cache=FeatureCache(tmp_path), gradient_dim=0, progress=False)


def test_every_need_has_an_input_in_the_ranker():
    # A new need added to the registry must be taught to the zoo candidates.
    assert ZooCandidate.provides == NEEDS
