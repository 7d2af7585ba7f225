"""The transfer bound's terms: brute force, POT directly, closed forms, invariances, the theorem."""

from __future__ import annotations

import itertools
import math

import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from transferlab.analysis import (
    TaskTransform,
    conditional_entropy,
    feature_lipschitz,
    label_cost,
    reweighted_source_loss,
    transfer_bound,
    transfer_wasserstein,
)


def _instance(seed: int, *, k_s=3, k_t=2, d=3, n=12, m=10, concentration=0.5):
    rng = np.random.default_rng(seed)
    zs = rng.normal(size=(n, d))
    ys = np.r_[np.arange(k_s), rng.integers(0, k_s, n - k_s)]
    zt = rng.normal(size=(m, d)) * rng.uniform(0.3, 2.0) + rng.normal(size=d)
    yt = rng.integers(0, k_t, m)
    A = rng.normal(size=(d, d)) + 2 * np.eye(d)
    transform = TaskTransform(A, rng.normal(size=d), rng.dirichlet(np.full(k_t, concentration), size=k_s).T,
                              rng.dirichlet(np.ones(k_s)))
    head = {"head_weight": rng.normal(size=(k_s, d)) * rng.uniform(0.2, 3.0), "head_bias": rng.normal(size=k_s)}
    return zs, ys, zt, yt, transform, head


def _brute_entropy(B, D):
    """H(T | S) = H(T, S) - H(S) from the joint P(t, s) = B[t, s] D[s], term by term."""
    joint = -sum(B[t, s] * D[s] * math.log(B[t, s] * D[s])
                 for t in range(B.shape[0]) for s in range(B.shape[1]) if B[t, s] * D[s] > 0)
    marginal = -sum(d * math.log(d) for d in D if d > 0)
    return joint - marginal


# --------------------------------------------------------------------------- conditional entropy


@pytest.mark.parametrize("seed", range(5))
def test_conditional_entropy_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    B = rng.dirichlet(np.full(4, 0.7), size=3).T
    D = rng.dirichlet(np.ones(3))
    assert conditional_entropy(B, D) == pytest.approx(_brute_entropy(B, D), abs=1e-12)


def test_conditional_entropy_closed_forms():
    assert conditional_entropy(np.full((5, 3), 0.2), [0.2, 0.3, 0.5]) == pytest.approx(math.log(5))
    assert conditional_entropy(np.eye(3)[[2, 0, 1]], [0.2, 0.3, 0.5]) == 0.0
    # A class with zero prior does not count, whatever its column.
    B = np.array([[1.0, 0.5], [0.0, 0.5]])
    assert conditional_entropy(B, [1.0, 0.0]) == 0.0
    assert conditional_entropy(B, [0.0, 1.0]) == pytest.approx(math.log(2))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_conditional_entropy_is_invariant_to_relabelling(seed):
    rng = np.random.default_rng(seed)
    B, D = rng.dirichlet(np.ones(4), size=3).T, rng.dirichlet(np.ones(3))
    rows, cols = rng.permutation(4), rng.permutation(3)
    assert conditional_entropy(B[rows][:, cols], D[cols]) == pytest.approx(conditional_entropy(B, D), abs=1e-12)


# --------------------------------------------------------------------------- re-weighted source loss


def test_reweighted_source_loss_golden():
    log_p = np.log(np.array([[0.5, 0.5], [0.8, 0.2], [0.1, 0.9]]))
    labels = np.array([0, 0, 1])
    # class 0: mean(-log .5, -log .8); class 1: -log .9
    expected = 0.25 * (math.log(2) - math.log(0.8)) / 2 + 0.75 * -math.log(0.9)
    assert reweighted_source_loss(log_p, labels, [0.25, 0.75]) == pytest.approx(expected, abs=1e-12)


def test_reweighted_source_loss_with_the_empirical_prior_is_the_plain_mean():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(30, 4))
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    y = rng.integers(0, 4, 30)
    prior = np.bincount(y, minlength=4) / 30
    assert reweighted_source_loss(log_p, y, prior) == pytest.approx(-log_p[np.arange(30), y].mean(), abs=1e-12)


def test_reweighted_source_loss_refuses_a_weighted_class_without_samples():
    with pytest.raises(ValueError, match="source class 2 has prior"):
        reweighted_source_loss(np.log(np.full((2, 3), 1 / 3)), [0, 1], [0.3, 0.3, 0.4])
    # ... but a class without samples and without weight is fine
    assert reweighted_source_loss(np.log(np.full((2, 3), 1 / 3)), [0, 1], [0.5, 0.5, 0.0]) == pytest.approx(math.log(3))


# --------------------------------------------------------------------------- the constants of the ground cost


def test_label_cost_golden_and_uniform():
    B = np.array([[0.9, 0.2], [0.1, 0.8]])
    expected = max(abs(math.log(0.9 / 0.1)), abs(math.log(0.2 / 0.8)))
    assert label_cost(B) == pytest.approx(np.array([[0.0, expected], [expected, 0.0]]))
    assert np.array_equal(label_cost(np.full((3, 4), 1 / 3)), np.zeros((3, 3)))
    identity = label_cost(np.eye(3))
    assert np.isinf(identity[~np.eye(3, dtype=bool)]).all() and (np.diag(identity) == 0).all()


@pytest.mark.parametrize("seed", range(4))
def test_label_cost_bounds_the_change_of_the_loss_and_is_tight(seed):
    rng = np.random.default_rng(seed)
    B = rng.dirichlet(np.full(3, 0.5), size=4).T
    lam = label_cost(B)
    p = rng.dirichlet(np.full(4, 0.3), size=5000)
    loss = -np.log(p @ B.T)  # (n, K_T)
    for t, u in itertools.permutations(range(3), 2):
        change = np.abs(loss[:, t] - loss[:, u])
        assert change.max() <= lam[t, u] + 1e-12
        # attained at a vertex of the simplex (p one-hot on the maximising source class)
        vertices = np.abs(np.log(B[t]) - np.log(B[u]))
        assert vertices.max() == pytest.approx(lam[t, u])


@pytest.mark.parametrize("seed", range(4))
def test_feature_lipschitz_bounds_the_gradient_of_the_transferred_loss(seed):
    zs, ys, zt, yt, tr, head = _instance(seed, k_s=4, k_t=3, d=3)
    W, c = head["head_weight"], head["head_bias"]
    A, b, B = tr.feature_map, tr.feature_shift, tr.label_map
    L = feature_lipschitz(W, A)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for z in rng.normal(size=(300, 3)) * 5:
        u = np.linalg.solve(A, z - b)
        p = np.exp(W @ u + c - (W @ u + c).max())
        p /= p.sum()
        for t in range(3):
            r = B[t] * p / (B[t] @ p)
            worst = max(worst, np.linalg.norm(np.linalg.solve(A.T, W.T @ (p - r))))
    assert worst <= L + 1e-12


def test_feature_lipschitz_ignores_a_shift_shared_by_every_class():
    W = np.random.default_rng(0).normal(size=(4, 5))
    assert feature_lipschitz(W + np.arange(5.0)) == pytest.approx(feature_lipschitz(W))
    # two classes with opposite weights: sqrt(2) * sigma_max([[w], [-w]]) = 2 ||w||
    w = np.array([3.0, 4.0])
    assert feature_lipschitz(np.stack([w, -w])) == pytest.approx(10.0)


# --------------------------------------------------------------------------- the Wasserstein term


def _explicit_wasserstein(zs, ys, zt, yt, tr, head_weight):
    """The same quantity built atom by atom and handed to ot.emd2 directly."""
    A, b, B, D = tr.feature_map, tr.feature_shift, tr.label_map, tr.prior
    L = feature_lipschitz(head_weight, A)
    lam = label_cost(B)
    counts = np.bincount(ys, minlength=B.shape[1])
    masses, costs = [], []
    for i in range(len(ys)):
        moved = A @ zs[i] + b
        for t in range(B.shape[0]):
            masses.append(D[ys[i]] / counts[ys[i]] * B[t, ys[i]])
            costs.append([L * np.linalg.norm(moved - zt[j]) + lam[t, yt[j]] for j in range(len(yt))])
    return ot.emd2(np.array(masses), np.full(len(yt), 1 / len(yt)), np.array(costs))


@pytest.mark.parametrize("seed", range(4))
def test_wasserstein_term_against_pot_on_a_tiny_case(seed):
    zs, ys, zt, yt, tr, head = _instance(seed)
    ours = transfer_wasserstein(zs, ys, zt, yt, tr, head_weight=head["head_weight"])
    assert ours == pytest.approx(_explicit_wasserstein(zs, ys, zt, yt, tr, head["head_weight"]), rel=1e-9)


def test_wasserstein_with_a_permutation_label_map_is_a_per_class_assignment():
    # One-hot B: labels only move to themselves, and with equal class sizes the
    # transport is an assignment per class (Birkhoff), solved by linear_sum_assignment.
    rng = np.random.default_rng(3)
    k, per, d = 3, 4, 2
    ys = np.repeat(np.arange(k), per)
    zs, zt = rng.normal(size=(k * per, d)), rng.normal(size=(k * per, d))
    perm = np.array([2, 0, 1])
    yt = np.repeat(perm, per)  # target class perm[s] sits where source class s does
    B = np.zeros((k, k))  # B[t, s] = 1 iff t = perm[s]
    B[perm, np.arange(k)] = 1.0
    W = rng.normal(size=(k, d))
    tr = TaskTransform(np.eye(d), np.zeros(d), B, np.full(k, 1 / k))
    L = feature_lipschitz(W)
    expected = 0.0
    for s in range(k):
        a, b = zs[ys == s], zt[yt == perm[s]]
        cost = L * np.linalg.norm(a[:, None] - b[None], axis=2)
        rows, cols = linear_sum_assignment(cost)
        expected += cost[rows, cols].sum() / len(ys)
    assert transfer_wasserstein(zs, ys, zt, yt, tr, head_weight=W) == pytest.approx(expected, rel=1e-9)


def test_wasserstein_is_infinite_when_unbounded_labels_cannot_be_matched():
    # B = I: a label only moves to itself; the target has twice as much of class 0 as the source.
    zs, ys = np.zeros((4, 1)), np.array([0, 0, 1, 1])
    zt, yt = np.zeros((4, 1)), np.array([0, 0, 0, 1])
    tr = TaskTransform.identity(1, [0.5, 0.5])
    W = np.array([[1.0], [-1.0]])
    assert transfer_wasserstein(zs, ys, zt, yt, tr, head_weight=W) == math.inf
    # POT alone reports such an infeasible problem as a zero cost; ours is inf, so the bound is vacuous.
    assert transfer_bound(zs, ys, zt, yt, tr, head_weight=W, head_bias=np.zeros(2)).bound == math.inf


# --------------------------------------------------------------------------- the bound


def test_identity_transforms_on_the_source_itself_give_the_source_loss():
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(40, 5)), np.arange(40) % 4
    W, c = rng.normal(size=(4, 5)), rng.normal(size=4)
    prior = np.bincount(y) / 40
    r = transfer_bound(z, y, z, y, TaskTransform.identity(5, prior), head_weight=W, head_bias=c)
    logits = z @ W.T + c
    plain = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(40), y])
    assert r.conditional_entropy == 0.0
    assert r.wasserstein == pytest.approx(0.0, abs=1e-6)
    assert r.source_loss == pytest.approx(plain, abs=1e-12)
    assert r.bound == pytest.approx(plain, abs=1e-6)
    assert r.transferred_loss == pytest.approx(plain, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 100_000), st.integers(2, 4), st.integers(2, 4), st.floats(0.05, 3.0))
def test_the_bound_holds_on_the_samples_it_is_computed_on(seed, k_s, k_t, concentration):
    zs, ys, zt, yt, tr, head = _instance(seed, k_s=k_s, k_t=k_t, concentration=concentration)
    r = transfer_bound(zs, ys, zt, yt, tr, **head)
    assert r.bound == pytest.approx(r.source_loss + r.conditional_entropy + r.wasserstein)
    assert r.bound >= r.transferred_loss - 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_the_bound_is_invariant_to_relabelling_either_task(seed):
    zs, ys, zt, yt, tr, head = _instance(seed, k_s=3, k_t=3)
    base = transfer_bound(zs, ys, zt, yt, tr, **head)
    rng = np.random.default_rng(seed)
    ps, pt = rng.permutation(3), rng.permutation(3)  # new index of each old class
    inv_s, inv_t = np.argsort(ps), np.argsort(pt)
    relabelled = TaskTransform(tr.feature_map, tr.feature_shift, tr.label_map[inv_t][:, inv_s], tr.prior[inv_s])
    other = transfer_bound(zs, ps[ys], zt, pt[yt], relabelled, head_weight=head["head_weight"][inv_s],
                           head_bias=head["head_bias"][inv_s])
    for key, value in base.to_dict().items():
        assert getattr(other, key) == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_costs_stay_moderate():
    # No 1e6-1e8 multipliers: with a softmax-like B (entries >= 1e-3) the label costs are at
    # most log(1/1e-3) ~ 6.9 nats, and the ground cost is bounded by L * diameter + that.
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 4)) * 2
    B = np.exp(logits) / np.exp(logits).sum(axis=0)
    assert label_cost(B).max() <= np.log(B.max() / B.min()) + 1e-12
    zs, ys, zt, yt, tr, head = _instance(0)
    r = transfer_bound(zs, ys, zt, yt, tr, **head)
    assert r.max_label_cost == pytest.approx(label_cost(tr.label_map).max())
    sigma = np.linalg.norm(head["head_weight"], 2) * np.linalg.norm(np.linalg.inv(tr.feature_map), 2)
    assert r.lipschitz <= np.sqrt(2) * sigma + 1e-12


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {**a, "zs": np.full((12, 3), np.nan)}, "source_features must be finite"),
        (lambda a: {**a, "zt": np.ones((10, 4))}, "same number of features"),
        (lambda a: {**a, "ys": a["ys"][:5]}, "one label per row"),
        (lambda a: {**a, "yt": a["yt"] + 5}, "target_labels must be class indices"),
        (lambda a: {**a, "tr": TaskTransform(np.zeros((3, 3)), np.zeros(3), a["tr"].label_map, a["tr"].prior)},
         "singular"),
        (lambda a: {**a, "tr": TaskTransform(np.eye(3), np.zeros(3), a["tr"].label_map * 2, a["tr"].prior)},
         "column-stochastic"),
        (lambda a: {**a, "tr": TaskTransform(np.eye(3), np.zeros(3), a["tr"].label_map, [0.5, 0.5, 0.5])},
         "sum to 1"),
        (lambda a: {**a, "tr": TaskTransform(np.eye(2), np.zeros(2), a["tr"].label_map, a["tr"].prior)},
         "feature_map must be"),
    ],
)
def test_bad_input_is_refused(change, message):
    zs, ys, zt, yt, tr, head = _instance(0)
    a = change({"zs": zs, "ys": ys, "zt": zt, "yt": yt, "tr": tr})
    with pytest.raises(ValueError, match=message):
        transfer_bound(a["zs"], a["ys"], a["zt"], a["yt"], a["tr"], **head)
