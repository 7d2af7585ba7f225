"""Subnormal floats are flushed to zero inside the context only."""

import torch

from transferlab._denormals import flush_denormals


def test_flush_inside_and_restored_after():
    tiny = torch.tensor(1e-310, dtype=torch.float64)
    assert (tiny * 1.0).item() != 0.0
    with flush_denormals():
        assert (tiny * 1.0).item() == 0.0
    assert (tiny * 1.0).item() != 0.0
