"""The statistics the eval reports use: intervals on proportions and on means.

The Wilson interval is :mod:`supervisor.stats`' (the one every decision uses); the interval on a
mean over seeds comes from scipy. Nothing here is hand-rolled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from supervisor.stats import wilson_interval

#: Confidence level of every interval in the reports (the conventional 95%).
CONFIDENCE = 0.95


def wilson(successes: int, trials: int) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion; None without trials.

    Wilson rather than the normal approximation: the suites are small (a category holds a
    handful of cases) and accuracies sit near 0 or 1, where the normal interval leaves [0, 1]
    and collapses to a point at 0% or 100%.
    """
    interval = wilson_interval(successes, trials, alpha=1 - CONFIDENCE)
    return None if interval is None else (round(interval.low, 4), round(interval.high, 4))


def mean_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """Mean and the half-width of its 95% Student-t interval; None with fewer than 2 values.

    Used across seeds (one value per seed), where K is small, hence t rather than normal.
    """
    if len(values) < 2:
        return None
    from scipy import stats

    mean = float(sum(values) / len(values))
    sem = float(stats.sem(values))
    if not math.isfinite(sem) or sem == 0.0:
        return mean, 0.0
    low, _ = stats.t.interval(CONFIDENCE, len(values) - 1, loc=mean, scale=sem)
    return mean, float(mean - low)
