"""The one ranker over the Candidate interface, with hand-made candidates: plain arrays, no torch model.

Every expected value is computed by calling the public score functions directly on
the same arrays; the ranker must give exactly those numbers, in the documented
order, asking each candidate for each array once.
"""

from __future__ import annotations

import zlib
from collections import Counter

import numpy as np
import pytest

from transferlab.rank import ArrayCandidate, Candidate, Ranking, rank
from transferlab.scores import (
    NEED_ARGUMENTS,
    domain_similarity,
    leep,
    lgc,
    logme,
    ncti,
    nleep,
    random,
    rsa,
    spec,
)

N_CLASSES, PER_CLASS = 3, 10
LABELS = np.repeat(np.arange(N_CLASSES), PER_CLASS)
SCORES = ["logme", "leep", "lgc", "domain_similarity", "rsa", "nleep", "random", "source_accuracy", "parameters"]


class PlainCandidate(Candidate):
    """A candidate written the way a user would: arrays in a dict, counting what the ranker asks."""

    def __init__(self, name, arrays, fingerprint=None):
        self.name = name
        self.fingerprint = fingerprint
        self.provides = frozenset(need for need, args in NEED_ARGUMENTS.items() if all(a in arrays for a in args))
        self._arrays = arrays
        self.calls = Counter()
        self.closed = 0

    @property
    def info(self):
        return {"family": self.name.split("-")[0]}

    def array(self, argument):
        self.calls[argument] += 1
        return self._arrays[argument]

    def close(self):
        self.closed += 1


def _arrays(seed, *, signal, head=True):
    """Every input for the 30 target samples: features with class signal ``signal``, and the rest."""
    rng = np.random.default_rng(seed)
    onehot = np.eye(N_CLASSES)[LABELS]
    features = rng.normal(size=(LABELS.size, 5))
    features[:, :N_CLASSES] += signal * onehot
    arrays = {
        "features": features,
        "gradients": rng.normal(size=(LABELS.size, 6)) + signal * np.tile(onehot, 2),
        "source_features": rng.normal(size=(24, 5)),
        "source_labels": np.repeat(np.arange(4), 6),
        "probe_features": rng.normal(size=(LABELS.size, 3)) + onehot,
        # The priors' scalars: a recorded source accuracy and a parameter count.
        "source_accuracy": 0.5 + 0.1 * signal,
        "n_parameters": 1000 + int(100 * signal),
    }
    if head:
        logits = rng.normal(size=(LABELS.size, 4)) + signal * np.pad(onehot, ((0, 0), (0, 1)))
        arrays["source_probs"] = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return arrays


def _expected(arrays, seed):
    """Each score by a direct call of its public function (seeded ones with ``seed``)."""
    f = arrays["features"]
    out = {
        "logme": logme(f, LABELS),
        "lgc": lgc(arrays["gradients"], LABELS),
        "domain_similarity": domain_similarity(
            f, LABELS, source_features=arrays["source_features"], source_labels=arrays["source_labels"]
        ),
        "rsa": rsa(f, LABELS, probe_features=arrays["probe_features"], seed=seed),
        "nleep": nleep(f, LABELS, seed=seed),
        "source_accuracy": arrays["source_accuracy"],
        "parameters": float(arrays["n_parameters"]),
    }
    if "source_probs" in arrays:
        out["leep"] = leep(arrays["source_probs"], LABELS)
    return out


def _documented_member_seed(seed, fingerprint):
    # The per-member seed as Candidate.fingerprint documents it: from the seed and the fingerprint only.
    return (seed * 1_000_003 + zlib.crc32(fingerprint.encode())) % 2**31


@pytest.fixture
def pool():
    specs = [("weak-a", 0.2, True), ("strong-b", 3.0, True), ("mid-c", 1.0, True)]
    return {name: (PlainCandidate(name, _arrays(i, signal=s, head=h), fingerprint=f"{name}@target"),
                   _arrays(i, signal=s, head=h))
            for i, (name, s, h) in enumerate(specs)}


def test_rank_gives_the_direct_values_sorted_by_consensus(pool):
    candidates = [c for c, _ in pool.values()]
    ranking = rank(candidates, LABELS, [*SCORES, "ncti"], target="toy", seed=5, device="cpu", progress=False,
                   bootstrap=0)
    assert isinstance(ranking, Ranking)
    assert ranking.target == "toy" and ranking.scores == tuple(SCORES) and ranking.pool_scores == ("ncti",)
    by_name = {row["model"]: row for row in ranking.rows}
    for name, (_, arrays) in pool.items():
        row = by_name[name]
        # model, info, scores, pool scores, then the consensus
        assert list(row) == ["model", "family", *SCORES, "ncti", "consensus_rank"]
        assert row["family"] == name.split("-")[0]
        for score, value in _expected(arrays, seed=5).items():
            assert type(row[score]) is float
            np.testing.assert_allclose(row[score], value, rtol=1e-12, err_msg=f"{name} {score}")
        expected_random = np.random.default_rng(_documented_member_seed(5, f"{name}@target")).random()
        assert row["random"] == expected_random
    # The pool-level score over the candidates in the order they were given.
    values = ncti([arrays["features"] for _, arrays in pool.values()], LABELS)
    for (name, _), value in zip(pool.items(), values):
        np.testing.assert_allclose(by_name[name]["ncti"], value, rtol=1e-12)
    # Sorted by the consensus: the mean rank over the transferability scores (group "score";
    # not the random baseline nor the priors), best first, computed here from the values.
    columns = [n for n in (*SCORES, "ncti") if spec(n).group == "score"]
    mean_rank = {m: np.mean([1 + sum(by_name[o][n] > by_name[m][n] for o in by_name) for n in columns])
                 for m in by_name}
    assert [row["model"] for row in ranking.rows] == sorted(mean_rank, key=mean_rank.get)
    for m, value in mean_rank.items():
        assert by_name[m]["consensus_rank"] == pytest.approx(value)
    assert [row["model"] for row in ranking.rows] == ["strong-b", "mid-c", "weak-a"]


def test_each_array_is_asked_once_and_every_candidate_is_closed(pool):
    candidates = [c for c, _ in pool.values()]
    ranking = rank(candidates, LABELS, [*SCORES, "ncti"], progress=False, bootstrap=3)
    for c in candidates:
        # features serve logme, domain_similarity, rsa, nleep, random and ncti: asked once.
        assert c.calls == Counter({arg: 1 for args in NEED_ARGUMENTS.values() for arg in args}), c.name
        assert c.closed == 1
    # Time per input (under its first keyword) and per score.
    assert set(ranking.seconds) == {"features", "source_probs", "gradients", "source_features", "probe_features",
                                    "source_accuracy", "n_parameters", *SCORES, "ncti", "bootstrap"}
    assert all(v >= 0 for v in ranking.seconds.values())


def test_a_candidate_without_an_input_gets_none_and_is_ranked_on_the_rest():
    with_head = PlainCandidate("head", _arrays(0, signal=0.5), fingerprint="head@t")
    headless = PlainCandidate("body", _arrays(1, signal=3.0, head=False), fingerprint="body@t")
    ranking = rank([headless, with_head], LABELS, ["leep", "logme"], progress=False, bootstrap=5)
    # body: no LEEP, first under LogME (consensus 1); head: first under LEEP, second under LogME (1.5)
    assert [row["model"] for row in ranking.rows] == ["body", "head"]
    assert [row["consensus_rank"] for row in ranking.rows] == [1.0, 1.5]
    assert ranking.rows[0]["leep"] is None and np.isnan(ranking.column("leep")[0])
    assert np.isnan(ranking.ranks["leep"][0]) and ranking.ranks["leep"][1] == 1.0
    assert np.isnan(ranking.uncertainty["leep"]["low"][0]) and ranking.uncertainty["leep"]["p_best"][1] == 1.0
    assert ranking.rows[0]["logme"] == pytest.approx(logme(_arrays(1, signal=3.0)["features"], LABELS), rel=1e-12)
    assert "source_probs" not in headless.calls
    # By default only the transferability scores every candidate can give: no LEEP.
    default = rank([headless, with_head], LABELS, progress=False, bootstrap=0)
    assert "leep" not in default.scores and "logme" == default.scores[0]


def test_a_candidate_with_no_value_at_all_sorts_last():
    with_head = PlainCandidate("head", _arrays(0, signal=0.5), fingerprint="head@t")
    headless = PlainCandidate("body", _arrays(1, signal=3.0, head=False), fingerprint="body@t")
    ranking = rank([headless, with_head], LABELS, ["leep"], progress=False, bootstrap=0)
    assert [row["model"] for row in ranking.rows] == ["head", "body"]
    assert ranking.rows[1]["consensus_rank"] is None


def test_random_gets_a_seed_of_each_candidates_own():
    arrays = _arrays(0, signal=1.0)
    a = PlainCandidate("a", arrays, fingerprint="a@target-1")
    b = PlainCandidate("b", arrays, fingerprint="b@target-1")
    ranking = rank([a, b], LABELS, ["random", "nleep"], seed=3, progress=False)
    values = {row["model"]: row for row in ranking.rows}
    # Same arrays, different candidates: different draws, each from its own documented seed.
    assert values["a"]["random"] != values["b"]["random"]
    for name in "ab":
        assert values[name]["random"] == random(arrays["features"], LABELS,
                                                seed=_documented_member_seed(3, f"{name}@target-1"))
    # Every other seeded score gets the ranking's seed for every candidate: a tie here.
    assert values["a"]["nleep"] == values["b"]["nleep"] == pytest.approx(nleep(arrays["features"], LABELS, seed=3))
    # The seed follows the fingerprint, not the position among the candidates ...
    swapped = rank([PlainCandidate("b", arrays, fingerprint="b@target-1"),
                    PlainCandidate("a", arrays, fingerprint="a@target-1")], LABELS, ["random"], seed=3, progress=False)
    assert {r["model"]: r["random"] for r in swapped.rows} == {n: values[n]["random"] for n in "ab"}
    # ... changes with the target in the fingerprint and with the ranking's seed.
    other_target = rank([PlainCandidate("a", arrays, fingerprint="a@target-2")], LABELS, ["random"], seed=3,
                        progress=False)
    other_seed = rank([PlainCandidate("a", arrays, fingerprint="a@target-1")], LABELS, ["random"], seed=4,
                      progress=False)
    assert other_target.rows[0]["random"] != values["a"]["random"] != other_seed.rows[0]["random"]
    # No fingerprint: the ranking's seed itself.
    lone = rank([ArrayCandidate("lone", {"features": arrays["features"]})], LABELS, ["random"], seed=3,
                progress=False)
    assert lone.rows[0]["random"] == random(arrays["features"], LABELS, seed=3)


def test_array_candidate_provides_what_its_arrays_complete():
    arrays = _arrays(0, signal=1.0)
    full = ArrayCandidate("full", arrays, info={"note": "x"})
    assert full.provides == frozenset(NEED_ARGUMENTS) and full.info == {"note": "x"}
    half = ArrayCandidate("half", {"features": arrays["features"], "source_features": arrays["source_features"]})
    assert half.provides == frozenset({"features"})  # source_features without source_labels is not a need
    with pytest.raises(ValueError, match="arrays has unknown key 'feature'"):
        ArrayCandidate("x", {"feature": arrays["features"]})
    with pytest.raises(ValueError, match="at least one need"):
        ArrayCandidate("x", {"source_labels": arrays["source_labels"]})
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        ArrayCandidate("", {"features": arrays["features"]})


def test_rank_errors_name_the_argument_and_the_candidate():
    arrays = _arrays(0, signal=1.0)
    one = ArrayCandidate("one", {"features": arrays["features"]})
    with pytest.raises(ValueError, match="candidates is empty"):
        rank([], LABELS, progress=False)
    with pytest.raises(ValueError, match=r"candidates\[1\] must be a transferlab.rank.Candidate.*got ndarray"):
        rank([one, arrays["features"]], LABELS, progress=False)
    with pytest.raises(ValueError, match="candidates must be a sequence"):
        rank(one, LABELS, progress=False)
    with pytest.raises(ValueError, match="repeat the name 'one'"):
        rank([one, ArrayCandidate("one", {"features": arrays["features"]})], LABELS, progress=False)
    with pytest.raises(ValueError, match=r"score 'leep' needs \['source_probs'\], which are not available"):
        rank([one], LABELS, ["leep"], progress=False)
    with pytest.raises(ValueError, match=r"unknown score 'logmee'\. Did you mean 'logme'\?"):
        rank([one], LABELS, ["logmee"], progress=False)
    with pytest.raises(ValueError, match="seed must be"):
        rank([one], LABELS, ["logme"], seed=-1, progress=False)
    class Nameless(Candidate):
        provides = frozenset({"features"})

        def array(self, argument):
            return arrays["features"]

    with pytest.raises(ValueError, match=r"candidates\[1\].name must be a non-empty string; got None"):
        rank([one, Nameless()], LABELS, progress=False)
    bad = ArrayCandidate("bad", {"features": np.full((LABELS.size, 2), np.nan)})
    with pytest.raises(ValueError, match="score 'logme' failed for member 'bad'"):
        rank([one, bad], LABELS, ["logme"], progress=False)
    with pytest.raises(ValueError, match="pool-level score 'ncti' failed"):
        rank([one], LABELS, ["ncti"], progress=False)  # a pool of one
    probs_only = ArrayCandidate("probs", {"source_probs": arrays["source_probs"]})
    with pytest.raises(ValueError, match=r"'ncti' needs the features of every candidate; \['probs'\]"):
        rank([one, probs_only], LABELS, ["logme", "ncti"], progress=False)


def test_scores_that_read_a_capped_subset_say_so_in_the_notes():
    from transferlab.rank._ranking import _capped

    (note,) = _capped(("logme", "knn"), 20_000)
    assert note.startswith("knn read about 10,000 of the 20,000 target samples")
    assert _capped(("logme", "knn", "linear_probe"), 10_000) == []
    assert [n.split()[0] for n in _capped(("knn", "linear_probe", "leep"), 10_001)] == ["knn", "linear_probe"]
