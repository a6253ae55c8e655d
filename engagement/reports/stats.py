"""Pure statistics: Wilson intervals, Newcombe's interval for a difference, a ratio of sums' difference,
quantiles, the verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal
METHOD = "Newcombe's hybrid score interval (method 10) from Wilson score intervals, 95%"


@dataclass(frozen=True)
class Interval:
    """A closed interval [low, high]."""

    low: float
    high: float


def wilson(successes: int, n: int, z: float = Z95) -> Interval:
    """Wilson score interval for a proportion; [0, 1] when n is 0."""
    if n == 0:
        return Interval(0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator))


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> Interval:
    """Newcombe's hybrid score interval for p1 - p2 (Newcombe 1998, method 10)."""
    p1, p2 = x1 / n1, x2 / n2
    w1, w2 = wilson(x1, n1, z), wilson(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    high = d + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    return Interval(low, high)


RATIO_METHOD = "difference of ratios of sums, 95%, by linearisation (delta method) of each group's ratio"


@dataclass(frozen=True)
class Sums:
    """A group's sums for the ratio Σy ÷ Σx (net MRR retained: y the MRR after, x the MRR at entry)."""

    n: int
    x: float
    y: float
    xx: float
    yy: float
    xy: float

    @property
    def ratio(self) -> float | None:
        return self.y / self.x if self.x > 0 else None

    def variance(self) -> float | None:
        """The linearised variance of Σy ÷ Σx: n/(n-1) · Σ(y - R·x)² ÷ (Σx)² (None below 2 subjects)."""
        r = self.ratio
        if r is None or self.n < 2:
            return None
        residuals = max(0.0, self.yy - 2 * r * self.xy + r * r * self.xx)
        return self.n / (self.n - 1) * residuals / (self.x * self.x)


def ratio_difference(a: Sums, b: Sums, z: float = Z95) -> Interval | None:
    """An interval for ratio(a) - ratio(b), the groups independent (None without 2 subjects each)."""
    ra, rb, va, vb = a.ratio, b.ratio, a.variance(), b.variance()
    if ra is None or rb is None or va is None or vb is None:
        return None
    spread = z * math.sqrt(va + vb)
    return Interval(ra - rb - spread, ra - rb + spread)


def quantile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-quantile by linear interpolation between closest ranks (numpy's default); None if empty."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * q
    below = math.floor(position)
    above = min(below + 1, len(sorted_values) - 1)
    fraction = position - below
    return sorted_values[below] + (sorted_values[above] - sorted_values[below]) * fraction


def verdict(n_treated: int, n_holdout: int, interval: Interval | None, min_sample: int) -> str:
    """The lift in plain words."""
    if n_holdout == 0:
        return "no holdout: give the journey a `holdout:` share to measure its lift"
    if n_treated == 0:
        return "nobody in treatment yet"
    if min(n_treated, n_holdout) < min_sample or interval is None:
        return f"not enough data yet (needs at least {min_sample} in treatment and in holdout)"
    if interval.low > 0:
        return "working: treated people convert more than the holdout"
    if interval.high < 0:
        return "hurting: treated people convert less than the holdout"
    return "no clear difference yet: the interval still includes zero"


NPS_METHOD = "adjusted Wald (Rocks 2016: n + 3, promoters and detractors + 3/4 each), 95%"


def nps_interval(promoters: int, detractors: int, n: int, z: float = Z95) -> Interval | None:
    """95% interval for the NPS (on -100..100) by the adjusted Wald method; None with no answers.

    The standard error is the variance of a difference of two proportions of one trinomial sample,
    (p + d - (p - d)²) / n, after adding 3 to n and 3/4 to the promoters and to the detractors
    (Rocks 2016, The American Statistician), so a handful of answers still gets a sensible width.
    """
    if n == 0:
        return None
    size = n + 3
    p, d = (promoters + 0.75) / size, (detractors + 0.75) / size
    centre = p - d
    spread = z * math.sqrt((p + d - centre * centre) / size)
    return Interval(100 * max(-1.0, centre - spread), 100 * min(1.0, centre + spread))
