"""The CPU threads a job runs on.

Torch splits a convolution's gradient reductions across its intra-op threads,
so a fine-tuning run on one thread and the same run on two end a few ulps apart,
which SGD grows into different accuracies. A job pinned to a fixed number of
threads gives the same numbers on a laptop and on a 64-core server, in-process
or in a worker; the study then runs several such jobs side by side instead
(``executor="auto"`` in :func:`transferlab.studies._study.run_study`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from transferlab._validation import check_int


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run torch's intra-op work and every BLAS library on ``threads`` threads inside; restore after.

    Parameters
    ----------
    threads : int or None
        At least 1; None leaves the caller's settings alone.
    """
    if threads is None:
        yield
        return
    threads = check_int(threads, "threads")
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)
