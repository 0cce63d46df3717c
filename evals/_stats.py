"""The statistics the eval reports use, in one place: intervals on proportions and on means.

Both come from statsmodels/scipy; nothing here is hand-rolled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Confidence level of every interval in the reports (the conventional 95%).
CONFIDENCE = 0.95


def wilson(successes: int, trials: int) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion; None without trials.

    Wilson rather than the normal approximation: the suites are small (a category holds a
    handful of cases) and accuracies sit near 0 or 1, where the normal interval leaves [0, 1]
    and collapses to a point at 0% or 100%.
    """
    if trials <= 0:
        return None
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, trials, alpha=1 - CONFIDENCE, method="wilson")
    return round(float(low), 4), round(float(high), 4)


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
