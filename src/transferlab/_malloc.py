"""glibc's malloc told to keep freed memory, for processes that run torch on the CPU.

Torch's CPU kernels allocate and free blocks of tens of megabytes for every
batch. glibc serves a block that large with a fresh ``mmap`` and unmaps it on
``free`` (and trims the top of its heap), so every batch pays page faults on
memory the kernel must zero again. On our 2-core VM an extraction of 10,000
28x28 images by the built-in ConvNet took 4.2-8.6 s with glibc's defaults,
varying run to run, and 3.9-4.3 s with freed memory kept (``bench/scores.py``).
"""

from __future__ import annotations

import ctypes
import os
import sys

#: ``mallopt`` parameters of glibc's ``malloc.h``.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks below this come from the heap, so a freed block is reused instead of unmapped.
MMAP_THRESHOLD = 1 << 30
#: The heap's free top is handed back to the kernel only beyond this.
TRIM_THRESHOLD = 2**31 - 1
_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse in this process; whether it was applied.

    The same as starting the process with ``MALLOC_MMAP_THRESHOLD_=1073741824``
    and ``MALLOC_TRIM_THRESHOLD_=2147483647``. The price: the process's resident
    memory does not shrink after a peak (the peak itself is unchanged). The
    command line and the study workers call it at start; a library caller may too.
    Nothing is changed (False) off Linux, on a C library without ``mallopt``, or
    when either environment variable is set (the user's choice wins).
    """
    if not sys.platform.startswith("linux") or any(name in os.environ for name in _ENVIRONMENT):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no glibc, nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
