"""The read-only tools reasoners call. Each one answers one question about one model.

Tools derive the comparisons a diagnosis needs (canary vs stable, online vs offline accuracy,
defect flags) so that playbooks can state their checks as plain thresholds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from supervisor.domain import MetricName
from supervisor.stats import (
    Interval,
    difference_interval,
    fisher_exact,
    mann_whitney,
    two_proportion_test,
    wilson_interval,
)

from ._compare import ALPHA, compare_with_previous_version, count_of, per_minute
from ._defects import data_defects, scale_change
from ._drift import family_drifted
from ._ports import (
    AlertInfo,
    ChangeEvent,
    DeploymentStatus,
    DriftReport,
    MetricReading,
    ModelVersionInfo,
)
from ._seasonal import SeasonalDrift, seasonal_drift
from ._toolkit import ToolContext, ToolRegistry


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricValue(_Out):
    """A serving signal's value over a window."""

    model: str
    metric: MetricName
    version: str | None
    value: float
    samples: int
    window_minutes: int


def get_metric(
    ctx: ToolContext,
    model: str,
    metric: MetricName,
    version: str | None = None,
    window_minutes: int = 15,
    offset_minutes: int = 0,
) -> MetricValue | None:
    """Read one serving signal of a model, aggregated over a recent window.

    Args:
        model: Name of the model.
        metric: Which signal to read.
        version: Only this version's traffic; omit for all versions together.
        window_minutes: Length of the window, in minutes.
        offset_minutes: How far before now the window ends (0 = now), for baselines.
    """
    end = ctx.clock.now() - timedelta(minutes=offset_minutes)
    r = ctx.backends.metrics.read(
        model, metric, version=version, window=timedelta(minutes=window_minutes), end=end
    )
    if r is None:
        return None
    return MetricValue(
        model=model,
        metric=metric,
        version=version,
        value=r.value,
        samples=r.samples,
        window_minutes=window_minutes,
    )


class VersionComparison(_Out):
    """Canary against stable on every serving signal over the same window."""

    model: str
    stable_version: str
    canary_version: str
    canary_weight: int
    stable: dict[str, float] = Field(description="Signal -> value for the stable version.")
    canary: dict[str, float] = Field(description="Signal -> value for the canary version.")
    ratio: dict[str, float] = Field(description="canary / stable per signal (stable 0 -> 1e-6).")
    accuracy_gap: float | None = Field(
        description="stable accuracy - canary accuracy, if labelled."
    )
    offline_gap: float | None = Field(
        description="stable - canary offline validation accuracy; positive: canary worse."
    )
    unexplained_gap: float | None = Field(
        default=None,
        description=(
            "accuracy_gap - offline_gap: the canary's online deficit beyond what offline "
            "validation predicted; large when serving differs from training."
        ),
    )
    canary_samples: int
    missing: list[str] = Field(description="Signals with no data for either version.")
    counts: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "What the tests rest on: stable_/canary_ requests, errors, labelled, correct, "
            "minutes (per-minute latency points)."
        ),
    )
    p_value: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "One-sided p-values: error_rate (Fisher, canary errs more), latency_p99 "
            "(Mann-Whitney on per-minute p99, canary slower), accuracy (Fisher, canary less "
            "accurate), accuracy_better (Fisher, canary more accurate). Absent: no data."
        ),
    )
    accuracy_interval: dict[str, Interval] = Field(
        default_factory=dict, description="Wilson 95% interval of labelled accuracy per version."
    )
    accuracy_gap_interval: Interval | None = Field(
        default=None, description="Newcombe 95% interval of stable - canary labelled accuracy."
    )


_COMPARED = (
    MetricName.ERROR_RATE,
    MetricName.LATENCY_P99,
    MetricName.SATURATION,
    MetricName.PREDICTION_SCORE_MEAN,
)


def compare_canary(
    ctx: ToolContext, model: str, window_minutes: int = 15
) -> VersionComparison | None:
    """Compare the canary version of a model with its stable version over the same window.

    Args:
        model: Name of the model.
        window_minutes: Length of the window, in minutes.
    """
    status = ctx.backends.deploy.status(model)
    if status is None or status.canary_version is None:
        return None
    window = timedelta(minutes=window_minutes)
    now = ctx.clock.now()
    stable: dict[str, float] = {}
    canary: dict[str, float] = {}
    missing: list[str] = []
    samples = 0
    counts: dict[str, int] = {}
    p_value: dict[str, float | None] = {}
    for metric in _COMPARED:
        s = ctx.backends.metrics.read(
            model, metric, version=status.stable_version, window=window, end=now
        )
        c = ctx.backends.metrics.read(
            model, metric, version=status.canary_version, window=window, end=now
        )
        if s is None or c is None:
            missing.append(metric.value)
            continue
        stable[metric.value], canary[metric.value] = s.value, c.value
        if metric is MetricName.ERROR_RATE:
            samples = c.samples
            (se, sn), (ce, cn) = _sides(s, c, "requests", "errors", counts)
            p_value["error_rate"] = fisher_exact(ce, cn, se, sn, "greater")
        if metric is MetricName.LATENCY_P99:
            lat_s = per_minute(ctx, model, metric, status.stable_version, now - window, now)
            lat_c = per_minute(ctx, model, metric, status.canary_version, now - window, now)
            counts |= {"stable_minutes": len(lat_s), "canary_minutes": len(lat_c)}
            p_value["latency_p99"] = mann_whitney(lat_c, lat_s, "greater")
    labelled = _labelled_accuracy(ctx, model, status.stable_version, status.canary_version)
    gap: float | None = None
    intervals: dict[str, Interval] = {}
    gap_interval: Interval | None = None
    if labelled is not None:
        s_acc, c_acc = labelled
        gap = round(s_acc.value - c_acc.value, 4)
        (sc, sl), (cc, cl) = _sides(s_acc, c_acc, "labelled", "correct", counts)
        p_value["accuracy"] = fisher_exact(cc, cl, sc, sl, "less")
        p_value["accuracy_better"] = fisher_exact(cc, cl, sc, sl, "greater")
        for side, (x, n) in (("stable", (sc, sl)), ("canary", (cc, cl))):
            iv = wilson_interval(x, n, ALPHA)
            if iv is not None:
                intervals[side] = iv
        gap_interval = difference_interval(sc, sl, cc, cl, ALPHA)
    off_s = _offline_accuracy(ctx, model, status.stable_version)
    off_c = _offline_accuracy(ctx, model, status.canary_version)
    offline_gap = None if off_s is None or off_c is None else round(off_s - off_c, 4)
    if not stable:
        return None
    ratio = {k: round(canary[k] / max(stable[k], 1e-6), 4) for k in stable}
    return VersionComparison(
        model=model,
        stable_version=status.stable_version,
        canary_version=status.canary_version,
        canary_weight=status.canary_weight,
        stable=stable,
        canary=canary,
        ratio=ratio,
        accuracy_gap=gap,
        offline_gap=offline_gap,
        unexplained_gap=None if gap is None or offline_gap is None else round(gap - offline_gap, 4),
        canary_samples=samples,
        missing=missing,
        counts=counts,
        # Three significant digits: a reader sees 6.2e-17, not 0, and thresholds hold.
        p_value={k: float(f"{v:.3g}") for k, v in p_value.items() if v is not None},
        accuracy_interval=intervals,
        accuracy_gap_interval=gap_interval,
    )


def _sides(
    stable: MetricReading,
    canary: MetricReading,
    total: str,
    hits: str,
    counts: dict[str, int],
) -> tuple[tuple[int, int], tuple[int, int]]:
    """(events, samples) behind the stable and the canary rate, also written into ``counts``
    as ``stable_<total>``, ``canary_<total>``, ``stable_<hits>`` and ``canary_<hits>``."""
    (sx, sn), (cx, cn) = count_of(stable), count_of(canary)
    counts |= {
        f"stable_{total}": sn,
        f"canary_{total}": cn,
        f"stable_{hits}": sx,
        f"canary_{hits}": cx,
    }
    return (sx, sn), (cx, cn)


def _labelled_accuracy(
    ctx: ToolContext, model: str, stable: str, canary: str
) -> tuple[MetricReading, MetricReading] | None:
    """Both versions' accuracy on the latest window where both have labels, with counts."""
    for end, window in _label_windows(ctx):
        s = ctx.backends.metrics.read(
            model, MetricName.ACCURACY, version=stable, window=window, end=end
        )
        c = ctx.backends.metrics.read(
            model, MetricName.ACCURACY, version=canary, window=window, end=end
        )
        if s is not None and c is not None:
            return s, c
    return None


def _label_windows(ctx: ToolContext) -> list[tuple[Any, timedelta]]:
    """Windows to try for labelled accuracy: labels arrive late, so step back (bounded)."""
    now = ctx.clock.now()
    window = timedelta(minutes=30)
    return [(now - timedelta(minutes=m), window) for m in (0, 15, 30, 45, 60, 90)]


class QualityReport(_Out):
    """Online accuracy on the latest labelled window against offline validation accuracy."""

    model: str
    version: str
    online_accuracy: float
    offline_accuracy: float | None
    accuracy_drop: float | None = Field(description="offline - online; positive is worse.")
    baseline_online_accuracy: float | None = Field(
        description="Online accuracy of the same version 6 hours before the window; None when "
        "it did not serve then."
    )
    trend_drop: float | None = Field(
        description="baseline online - online accuracy; positive: quality fell over 6 hours."
    )
    trend_p_value: float | None = Field(
        description="One-sided two-proportion z-test that accuracy is lower now than at the "
        "baseline; small means the fall is not sampling noise."
    )
    labelled_window_end_minutes_ago: int
    window_minutes: int = Field(description="Length of the labelled window used, in minutes.")
    samples: int
    label_lag_minutes: float = Field(
        description="How far behind now labels are: the newest labelled rows are this old."
    )
    label_delay_source: Literal["declared", "measured"] = Field(
        description="declared: the watch config names the label delay; measured: found in the data."
    )
    labels_pending: bool = Field(
        description="True when the last hour of predictions has no labels yet, so this accuracy "
        "describes older inputs; judge recent drift on proxies (prediction and weighted drift)."
    )
    recheck_at: datetime | None = Field(
        description="When the labels of the predictions made now arrive: re-check quality then."
    )


#: Fewest labelled rows an accuracy is judged on. Below it the 95% interval of an accuracy
#: near 0.8 is wider than +-0.055, more than the 0.05 drop the playbooks and the quality watch
#: test.
MIN_LABELLED_ROWS = 200

#: Label lags probed (minutes) when the delay is not declared: fine near now, coarse far back,
#: up to a week (the longest label delay a daily or weekly labelling job gives).
_LAG_PROBES = (0, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 360, 720, 1440, 2880, 4320, 10080)

#: Width of the probe window that looks for any labelled row at a given lag.
_PROBE_MINUTES = 5

#: Labels older than this describe other inputs than the ones the drift check judges (its
#: default window is the last 60 minutes): quality is then "pending" for the current inputs.
LABELS_CURRENT_MINUTES = 60


def measure_label_lag(
    ctx: ToolContext, model: str, version: str | None, now: datetime
) -> float | None:
    """Minutes between now and the newest labelled rows, probed on a bounded grid; None: none."""
    for lag in _LAG_PROBES:
        r = ctx.backends.metrics.read(
            model,
            MetricName.ACCURACY,
            version=version,
            window=timedelta(minutes=_PROBE_MINUTES),
            end=now - timedelta(minutes=lag),
        )
        if r is not None and r.samples > 0:
            return float(lag)
    return None


def get_model_quality(
    ctx: ToolContext,
    model: str,
    version: str | None = None,
    window_minutes: int = 20,
    label_delay_minutes: float | None = None,
) -> QualityReport | None:
    """Measure a model version's accuracy on the latest window whose labels have arrived.

    Labels may arrive hours or days late: the window ends where labels end, however old, and
    the report says how old it is and whether the last hour's predictions are still unlabelled.

    Args:
        model: Name of the model.
        version: Version to measure; omit for the stable serving version.
        window_minutes: Length of the labelled window, in minutes (widened, up to 8x, until it
            holds enough labelled rows).
        label_delay_minutes: The model's declared label delay; omit to measure it from the data.
    """
    if version is None:
        status = ctx.backends.deploy.status(model)
        if status is None:
            return None
        version = status.stable_version
    now = ctx.clock.now()
    source: Literal["declared", "measured"] = "measured"
    lag: float | None = None
    if label_delay_minutes is not None:
        lag, source = float(label_delay_minutes), "declared"
    else:
        lag = measure_label_lag(ctx, model, version, now)
    if lag is None:
        return None
    end = now - timedelta(minutes=lag)
    reading = None
    minutes = window_minutes
    for factor in (1, 2, 4, 8):
        minutes = window_minutes * factor
        reading = ctx.backends.metrics.read(
            model, MetricName.ACCURACY, version=version, window=timedelta(minutes=minutes), end=end
        )
        if reading is not None and reading.samples >= MIN_LABELLED_ROWS:
            break
    if reading is None and source == "declared":
        # The declared delay is wrong (labels later than declared): measure instead.
        return get_model_quality(ctx, model, version, window_minutes)
    if reading is None:
        return None
    enough = reading.samples >= MIN_LABELLED_ROWS
    offline = _offline_accuracy(ctx, model, version)
    # The same version 6 h earlier: a trend of this model, not of whatever served then (a
    # retrained version in a moved world is rightly below its predecessor's old accuracy).
    base = ctx.backends.metrics.read(
        model,
        MetricName.ACCURACY,
        version=version,
        window=timedelta(minutes=60),
        end=end - timedelta(hours=6),
    )
    online = round(reading.value, 4)
    pending = lag > LABELS_CURRENT_MINUTES
    return QualityReport(
        model=model,
        version=version,
        online_accuracy=online,
        offline_accuracy=offline,
        # Too few labelled rows decide nothing: the drop stays unknown rather than noisy.
        accuracy_drop=None if offline is None or not enough else round(offline - online, 4),
        baseline_online_accuracy=None if base is None else round(base.value, 4),
        trend_drop=None if base is None or not enough else round(base.value - online, 4),
        trend_p_value=None
        if base is None or not enough
        else round(_lower_p_value(reading.value, reading.samples, base.value, base.samples), 6),
        labelled_window_end_minutes_ago=int((now - end).total_seconds() // 60),
        window_minutes=minutes,
        samples=reading.samples,
        label_lag_minutes=lag,
        label_delay_source=source,
        labels_pending=pending,
        recheck_at=now + timedelta(minutes=lag) if pending else None,
    )


def _lower_p_value(now: float, n_now: int, before: float, n_before: int) -> float:
    """p-value of a one-sided two-proportion z-test that accuracy ``now`` is below ``before``.

    No test (an empty sample, or no variance) is p = 1: no evidence of a fall.
    """
    p = two_proportion_test(
        round(now * n_now), n_now, round(before * n_before), n_before, alternative="less"
    )
    return 1.0 if p is None else p


def _offline_accuracy(ctx: ToolContext, model: str, version: str) -> float | None:
    for v in ctx.backends.registry.versions(model):
        if v.version == version:
            acc = v.metrics.get("accuracy")
            return None if acc is None else round(acc, 4)
    return None


class DriftSummary(_Out):
    """Input drift and the data-quality checks that tell a broken pipeline from real drift."""

    model: str
    window_minutes: int
    drift_share: float
    dataset_drift: bool
    drifted_features: list[str]
    feature_tests: list[dict[str, Any]] = Field(
        description="Per feature: method, threshold, score."
    )
    prediction_drift_score: float | None
    weighted_drift_share: float = Field(
        description="Share of the model's feature importance carried by drifted features, 0..1."
    )
    importance_source: str = Field(
        description="registry (logged with the model), permutation (computed on the reference "
        "data) or uniform (unknown: every feature weighs the same)."
    )
    top_features: list[str] = Field(
        description="The most important features, each 'name: importance, drifted or stable'."
    )
    prediction_drift_method: str | None = Field(
        description="Evidently's test on the model's outputs against the reference outputs."
    )
    prediction_drifted: bool | None = Field(
        description="Whether the outputs drifted by that test; None when outputs are not logged."
    )
    important_drift: bool = Field(
        description="Drift that matters to this model: drifted features carry at least half its "
        "feature importance, or at least a quarter and its outputs moved with them (normed "
        "Wasserstein >= 0.25 to the reference outputs)."
    )
    defects: list[str] = Field(description="Upstream defects found, one line each.")
    defect_count: int
    max_null_share_increase: float
    max_scale_ratio: float = Field(description="Largest scale change either way (>= 1).")
    max_out_of_range_share: float
    missing_columns: list[str]
    new_columns: list[str]
    dtype_changes: list[str]
    compute_seconds: float
    seasonal: SeasonalDrift | None = Field(
        default=None,
        description="The same window one cycle earlier (e.g. the same hours last week) as the "
        "reference; None when the model's watch config sets no seasonality.",
    )
    recurring_drift: bool = Field(
        default=False,
        description="The drift against the training reference recurs: it matters (important "
        "or dataset-level drift) yet is absent against the same hours one cycle earlier. False "
        "when no seasonality is configured or the comparison could not be made.",
    )


def get_drift_report(ctx: ToolContext, model: str, window_minutes: int = 60) -> DriftSummary | None:
    """Compute input drift (Evidently) and data-quality checks for a model's recent inputs.

    Where the model's watch config sets a seasonality, the window is also compared with the
    same hours one cycle earlier (``seasonal``); ``recurring_drift`` says the drift against
    the training reference is absent against last cycle, i.e. it recurs every cycle.

    Args:
        model: Name of the model.
        window_minutes: Length of the current window compared with the reference, in minutes.
    """
    rep = ctx.backends.drift.report(
        model, window=timedelta(minutes=window_minutes), end=ctx.clock.now()
    )
    if rep is None:
        return None
    setting = ctx.seasonality.get(model)
    seasonal = None if setting is None else seasonal_drift(ctx, model, window_minutes, setting)
    defects = data_defects(rep)
    null_inc = max((q.null_share_current - q.null_share_reference for q in rep.quality), default=0)
    scale = max((scale_change(q.scale_ratio) for q in rep.quality), default=1.0)
    oor = max((q.out_of_range_share for q in rep.quality), default=0.0)
    dtype_changes = [
        f"{q.feature}: {q.dtype_reference} -> {q.dtype_current}"
        for q in rep.quality
        if q.dtype_reference and q.dtype_current and q.dtype_reference != q.dtype_current
    ]
    return DriftSummary(
        model=model,
        window_minutes=window_minutes,
        drift_share=round(rep.drift_share, 4),
        dataset_drift=rep.dataset_drift,
        drifted_features=[f.feature for f in rep.features if f.drifted],
        feature_tests=[
            {
                "feature": f.feature,
                "method": f.method,
                "threshold": f.threshold,
                "score": round(f.score, 6),
            }
            for f in rep.features
        ],
        prediction_drift_score=None
        if rep.prediction_drift is None
        else round(rep.prediction_drift.score, 6),
        weighted_drift_share=round(
            rep.drift_share if rep.weighted_drift_share is None else rep.weighted_drift_share, 4
        ),
        importance_source=rep.importance_source,
        top_features=_top_features(rep),
        prediction_drift_method=None
        if rep.prediction_drift is None
        else rep.prediction_drift.method,
        prediction_drifted=None if rep.prediction_drift is None else rep.prediction_drift.drifted,
        important_drift=_important(rep),
        defects=defects,
        defect_count=len(defects),
        max_null_share_increase=round(max(null_inc, 0.0), 4),
        max_scale_ratio=round(min(scale, 1e9), 3),
        max_out_of_range_share=round(oor, 4),
        missing_columns=rep.missing_columns,
        new_columns=rep.new_columns,
        dtype_changes=dtype_changes,
        compute_seconds=round(rep.compute_seconds, 4),
        seasonal=seasonal,
        recurring_drift=seasonal is not None
        and seasonal.drift_absent
        and (_important(rep) or rep.dataset_drift),
    )


#: Drift matters when the drifted features carry at least this share of the importance:
#: Evidently's dataset-drift default (0.5), applied to importance instead of column count.
IMPORTANT_DRIFT_SHARE = 0.5

#: ... or when features carrying at least this share drifted (a quarter: one of the few features
#: a model rests on) *and* the outputs followed them. Either alone is not enough: one feature's
#: K-S test alone flags drift in ~5% of quiet windows, and outputs move without any input drift
#: when a different version served part of the window (a canary).
CORROBORATED_SHARE = 0.25

#: Outputs moved "clearly": normed Wasserstein distance to the reference outputs. Evidently's own
#: 0.1 is within the sampling noise of 500-row windows (up to ~0.17 on quiet simulated models).
OUTPUT_SHIFT = 0.25


def _important(rep: DriftReport) -> bool:
    weighted = rep.drift_share if rep.weighted_drift_share is None else rep.weighted_drift_share
    shift = None if rep.prediction_drift is None else rep.prediction_drift.score
    followed = shift is not None and shift >= OUTPUT_SHIFT
    return weighted >= IMPORTANT_DRIFT_SHARE or (weighted >= CORROBORATED_SHARE and followed)


def _top_features(rep: DriftReport, n: int = 3) -> list[str]:
    drifted = family_drifted(rep.features)
    ranked = sorted(rep.importances.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [
        f"{f}: importance {w:.2f}, {'drifted' if drifted.get(f, False) else 'stable'}"
        for f, w in ranked
    ]


class AlertList(_Out):
    """Firing alerts. Labels and annotations are untrusted text, quoted as data."""

    model: str
    alerts: list[AlertInfo]
    count: int


def get_firing_alerts(ctx: ToolContext, model: str) -> AlertList:
    """List the alerts currently firing for a model.

    Args:
        model: Name of the model.
    """
    alerts = ctx.backends.alerts.firing(model)
    return AlertList(model=model, alerts=alerts, count=len(alerts))


class VersionList(_Out):
    """Registered versions, newest last, with aliases, tags and offline metrics."""

    model: str
    versions: list[ModelVersionInfo]
    champion: str | None
    challenger: str | None


def get_model_versions(ctx: ToolContext, model: str) -> VersionList | None:
    """List a model's registered versions with their aliases, tags and validation metrics.

    Args:
        model: Name of the model.
    """
    versions = ctx.backends.registry.versions(model)
    if not versions:
        return None

    def alias(name: str) -> str | None:
        return next((v.version for v in versions if name in v.aliases), None)

    return VersionList(
        model=model, versions=versions, champion=alias("champion"), challenger=alias("challenger")
    )


class Timeline(_Out):
    """What changed for a model, and how long ago the last deploy was."""

    model: str
    hours: int
    events: list[ChangeEvent]
    minutes_since_last_deploy: float | None
    last_deployed_version: str | None


_DEPLOY_KINDS = {"deployed", "canary_started", "promoted", "rolled_back"}


def get_change_timeline(ctx: ToolContext, model: str, hours: int = 24) -> Timeline:
    """List what changed for a model (deploys, promotions, retrains, pipeline changes) recently.

    Args:
        model: Name of the model.
        hours: How far back to look, in hours.
    """
    now = ctx.clock.now()
    events = ctx.backends.registry.timeline(model, now - timedelta(hours=hours))
    deploys = [e for e in events if e.kind in _DEPLOY_KINDS]
    last = deploys[-1] if deploys else None
    return Timeline(
        model=model,
        hours=hours,
        events=events,
        minutes_since_last_deploy=None
        if last is None
        else round((now - last.at).total_seconds() / 60, 1),
        last_deployed_version=None if last is None else last.version,
    )


def get_deployment_status(ctx: ToolContext, model: str) -> DeploymentStatus | None:
    """Show which versions of a model serve and how traffic is split between them.

    Args:
        model: Name of the model.
    """
    return ctx.backends.deploy.status(model)


def default_registry() -> ToolRegistry:
    """Every read-only tool, as reasoners see them."""
    return ToolRegistry.of(
        get_metric,
        compare_canary,
        compare_with_previous_version,
        get_model_quality,
        get_drift_report,
        get_firing_alerts,
        get_model_versions,
        get_change_timeline,
        get_deployment_status,
    )
