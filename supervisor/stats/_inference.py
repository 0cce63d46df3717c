"""The statistics every decision rests on: tests, intervals and minimum sample sizes.

One module, so that each comparison that decides a check (error rates, accuracy, latency,
drift) uses the same, named procedures. Everything is delegated to scipy/statsmodels; nothing
here is a hand-rolled test. scipy and statsmodels are imported inside the functions, so
importing this module (and the CLI that imports it indirectly) stays fast.

Conventions: proportions are given as (successes, n) counts, never as rates, because every
test and interval needs the sample size. ``alternative`` follows scipy: ``"greater"`` asks
whether the first sample's proportion is larger than the second's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Alternative = Literal["two-sided", "greater", "less"]


class Interval(BaseModel):
    """A confidence interval ``[low, high]`` at confidence ``1 - alpha``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float
    high: float
    alpha: float = Field(description="1 - confidence level, e.g. 0.05 for a 95% interval.")

    def contains(self, value: float) -> bool:
        """True if ``value`` lies inside the interval (ends included)."""
        return self.low <= value <= self.high


def _counts(successes: int, n: int) -> None:
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"counts {successes!r} of {n!r} are impossible; need 0 <= successes <= n")


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> Interval | None:
    """Wilson score interval for a proportion; None when ``n`` is 0.

    Wilson rather than the normal (Wald) interval: it stays inside [0, 1] and keeps its
    coverage for small n and proportions near 0 or 1 (accuracy near 1, error rates near 0).
    """
    from statsmodels.stats.proportion import proportion_confint

    _counts(successes, n)
    if n == 0:
        return None
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return Interval(low=float(low), high=float(high), alpha=alpha)


def difference_interval(x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05) -> Interval | None:
    """Newcombe (hybrid Wilson score) interval for ``x1/n1 - x2/n2``; None if a sample is empty.

    Built from the two Wilson intervals, so it behaves at small n where the Wald interval of
    a difference undercovers.
    """
    from statsmodels.stats.proportion import confint_proportions_2indep

    _counts(x1, n1)
    _counts(x2, n2)
    if n1 == 0 or n2 == 0:
        return None
    low, high = confint_proportions_2indep(
        x1, n1, x2, n2, method="newcomb", compare="diff", alpha=alpha
    )
    return Interval(low=float(low), high=float(high), alpha=alpha)


def fisher_exact(
    x1: int, n1: int, x2: int, n2: int, alternative: Alternative = "greater"
) -> float | None:
    """Fisher's exact test that proportion ``x1/n1`` differs from ``x2/n2`` (p-value).

    Exact: valid at any sample size, including rare events (error rates of 0.5%) where the
    normal approximation of the two-proportion z-test is poor. None if a sample is empty.
    """
    from scipy.stats import fisher_exact as _fisher

    _counts(x1, n1)
    _counts(x2, n2)
    if n1 == 0 or n2 == 0:
        return None
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    return float(_fisher(table, alternative=alternative).pvalue)


def two_proportion_test(
    x1: int, n1: int, x2: int, n2: int, alternative: Alternative = "greater"
) -> float | None:
    """Two-proportion z-test (pooled variance) that ``x1/n1`` differs from ``x2/n2`` (p-value).

    For large samples; prefer :func:`fisher_exact` when any cell count is small. None if a
    sample is empty or both proportions are 0 or 1 (no variance: no test).
    """
    from statsmodels.stats.proportion import proportions_ztest

    _counts(x1, n1)
    _counts(x2, n2)
    if n1 == 0 or n2 == 0 or (x1 + x2) in (0, n1 + n2):
        return None
    sm_alt = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
    _, p = proportions_ztest([x1, x2], [n1, n2], alternative=sm_alt)
    return float(p)


def one_proportion_test(
    successes: int, n: int, p0: float, alternative: Alternative = "less"
) -> float | None:
    """Exact binomial test of ``successes/n`` against a fixed proportion ``p0`` (p-value).

    For comparing online accuracy with a fixed reference such as offline validation accuracy.
    None if ``n`` is 0.
    """
    from scipy.stats import binomtest

    _counts(successes, n)
    if n == 0:
        return None
    return float(binomtest(successes, n, p0, alternative=alternative).pvalue)


def mann_whitney(
    a: Sequence[float], b: Sequence[float], alternative: Alternative = "greater"
) -> float | None:
    """Mann-Whitney U test that values in ``a`` tend to be larger than in ``b`` (p-value).

    For signals with no per-request counts, such as per-minute p99 latencies: rank based, so
    no distribution is assumed. Exact below 8 values a side (scipy), normal approximation
    above. None if either sample is empty.
    """
    from scipy.stats import mannwhitneyu

    if not a or not b:
        return None
    return float(mannwhitneyu(list(a), list(b), alternative=alternative).pvalue)


def min_samples_two_proportions(
    p_base: float, p_alt: float, *, alpha: float, power: float = 0.8, ratio: float = 1.0
) -> int:
    """Smallest size of the FIRST sample for a one-sided test to see ``p_base`` vs ``p_alt``.

    The second sample is ``ratio`` times larger (e.g. 4 for a 20% canary against its 80%
    stable). Uses Cohen's arcsine effect size and the normal power of two independent samples
    (statsmodels), rounded up. This is how a playbook's ``min_samples`` is derived: the size
    at which the effect it cares about would be detected with ``power`` at ``alpha``.
    """
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    effect = abs(float(proportion_effectsize(p_alt, p_base)))
    if effect == 0:
        raise ValueError(f"p_base {p_base!r} equals p_alt {p_alt!r}: no effect to detect")
    n = NormalIndPower().solve_power(
        effect_size=effect, alpha=alpha, power=power, ratio=ratio, alternative="larger"
    )
    return math.ceil(float(n))


def min_samples_one_proportion(p0: float, p_alt: float, *, alpha: float, power: float = 0.8) -> int:
    """Smallest n for a one-sided test of a proportion against a fixed ``p0`` to see ``p_alt``."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    effect = abs(float(proportion_effectsize(p_alt, p0)))
    if effect == 0:
        raise ValueError(f"p0 {p0!r} equals p_alt {p_alt!r}: no effect to detect")
    # One sample against a constant: the two-sample formula with an infinitely large second
    # sample, i.e. ratio -> inf; statsmodels' NormalIndPower accepts ratio=0 for that case.
    n = NormalIndPower().solve_power(
        effect_size=effect, alpha=alpha, power=power, ratio=0, alternative="larger"
    )
    return math.ceil(float(n))


def min_minutes_rank_test(alpha: float) -> int:
    """Fewest values per sample at which a one-sided Mann-Whitney test can reach ``alpha``.

    With n values on each side the smallest exact one-sided p-value is 1 / C(2n, n); below
    that n the test cannot decide anything, however large the difference.
    """
    n = 1
    while 1 / math.comb(2 * n, n) > alpha:
        n += 1
    return n


def holm_reject(p_values: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Which of several tests reject at family-wise error ``alpha`` (Holm's step-down method).

    For one decision resting on many tests at once (a drift test per feature): each test's own
    alpha would flag some feature by chance almost every time.
    """
    # Holm (1979), as statsmodels' ``multipletests(method="holm")`` computes it (the test
    # checks they agree): the k-th smallest p-value (from 0) rejects at alpha / (m - k), and the
    # first that does not stops the step-down. Not delegated, because multipletests runs a full
    # gc.collect() on every call: 0.2 s to seconds each in a process that has Evidently and
    # pandas loaded, and the drift checks call this many times per investigation.
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    reject = [False] * m
    for k, i in enumerate(order):
        if p_values[i] > alpha / (m - k):
            break
        reject[i] = True
    return reject


EffectKind = Literal["ratio", "difference"]


def min_samples_for_effect(
    baseline_events: int,
    baseline_n: int,
    *,
    effect: EffectKind,
    size: float,
    alpha: float,
    power: float = 0.8,
    allocation: float = 1.0,
) -> int | None:
    """Smallest size of the compared sample at which a one-sided test sees ``effect`` of ``size``.

    The looked-for alternative is stated against the OBSERVED baseline proportion
    ``baseline_events / baseline_n`` (e.g. the stable version's error rate): ``ratio`` means
    ``p_alt = size * p_base`` (an error rate tripling: ``size=3``), ``difference`` means
    ``p_alt = p_base + size`` (accuracy 20 points lower: ``size=-0.2``), clipped to [0, 1].
    ``allocation`` is the baseline sample's size over the compared sample's (19 for a 5%
    canary beside its 95% stable). None when the baseline is empty or the alternative equals
    it (a ratio of a zero rate): no minimum can be derived, so nothing can be decided on it.
    """
    _counts(baseline_events, baseline_n)
    if baseline_n == 0 or allocation <= 0:
        return None
    p_base = baseline_events / baseline_n
    p_alt = min(1.0, max(0.0, p_base * size if effect == "ratio" else p_base + size))
    if p_alt == p_base:
        return None
    return min_samples_two_proportions(p_base, p_alt, alpha=alpha, power=power, ratio=allocation)
