"""Learning the transforms: recovery of a known relabelling, one ground cost, seeds, errors."""

from __future__ import annotations

import numpy as np
import pytest

from transferlab.analysis import TaskTransform, fit_smooth_head, fit_transforms, transfer_bound, transfer_wasserstein


def _relabelled_pair(seed: int = 0, k: int = 3, d: int = 4):
    """Target = source classes under a known permutation, features slightly moved and noised."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d)) * 3
    perm = rng.permutation(k)

    def draw(n):
        y = np.arange(n) % k
        return means[y] + rng.normal(size=(n, d)), y

    zs, ys = draw(150)
    zt, yt = draw(90)
    zt = zt @ (np.eye(d) + 0.1 * rng.normal(size=(d, d))) + 0.3
    return zs, ys, zt, perm[yt], perm


@pytest.fixture(scope="module")
def relabelled():
    zs, ys, zt, yt, perm = _relabelled_pair()
    head = fit_smooth_head(zs, ys, steps=200)
    fit = fit_transforms(zs, ys, zt, yt, head_weight=head.weight, head_bias=head.bias, steps=120, batch_size=60,
                         seed=0, progress=False)
    return zs, ys, zt, yt, perm, head, fit


def test_recovers_the_relabelling_and_lowers_the_bound(relabelled):
    zs, ys, zt, yt, perm, head, fit = relabelled
    assert np.array_equal(fit.transform.label_map.argmax(axis=0), perm)
    h = fit.history
    assert h["objective"][-10:].mean() < h["objective"][:10].mean()
    r = transfer_bound(zs, ys, zt, yt, fit.transform, head_weight=head.weight, head_bias=head.bias)
    assert r.transferred_accuracy > 0.9
    assert r.bound >= r.transferred_loss
    # the learned B is sharp (low entropy) and D close to the (uniform) target prior through B
    assert r.conditional_entropy < 0.3
    assert np.abs(fit.transform.label_map @ fit.transform.prior - np.bincount(yt) / yt.size).max() < 0.05


def test_outputs_are_valid_transforms(relabelled):
    *_, fit = relabelled
    t = fit.transform
    assert np.allclose(t.label_map.sum(axis=0), 1) and (t.label_map > 0).all()
    assert np.isclose(t.prior.sum(), 1) and (t.prior > 0).all()
    assert np.linalg.cond(t.feature_map) < 100
    assert set(fit.history) == {"objective", "source_loss", "conditional_entropy", "wasserstein", "prior_gap",
                                "invertibility"}
    assert all(len(v) == 120 and np.isfinite(v).all() for v in fit.history.values())


def test_the_training_cost_is_the_evaluation_cost():
    # At step 0 (A = I, b = 0, B from the seeded random logits, D the source frequencies) with
    # batches holding every sample, the transport term of the objective is the evaluated one.
    zs, ys, zt, yt, _ = _relabelled_pair(1)
    rng = np.random.default_rng(5)
    W, c = rng.normal(size=(3, 4)), rng.normal(size=3)
    fit = fit_transforms(zs, ys, zt, yt, head_weight=W, head_bias=c, steps=1, batch_size=1000, init="random",
                         seed=7, progress=False)
    logits = np.random.default_rng(7).uniform(0.0, 1.0, size=(3, 3))
    B0 = np.exp(logits) / np.exp(logits).sum(axis=0)
    start = TaskTransform(np.eye(4), np.zeros(4), B0, np.bincount(ys) / ys.size)
    assert fit.history["wasserstein"][0] == pytest.approx(transfer_wasserstein(zs, ys, zt, yt, start, head_weight=W),
                                                          rel=1e-9)


def test_same_seed_same_transforms():
    zs, ys, zt, yt, _ = _relabelled_pair(2)
    W, c = np.ones((3, 4)) * np.arange(3)[:, None], np.zeros(3)
    a, b = (fit_transforms(zs, ys, zt, yt, head_weight=W, head_bias=c, steps=5, batch_size=30, seed=3,
                           progress=False) for _ in range(2))
    for name in ("feature_map", "feature_shift", "label_map", "prior"):
        assert np.array_equal(getattr(a.transform, name), getattr(b.transform, name))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"init": "kmeans"}, "init must be"),
        ({"steps": 0}, "steps must be"),
        ({"lr": float("nan")}, "lr must be"),
        ({"head_bias": np.zeros(2)}, "head_bias must be"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    zs, ys, zt, yt, _ = _relabelled_pair()
    args = {"head_weight": np.ones((3, 4)), "head_bias": np.zeros(3), **kwargs}
    with pytest.raises(ValueError, match=message):
        fit_transforms(zs, ys, zt, yt, progress=False, **args)


def test_a_source_class_without_samples_is_refused():
    zs, ys, zt, yt, _ = _relabelled_pair()
    with pytest.raises(ValueError, match="source class 3 has no sample"):
        fit_transforms(zs, ys, zt, yt, head_weight=np.ones((4, 4)), head_bias=np.zeros(4), progress=False)
