"""The supervisor's own Prometheus metrics, on one registry the service passes around.

Evidently 0.7 has no Prometheus exporter, so the drift figures of every report the supervisor
computes are exposed here as gauges (per model, per feature), next to counters of what the
supervisor did: incidents by state, guard decisions, actions and their outcomes, tool calls,
LLM tokens, and a histogram of decision latency.

Nothing uses prometheus_client's global default registry: each :class:`SupervisorMetrics`
owns a :class:`prometheus_client.CollectorRegistry` (or is given one), so two services, or two
tests, in one process never see each other's numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from supervisor._errors import BackendError
from supervisor.domain import ActionType, IncidentStatus, OutcomeStatus, ToolStatus, Verdict
from tools import DriftPort, DriftReport, NoSeasonalHistory, SeasonalDriftPort
from tools._defects import data_defects

__all__ = [
    "DECISION_LATENCY_BUCKETS",
    "ObservedDrift",
    "SupervisorMetrics",
    "data_defect_count",
]

#: Histogram buckets of decision latency, in seconds: from a rules decision to an LLM one.
DECISION_LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

_NS = "mlops_supervisor"


def data_defect_count(report: DriftReport) -> int:
    """How many upstream data defects ``report`` shows, by the rule ``get_drift_report`` uses."""
    return len(data_defects(report))


class SupervisorMetrics:
    """Prometheus metrics of one supervisor service; :meth:`render` serves ``/metrics``.

    Drift gauges hold the figures of the latest report per model; a feature that leaves a
    model's report leaves the exposition too, so no stale series lingers.
    """

    #: Content-Type of :meth:`render`'s output, for the HTTP response.
    content_type: Final = CONTENT_TYPE_LATEST

    def __init__(
        self, registry: CollectorRegistry | None = None, *, models: Iterable[str] = ()
    ) -> None:
        """Create the metrics on ``registry`` (a new one if None).

        Args:
            registry: Where to register; never prometheus_client's global default.
            models: Watched models, so their drift-check counters start at 0 and ``increase()``
                works from the first failure.
        """
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self._lock = threading.Lock()
        self._series: dict[str, dict[Gauge, set[tuple[str, ...]]]] = {}

        # ------------------------------------------------------------------ drift
        self.drift_share = Gauge(
            f"{_NS}_drift_share",
            "Share of the model's features that drifted, 0..1.",
            ["model"],
            registry=r,
        )
        self.dataset_drift = Gauge(
            f"{_NS}_dataset_drift",
            "1 if the share of drifted features reached Evidently's dataset threshold.",
            ["model"],
            registry=r,
        )
        self.feature_drift_score = Gauge(
            f"{_NS}_feature_drift_score",
            "Evidently's drift score of the feature (p-value or distance, per method).",
            ["model", "feature", "method"],
            registry=r,
        )
        self.feature_drift_threshold = Gauge(
            f"{_NS}_feature_drift_threshold",
            "Threshold of the feature's drift test (p-values drift below it, distances above).",
            ["model", "feature", "method"],
            registry=r,
        )
        self.feature_drifted = Gauge(
            f"{_NS}_feature_drifted", "1 if the feature drifted.", ["model", "feature"], registry=r
        )
        self.feature_null_share = Gauge(
            f"{_NS}_feature_null_share",
            "Share of null values of the feature in the reference or current window.",
            ["model", "feature", "window"],
            registry=r,
        )
        self.feature_out_of_range_share = Gauge(
            f"{_NS}_feature_out_of_range_share",
            "Share of current values outside the reference [min, max].",
            ["model", "feature"],
            registry=r,
        )
        self.feature_scale_ratio = Gauge(
            f"{_NS}_feature_scale_ratio",
            "median |current| / median |reference|; ~1000 is a unit change.",
            ["model", "feature"],
            registry=r,
        )
        self.prediction_drift_score = Gauge(
            f"{_NS}_prediction_drift_score",
            "Evidently's drift score of the model's output.",
            ["model", "method"],
            registry=r,
        )
        self.data_defects = Gauge(
            f"{_NS}_data_defects",
            "Upstream data defects in the latest report (null spikes, unit, dtype and schema "
            "changes).",
            ["model"],
            registry=r,
        )
        self.drift_rows = Gauge(
            f"{_NS}_drift_rows",
            "Rows compared in the latest drift report.",
            ["model", "window"],
            registry=r,
        )
        self.drift_window_end = Gauge(
            f"{_NS}_drift_window_end_timestamp_seconds",
            "End of the current window of the latest drift report (alert when stale).",
            ["model"],
            registry=r,
        )
        self.drift_compute_seconds = Gauge(
            f"{_NS}_drift_compute_seconds",
            "Wall time Evidently spent on the latest drift report.",
            ["model"],
            registry=r,
        )
        self.drift_checks = Counter(
            f"{_NS}_drift_checks",
            "Drift checks by outcome: ok, no_data (empty window) or error (bad input).",
            ["model", "status"],
            registry=r,
        )
        for model in models:
            for status in ToolStatus:
                self.drift_checks.labels(model=model, status=status.value)

        # ------------------------------------------------------------------ the loop
        self.incidents = Counter(
            f"{_NS}_incidents",
            "Incidents that entered each state.",
            ["state"],
            registry=r,
        )
        self.incidents_current = Gauge(
            f"{_NS}_incidents_current",
            "Incidents now in each state.",
            ["state"],
            registry=r,
        )
        self.guard_decisions = Counter(
            f"{_NS}_guard_decisions",
            "Guard decisions by verdict and proposed action.",
            ["verdict", "action"],
            registry=r,
        )
        self.actions = Counter(
            f"{_NS}_actions",
            "Actions the executor ran, by type and outcome.",
            ["action", "outcome"],
            registry=r,
        )
        self.tool_calls = Counter(
            f"{_NS}_tool_calls",
            "Read-only tool calls by tool and result status.",
            ["tool", "status"],
            registry=r,
        )
        self.llm_tokens = Counter(
            f"{_NS}_llm_tokens", "LLM tokens used, by kind.", ["kind"], registry=r
        )
        self.decision_latency = Histogram(
            f"{_NS}_decision_latency_seconds",
            "Time from an incident's signal to the guard's decision.",
            buckets=DECISION_LATENCY_BUCKETS,
            registry=r,
        )
        # Closed vocabularies start at 0, so rate() and increase() see the first event.
        for state in IncidentStatus:
            self.incidents.labels(state=state.value)
            self.incidents_current.labels(state=state.value)
        for action in ActionType:
            for verdict in Verdict:
                self.guard_decisions.labels(verdict=verdict.value, action=action.value)
            for outcome in OutcomeStatus:
                self.actions.labels(action=action.value, outcome=outcome.value)
        for kind in ("prompt", "completion"):
            self.llm_tokens.labels(kind=kind)

    # ---------------------------------------------------------------------- drift

    def observe_drift(self, report: DriftReport) -> None:
        """Expose the figures of ``report`` as the model's current drift gauges."""
        m = report.model
        series: dict[Gauge, set[tuple[str, ...]]] = {}

        def put(gauge: Gauge, value: float, *labels: str) -> None:
            gauge.labels(m, *labels).set(value)
            series.setdefault(gauge, set()).add((m, *labels))

        with self._lock:
            put(self.drift_share, report.drift_share)
            put(self.dataset_drift, float(report.dataset_drift))
            put(self.data_defects, data_defect_count(report))
            put(self.drift_rows, report.reference_rows, "reference")
            put(self.drift_rows, report.current_rows, "current")
            put(self.drift_window_end, report.window_end.timestamp())
            put(self.drift_compute_seconds, report.compute_seconds)
            for f in report.features:
                put(self.feature_drift_score, f.score, f.feature, f.method)
                put(self.feature_drift_threshold, f.threshold, f.feature, f.method)
                put(self.feature_drifted, float(f.drifted), f.feature)
            for q in report.quality:
                put(self.feature_null_share, q.null_share_reference, q.feature, "reference")
                put(self.feature_null_share, q.null_share_current, q.feature, "current")
                put(self.feature_out_of_range_share, q.out_of_range_share, q.feature)
                if q.scale_ratio is not None:
                    put(self.feature_scale_ratio, q.scale_ratio, q.feature)
            if report.prediction_drift is not None:
                p = report.prediction_drift
                put(self.prediction_drift_score, p.score, p.method)
            self._replace_series(m, series)
            self.drift_checks.labels(model=m, status=ToolStatus.OK.value).inc()

    def drift_check_failed(self, model: str, status: Literal["no_data", "error"]) -> None:
        """Count a drift check of ``model`` that found no rows or failed; gauges are kept."""
        self.drift_checks.labels(model=model, status=status).inc()

    def forget_model(self, model: str) -> None:
        """Drop every drift gauge of ``model`` (it is no longer watched)."""
        with self._lock:
            self._replace_series(model, {})

    def _replace_series(self, model: str, series: dict[Gauge, set[tuple[str, ...]]]) -> None:
        for gauge, labels in self._series.get(model, {}).items():
            for stale in labels - series.get(gauge, set()):
                gauge.remove(*stale)
        self._series[model] = series

    # ---------------------------------------------------------------------- the loop

    def incident_entered(self, state: IncidentStatus) -> None:
        """Count an incident entering ``state``."""
        self.incidents.labels(state=state.value).inc()

    def set_incidents(self, counts: Mapping[IncidentStatus, int]) -> None:
        """Set how many incidents are in each state now (states not given: 0)."""
        for state in IncidentStatus:
            self.incidents_current.labels(state=state.value).set(counts.get(state, 0))

    def guard_decision(self, verdict: Verdict, action: ActionType) -> None:
        """Count a guard decision."""
        self.guard_decisions.labels(verdict=verdict.value, action=action.value).inc()

    def action_outcome(self, action: ActionType, outcome: OutcomeStatus) -> None:
        """Count an action the executor ran (or reconciled, or skipped as a duplicate)."""
        self.actions.labels(action=action.value, outcome=outcome.value).inc()

    def tool_call(self, tool: str, status: ToolStatus) -> None:
        """Count a tool call and its result status."""
        self.tool_calls.labels(tool=tool, status=status.value).inc()

    def add_llm_tokens(self, *, prompt: int, completion: int) -> None:
        """Count the tokens of one LLM call."""
        if prompt < 0 or completion < 0:
            raise ValueError(f"token counts cannot be negative: {prompt=!r}, {completion=!r}")
        self.llm_tokens.labels(kind="prompt").inc(prompt)
        self.llm_tokens.labels(kind="completion").inc(completion)

    def observe_decision_latency(self, seconds: float) -> None:
        """Record the time from an incident's signal to its guard decision."""
        self.decision_latency.observe(seconds)

    # ---------------------------------------------------------------------- exposition

    def render(self) -> bytes:
        """The registry in Prometheus text exposition format, for ``GET /metrics``."""
        return generate_latest(self.registry)


class ObservedDrift:
    """A drift port that exposes every report it answers (and every failure) as metrics.

    Wrap the real adapter with it before handing it to tools, so the figures of each drift
    check, scheduled or asked by a reasoner, reach ``/metrics``::

        drift = ObservedDrift(FileDriftAdapter(sources, cfg, clock=clock), metrics)
    """

    def __init__(self, inner: DriftPort, metrics: SupervisorMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def report(
        self, model: str, *, window: timedelta, end: datetime | None = None
    ) -> DriftReport | None:
        """The inner port's report, recorded on the way out."""
        try:
            report = self._inner.report(model, window=window, end=end)
        except BackendError:
            self._metrics.drift_check_failed(model, "error")
            raise
        if report is None:
            self._metrics.drift_check_failed(model, "no_data")
        else:
            self._metrics.observe_drift(report)
        return report

    def seasonal_report(
        self, model: str, *, window: timedelta, period: timedelta, end: datetime | None = None
    ) -> DriftReport | None:
        """The inner port's comparison with the same hours one cycle earlier (not recorded:
        the drift metrics describe drift against the training reference)."""
        if not isinstance(self._inner, SeasonalDriftPort):
            raise NoSeasonalHistory(
                f"the drift backend of model {model!r} keeps no history of inputs"
            )
        return self._inner.seasonal_report(model, window=window, period=period, end=end)
