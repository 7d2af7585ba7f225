"""Tests for per-sample gradients: a slow autograd loop, the seeded block projection, JL."""

import numpy as np
import pytest
import torch

from tests.helpers import TinyConvNet, TinyMLP, tiny_task
from transferlab.features import _gradients
from transferlab.features._gradients import _project, _projection_block, per_sample_gradients


def _loop_gradients(model, images, stage):
    """Reference: one torch.autograd.grad call per sample, model in eval mode, no projection."""
    from transferlab.models._base import to_input

    was_training = model.training
    model.eval()
    params = [p for name, p in model.named_parameters() if name.startswith(f"stages.{stage}.")]
    rows = []
    for i in range(images.shape[0]):
        x = to_input(images[i : i + 1])
        out = torch.logsumexp(model(x), dim=1)[0]
        grads = torch.autograd.grad(out, params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]).numpy())
    model.train(was_training)
    return np.stack(rows)


def _trained_state(model, seed=0):
    """Give batch norm non-trivial running statistics, then return to train mode."""
    task = tiny_task(3, 4, seed=seed)
    model.train()
    with torch.no_grad():
        from transferlab.models._base import to_input

        model(to_input(task.x_train))
    return task


@pytest.mark.parametrize(
    "make, stage", [(TinyConvNet, None), (TinyConvNet, "conv1"), (TinyMLP, "fc2"), (TinyMLP, "fc1")]
)
def test_matches_slow_autograd_loop(make, stage):
    model = make(num_classes=3, seed=1)
    task = _trained_state(model)
    images = task.x_test[:7]
    name = stage or model.stage_names[-1]
    expected = _loop_gradients(model, images, name)
    got = per_sample_gradients(model, images, stage=stage, dim=10**6, batch_size=3)
    assert got.shape == expected.shape  # P <= dim: the raw gradients, unprojected
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_model_is_left_untouched():
    model = TinyConvNet(num_classes=3, seed=2)
    _trained_state(model)
    model.train()
    model.stages["conv1"].eval()  # a mixed mode must come back exactly
    model.freeze_stages(1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {k: p.requires_grad for k, p in model.named_parameters()}
    modes = {name: m.training for name, m in model.named_modules()}
    per_sample_gradients(model, tiny_task(3, 2).x_train, dim=32)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)
    assert {k: p.requires_grad for k, p in model.named_parameters()} == flags
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert all(p.grad is None for p in model.parameters())


def test_projection_is_seeded_and_independent_of_batch_size_and_chunking(monkeypatch):
    # Small blocks and chunks so that several of each are used.
    monkeypatch.setattr(_gradients, "_BLOCK_ROWS", 50)
    monkeypatch.setattr(_gradients, "_CHUNK_BYTES", 4 * 304 * 5)  # 5 rows of P = 304 floats
    model = TinyConvNet(num_classes=3, seed=3)
    images = tiny_task(3, 4, seed=1).x_train  # 12 images
    a = per_sample_gradients(model, images, dim=40, seed=7, batch_size=1)
    b = per_sample_gradients(model, images, dim=40, seed=7, batch_size=5)
    monkeypatch.setattr(_gradients, "_CACHE_BYTES", 0)  # nothing cached: regenerate every block
    _gradients._BLOCKS.clear()
    c = per_sample_gradients(model, images, dim=40, seed=7, batch_size=12)
    d = per_sample_gradients(model, images, dim=40, seed=8, batch_size=5)
    assert a.shape == (12, 40) and a.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(c, a, rtol=1e-5, atol=1e-7)
    assert np.abs(d - a).max() > 1e-3 * np.abs(a).max()  # another seed, another projection
    # and it is the raw gradients times the block-wise projection matrix
    raw = per_sample_gradients(model, images, dim=10**6)
    R = torch.cat([_projection_block(7, blk, 304, 40) for blk in range(7)]).numpy().astype(np.float64)
    assert R.shape == (304, 40)
    np.testing.assert_allclose(a, raw.astype(np.float64) @ R, rtol=1e-4, atol=1e-6)


def test_projection_block_cache_is_bounded_and_changes_nothing(monkeypatch):
    monkeypatch.setattr(_gradients, "_BLOCK_ROWS", 50)
    monkeypatch.setattr(_gradients, "_BLOCKS", type(_gradients._BLOCKS)())
    monkeypatch.setattr(_gradients, "_CACHE_BYTES", 3 * 50 * 40 * 4)  # three full blocks of 50 x 40
    G = torch.from_numpy(np.random.default_rng(0).normal(size=(4, 304)).astype(np.float32))
    first = _gradients._project(G, 40, 7)
    held = sum(t.numel() * t.element_size() for t in _gradients._BLOCKS.values())
    assert 0 < held <= _gradients._CACHE_BYTES
    torch.testing.assert_close(_gradients._project(G, 40, 7), first, rtol=0, atol=0)
    R = torch.cat([_projection_block(7, blk, 304, 40) for blk in range(7)]).double()
    torch.testing.assert_close(first, G.double() @ R, rtol=1e-5, atol=1e-6)


def test_projection_blocks_are_deterministic_and_scaled():
    block = _projection_block(3, 2, 10**5, 64)
    torch.testing.assert_close(block, _projection_block(3, 2, 10**5, 64), rtol=0, atol=0)
    assert not torch.equal(block, _projection_block(3, 1, 10**5, 64))
    assert not torch.equal(block, _projection_block(4, 2, 10**5, 64))
    # entries N(0, 1/dim): the mean of dim * R^2 over 4096 * 64 entries is 1 +- 5 sigma
    second_moment = float((block.double() ** 2).mean() * 64)
    assert abs(second_moment - 1.0) < 5 * np.sqrt(2.0 / block.numel())


def test_inner_products_preserved_in_expectation():
    # E[(R^T g) . (R^T h)] = g . h for R_pk ~ N(0, 1/dim). Average over S seeds; the
    # variance of one estimate is (|g|^2 |h|^2 + (g.h)^2) / dim, so allow 5 standard errors.
    rng = np.random.default_rng(0)
    P, dim, S = 300, 16, 400
    G = torch.from_numpy(rng.normal(size=(3, P)).astype(np.float32))
    G[1] += 0.8 * G[0]
    exact = (G.double() @ G.double().T).numpy()
    projected = [_project(G, dim, seed) for seed in range(S)]
    estimates = np.stack([(Z @ Z.T).numpy() for Z in projected])
    mean = estimates.mean(axis=0)
    norms = np.sqrt(np.diag(exact))
    se = np.sqrt((np.outer(norms, norms) ** 2 + exact**2) / dim / S)
    assert np.all(np.abs(mean - exact) < 5 * se)


def test_projected_gram_approximates_the_raw_gram_at_large_dim():
    model = TinyMLP(num_classes=3, seed=4)
    images = tiny_task(3, 3, seed=2).x_train
    raw = per_sample_gradients(model, images, stage="fc2", dim=10**6).astype(np.float64)
    assert raw.shape[1] == 16 * 16 + 16
    proj = per_sample_gradients(model, images, stage="fc2", dim=4096, seed=1).astype(np.float64)
    K, Kp = raw @ raw.T, proj @ proj.T
    # JL: relative error ~ sqrt(2 / dim) ~ 0.02 per entry, relative to |g_i| |g_j|
    scale = np.sqrt(np.outer(np.diag(K), np.diag(K)))
    assert np.max(np.abs(Kp - K) / scale) < 0.15


def test_input_validation():
    model = TinyMLP(num_classes=3)
    images = tiny_task(3, 2).x_train
    with pytest.raises(ValueError, match="images must be"):
        per_sample_gradients(model, np.zeros((2, 3, 4, 5, 6)))
    with pytest.raises(ValueError, match="empty"):
        per_sample_gradients(model, np.zeros((0, 1, 12, 12), dtype=np.uint8))
    with pytest.raises(ValueError, match="unknown stage 'fc9'"):
        per_sample_gradients(model, images, stage="fc9")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="dim must be an integer >= 1"):
            per_sample_gradients(model, images, dim=bad)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        per_sample_gradients(model, images, seed=-1)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1; got 0"):
        per_sample_gradients(model, images, batch_size=0)
    with pytest.raises(ValueError, match="model must be a StagedModel"):
        per_sample_gradients(torch.nn.Linear(3, 2), images)
    with pytest.raises(ValueError, match="NaN or Inf"):
        per_sample_gradients(model, np.full((2, 1, 12, 12), np.nan))


def test_stage_without_parameters_is_refused():
    model = TinyMLP(num_classes=3)
    model.stages["pool"] = torch.nn.Identity()
    with pytest.raises(ValueError, match="stage 'pool' has no parameters"):
        per_sample_gradients(model, tiny_task(3, 2).x_train, stage="pool")
