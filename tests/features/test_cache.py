"""Feature cache: hit, miss, invalidation by weights, a crash mid-write, verified entries, read-only reads."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings

import numpy as np
import pytest
import torch

from tests.helpers import TinyConvNet, tiny_task
from transferlab import _atomic
from transferlab.data import ImageData
from transferlab.features import _cache
from transferlab.features._cache import FeatureCache, model_digest
from transferlab.features._extract import extract


@pytest.fixture
def model():
    torch.manual_seed(0)
    return TinyConvNet(num_classes=3)


@pytest.fixture
def task():
    return tiny_task(n_classes=3, n_per_class=8, seed=0)


def test_miss_then_hit_returns_identical_array(tmp_path, model, task):
    cache = FeatureCache(tmp_path)
    first = cache.features(model, task)
    assert (cache.hits, cache.misses) == (0, 1)
    second = cache.features(model, task)
    assert (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, extract(model, task.x_train))


def test_key_changes_with_weights_stage_split_and_task(tmp_path, model, task):
    cache = FeatureCache(tmp_path)
    base = cache.key(model, kind="features", task=task, split="train")
    assert cache.key(model, kind="features", task=task, split="test") != base
    assert cache.key(model, kind="features", task=task, split="train", stage=0) != base
    assert cache.key(model, kind="source_probs", task=task, split="train") != base
    other_task = tiny_task(n_classes=3, n_per_class=8, seed=1)
    assert cache.key(model, kind="features", task=other_task, split="train") != base
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    assert cache.key(model, kind="features", task=task, split="train") != base


def test_digest_sees_batchnorm_buffers(model):
    before = model_digest(model)
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 1, 12, 12))  # updates running statistics only
    assert model_digest(model) != before


def test_crash_mid_write_leaves_no_readable_entry(tmp_path, model, task, monkeypatch):
    cache = FeatureCache(tmp_path)
    key = cache.key(model, kind="features", task=task, split="train")

    def crash(fd):  # the data is written, then the process "dies" before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(_atomic.os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.features(model, task)
    monkeypatch.undo()
    assert cache.get(key) is None
    assert not any(p.suffix == ".npy" for p in tmp_path.rglob("*")), "a partial entry is visible"
    assert not list(tmp_path.rglob("*.tmp")), "the temporary file was left behind"
    # The next run computes and stores it.
    np.testing.assert_array_equal(cache.features(model, task), extract(model, task.x_train))
    assert cache.misses == 2


def test_corrupt_entry_is_a_miss_and_is_rewritten(tmp_path, model, task):
    cache = FeatureCache(tmp_path)
    feats = cache.features(model, task)
    key = cache.key(model, kind="features", task=task, split="train")
    path = cache.path(key)
    path.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    with pytest.warns(UserWarning, match="truncated"):
        assert cache.get(key) is None
    with pytest.warns(UserWarning, match="truncated"):
        np.testing.assert_array_equal(cache.features(model, task), feats)


def test_source_probabilities_rows_sum_to_one(tmp_path, model, task):
    probs = FeatureCache(tmp_path).source_probabilities(model, task)
    assert probs.shape == (len(task.y_train), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    logits = model.eval()(torch.as_tensor(task.x_train.copy(), dtype=torch.float32) / 255).detach().double()
    np.testing.assert_allclose(probs, torch.softmax(logits, 1).numpy(), rtol=1e-5, atol=1e-6)


# -- every entry is verified on read ------------------------------------------------------------------------------


def _other_values(path, feats, cache, key):
    np.save(path, feats + 1.0)  # a valid .npy of the same shape and dtype, other values


def _other_shape(path, feats, cache, key):
    np.save(path, feats[:, :3].copy())  # a valid .npy of another feature dimension


def _folder(path, feats, cache, key):
    path.unlink()
    path.mkdir()
    (path / "stray.txt").write_text("not an array")


def _truncated(path, feats, cache, key):
    path.write_bytes(path.read_bytes()[:-8])


def _too_few_rows(path, feats, cache, key):
    cache.put(key, feats[:-1])  # a consistent entry (sidecar and all), one row short of the task


def _missing_sidecar(path, feats, cache, key):
    cache.sidecar_path(key).unlink()  # as written by a transferlab before entries were verified


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_other_values, "does not match its recorded SHA-256"),
        (_other_shape, r"shape \(24, 3\), but its record says <f\d of shape \(24, 8\)"),
        (_folder, "is a folder"),
        (_truncated, "bytes, not the"),
        (_too_few_rows, "has 23 rows, but the data has 24 images"),
        (_missing_sidecar, "has no checksum record"),
    ],
    ids=["other-values", "other-shape", "folder", "truncated", "too-few-rows", "missing-sidecar"],
)
def test_a_bad_entry_is_recomputed_exactly(tmp_path, model, task, damage, reason):
    fresh = extract(model, task.x_train)  # computed without any cache
    cache = FeatureCache(tmp_path)
    cache.features(model, task)
    key = cache.key(model, kind="features", task=task, split="train")
    damage(cache.path(key), fresh, cache, key)
    with pytest.warns(UserWarning, match=reason):
        again = cache.features(model, task)
    np.testing.assert_array_equal(again, fresh)
    assert again.shape == fresh.shape and again.dtype == fresh.dtype
    assert (cache.hits, cache.misses) == (0, 2)
    # The entry was rewritten: a new cache reads it, verified, without a warning.
    reread = FeatureCache(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(reread.features(model, task), fresh)
    assert (reread.hits, reread.misses) == (1, 0)


def test_sidecar_records_shape_dtype_and_sha256_of_the_bytes(tmp_path):
    cache = FeatureCache(tmp_path)
    array = np.arange(12, dtype=np.float32).reshape(4, 3)
    cache.put("ab" * 16, array)
    record = json.loads(cache.sidecar_path("ab" * 16).read_text())
    assert record == {"format": 1, "shape": [4, 3], "dtype": "<f4",
                      "sha256": hashlib.sha256(array.tobytes()).hexdigest()}
    got = cache.get("ab" * 16, rows=4)
    np.testing.assert_array_equal(got, array)
    assert got.dtype == np.float32 and got.flags.writeable


def test_a_header_claiming_a_huge_array_allocates_nothing(tmp_path):
    # Both the sidecar and the .npy header claim 10^12 rows; the file's size gives it away before any read.
    cache = FeatureCache(tmp_path)
    key = "cd" * 16
    cache.put(key, np.zeros((2, 8)))
    path = cache.path(key)
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12, 8)}
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(b"\0" * 128)
    record = json.loads(cache.sidecar_path(key).read_text())
    cache.sidecar_path(key).write_text(json.dumps({**record, "shape": [10**12, 8]}))
    with pytest.warns(UserWarning, match=r"is 256 bytes, not the 64000000000128 its shape and dtype need"):
        assert cache.get(key) is None


def test_reading_a_bad_entry_writes_nothing(tmp_path, model, task):
    cache = FeatureCache(tmp_path)
    cache.features(model, task)
    key = cache.key(model, kind="features", task=task, split="train")
    np.save(cache.path(key), extract(model, task.x_train)[:, :3].copy())
    before = _snapshot(tmp_path)
    with pytest.warns(UserWarning, match="record says"):
        assert cache.get(key, rows=len(task.y_train)) is None
    assert _snapshot(tmp_path) == before


def _snapshot(root):
    return {p: (p.stat().st_mtime_ns, p.stat().st_size, p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def test_a_read_only_cache_serves_a_fully_cached_run(tmp_path, model, task, monkeypatch):
    fresh_feats = extract(model, task.x_train)
    cache = FeatureCache(tmp_path / "features")
    cache.features(model, task)
    cache.source_probabilities(model, task)
    before = _snapshot(tmp_path)

    def no_write(*args, **kwargs):
        raise AssertionError("a fully cached read wrote to the cache")

    # Whatever the user: no write function of the cache may be called ...
    for name in ("atomic_write", "atomic_write_bytes"):
        monkeypatch.setattr(_cache, name, no_write)
    monkeypatch.setattr(_cache.shutil, "rmtree", no_write)
    # ... and, where permissions bind (not as root), the folder is read-only too.
    read_only = os.geteuid() != 0
    paths = sorted(tmp_path.rglob("*"), reverse=True) + [tmp_path]
    if read_only:
        for p in paths:
            p.chmod(stat.S_IRUSR | stat.S_IXUSR if p.is_dir() else stat.S_IRUSR)
    try:
        reader = FeatureCache(tmp_path / "features")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            feats = reader.features(model, task)
            probs = reader.source_probabilities(model, task)
    finally:
        if read_only:
            for p in paths:
                p.chmod(stat.S_IRWXU if p.is_dir() else stat.S_IRUSR | stat.S_IWUSR)
    assert (reader.hits, reader.misses) == (2, 0)
    np.testing.assert_array_equal(feats, fresh_feats)
    assert probs.shape == (len(task.y_train), 3)
    assert _snapshot(tmp_path) == before


def test_model_candidate_recomputes_entries_with_too_few_rows(tmp_path):
    # A consistent entry one row short is the cache's fault, not a labels mismatch: it is recomputed.
    from transferlab.models import wrap_module
    from transferlab.rank import ModelCandidate

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(12, 12, 3), dtype=np.uint8) for _ in range(6)]
    data = ImageData("six", images, np.array([0, 1, 2, 0, 1, 2]), images[:3], np.array([0, 1, 2]),
                     ("a", "b", "c"), fingerprint="six-images")
    model = wrap_module(TinyConvNet(num_classes=3, in_channels=3), input_size=12)
    cache = FeatureCache(tmp_path)
    first = ModelCandidate(model, data, cache=cache, progress=False)
    feats, probs = first.array("features").copy(), first.array("source_probs").copy()
    entries = sorted(tmp_path.rglob("*.npy"))
    assert len(entries) == 2
    for path in entries:
        cache.put(path.stem, np.load(path)[:-1])
    with pytest.warns(UserWarning, match="has 5 rows, but the data has 6 images"):
        second = ModelCandidate(model, data, cache=cache, progress=False)
        np.testing.assert_array_equal(second.array("features"), feats)
        np.testing.assert_array_equal(second.array("source_probs"), probs)
