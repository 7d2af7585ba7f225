"""Cache entries written in chunks and read back memory-mapped: the same bytes, records and checks as put/get."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from transferlab.features._cache import FeatureCache


def _chunks(array, sizes):
    edges = np.cumsum([0, *sizes])
    return [array[a:b] for a, b in zip(edges[:-1], edges[1:])]


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_chunked_write_is_byte_for_byte_a_put(tmp_path, dtype):
    array = (np.random.default_rng(0).normal(size=(37, 5)) * 100).astype(dtype)
    whole, chunked = FeatureCache(tmp_path / "whole"), FeatureCache(tmp_path / "chunked")
    key = "ab" * 16
    whole.put(key, array)
    with chunked.writer(key, rows=37) as out:
        for part in _chunks(array, [16, 16, 5]):
            out.write(part)
    assert out.path == chunked.path(key)
    assert chunked.path(key).read_bytes() == whole.path(key).read_bytes()
    record = json.loads(chunked.sidecar_path(key).read_text())
    assert record == json.loads(whole.sidecar_path(key).read_text())
    assert record["sha256"] == hashlib.sha256(array.tobytes()).hexdigest()  # of the bytes, computed apart


def test_mmap_read_equals_the_in_memory_read_and_is_read_only(tmp_path):
    array = np.random.default_rng(1).normal(size=(50, 7))
    cache = FeatureCache(tmp_path)
    with cache.writer("cd" * 16, rows=50) as out:
        for part in _chunks(array, [7] * 7 + [1]):
            out.write(part)
    mapped = cache.get("cd" * 16, rows=50, mmap=True)
    in_memory = cache.get("cd" * 16, rows=50)
    np.testing.assert_array_equal(mapped, array)
    np.testing.assert_array_equal(in_memory, array)
    assert type(mapped) is np.ndarray and mapped.dtype == np.float64 and not mapped.flags.writeable
    assert in_memory.flags.writeable  # the default read is unchanged: a private, writable copy
    with pytest.raises(ValueError, match="read-only"):
        mapped[0, 0] = 1.0


def test_mmap_read_runs_every_check(tmp_path):
    cache = FeatureCache(tmp_path)
    key = "ef" * 16
    cache.put(key, np.arange(24.0).reshape(6, 4))
    with pytest.warns(UserWarning, match="has 6 rows, but the data has 5 images"):
        assert cache.get(key, rows=5, mmap=True) is None
    path = cache.path(key)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF  # one flipped byte of data
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="does not match its recorded SHA-256"):
        assert cache.get(key, mmap=True) is None
    path.write_bytes(bytes(raw[:-8]))
    with pytest.warns(UserWarning, match="truncated"):
        assert cache.get(key, mmap=True) is None


def test_a_failed_or_short_write_leaves_the_old_entry(tmp_path):
    cache = FeatureCache(tmp_path)
    key = "01" * 16
    old = np.ones((4, 2))
    cache.put(key, old)
    with pytest.raises(ValueError, match="needs 4 rows; 3 were written"):
        with cache.writer(key, rows=4) as out:
            out.write(np.zeros((3, 2)))
    with pytest.raises(RuntimeError, match="model failed"):
        with cache.writer(key, rows=4) as out:
            out.write(np.zeros((2, 2)))
            raise RuntimeError("model failed")
    with pytest.raises(ValueError, match="too many"):
        with cache.writer(key, rows=4) as out:
            out.write(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"every chunk must be float64 \(k, 2\)"):
        with cache.writer(key, rows=4) as out:
            out.write(np.zeros((2, 2)))
            out.write(np.zeros((2, 3)))
    np.testing.assert_array_equal(cache.get(key, rows=4), old)
    assert not list(tmp_path.rglob("*.tmp")), "a temporary file was left behind"
    with pytest.raises(ValueError, match="rows must be a non-negative int"):
        with cache.writer(key, rows=-1):
            pass


def test_an_empty_entry_reads_back_empty_and_read_only(tmp_path):
    cache = FeatureCache(tmp_path)
    with cache.writer("23" * 16, rows=0) as out:
        out.write(np.zeros((0, 3)))
    got = cache.get("23" * 16, rows=0, mmap=True)
    assert got.shape == (0, 3) and not got.flags.writeable
