"""The service's moving parts: intake (fast, on the request thread) and incident workers."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from supervisor.domain import AuditKind, Incident, Signal
from supervisor.runtime import Supervisor

from ._alertmanager import WebhookPayload, signals_from_webhook

log = logging.getLogger("mlops_supervisor.service")


class ServiceRuntime:
    """Takes notifications in and hands new incidents to a bounded pool of graph workers."""

    def __init__(self, supervisor: Supervisor, workers: int) -> None:
        self.supervisor = supervisor
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="incident")
        self._futures: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self.notifications = 0

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
