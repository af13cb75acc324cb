"""Checks at the public boundary, written once: each raises a ValueError that names the
argument, says what was expected and shows what came."""

from __future__ import annotations

import math


def check_positive_int(name: str, value) -> None:
    """Raises ValueError unless `value` is an int > 0 (bools are not counts)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def check_positive_number(name: str, value) -> None:
    """Raises ValueError unless `value` is a finite real number > 0 (NaN and inf are not)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value <= 0):
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
