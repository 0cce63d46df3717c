"""The service's moving parts: intake (fast, on the request thread) and incident workers."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from supervisor.domain import (
    ActionType,
    AuditKind,
    Incident,
    OutcomeStatus,
    Signal,
    ToolStatus,
    Verdict,
)
from supervisor.metrics import SupervisorMetrics
from supervisor.runtime import Supervisor

from ._alertmanager import WebhookPayload, signals_from_webhook

log = logging.getLogger("mlops_supervisor.service")


class ServiceRuntime:
    """Takes notifications in and hands new incidents to a bounded pool of graph workers."""

    def __init__(
        self, supervisor: Supervisor, workers: int, metrics: SupervisorMetrics | None = None
    ) -> None:
        self.supervisor = supervisor
        self.metrics = metrics or SupervisorMetrics(
            models=[m.name for m in supervisor.config.models]
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="incident")
        self._futures: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self.notifications = 0
        self._observed: set[int] = set()

    def intake(self, payload: WebhookPayload) -> dict[str, Any]:
        """Record every alert of a notification; start a graph for each new incident."""
        sup = self.supervisor
        signals, unmapped = signals_from_webhook(
            payload, sup.config.service.intake, sup.clock.now()
        )
        with self._lock:
            self.notifications += 1
        for u in unmapped:
            sup.recorder.record(
                AuditKind.SIGNAL,
                incident_id=None,
                actor="alertmanager",
                data={
                    "group_key": payload.groupKey,
                    "fingerprint": u.fingerprint,
                    "labels": u.labels,
                    "disposition": f"ignored: {u.reason}",
                },
            )
        incidents: list[str] = []
        opened: list[str] = []
        for signal in signals:
            incident, is_new = sup.ingest(signal)
            if incident is None:
                continue
            incidents.append(incident.id)
            if is_new:
                opened.append(incident.id)
                self._submit(incident, signal)
        return {
            "alerts": len(payload.alerts),
            "signals": len(signals),
            "ignored": len(unmapped),
            "incidents": sorted(set(incidents)),
            "opened": opened,
        }

    def _submit(self, incident: Incident, signal: Signal) -> None:
        fut = self._pool.submit(self._work, incident, signal)
        with self._lock:
            self._futures.add(fut)
        fut.add_done_callback(self._done)

    def _work(self, incident: Incident, signal: Signal) -> None:
        try:
            self.supervisor.start(incident, signal)
        except Exception:  # a failing incident must not take the worker down; it is logged
            log.exception(
                "incident %s failed in the graph; its checkpoint is kept for resume", incident.id
            )
        finally:
            self.observe(incident.id)

    def observe(self, incident_id: str) -> None:
        """Bring /metrics up to date with what an incident's runs recorded (each record once)."""
        sup, m = self.supervisor, self.metrics
        m.set_incidents(Counter(i.status for i in sup.incidents.all()))
        current = sup.incidents.get(incident_id)
        if current is not None:
            m.incident_entered(current.status)
        records = sup.audit.records(incident_id)
        opened = next((r for r in records if r.kind is AuditKind.INCIDENT_OPENED), None)
        with self._lock:
            fresh = [r for r in records if r.seq not in self._observed]
            self._observed.update(r.seq for r in fresh)
        for r in fresh:
            if r.kind is AuditKind.DECISION:
                decision = r.data["decision"]
                m.guard_decision(Verdict(decision["verdict"]), ActionType(decision["action"]))
                if opened is not None:
                    m.observe_decision_latency((r.ts - opened.ts).total_seconds())
            elif r.kind is AuditKind.ACTION_OUTCOME:
                outcome = r.data["outcome"]
                m.action_outcome(ActionType(outcome["action"]), OutcomeStatus(outcome["status"]))
            elif r.kind is AuditKind.TOOL_CALL:
                m.tool_call(r.data["tool"], ToolStatus(r.data["status"]))

    def _done(self, fut: Future[Any]) -> None:
        with self._lock:
            self._futures.discard(fut)

    def drain(self, timeout: float | None = None) -> None:
        """Wait for running incidents (tests, graceful shutdown)."""
        with self._lock:
            futures = list(self._futures)
        for f in futures:
            f.result(timeout=timeout)

    def shutdown(self) -> None:
        """Stop taking work; in-flight incidents finish (their checkpoints survive a kill)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
