"""Atomic file writes: a crash mid-write never leaves a readable partial file.

Every writer goes to a hidden temporary file in the destination folder, flushes
it to disk and renames it over the destination (``os.replace`` is atomic on
POSIX and Windows). Readers only ever see the old file or the complete new one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is untouched. An
    ``OSError`` that names no file (a full disk, raised by a write or ``fsync``)
    is raised again, of the same errno, naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp (and writers such as safetensors) create files 0600; give the
        # finished file the mode an ordinary new file gets under the umask.
        os.chmod(tmp_path, 0o666 & ~_umask())
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        if exc.errno is not None and exc.filename is None:  # a full disk says so without naming the file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` and atomically move the result to ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))
