"""Argument checks shared across packages: one message for one mistake."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int`` >= ``minimum`` (bools and floats are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_nonnegative(value: Any, name: str) -> float:
    """``value`` as a finite ``float`` >= 0 (bools, NaN and Inf are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return float(value)


def check_seed(seed: Any) -> int:
    """A seed: a non-negative ``int`` (it is written into JSON recipes)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    return int(seed)


def check_int_sequence(value: Any, name: str, *, minimum: int = 1, length: int | None = None) -> list[int]:
    """``value`` as a non-empty list of ints >= ``minimum`` (of exactly ``length`` entries if given)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must be a sequence of integers; got {value!r}")
    items = list(value)
    if not items:
        raise ValueError(f"{name} must have at least one entry; got {value!r}")
    if length is not None and len(items) != length:
        raise ValueError(f"{name} must have {length} entries; got {len(items)}: {value!r}")
    return [check_int(v, f"{name}[{i}]", minimum=minimum) for i, v in enumerate(items)]
