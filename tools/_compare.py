"""Version comparisons with their statistics: counts, tests and intervals, not raw ratios.

A ratio of two rates says nothing without the counts under it: 2 errors in 40 requests is a
5% error rate, and so is 300 in 6,000. Every comparison here therefore returns the counts, a
p-value from :mod:`supervisor.stats` and, for accuracy, Wilson intervals, so a playbook can
require both a large effect and a significant one, above a minimum sample size.

``compare_with_previous_version`` judges a version that serves all traffic (a full deploy),
where no canary runs beside it: against the version it replaced, over the hour before the
deploy, and against its own offline validation.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from supervisor.domain import MetricName
from supervisor.stats import (
    Interval,
    fisher_exact,
    mann_whitney,
    one_proportion_test,
    wilson_interval,
)

from ._ports import MetricReading
from ._toolkit import ToolContext

#: Per-minute series feed the rank test for signals without per-request counts (p99 latency,
#: mean score). At most this many points: enough for an exact test, few enough reads.
MAX_POINTS = 30

#: Confidence of the Wilson intervals the comparisons report.
ALPHA = 0.05

#: The new version's first minutes after a full deploy: what it did before anything else could
#: change. Half an hour holds ~35+ labelled rows at the sim's 30 logged rows a minute even
#: with late labels, the playbooks' minimum for accuracy comparisons.
EARLY_MINUTES = 30


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


def count_of(reading: MetricReading | None) -> tuple[int, int]:
    """(events, samples) behind a rate reading such as error_rate or accuracy; (0, 0) if none."""
    if reading is None:
        return 0, 0
    n = int(reading.samples)
    return min(n, max(0, round(reading.value * n))), n


def per_minute(
    ctx: ToolContext,
    model: str,
    metric: MetricName,
    version: str,
    start: datetime,
    end: datetime,
) -> list[float]:
    """Values of ``metric`` for ``version`` in consecutive slices of ``[start, end)``."""
    total = int((end - start).total_seconds() // 60)
    if total <= 0:
        return []
    step = max(1, -(-total // MAX_POINTS))
    out: list[float] = []
    for k in range(total // step):
        slice_end = start + timedelta(minutes=(k + 1) * step)
        r = ctx.backends.metrics.read(
            model, metric, version=version, window=timedelta(minutes=step), end=slice_end
        )
        if r is not None:
            out.append(r.value)
    return out


def offline_accuracy(ctx: ToolContext, model: str, version: str) -> float | None:
    """The version's offline validation accuracy from the registry, if recorded."""
    for v in ctx.backends.registry.versions(model):
        if v.version == version:
            acc = v.metrics.get("accuracy")
            return None if acc is None else round(acc, 4)
    return None


class PreviousVersionComparison(_Out):
    """A fully deployed version against the version it replaced and its own validation."""

    model: str
    version: str = Field(description="The version serving all traffic now.")
    previous_version: str = Field(description="The version it replaced.")
    deployed_minutes_ago: float
    window_minutes: int = Field(description="Minutes of the new version's traffic compared.")
    baseline_minutes: int = Field(description="Minutes before the deploy, on the old version.")
    previous: dict[str, float] = Field(description="Signal -> previous version, before deploy.")
    current: dict[str, float] = Field(description="Signal -> new version, since the deploy.")
    ratio: dict[str, float] = Field(description="current / previous per signal (0 -> 1e-6).")
    score_shift: float | None = Field(
        description="|current - previous| mean prediction score; near 0.5 is a collapse."
    )
    counts: dict[str, int] = Field(
        description="requests/errors/labelled/correct/minutes per side: what the tests rest on."
    )
    p_value: dict[str, float] = Field(
        description=(
            "One-sided p-values that the new version is worse: error_rate (Fisher), "
            "latency_p99 (Mann-Whitney on per-minute p99), accuracy (Fisher), "
            "offline_accuracy (binomial against its offline accuracy); prediction_score "
            "(two-sided Mann-Whitney on per-minute mean score)."
        )
    )
    accuracy_gap: float | None = Field(description="previous - current online accuracy.")
    early_accuracy_gap: float | None = Field(
        description=(
            "previous - current accuracy over the new version's first EARLY_MINUTES: a bad "
            "version is worse from its first request, drift that starts later is not."
        )
    )
    accuracy_interval: dict[str, Interval] = Field(
        description="Wilson 95% interval of online accuracy per side."
    )
    offline_accuracy: float | None = Field(description="The new version's validation accuracy.")
    offline_drop: float | None = Field(description="offline - online accuracy of the new one.")
    missing: list[str] = Field(description="Signals with no data on either side.")


_FULL = (
    MetricName.ERROR_RATE,
    MetricName.LATENCY_P99,
    MetricName.PREDICTION_SCORE_MEAN,
    MetricName.ACCURACY,
)

#: Events after which ``version`` serves all traffic.
_SERVES_ALL = {"promoted", "deployed", "rolled_back"}


def compare_with_previous_version(
    ctx: ToolContext,
    model: str,
    window_minutes: int = 30,
    baseline_minutes: int = 60,
    hours: int = 24,
) -> PreviousVersionComparison | None:
    """Compare the version serving all traffic with the one it replaced, before its deploy.

    Args:
        model: Name of the model.
        window_minutes: At most this many minutes of the new version's traffic, since its deploy.
        baseline_minutes: Minutes of the previous version's traffic before the deploy.
        hours: How far back to look for the deploy, in hours.
    """
    status = ctx.backends.deploy.status(model)
    if status is None:
        return None
    now = ctx.clock.now()
    events = ctx.backends.registry.timeline(model, now - timedelta(hours=hours))
    served = [e for e in events if e.kind in _SERVES_ALL]
    previous: str | None
    if status.canary_version is None:
        current = status.stable_version
        mine = [e for e in served if e.version == current]
        if not mine:
            return None  # no deploy of this version in the look-back: nothing new to blame
        deployed_at = mine[-1].at
        before = [
            e.version for e in served if e.at < deployed_at and e.version not in (None, current)
        ]
        previous = before[-1] if before else _older(ctx, model, current)
    elif status.canary_weight >= 100:
        # A "canary" that takes all traffic is a full deploy: the stable version it starves
        # is the one it replaced.
        current, previous = status.canary_version, status.stable_version
        mine = [
            e
            for e in events
            if e.version == current and e.kind in {"canary_started", "canary_weight"}
        ]
        if not mine:
            return None
        deployed_at = mine[-1].at
    else:
        return None  # a canary runs beside stable: compare_canary compares them
    if previous is None:
        return None
    since = now - deployed_at
    window = min(timedelta(minutes=window_minutes), since)
    if window < timedelta(minutes=1):
        return None
    base = timedelta(minutes=baseline_minutes)
    prev: dict[str, float] = {}
    cur: dict[str, float] = {}
    readings: dict[str, tuple[MetricReading | None, MetricReading | None]] = {}
    missing: list[str] = []
    for metric in _FULL:
        p = ctx.backends.metrics.read(model, metric, version=previous, window=base, end=deployed_at)
        c = _current_reading(ctx, model, metric, current, window, now, deployed_at)
        readings[metric.value] = (p, c)
        if p is None or c is None:
            missing.append(metric.value)
            continue
        prev[metric.value], cur[metric.value] = round(p.value, 6), round(c.value, 6)
    if not prev:
        return None
    ratio = {k: round(cur[k] / max(prev[k], 1e-6), 4) for k in prev}
    pe, pn = count_of(readings["error_rate"][0])
    ce, cn = count_of(readings["error_rate"][1])
    pc, pl = count_of(readings["accuracy"][0])
    cc, cl = count_of(readings["accuracy"][1])
    lat_p = per_minute(
        ctx, model, MetricName.LATENCY_P99, previous, deployed_at - base, deployed_at
    )
    lat_c = per_minute(ctx, model, MetricName.LATENCY_P99, current, now - window, now)
    sc_p = per_minute(
        ctx, model, MetricName.PREDICTION_SCORE_MEAN, previous, deployed_at - base, deployed_at
    )
    sc_c = per_minute(ctx, model, MetricName.PREDICTION_SCORE_MEAN, current, now - window, now)
    early_end = min(deployed_at + timedelta(minutes=EARLY_MINUTES), now)
    early = ctx.backends.metrics.read(
        model, MetricName.ACCURACY, version=current, window=early_end - deployed_at, end=early_end
    )
    ec, el = count_of(early)
    offline = offline_accuracy(ctx, model, current)
    p_value = {
        "error_rate": fisher_exact(ce, cn, pe, pn, "greater"),
        "latency_p99": mann_whitney(lat_c, lat_p, "greater"),
        "prediction_score": mann_whitney(sc_c, sc_p, "two-sided"),
        "accuracy": fisher_exact(cc, cl, pc, pl, "less"),
        "accuracy_early": fisher_exact(ec, el, pc, pl, "less"),
        "offline_accuracy": None if offline is None else one_proportion_test(cc, cl, offline),
    }
    intervals = {
        side: iv
        for side, iv in (
            ("previous", wilson_interval(pc, pl, ALPHA)),
            ("current", wilson_interval(cc, cl, ALPHA)),
        )
        if iv is not None
    }
    acc = "accuracy"
    score = "prediction_score_mean"
    return PreviousVersionComparison(
        model=model,
        version=current,
        previous_version=previous,
        deployed_minutes_ago=round(since.total_seconds() / 60, 1),
        window_minutes=int(window.total_seconds() // 60),
        baseline_minutes=baseline_minutes,
        previous=prev,
        current=cur,
        ratio=ratio,
        score_shift=round(abs(cur[score] - prev[score]), 4) if score in prev else None,
        counts={
            "previous_requests": pn,
            "current_requests": cn,
            "previous_errors": pe,
            "current_errors": ce,
            "previous_labelled": pl,
            "current_labelled": cl,
            "previous_correct": pc,
            "current_correct": cc,
            "early_labelled": el,
            "early_correct": ec,
            "previous_minutes": min(len(lat_p), len(sc_p)),
            "current_minutes": min(len(lat_c), len(sc_c)),
        },
        # Three significant digits: a reader sees 6.2e-17, not 0, and thresholds hold.
        p_value={k: float(f"{v:.3g}") for k, v in p_value.items() if v is not None},
        accuracy_gap=round(prev[acc] - cur[acc], 4) if acc in prev else None,
        early_accuracy_gap=None
        if early is None or acc not in prev
        else round(prev[acc] - early.value, 4),
        accuracy_interval=intervals,
        offline_accuracy=offline,
        offline_drop=None if offline is None or acc not in cur else round(offline - cur[acc], 4),
        missing=missing,
    )


def _current_reading(
    ctx: ToolContext,
    model: str,
    metric: MetricName,
    version: str,
    window: timedelta,
    now: datetime,
    deployed_at: datetime,
) -> MetricReading | None:
    """The new version's reading since its deploy; accuracy on all its labelled traffic.

    Labels arrive late, so accuracy reads everything since the deploy; the port counts only
    rows whose label has arrived.
    """
    if metric is MetricName.ACCURACY:
        since = min(now - deployed_at, timedelta(hours=24))
        return ctx.backends.metrics.read(model, metric, version=version, window=since, end=now)
    return ctx.backends.metrics.read(model, metric, version=version, window=window, end=now)


def _older(ctx: ToolContext, model: str, current: str) -> str | None:
    """The newest registered version older than ``current`` (the timeline did not say)."""
    older = []
    for v in ctx.backends.registry.versions(model):
        if v.version == current:
            break
        older.append(v.version)
    return older[-1] if older else None
