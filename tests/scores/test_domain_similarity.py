"""Tests for domain similarity: closed forms, a hand-solved transport, an LP reference, invariances."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.spatial.distance import cdist

from transferlab.scores._domain_similarity import domain_similarity


def _emd_linprog(mu_s, w_s, mu_t, w_t):
    """Reference EMD: the transport linear program solved by scipy's HiGHS, written from the paper."""
    cost = cdist(mu_s, mu_t)
    cs, ct = cost.shape
    a_eq = np.zeros((cs + ct, cs * ct))
    for i in range(cs):
        a_eq[i, i * ct : (i + 1) * ct] = 1.0  # sum_j f_ij = w_s[i]
    for j in range(ct):
        a_eq[cs + j, j::ct] = 1.0  # sum_i f_ij = w_t[j]
    res = linprog(cost.ravel(), A_eq=a_eq, b_eq=np.concatenate([w_s, w_t]), bounds=(0, None), method="highs")
    assert res.status == 0
    return res.fun


def _means_and_weights(X, y):
    classes = np.unique(y)
    means = np.array([X[y == c].mean(axis=0) for c in classes])
    weights = np.array([np.mean(y == c) for c in classes])
    return means, weights


def _domains(seed, n_source_classes=3, n_target_classes=2, dim=3):
    rng = np.random.default_rng(seed)
    ys = rng.integers(0, n_source_classes, 17)
    ys[:n_source_classes] = np.arange(n_source_classes)
    yt = rng.integers(0, n_target_classes, 13)
    yt[:n_target_classes] = np.arange(n_target_classes)
    S = 2.0 * rng.normal(size=(n_source_classes, dim))[ys] + rng.normal(size=(17, dim))
    T = 2.0 * rng.normal(size=(n_target_classes, dim))[yt] + rng.normal(size=(13, dim)) + 1.0
    return S, ys, T, yt


def test_single_source_class_against_coinciding_target_means_is_the_closed_form():
    # All the source mass sits at mu_s, all the target mass at mu_t (both target classes have
    # mean mu_t), so the only coupling moves everything from mu_s to mu_t:
    # EMD = |mu_s - mu_t| = |(1, 2, 2)| = 3 and DS = exp(-gamma * 3).
    mu_s = np.array([1.0, -1.0, 0.5])
    mu_t = mu_s + np.array([1.0, 2.0, 2.0])
    offsets = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, -3.0, 0.0]])
    T = mu_t + offsets  # class 0: rows 0, 1; class 1: rows 2, 3; both means are mu_t
    S = mu_s + np.array([[0.0, 0.0, 2.0], [0.0, 0.0, -2.0]])
    value = domain_similarity(T, [0, 0, 1, 1], source_features=S, source_labels=[5, 5], gamma=0.2)
    np.testing.assert_allclose(value, np.exp(-0.2 * 3.0), rtol=1e-14)


def test_identical_sets_give_one():
    S, ys, _, _ = _domains(0)
    assert domain_similarity(S, ys, source_features=S, source_labels=ys) == 1.0
    # the same weighted class means from other samples (each class mirrored about its mean)
    means, _ = _means_and_weights(S, ys)
    mirrored = 2.0 * means[ys] - S
    np.testing.assert_allclose(domain_similarity(mirrored, ys, source_features=S, source_labels=ys), 1.0, rtol=1e-14)


def test_hand_solved_two_by_two_transport():
    # Source class means (0, 0) and (10, 0), weights 1/2 and 1/2 (2 samples each);
    # target class means (0, 1) and (10, 1), weights 1/4 and 3/4 (1 and 3 samples).
    # With f11 = a the marginals force f12 = 1/2 - a, f21 = 1/4 - a, f22 = 1/4 + a, a in [0, 1/4]:
    #   cost(a) = a * 1 + (1/2 - a) * sqrt(101) + (1/4 - a) * sqrt(101) + (1/4 + a) * 1
    #           = 1/4 + 3/4 sqrt(101) + a (2 - 2 sqrt(101)),
    # decreasing in a, so a = 1/4 and EMD = 3/4 + sqrt(101) / 4 = 3.2624689...
    S = np.array([[0.0, 0.5], [0.0, -0.5], [10.0, 0.0], [10.0, 0.0]])
    T = np.array([[0.0, 1.0], [9.0, 1.0], [10.0, 1.0], [11.0, 1.0]])
    emd = 0.75 + np.sqrt(101.0) / 4
    np.testing.assert_allclose(emd, 3.2624689052802225, rtol=1e-15)
    value = domain_similarity(T, ["x", "y", "y", "y"], source_features=S, source_labels=[0, 0, 1, 1], gamma=0.1)
    np.testing.assert_allclose(value, np.exp(-0.1 * emd), rtol=1e-13)


@pytest.mark.parametrize("seed", range(4))
def test_matches_linear_program_reference(seed):
    S, ys, T, yt = _domains(seed, n_source_classes=4, n_target_classes=3)
    mu_s, w_s = _means_and_weights(S, ys)
    mu_t, w_t = _means_and_weights(T, yt)
    expected = np.exp(-0.05 * _emd_linprog(mu_s, w_s, mu_t, w_t))
    np.testing.assert_allclose(
        domain_similarity(T, yt, source_features=S, source_labels=ys, gamma=0.05), expected, rtol=1e-9
    )


def test_gamma_scaling():
    # log DS = -gamma * EMD, so DS(k * gamma) = DS(gamma) ** k.
    S, ys, T, yt = _domains(1)
    base = domain_similarity(T, yt, source_features=S, source_labels=ys, gamma=0.01)
    assert 0.0 < base < 1.0
    for k in (2.0, 5.0, 0.5):
        np.testing.assert_allclose(
            domain_similarity(T, yt, source_features=S, source_labels=ys, gamma=0.01 * k), base**k, rtol=1e-12
        )


def test_large_features_keep_the_transport_exact():
    # The EMD is homogeneous of degree 1 in the features: scaling them by 1e12 and gamma by
    # 1e-12 leaves DS unchanged; an unscaled cost of order 1e12 would strain the LP solver.
    S, ys, T, yt = _domains(2)
    base = domain_similarity(T, yt, source_features=S, source_labels=ys, gamma=1.0)
    big = domain_similarity(T * 1e12, yt, source_features=S * 1e12, source_labels=ys, gamma=1e-12)
    np.testing.assert_allclose(big, base, rtol=1e-9)
    assert domain_similarity(T * 1e12, yt, source_features=S * 1e12, source_labels=ys) == 0.0  # underflow, finite


@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e155, 1e200, 1e300, 1e307])
def test_features_near_the_ends_of_the_float64_range(scale):
    # The hand-solved transport above, at `scale`: EMD = scale * (3/4 + sqrt(101)/4), so with
    # gamma = 0.1 / scale, DS = exp(-0.1 * 3.2624689...). Features near 1e200 used to give NaN
    # (the squares inside the Euclidean cost overflowed); near 1e-300 they underflowed to 0.
    S = scale * np.array([[0.0, 0.5], [0.0, -0.5], [10.0, 0.0], [10.0, 0.0]])
    T = scale * np.array([[0.0, 1.0], [9.0, 1.0], [10.0, 1.0], [11.0, 1.0]])
    emd = 0.75 + np.sqrt(101.0) / 4
    value = domain_similarity(T, ["x", "y", "y", "y"], source_features=S, source_labels=[0, 0, 1, 1], gamma=0.1 / scale)
    np.testing.assert_allclose(value, np.exp(-0.1 * emd), rtol=1e-13)


def test_an_emd_beyond_the_float64_range_gives_zero_not_nan():
    # Source at -1e308 and target at +1e308: EMD = 2e308 overflows, and DS = exp(-gamma EMD) is
    # 0.0 for any gamma that keeps gamma * EMD above ~745; the result is finite, without warnings.
    with np.errstate(all="raise"):
        value = domain_similarity([[1e308], [1e308]], [0, 1], source_features=[[-1e308]], source_labels=[0])
    assert value == 0.0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_invariances(seed):
    S, ys, T, yt = _domains(seed)
    base = domain_similarity(T, yt, source_features=S, source_labels=ys)
    rng = np.random.default_rng(seed)
    # samples are sets on both sides
    ps, pt = rng.permutation(len(ys)), rng.permutation(len(yt))
    np.testing.assert_allclose(
        domain_similarity(T[pt], yt[pt], source_features=S[ps], source_labels=ys[ps]), base, rtol=1e-12
    )
    # renaming the classes on either side
    names = np.array(["q", "b", "m"])
    np.testing.assert_allclose(
        domain_similarity(T, yt * 3 - 7, source_features=S, source_labels=names[ys]), base, rtol=1e-12
    )
    # a rigid motion of both domains (Euclidean ground cost)
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    shift = rng.normal(size=3)
    np.testing.assert_allclose(
        domain_similarity(T @ Q + shift, yt, source_features=S @ Q + shift, source_labels=ys), base, rtol=1e-10
    )
    # EMD is symmetric: source and target swap
    np.testing.assert_allclose(domain_similarity(S, ys, source_features=T, source_labels=yt), base, rtol=1e-12)


def test_returns_python_float_and_leaves_inputs_alone():
    S, ys, T, yt = _domains(3)
    copies = [a.copy() for a in (S, ys, T, yt)]
    value = domain_similarity(T.astype(np.float32), yt, source_features=S, source_labels=ys)
    assert type(value) is float
    for a, b in zip((S, ys, T, yt), copies):
        np.testing.assert_array_equal(a, b)


def test_errors():
    S, ys, T, yt = _domains(4)
    with pytest.raises(ValueError, match="source_features must have the same number of features"):
        domain_similarity(T, yt, source_features=S[:, :2], source_labels=ys)
    with pytest.raises(ValueError, match="source_labels must have one entry per sample"):
        domain_similarity(T, yt, source_features=S, source_labels=ys[:-1])
    with pytest.raises(ValueError, match="source_features must be finite"):
        domain_similarity(T, yt, source_features=np.where(S > 1, np.inf, S), source_labels=ys)
    with pytest.raises(ValueError, match="source_labels must be integers or strings"):
        domain_similarity(T, yt, source_features=S, source_labels=ys + 0.5)
    with pytest.raises(ValueError, match="labels must contain at least 2 classes"):
        domain_similarity(T, np.zeros_like(yt), source_features=S, source_labels=ys)
    for gamma in (0.0, -1.0, np.inf, True):
        with pytest.raises(ValueError, match="gamma must be a positive finite number"):
            domain_similarity(T, yt, source_features=S, source_labels=ys, gamma=gamma)


def test_importing_the_score_modules_does_not_import_torch():
    # POT imports torch when it is installed, so it is imported only when an EMD is solved.
    code = (
        "import sys, transferlab.scores._domain_similarity, transferlab.scores._rsa, "
        "transferlab.scores._feature_metrics, transferlab.scores._random, transferlab.scores._pool, "
        "transferlab.scores._ncti, transferlab.scores._etran; "
        "assert 'torch' not in sys.modules, 'torch was imported'; assert 'ot' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
