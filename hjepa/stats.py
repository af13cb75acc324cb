"""Success rates as a reader should see them: intervals, and floors for quality guards."""

from __future__ import annotations

import math


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a success rate `successes / n`."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(min(k, n) + 1))


def success_floor(measured_successes: int, measured_n: int, n: int, *,
                  false_alarm: float = 0.01) -> int:
    """The fewest successes in `n` fresh episodes that a model as good as measured reaches,
    but for a false alarm of at most `false_alarm`.

    The measured rate is uncertain, so the floor assumes the worst plausible rate, the lower
    end of its 95% Wilson interval, p_low; it is the largest k with P(X < k) <= false_alarm
    for X ~ Binomial(n, p_low). A model as good as measured falls below it with probability
    at most `false_alarm` (less, when its true rate is above p_low).

    Example: 58 of 64 measured (p_low = 0.81); a guard of 16 episodes needs at least 9.
    """
    if not 0 <= measured_successes <= measured_n or n <= 0:
        raise ValueError(f"success_floor: expected 0 <= successes <= n and n > 0, got "
                         f"{measured_successes} of {measured_n}, guard of {n}")
    p_low = wilson(measured_successes, measured_n)[0]
    floor = 0
    while floor < n and binomial_cdf(floor, n, p_low) <= false_alarm:
        floor += 1  # P(X < floor + 1) = P(X <= floor) is still within the false alarm
    return floor
