"""The atomic writer: a failed write leaves nothing behind and names the file it was writing."""

from __future__ import annotations

import errno
import os

import pytest

from transferlab import _atomic


def test_a_full_disk_names_the_destination_and_leaves_nothing(tmp_path, monkeypatch):
    def full(fd):  # a full disk fails the write or its fsync without naming a file
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_atomic.os, "fsync", full)
    with pytest.raises(OSError) as info:
        _atomic.atomic_write_bytes(tmp_path / "out.bin", b"data")
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(tmp_path / "out.bin")
    assert list(tmp_path.iterdir()) == []


def test_an_error_that_names_its_file_is_raised_as_it_is(tmp_path):
    def write(tmp):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), "/some/other/path")

    with pytest.raises(IsADirectoryError) as info:
        _atomic.atomic_write(tmp_path / "out.bin", write)
    assert info.value.filename == "/some/other/path"
    assert list(tmp_path.iterdir()) == []
