"""Scheduled checks: what the supervisor looks at on its own, per watched model.

Each check reads through the same read-only tools the reasoners use and emits signals;
the incident manager decides whether a signal opens an incident.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from supervisor.config import SupervisorConfig, WatchedModel
from supervisor.domain import MetricName, Signal, SignalKind, Symptom
from tools._toolkit import ToolContext, ToolRegistry

#: Canary requests needed before an early verdict on a regressing canary.
EARLY_MIN_SAMPLES = 50

#: Window (minutes) in which upstream defects are looked for.
RECENT_MINUTES = 15

#: Signals that judge the model's predictions rather than the serving path.
_QUALITY = frozenset({MetricName.ACCURACY, MetricName.PREDICTION_SCORE_MEAN})

_METRIC_SYMPTOM = {
    MetricName.ERROR_RATE: Symptom.HIGH_ERROR_RATE,
    MetricName.LATENCY_P50: Symptom.HIGH_LATENCY,
    MetricName.LATENCY_P99: Symptom.HIGH_LATENCY,
    MetricName.SATURATION: Symptom.SATURATION,
    MetricName.ACCURACY: Symptom.QUALITY_DROP,
    MetricName.THROUGHPUT: Symptom.NO_DATA,
    MetricName.PREDICTION_SCORE_MEAN: Symptom.DATA_DRIFT,
}


@dataclass
class Checker:
    """Runs the scheduled checks; remembers when each drift check last ran."""

    config: SupervisorConfig
    tools: ToolRegistry
    tool_ctx: ToolContext
    _last_drift: dict[str, datetime] = field(default_factory=dict)
    _canary_seen: dict[tuple[str, str], datetime] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def run(self, busy: set[tuple[str, str]] | None = None) -> list[Signal]:
        """Signals from every watched model that is not ``busy`` (has an open incident)."""
        out: list[Signal] = []
        for m in self.config.models:
            if busy and (m.name, m.environment) in busy:
                continue
            out += self.check_model(m)
        return out

    def check_model(self, m: WatchedModel) -> list[Signal]:
        now = self.tool_ctx.clock.now()
        signals: list[Signal] = []
        status = self._call(m, "get_deployment_status", {})
        canary = status.data.get("canary_version") if status.ok else None
        stable = status.data.get("stable_version") if status.ok else None
        throughput = self._call(m, "get_metric", {"metric": "throughput", "window_minutes": 15})
        if throughput.status.value == "no_data":
            return [
                self._signal(m, Symptom.NO_DATA, now, None, "no throughput reported in 15 minutes")
            ]
        for s in m.signals:
            if canary is not None and s.metric in _QUALITY:
                # A canary is the fix under way: the stable version's quality is expected to be
                # low until the canary analysis promotes or aborts it.
                continue
            args: dict[str, object] = {"metric": s.metric.value, "window_minutes": s.window_minutes}
            if s.metric in _QUALITY and stable is not None:
                # Judge the version that serves now, not the one it replaced in the same window.
                args["version"] = stable
            r = self._call(m, "get_metric", args)
            if not r.ok:
                continue
            value = float(r.data["value"])
            breached = value > s.threshold if s.op == ">" else value < s.threshold
            if breached:
                signals.append(
                    self._signal(
                        m,
                        _METRIC_SYMPTOM[s.metric],
                        now,
                        value,
                        f"{s.metric.value} {value:.4g} {s.op} {s.threshold}",
                    )
                )
        if signals:
            return signals[:1]
        if canary is not None:
            # Like Flagger's analysis, but early: a canary failing requests clearly (2x errors or
            # 1.5x p99 on enough traffic) is analysed at once, not at the end of its window.
            cmp = self._call(m, "compare_canary", {"window_minutes": 5})
            ratio = cmp.data.get("ratio", {}) if cmp.ok else {}
            if (
                cmp.ok
                and cmp.data.get("canary_samples", 0) >= EARLY_MIN_SAMPLES
                and (ratio.get("error_rate", 0) >= 2.0 or ratio.get("latency_p99", 0) >= 1.5)
            ):
                return [
                    self._signal(
                        m,
                        Symptom.CANARY_ANALYSIS,
                        now,
                        None,
                        f"canary {canary} regressing early: {ratio}",
                    )
                ]
            # When the canary started: from the registry's timeline where it records it, else
            # from when these checks first saw it (real deploy backends keep no history).
            first_seen = self._canary_seen.setdefault((m.name, canary), now)
            timeline = self._call(m, "get_change_timeline", {"hours": 24})
            started = [
                datetime.fromisoformat(e["at"])
                for e in timeline.data.get("events", [])
                if e["kind"] == "canary_started" and e["version"] == canary
            ]
            since = min([first_seen, *started[-1:]])
            if now - since >= timedelta(minutes=self.config.timing.canary_analysis_minutes):
                return [
                    self._signal(
                        m, Symptom.CANARY_ANALYSIS, now, None, f"canary {canary} due for analysis"
                    )
                ]
            return []  # drift is judged once the canary is settled
        last = self._last_drift.get(m.name)
        if last is None or now - last >= timedelta(minutes=m.drift.interval_minutes):
            self._last_drift[m.name] = now
            d = self._call(m, "get_drift_report", {"window_minutes": m.drift.window_minutes})
            # A broken pipeline is a step change: judge defects on the most recent inputs, where
            # the defect is whole, not diluted by the healthy part of a long window.
            recent = self._call(m, "get_drift_report", {"window_minutes": RECENT_MINUTES})
            if recent.ok and recent.data["defect_count"] > 0:
                d = recent
            if d.ok and (
                d.data["drift_share"] >= m.drift.drift_share_threshold or d.data["defect_count"] > 0
            ):
                signals.append(
                    self._signal(
                        m,
                        Symptom.DATA_DRIFT,
                        now,
                        float(d.data["drift_share"]),
                        f"drift share {d.data['drift_share']}, {d.data['defect_count']} defect(s)",
                    )
                )
        return signals

    def _call(self, m: WatchedModel, tool: str, args: dict[str, object]):  # type: ignore[no-untyped-def]
        return self.tools.call(
            self.tool_ctx, tool, {"model": m.name, **args}, call_id=f"check-{next(self._ids)}"
        )

    def _signal(
        self, m: WatchedModel, symptom: Symptom, now: datetime, value: float | None, summary: str
    ) -> Signal:
        return Signal(
            id=f"sig-{now:%Y%m%d%H%M}-{m.name}-{symptom.value}",
            kind=SignalKind.CHECK,
            source="scheduler",
            model=m.name,
            environment=m.environment,
            symptom=symptom,
            observed_at=now,
            value=value,
            annotations={"summary": summary},
        )
