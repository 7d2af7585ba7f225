"""Ranking regression and multi-label targets: the kind reaches the scores, the bootstrap does not stratify."""

from __future__ import annotations

import numpy as np
import pytest

from transferlab.rank import ArrayCandidate, rank, rank_models
from transferlab.rank._bootstrap import class_index, draw


def _pool(seed=0, n=40):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    good = np.column_stack([signal, rng.normal(size=n)]) + 0.05 * rng.normal(size=(n, 2))
    noise = rng.normal(size=(n, 3))
    return signal, [ArrayCandidate("good", {"features": good}), ArrayCandidate("noise", {"features": noise})]


def test_regression_default_scores_rank_and_bootstrap():
    signal, candidates = _pool()
    y = 3.0 * signal + 1.0
    ranking = rank(candidates, y, target="reg", progress=False, bootstrap=20, target_kind="regression")
    assert ranking.scores == ("logme", "linear_mse", "knn", "linear_probe")
    assert ranking.target_kind == "regression" and ranking.notes == ()
    assert [row["model"] for row in ranking.rows] == ["good", "noise"]
    assert set(ranking.uncertainty) == {"logme", "linear_mse"}  # knn, linear_probe: resample=False
    assert ranking.bootstrap["kept"] == {"logme": 20, "linear_mse": 20}
    assert ranking.bootstrap["weights"] == "bayesian"  # a small target: no repeated rows for LogME
    assert ranking.to_dict()["target_kind"] == "regression"


def test_default_scores_that_do_not_support_the_kind_are_left_out_with_a_note():
    signal, _ = _pool()
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=40)
    candidates = [ArrayCandidate(f"m{i}", {"features": rng.normal(size=(40, 3)) + signal[:, None] * i,
                                            "source_probs": probs, "n_parameters": 10 + i}) for i in range(2)]
    ranking = rank(candidates, signal, progress=False, bootstrap=0, target_kind="regression")
    assert ranking.scores == ("logme", "linear_mse", "knn", "linear_probe")
    assert ranking.notes == ("left out of the default scores: leep, nce, parameters "
                             "(they do not support regression targets)",)


def test_multilabel_ranks_with_per_label_scores_and_refuses_others_by_name():
    signal, candidates = _pool()
    Y = np.column_stack([signal > 0, signal > 0.5]).astype(int)
    ranking = rank(candidates, Y, progress=False, bootstrap=10, target_kind="multilabel")
    assert ranking.scores == ("logme", "knn", "linear_probe") and ranking.notes == ()
    assert [r["model"] for r in ranking.rows] == ["good", "noise"]
    assert ranking.bootstrap["kept"] == {"logme": 10}
    with pytest.raises(ValueError, match=r"^score 'hscore' does not support multilabel targets"):
        rank(candidates, Y, ["logme", "hscore"], progress=False, target_kind="multilabel")
    with pytest.raises(ValueError, match=r"^score 'linear_mse' does not support multilabel targets"):
        rank(candidates, Y, ["linear_mse"], progress=False, target_kind="multilabel")
    with pytest.raises(ValueError, match=r"^score 'ncti' does not support multilabel targets"):
        rank(candidates, Y, ["ncti"], progress=False, target_kind="multilabel")


def test_a_classes_only_score_is_refused_for_regression_and_linear_mse_for_classes():
    signal, candidates = _pool()
    with pytest.raises(ValueError, match=r"^score 'hscore' does not support regression targets \(it supports "
                                         r"classes\)$"):
        rank(candidates, signal, ["logme", "hscore"], progress=False, target_kind="regression")
    labels = (signal > 0).astype(int)
    with pytest.raises(ValueError, match=r"^score 'linear_mse' does not support classes targets"):
        rank(candidates, labels, ["linear_mse"], progress=False)
    assert "linear_mse" not in rank(candidates, labels, "all", progress=False, bootstrap=0).scores
    with pytest.raises(ValueError, match="target_kind must be one of"):
        rank(candidates, labels, progress=False, target_kind="ordinal")


def test_the_bootstrap_does_not_stratify_real_or_matrix_targets():
    y = np.array([0.5, 1.5, 0.5, 2.0, 3.0])
    assert [s.tolist() for s in class_index(y)] == [[0, 1, 2, 3, 4]]
    assert [s.tolist() for s in class_index(np.eye(5, 2))] == [[0, 1, 2, 3, 4]]
    assert [s.tolist() for s in class_index(np.array([1, 0, 1]))] == [[0, 2], [1]]  # classes: as before
    indices, weights = draw(class_index(y), 5, seed=3, b=0)
    rng = np.random.default_rng([3, 0])  # one stratum: a plain Efron and Bayesian bootstrap of all samples
    expected_indices = np.sort(rng.integers(0, 5, size=5))
    gamma = rng.standard_exponential(5)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(weights, 5 * gamma / gamma.sum())


def test_rank_models_reads_the_kind_from_the_data(tmp_path):
    signal, candidates = _pool()
    np.savez(tmp_path / "r.npz", features=candidates[0].array("features"), targets=signal)
    ranking = rank_models([], tmp_path / "r.npz", ["logme", "linear_mse"], progress=False, bootstrap=0,
                          target_kind="regression")
    assert ranking.target_kind == "regression" and ranking.scores == ("logme", "linear_mse")
    with pytest.raises(ValueError, match=r"^score 'leep' does not support regression targets"):
        rank_models([], tmp_path / "r.npz", ["leep"], progress=False, target_kind="regression")
    from transferlab.data import load_data

    data = load_data(tmp_path / "r.npz", target_kind="regression")
    with pytest.raises(ValueError, match="target_kind='classes' but the data 'r' hold regression targets"):
        rank_models([], data, progress=False, target_kind="classes")
