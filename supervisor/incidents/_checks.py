"""Scheduled checks: what the supervisor looks at on its own, per watched model.

Each check reads through the same read-only tools the reasoners use and emits signals;
the incident manager decides whether a signal opens an incident.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from supervisor.config import SignalThreshold, SupervisorConfig, WatchedModel
from supervisor.domain import MetricName, Signal, SignalKind, Symptom
from tools._toolkit import ToolContext, ToolRegistry

#: Canary requests needed before an early verdict on a regressing canary.
EARLY_MIN_SAMPLES = 50

#: Window (minutes) in which upstream defects are looked for.
RECENT_MINUTES = 15

#: Annotation of a drift signal from these checks: when they first saw the drift (ISO time).
DRIFT_SINCE = "drift_since"

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
    _rechecks: dict[str, datetime] = field(default_factory=dict)
    _drift_since: dict[str, datetime] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """What the checks could not judge (e.g. no labels yet), newest last; never silent."""

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
            if s.metric is MetricName.ACCURACY:
                continue  # judged by the quality watch below, on late labels
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
        quality = self._quality_watch(m, now, stable, canary)
        if quality is not None:
            return [self._with_drift_since(m, quality)]
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
            why = _drift_reasons(m, d.data) if d.ok else []
            if not d.ok or not d.data.get("important_drift"):
                self._drift_since.pop(m.name, None)
            elif why == [_important_reason(d.data)] and self._await_labels(m, now):
                # Only importance flagged it (no defect, plain share under its threshold):
                # a retrain may follow, so wait for the labels of the drifted rows.
                why = []
            if why:
                sig = self._signal(
                    m,
                    Symptom.DATA_DRIFT,
                    now,
                    float(d.data["weighted_drift_share"]),
                    "; ".join(why),
                )
                signals.append(self._with_drift_since(m, sig))
                self._schedule_recheck(m, now)
        return signals

    # ------------------------------------------------------------------ quality watch

    def _quality_watch(
        self, m: WatchedModel, now: datetime, stable: str | None, canary: str | None
    ) -> Signal | None:
        """Labelled accuracy, on the latest window whose labels have arrived (however late).

        Fires on a configured accuracy floor or on a fall of ``quality.max_drop`` against the
        same model's labelled accuracy 6 h earlier (concept drift moves no input, so only this
        sees it). While a canary runs both versions are judged: the stable version alone being
        worse is what a fix under way looks like; both worse is an incident.
        """
        floors = [s for s in m.signals if s.metric is MetricName.ACCURACY]
        if not m.quality.enabled and not floors:
            return None
        due = self._rechecks.get(m.name)
        stable_q = self._quality(m, stable, floors)
        if stable_q is None:
            # No labelled rows at all in the look-back: not healthy, not an incident either;
            # say so, and look again when labels should have arrived.
            self.notes.append(f"{m.name}: quality watch has no labelled data at {now:%H:%M}")
            return None
        value, reason = stable_q
        if due is not None and now >= due:
            del self._rechecks[m.name]
        if reason is None:
            return None
        if canary is not None:
            canary_q = self._quality(m, canary, floors)
            if canary_q is None or canary_q[1] is None:
                return None  # the canary (a fix under way, or new traffic) is not worse
            reason = f"{reason}; canary {canary} too: {canary_q[1]}"
        return self._signal(m, Symptom.QUALITY_DROP, now, value, reason)

    def _quality(
        self, m: WatchedModel, version: str | None, floors: list[SignalThreshold]
    ) -> tuple[float, str | None] | None:
        args: dict[str, object] = {"window_minutes": m.quality.window_minutes}
        if version is not None:
            args["version"] = version
        if m.quality.label_delay_minutes is not None:
            args["label_delay_minutes"] = m.quality.label_delay_minutes
        q = self._call(m, "get_model_quality", args)
        if not q.ok:
            return None
        acc = float(q.data["online_accuracy"])
        lag = q.data["label_lag_minutes"]
        for f in floors:
            if acc < f.threshold:
                return acc, f"labelled accuracy {acc:.4g} < {f.threshold} (labels {lag:g} min late)"
        drop = q.data.get("trend_drop")
        p = q.data.get("trend_p_value")
        if (
            m.quality.enabled
            and drop is not None
            and p is not None
            and drop >= m.quality.max_drop
            and p < m.quality.alpha
        ):
            return acc, (
                f"labelled accuracy {acc:.4g} fell {drop:.4g} in 6 h (labels {lag:g} min late)"
            )
        return acc, None

    def _await_labels(self, m: WatchedModel, now: datetime) -> bool:
        """Whether to hold a (defect-free) drift finding until its labels arrive.

        Labels that arrive within the hour are the best evidence of harm, and a retrain needs
        labelled rows of the drifted period: so drift is reported once it has lasted the label
        lag plus one quality window, when the labelled window covers drifted rows. Labels
        later than that (hours, days) are not waited for: the diagnosis then rests on the
        label-free proxies and a quality re-check is scheduled. A defect is never held.
        """
        since = self._drift_since.setdefault(m.name, now)
        q = self._call(m, "get_model_quality", {"window_minutes": m.quality.window_minutes})
        if not q.ok or q.data["labels_pending"]:
            return False
        wait = timedelta(minutes=float(q.data["label_lag_minutes"]) + m.quality.window_minutes)
        if now - since >= wait:
            return False
        self.notes.append(
            f"{m.name}: drift seen since {since:%H:%M}; waiting for its labels until "
            f"{since + wait:%H:%M}"
        )
        return True

    def _schedule_recheck(self, m: WatchedModel, now: datetime) -> None:
        """When the drift incident's quality evidence waits on labels, look again on arrival."""
        q = self._call(m, "get_model_quality", {"window_minutes": m.quality.window_minutes})
        at = q.data.get("recheck_at") if q.ok else None
        if at:
            self._rechecks[m.name] = datetime.fromisoformat(at)

    def _with_drift_since(self, m: WatchedModel, sig: Signal) -> Signal:
        """The signal, annotated with when these checks first saw the model's important drift
        (if they did): rows after it are drifted rows, so a retrain waiting for their labels
        counts from there rather than from when the incident opened (graph/_labels.py)."""
        since = self._drift_since.get(m.name)
        if since is None:
            return sig
        return sig.model_copy(
            update={"annotations": {**sig.annotations, DRIFT_SINCE: since.isoformat()}}
        )

    def due_rechecks(self) -> dict[str, datetime]:
        """Quality re-checks scheduled for when late labels arrive, by model."""
        return dict(self._rechecks)

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


def _drift_reasons(m: WatchedModel, data: dict[str, Any]) -> list[str]:
    """Why a drift report opens an incident; empty when it does not.

    Importance decides (the drift report's ``important_drift``: drift on features carrying half
    the model's importance, or a quarter with the outputs following). The plain share still
    opens one at its (Evidently) threshold so that wide drift on features the model ignores is
    recorded and diagnosed (usually benign_change) rather than dropped.
    """
    why = []
    if data["defect_count"] > 0:
        why.append(f"{data['defect_count']} data defect(s)")
    if data.get("important_drift"):
        why.append(_important_reason(data))
    if float(data["drift_share"]) >= m.drift.drift_share_threshold:
        why.append(f"drift share {data['drift_share']} >= {m.drift.drift_share_threshold}")
    return why


def _important_reason(data: dict[str, Any]) -> str:
    return (
        f"drift that matters to the model: drifted features carry "
        f"{data['weighted_drift_share']} of its importance, outputs moved "
        f"{data.get('prediction_drift_score')}"
    )
