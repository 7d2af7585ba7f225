"""Tests for OTCE, F-OTCE and JC-OTCE: hand-solved transports, an LP reference, the sample cap."""

import numpy as np
import pytest
from scipy.optimize import linprog

from transferlab.scores._otce import _capped_rows, f_otce, jc_otce, otce


def _plan_linprog(cost):
    """Reference optimal coupling with uniform marginals: the transport LP solved by scipy's HiGHS."""
    m, n = cost.shape
    a_eq = np.zeros((m + n, m * n))
    for i in range(m):
        a_eq[i, i * n : (i + 1) * n] = 1.0  # sum_j P_ij = 1/m
    for j in range(n):
        a_eq[m + j, j::n] = 1.0  # sum_i P_ij = 1/n
    b_eq = np.concatenate([np.full(m, 1.0 / m), np.full(n, 1.0 / n)])
    res = linprog(cost.ravel(), A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    assert res.status == 0
    return res.x.reshape(m, n)


def _sq_dist(S, T):
    return np.array([[float(np.sum((s - t) ** 2)) for t in T] for s in S])


def _conditional_entropy_loops(plan, ys, yt):
    """H(Y_t | Y_s) from the plan, one sample pair at a time (the paper's sums written out)."""
    joint = {}
    for i in range(plan.shape[0]):
        for j in range(plan.shape[1]):
            joint[ys[i], yt[j]] = joint.get((ys[i], yt[j]), 0.0) + plan[i, j]
    source = {}
    for (a, _), p in joint.items():
        source[a] = source.get(a, 0.0) + p
    return -sum(p * np.log(p / source[a]) for (a, _), p in joint.items() if p > 1e-15)


def _domains(seed, m=9, n=8, dim=3, cs=3, ct=2):
    rng = np.random.default_rng(seed)
    ys = np.arange(m) % cs
    yt = np.arange(n) % ct
    S = 2.0 * rng.normal(size=(cs, dim))[ys] + rng.normal(size=(m, dim))
    T = 2.0 * rng.normal(size=(ct, dim))[yt] + rng.normal(size=(n, dim)) + 0.5
    return S, ys, T, yt


# --------------------------------------------------------------------------- worked by hand


def test_two_plus_two_points_aligned_labels():
    # Source points 0 and 10, target points 0.1 and 10.1: the only sensible matching is the
    # identity (cost 0.01 each, versus about 100 crossed). W_D = (0.01 + 0.01) / 2 = 0.01; each
    # source class goes to one target class, so H(Y_t | Y_s) = 0.
    S, T = [[0.0], [10.0]], [[0.1], [10.1]]
    kwargs = dict(source_features=S, source_labels=["a", "b"])
    assert f_otce(T, [0, 1], **kwargs) == 0.0
    assert jc_otce(T, [0, 1], **kwargs) == 0.0
    np.testing.assert_allclose(otce(T, [0, 1], **kwargs), -0.5 * 0.01, rtol=1e-9)
    np.testing.assert_allclose(otce(T, [0, 1], **kwargs, lambda_domain=-1.0, lambda_task=0.0), -0.01, rtol=1e-9)


def test_two_plus_two_points_shuffled_labels():
    # Same identity matching; one source class holding both points, the target classes 50/50:
    # knowing the source class says nothing about the target class, H = log 2.
    S, T = [[0.0], [10.0]], [[0.1], [10.1]]
    value = f_otce(T, [0, 1], source_features=S, source_labels=["a", "a"])
    np.testing.assert_allclose(value, -np.log(2.0), rtol=1e-12)
    # Four points, identity matching, source classes {0, 1} | {10, 11}, target labels alternate:
    # each source class is sent half to target class 0 and half to class 1: H = log 2.
    X = [[0.0], [1.0], [10.0], [11.0]]
    np.testing.assert_allclose(
        f_otce(X, [0, 1, 0, 1], source_features=X, source_labels=[0, 0, 1, 1]), -np.log(2.0), rtol=1e-12
    )


def test_fractional_plan_in_one_dimension():
    # In 1-D the squared cost's optimal plan is the monotone one. Source 0, 1, 2 (mass 1/3 each,
    # labels s0, s1, s1); target 0, 1 (mass 1/2, labels t0, t1). The point 1 splits: 1/6 to 0 and
    # 1/6 to 1. W_D = 1/6 * 1^2 + 1/3 * 1^2 = 1/2. Joint: (s0, t0) 1/3, (s1, t0) 1/6, (s1, t1) 1/2;
    # P(s1) = 2/3, so H = -(1/6 log(1/4) + 1/2 log(3/4)).
    S, ys = [[0.0], [1.0], [2.0]], ["s0", "s1", "s1"]
    T, yt = [[0.0], [1.0]], ["t0", "t1"]
    h = -(np.log(0.25) / 6 + np.log(0.75) / 2)
    np.testing.assert_allclose(f_otce(T, yt, source_features=S, source_labels=ys), -h, rtol=1e-12)
    value = otce(T, yt, source_features=S, source_labels=ys, lambda_domain=-2.0, lambda_task=-3.0)
    np.testing.assert_allclose(value, -2.0 * 0.5 - 3.0 * h, rtol=1e-12)


def test_constant_target_uses_the_independent_coupling():
    # Every coupling costs the same; the independent one gives H(Y_t | Y_s) = H(Y_t).
    S, ys, _, _ = _domains(0)
    T = np.ones((6, 3))
    yt = [0, 0, 0, 1, 1, 2]
    h_t = -sum(p * np.log(p) for p in (0.5, 2 / 6, 1 / 6))
    np.testing.assert_allclose(f_otce(T, yt, source_features=S, source_labels=ys), -h_t, rtol=1e-12)
    np.testing.assert_allclose(jc_otce(T, yt, source_features=S, source_labels=ys), -h_t, rtol=1e-12)


# --------------------------------------------------------------------------- against references


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wasserstein_term_agrees_with_pot_emd2(seed):
    import ot

    S, ys, T, yt = _domains(seed)
    expected = ot.emd2(ot.unif(S.shape[0]), ot.unif(T.shape[0]), ot.dist(S, T))  # sqeuclidean cost
    value = otce(T, yt, source_features=S, source_labels=ys, lambda_domain=-1.0, lambda_task=0.0)
    np.testing.assert_allclose(-value, expected, rtol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_f_otce_and_otce_against_an_lp_reference(seed):
    S, ys, T, yt = _domains(seed)
    cost = _sq_dist(S, T)
    plan = _plan_linprog(cost)
    h = _conditional_entropy_loops(plan, ys, yt)
    w = float(np.sum(plan * cost))
    np.testing.assert_allclose(f_otce(T, yt, source_features=S, source_labels=ys), -h, rtol=1e-8, atol=1e-10)
    value = otce(T, yt, source_features=S, source_labels=ys, lambda_domain=-0.3, lambda_task=-2.0)
    np.testing.assert_allclose(value, -0.3 * w - 2.0 * h, rtol=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jc_otce_against_an_lp_reference(seed):
    # The label distance W_2^2(alpha_a, alpha_b) between each source and target class by its own LP,
    # added to the feature cost; the joint plan by another LP.
    S, ys, T, yt = _domains(seed, cs=2, ct=3)
    cost = _sq_dist(S, T)
    labels_cost = np.zeros((2, 3))
    for a in range(2):
        for b in range(3):
            block = cost[np.ix_(ys == a, yt == b)]
            labels_cost[a, b] = float(np.sum(_plan_linprog(block) * block))
    plan = _plan_linprog(cost + labels_cost[ys][:, yt])
    expected = -_conditional_entropy_loops(plan, ys, yt)
    value = jc_otce(T, yt, source_features=S, source_labels=ys)
    np.testing.assert_allclose(value, expected, rtol=1e-8, atol=1e-10)


def test_twin_domains_give_zero_and_unrelated_labels_stay_in_range():
    # Two well-separated clusters, the same in both domains and labelled alike: both scores are 0.
    rng = np.random.default_rng(3)
    S = np.concatenate([rng.normal(0.0, 0.3, (10, 2)), rng.normal(4.0, 0.3, (10, 2))])
    ys = np.repeat([0, 1], 10)
    T = np.concatenate([rng.normal(0.0, 0.3, (10, 2)), rng.normal(4.0, 0.3, (10, 2))])
    yt = np.repeat([0, 1], 10)
    assert f_otce(T, yt, source_features=S, source_labels=ys) == pytest.approx(0.0, abs=1e-12)
    assert jc_otce(T, yt, source_features=S, source_labels=ys) == pytest.approx(0.0, abs=1e-12)
    shuffled = rng.permutation(yt)  # target labels unrelated to the features: in [-log 2, 0]
    for score in (f_otce, jc_otce):
        assert -np.log(2) - 1e-12 <= score(T, shuffled, source_features=S, source_labels=ys) <= 0.0


# --------------------------------------------------------------------------- the sample cap


def test_cap_at_or_above_n_is_the_uncapped_value():
    S, ys, T, yt = _domains(4, m=12, n=10)
    for score in (otce, f_otce, jc_otce):
        full = score(T, yt, source_features=S, source_labels=ys, max_samples=None)
        for cap in (12, 13, 1000):
            assert score(T, yt, source_features=S, source_labels=ys, max_samples=cap, seed=5) == full


def test_cap_draws_a_stratified_subset_that_ignores_order_and_names():
    S, ys, T, yt = _domains(5, m=60, n=50, cs=3, ct=2)
    yt = np.where(np.arange(50) < 35, 0, 1)  # 35 / 15
    rows = _capped_rows(T, yt, 2, 20, np.random.default_rng([0, 0]))
    assert np.bincount(yt[rows]).tolist() == [14, 6]  # floor(35 * 20 / 50), floor(15 * 20 / 50)
    base = f_otce(T, yt, source_features=S, source_labels=ys, max_samples=20, seed=1)
    assert base != f_otce(T, yt, source_features=S, source_labels=ys, max_samples=None)
    order, source_order = np.random.default_rng(0).permutation(50), np.random.default_rng(1).permutation(60)
    permuted = f_otce(
        T[order], yt[order], source_features=S[source_order], source_labels=ys[source_order], max_samples=20, seed=1
    )
    renamed = f_otce(
        T, np.array(["z", "a"])[yt], source_features=S, source_labels=np.array([7, 2, -1])[ys], max_samples=20, seed=1
    )
    np.testing.assert_allclose([permuted, renamed], base, rtol=1e-12)
    assert f_otce(T, yt, source_features=S, source_labels=ys, max_samples=20, seed=1) == base  # seeded


# --------------------------------------------------------------------------- options and edge cases


def test_bad_options_name_the_argument():
    S, ys, T, yt = _domains(0)
    kwargs = dict(source_features=S, source_labels=ys)
    with pytest.raises(ValueError, match="lambda_domain must be"):
        otce(T, yt, **kwargs, lambda_domain=np.nan)
    with pytest.raises(ValueError, match="lambda_task must be"):
        otce(T, yt, **kwargs, lambda_task="1")
    for score in (otce, f_otce, jc_otce):
        with pytest.raises(ValueError, match="max_samples must be"):
            score(T, yt, **kwargs, max_samples=1)
        with pytest.raises(ValueError, match="seed must be"):
            score(T, yt, **kwargs, seed=-1)
        with pytest.raises(ValueError, match="source_features must have the same number of features"):
            score(T, yt, source_features=S[:, :2], source_labels=ys)


def test_otce_refuses_a_wasserstein_distance_beyond_float64():
    S, ys, T, yt = _domains(0)
    with pytest.raises(ValueError, match="magnitude"):
        otce(T * 1e160, yt, source_features=S * 1e160, source_labels=ys)
    # F-OTCE reads only the coupling: the same value at any magnitude.
    np.testing.assert_allclose(
        f_otce(T * 1e160, yt, source_features=S * 1e160, source_labels=ys),
        f_otce(T, yt, source_features=S, source_labels=ys),
        rtol=1e-12,
    )
