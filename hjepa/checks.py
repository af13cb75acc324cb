"""Checks at the public boundary, written once: each raises a ValueError that names the
argument, says what was expected and shows what came."""

from __future__ import annotations

import math
import numbers

import numpy as np


def is_int(value) -> bool:
    """Whether `value` is an integer: a Python int or a numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def check_positive_int(name: str, value) -> None:
    """Raises ValueError unless `value` is an integer > 0: a Python int or a numpy integer
    (bools are not counts)."""
    if not is_int(value) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def check_positive_number(name: str, value) -> None:
    """Raises ValueError unless `value` is a finite real number > 0 (NaN and inf are not)."""
    if (isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value <= 0):
        raise ValueError(f"{name}: expected a finite positive number, got {value!r}")


def check_nonnegative_number(name: str, value) -> None:
    """Raises ValueError unless `value` is a finite real number >= 0 (NaN and inf are not)."""
    if (isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value < 0):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
