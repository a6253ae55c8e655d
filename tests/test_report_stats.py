"""The interval methods reproduce the worked examples of the papers that define them."""

from __future__ import annotations

import pytest

from engagement.reports import stats


def _pair(interval: stats.Interval) -> tuple[float, float]:
    return interval.low, interval.high


def test_wilson_matches_newcombes_single_proportion_examples() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I
    assert _pair(stats.wilson(81, 263)) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert _pair(stats.wilson(15, 148)) == pytest.approx((0.0624, 0.1605), abs=5e-5)
    assert _pair(stats.wilson(0, 20)) == pytest.approx((0.0, 0.1611), abs=5e-5)


def test_newcombe_matches_the_worked_differences_of_method_10() -> None:
    # Newcombe (1998), "Interval estimation for the difference between independent proportions", Table II
    assert _pair(stats.newcombe(56, 70, 48, 80)) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    assert _pair(stats.newcombe(9, 10, 3, 10)) == pytest.approx((0.1705, 0.8090), abs=5e-5)
    assert _pair(stats.newcombe(5, 56, 0, 29)) == pytest.approx((-0.0381, 0.1926), abs=5e-5)
    assert _pair(stats.newcombe(0, 10, 0, 20)) == pytest.approx((-0.1611, 0.2775), abs=5e-5)
    assert _pair(stats.newcombe(10, 10, 0, 20)) == pytest.approx((0.6791, 1.0), abs=5e-5)


def test_quantiles_interpolate_between_ranks() -> None:
    assert stats.quantile([3.0, 10.0, 20.0], 0.5) == 10.0
    assert stats.quantile([3.0, 10.0, 20.0], 0.75) == 15.0
    assert stats.quantile([7.0], 0.75) == 7.0
    assert stats.quantile([], 0.5) is None


@pytest.mark.parametrize(
    ("n1", "n2", "interval", "starts"),
    [
        (100, 0, None, "no holdout"),
        (0, 50, None, "nobody in treatment"),
        (29, 100, stats.Interval(0.01, 0.2), "not enough data yet"),
        (100, 100, stats.Interval(0.01, 0.2), "working"),
        (100, 100, stats.Interval(-0.2, -0.01), "hurting"),
        (100, 100, stats.Interval(-0.05, 0.1), "no clear difference yet"),
    ],
)
def test_the_verdict_in_plain_words(n1: int, n2: int, interval: stats.Interval | None, starts: str) -> None:
    assert stats.verdict(n1, n2, interval, 30).startswith(starts)
