"""Signals become incidents: one open incident per (environment, model, symptom).

Alertmanager notifications repeat; a repeat (same groupKey or fingerprint, or just the same
model and symptom while an incident is open) is folded into the open incident and never opens a
second one. A resolved notification is recorded on its incident. Every signal is audited,
folded or not. The incident index is a small JSON file, replaced atomically on every change.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import timedelta
from pathlib import Path

from supervisor._clock import Clock
from supervisor._recorder import Recorder
from supervisor.config import SupervisorConfig
from supervisor.domain import AuditKind, Incident, IncidentStatus, Signal

#: Statuses after which a new signal opens a new incident (after the cooldown).
ENDED = {IncidentStatus.MITIGATED, IncidentStatus.ESCALATED, IncidentStatus.CLOSED}


class IncidentManager:
    """Deduplicates signals into incidents and keeps the incident index."""

    def __init__(
        self,
        path: Path,
        recorder: Recorder,
        clock: Clock,
        config: SupervisorConfig,
        cooldown: timedelta = timedelta(hours=2),
        recheck: timedelta = timedelta(minutes=30),
    ) -> None:
        self.path = path
        self.recorder = recorder
        self.clock = clock
        self.config = config
        self.cooldown = cooldown
        self.recheck = recheck
        self._lock = threading.RLock()
        self._incidents: dict[str, Incident] = {}
        if path.exists():
            raw = json.loads(path.read_text(encoding="utf-8"))
            self._incidents = {i["id"]: Incident.model_validate(i) for i in raw}

    def all(self) -> list[Incident]:
        with self._lock:
            return [i.model_copy() for i in self._incidents.values()]

    def get(self, incident_id: str) -> Incident | None:
        with self._lock:
            inc = self._incidents.get(incident_id)
            return None if inc is None else inc.model_copy()

    def open_for(self, model: str, environment: str) -> list[Incident]:
        """Open incidents of one model (any symptom)."""
        return [
            i
            for i in self.all()
            if i.model == model and i.environment == environment and i.status not in ENDED
        ]

    def ingest(self, signal: Signal) -> tuple[Incident | None, bool]:
        """Record the signal; return its incident and whether it is new (a thread must start)."""
        with self._lock:
            watched = self.config.model_for(signal.model, signal.environment)
            base: dict[str, object] = {"signal": signal.model_dump(mode="json")}
            if watched is None:
                self.recorder.record(
                    AuditKind.SIGNAL,
                    incident_id=None,
                    actor=signal.source,
                    data={**base, "disposition": "ignored: model not in the watch config"},
                )
                return None, False
            existing = self._match(signal)
            if existing is not None:
                return self._fold(existing, signal, base)
            if signal.status == "resolved":
                self.recorder.record(
                    AuditKind.SIGNAL,
                    incident_id=None,
                    actor=signal.source,
                    data={**base, "disposition": "ignored: resolved with no open incident"},
                )
                return None, False
            recent = self._recently_ended(signal)
            if recent is not None:
                return self._fold(recent, signal, {**base, "cooldown": True})
            now = self.clock.now()
            inc = Incident(
                id=f"inc-{len(self._incidents) + 1:04d}-{signal.model}",
                model=signal.model,
                environment=signal.environment,
                symptom=signal.symptom,
                opened_at=now,
                updated_at=now,
                signal_ids=[signal.id],
                fingerprints=[signal.fingerprint] if signal.fingerprint else [],
                group_keys=[signal.group_key] if signal.group_key else [],
            )
            self._incidents[inc.id] = inc
            self.recorder.record(
                AuditKind.SIGNAL,
                incident_id=inc.id,
                actor=signal.source,
                data={**base, "disposition": "opened"},
            )
            self.recorder.record(
                AuditKind.INCIDENT_OPENED,
                incident_id=inc.id,
                actor="incident-manager",
                data={"incident": inc.model_dump(mode="json")},
            )
            self._save()
            return inc.model_copy(), True

    def set_status(self, incident_id: str, status: IncidentStatus) -> None:
        with self._lock:
            inc = self._incidents[incident_id]
            if inc.status is status:
                return
            now = self.clock.now()
            update: dict[str, object] = {"status": status, "updated_at": now}
            if status in ENDED and inc.ended_at is None:
                update["ended_at"] = now
            self._incidents[incident_id] = inc.model_copy(update=update)
            self._save()

    def _match(self, signal: Signal) -> Incident | None:
        # A resolution belongs to the incident its alert opened, even if that incident has
        # ended already; anything else only joins an incident that is still open.
        if signal.status == "resolved" and signal.fingerprint:
            for inc in reversed(list(self._incidents.values())):
                if signal.fingerprint in inc.fingerprints:
                    return inc
        for inc in self._incidents.values():
            if inc.status in ENDED:
                continue
            if signal.fingerprint and signal.fingerprint in inc.fingerprints:
                return inc
            if (
                signal.group_key
                and signal.group_key in inc.group_keys
                and inc.symptom is signal.symptom
            ):
                return inc
            if inc.dedup_key == signal.dedup_key:
                return inc
        return None

    def _recently_ended(self, signal: Signal) -> Incident | None:
        """The incident a new signal is folded into during the cooldown after it ended.

        Same symptom: always. Another symptom of a model whose last incident was escalated:
        also, because a person is already on it and a second page would be noise.
        """
        now = self.clock.now()
        for inc in reversed(list(self._incidents.values())):
            if inc.status not in ENDED or inc.ended_at is None:
                continue
            # "Nothing to do" is a provisional verdict (labels may not cover the change yet):
            # look again sooner than after an action or a page.
            cooldown = self.cooldown if inc.status is not IncidentStatus.CLOSED else self.recheck
            if now - inc.ended_at >= cooldown:
                continue
            same_model = (inc.model, inc.environment) == (signal.model, signal.environment)
            if inc.dedup_key == signal.dedup_key or (
                same_model and inc.status is IncidentStatus.ESCALATED
            ):
                return inc
        return None

    def _fold(
        self, inc: Incident, signal: Signal, base: dict[str, object]
    ) -> tuple[Incident, bool]:
        update: dict[str, object] = {
            "signal_ids": [*inc.signal_ids, signal.id],
            "updated_at": self.clock.now(),
        }
        if signal.fingerprint and signal.fingerprint not in inc.fingerprints:
            update["fingerprints"] = [*inc.fingerprints, signal.fingerprint]
        if signal.group_key and signal.group_key not in inc.group_keys:
            update["group_keys"] = [*inc.group_keys, signal.group_key]
        disposition = "folded into open incident"
        if signal.status == "resolved":
            update["resolved_at"] = signal.observed_at
            disposition = "resolved notification recorded"
        elif base.get("cooldown"):
            disposition = "suppressed: same symptom within the cooldown after the last incident"
        new = inc.model_copy(update=update)
        self._incidents[inc.id] = new
        self.recorder.record(
            AuditKind.SIGNAL,
            incident_id=inc.id,
            actor=signal.source,
            data={**{k: v for k, v in base.items() if k != "cooldown"}, "disposition": disposition},
        )
        self._save()
        return new.model_copy(), False

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps([i.model_dump(mode="json") for i in self._incidents.values()], indent=1),
            encoding="utf-8",
        )
        os.replace(tmp, self.path)
