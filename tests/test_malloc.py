"""keep_freed_memory: glibc's malloc keeps freed memory; the user's environment wins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from transferlab import _malloc

_LIBC = os.confstr("CS_GNU_LIBC_VERSION") if sys.platform.startswith("linux") else ""
_glibc = _LIBC.startswith("glibc")
_GLIBC_VERSION = tuple(int(p) for p in _LIBC.split()[1].split(".")[:2]) if _glibc else ()


def _child(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in _malloc._ENVIRONMENT}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**clean, **env}, capture_output=True,
                          text=True, check=True, timeout=120)
    return done.stdout.strip()


_MALLINFO = """
    import ctypes
    from transferlab._malloc import keep_freed_memory

    class Info(ctypes.Structure):  # glibc's struct mallinfo2 (2.33+)
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = (ctypes.c_void_p,)
    applied = keep_freed_memory() if KEEP else None
    block = libc.malloc(64 << 20)
    mapped = libc.mallinfo2().hblkhd  # bytes in blocks served by their own mmap
    libc.free(block)
    kept = libc.mallinfo2().fordblks  # free bytes the heap kept after the free
    print(applied, mapped >= 64 << 20, kept >= 64 << 20)
"""


@pytest.mark.skipif(_GLIBC_VERSION < (2, 33), reason="mallinfo2: glibc 2.33+ only")
def test_a_large_block_comes_from_the_heap_and_stays_there_once_freed():
    # glibc's defaults: a 64 MiB block is its own mapping, unmapped on free (the control).
    assert _child("KEEP = False\n" + textwrap.dedent(_MALLINFO)).split() == ["None", "True", "False"]
    # kept: the block comes from the heap, and the freed memory stays in it for the next batch
    assert _child("KEEP = True\n" + textwrap.dedent(_MALLINFO)).split() == ["True", "False", "True"]


@pytest.mark.skipif(not _glibc, reason="glibc's mallopt only")
def test_the_users_environment_wins():
    code = "from transferlab._malloc import keep_freed_memory; print(keep_freed_memory())"
    assert _child(code, MALLOC_TRIM_THRESHOLD_="131072") == "False"
    assert _child(code, MALLOC_MMAP_THRESHOLD_="131072") == "False"


def test_nothing_changes_off_linux(monkeypatch):
    monkeypatch.setattr(_malloc.sys, "platform", "darwin")
    assert _malloc.keep_freed_memory() is False


def test_the_command_line_and_the_study_workers_call_it():
    from transferlab import cli
    from transferlab.runner import _executors

    assert cli.keep_freed_memory is _malloc.keep_freed_memory
    assert _executors.keep_freed_memory is _malloc.keep_freed_memory
