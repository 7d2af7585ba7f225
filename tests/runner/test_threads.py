"""cpu_threads: a job's CPU threads, set inside and restored after."""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_info

from transferlab.runner import cpu_threads


def _blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_inside_one_thread_after_the_callers():
    before, blas_before = torch.get_num_threads(), _blas_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
        assert _blas_threads() <= {1}
    assert torch.get_num_threads() == before and _blas_threads() == blas_before


def test_restored_when_the_job_fails():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"), cpu_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_none_leaves_the_callers_settings():
    torch_before, blas_before = torch.get_num_threads(), _blas_threads()
    with cpu_threads(None):
        assert torch.get_num_threads() == torch_before and _blas_threads() == blas_before


@pytest.mark.parametrize("bad", [0, -1, 1.0, "2", True])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError, match="threads"), cpu_threads(bad):
        pass
