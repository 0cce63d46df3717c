"""Signals become incidents: one open incident per (environment, model, symptom).

Alertmanager notifications repeat; a repeat (same groupKey or fingerprint, or just the same
model and symptom while an incident is open) is folded into the open incident and never opens a
second one. A resolved notification is recorded on its incident. Every signal is audited,
folded or not.

The incident index is a small JSON file, replaced atomically whenever what deduplication and
recovery depend on changes: a new incident, a status change, a resolution, a new fingerprint or
groupKey. A plain repeat or a resolution only touches ``updated_at``, ``signal_ids`` and
``resolved_at`` (the audit log has every signal), so it is written with the next change or
:meth:`IncidentManager.flush`, not on its own: during an alert storm that would rewrite the
whole index per notification. The index is written after the audit log is durable, never ahead
of it, and outside the manager's lock, so concurrent signals are decided while one waits for
the disk.

Replicas share the index instead (``shared``, Postgres: :mod:`supervisor.ha`): each decision
then holds the replicas' lock, first reads what other replicas changed, and writes every
changed incident before the lock is released, so no two replicas open the same incident.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from pydantic import TypeAdapter

from supervisor._clock import Clock
from supervisor._recorder import Recorder
from supervisor.config import SupervisorConfig
from supervisor.domain import AuditKind, Incident, IncidentStatus, Signal

#: Statuses after which a new signal opens a new incident (after the cooldown).
ENDED = {IncidentStatus.MITIGATED, IncidentStatus.ESCALATED, IncidentStatus.CLOSED}

# Serialised by pydantic-core: json.dumps with an indent runs the pure-Python encoder.
_INDEX = TypeAdapter(list[Incident])

#: ``Incident.signal_ids`` keeps the first this many signals; the audit log has all of them.
MAX_SIGNAL_IDS = 20

#: ``Incident.fingerprints`` keeps the first this many alert fingerprints. While the incident is
#: open its (model, symptom) matches every later alert anyway; the list serves matching a late
#: resolution to an ended incident, and Alertmanager groups of one model and symptom stay far
#: below this (a notification of 4,000 new fingerprints made each later one cost a rewrite of
#: an ever larger index: 18.9 s). Past it, alerts are still audited, one by one.
MAX_FINGERPRINTS = 500


class SharedIncidents(Protocol):
    """An incident index shared by replicas (``supervisor.ha.PostgresIncidents``)."""

    def load(self) -> list[Incident]: ...

    def changes(self) -> list[Incident]: ...

    def exclusive(self) -> AbstractContextManager[None]: ...

    def put(self, incidents: list[Incident]) -> None: ...


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
        *,
        shared: SharedIncidents | None = None,
    ) -> None:
        self.path = path
        self.recorder = recorder
        self.clock = clock
        self.config = config
        self.cooldown = cooldown
        self.recheck = recheck
        self._lock = threading.RLock()
        self._incidents: dict[str, Incident] = {}
        # Every change bumps the version; the file holds _saved. Writes happen outside _lock
        # (after the audit log is durable), ordered by _save_lock so an older snapshot never
        # replaces a newer one.
        self._version = 0
        self._saved = 0
        self._save_lock = threading.Lock()
        self._batch = threading.local()  # depth of batched() on this thread
        self._shared = shared
        if shared is not None:
            self._incidents = {i.id: i for i in shared.load()}
        elif path.exists():
            self._incidents = {i.id: i for i in _INDEX.validate_json(path.read_bytes())}

    def all(self) -> list[Incident]:
        with self._lock:
            self._refresh()
            return [i.model_copy() for i in self._incidents.values()]

    def get(self, incident_id: str) -> Incident | None:
        with self._lock:
            self._refresh()
            inc = self._incidents.get(incident_id)
            return None if inc is None else inc.model_copy()

    def _refresh(self) -> None:
        """Under the lock: take in what other replicas changed (shared index only)."""
        if self._shared is not None:
            for inc in self._shared.changes():
                self._incidents[inc.id] = inc

    def _exclusive(self) -> AbstractContextManager[None]:
        """Under the lock: exclusion from other replicas for one decision (shared index)."""
        return nullcontext() if self._shared is None else self._shared.exclusive()

    def flush(self) -> None:
        """Write the index if folded repeats changed it since the last write (at shutdown)."""
        if self._shared is not None:
            return  # every change is written at once
        with self._lock:
            snapshot = self._snapshot() if self._version > self._saved else None
        if snapshot is not None:
            self._persist(snapshot)

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Signals ingested on this thread inside the block write the index once, at its end
        (after their audit records), instead of once per new fingerprint or incident."""
        depth = getattr(self._batch, "depth", 0)
        self._batch.depth = depth + 1
        try:
            yield
        finally:
            self._batch.depth = depth
            if depth == 0:
                self.flush()

    def open_for(self, model: str, environment: str) -> list[Incident]:
        """Open incidents of one model (any symptom)."""
        return [
            i
            for i in self.all()
            if i.model == model and i.environment == environment and i.status not in ENDED
        ]

    def ingest(self, signal: Signal) -> tuple[Incident | None, bool]:
        """Record the signal; return its incident and whether it is new (a thread must start).

        Returns once the signal's audit records are durable. The lock covers the decision and
        the writes, not the wait for the disk, so concurrent signals share one fsync.
        """
        with self.recorder.audit.deferred_sync():
            with self._lock, self._exclusive():
                self._refresh()
                incident, is_new, persist = self._ingest(signal)
                snapshot = None
                if self._shared is not None:
                    if incident is not None:
                        self._shared.put([self._incidents[incident.id]])
                elif persist and not getattr(self._batch, "depth", 0):
                    snapshot = self._snapshot()
            if snapshot is not None:
                self._persist(snapshot)
        return incident, is_new

    def _ingest(self, signal: Signal) -> tuple[Incident | None, bool, bool]:
        """Under the lock: (incident, is new, whether the index must be written now)."""
        watched = self.config.model_for(signal.model, signal.environment)
        base: dict[str, object] = {"signal": signal.model_dump(mode="json")}
        if watched is None:
            self.recorder.record(
                AuditKind.SIGNAL,
                incident_id=None,
                actor=signal.source,
                data={**base, "disposition": "ignored: model not in the watch config"},
            )
            return None, False, False
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
            return None, False, False
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
        # The records first: a signal the audit log cannot take (a write error) leaves no
        # incident behind that later alerts would fold into and that no graph ever runs.
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
        self._incidents[inc.id] = inc
        self._version += 1
        return inc.model_copy(), True, True

    def set_status(self, incident_id: str, status: IncidentStatus) -> None:
        with self._lock, self._exclusive():
            self._refresh()
            inc = self._incidents[incident_id]
            if inc.status is status:
                return
            now = self.clock.now()
            update: dict[str, object] = {"status": status, "updated_at": now}
            if status in ENDED and inc.ended_at is None:
                update["ended_at"] = now
            snapshot = self._replace(inc.model_copy(update=update))
        if snapshot is not None:
            self._persist(snapshot)

    def set_recheck(self, incident_id: str, at: datetime | None) -> None:
        """Record (or clear, with None) when the incident's investigation runs again because
        its decision waits for late labels. Written at once: a restart must keep it."""
        with self._lock, self._exclusive():
            self._refresh()
            inc = self._incidents[incident_id]
            if inc.recheck_at == at:
                return
            snapshot = self._replace(
                inc.model_copy(update={"recheck_at": at, "updated_at": self.clock.now()})
            )
        if snapshot is not None:
            self._persist(snapshot)

    def due_rechecks(self) -> list[str]:
        """Open incidents whose label re-check is due now, each cleared and returned once."""
        now = self.clock.now()
        due = [
            i.id
            for i in self.all()
            if i.recheck_at is not None and i.recheck_at <= now and i.status not in ENDED
        ]
        for incident_id in due:
            self.set_recheck(incident_id, None)
        return due

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
    ) -> tuple[Incident, bool, bool]:
        update: dict[str, object] = {"updated_at": self.clock.now()}
        update["signal_count"] = inc.signal_count + 1
        if len(inc.signal_ids) < MAX_SIGNAL_IDS:
            update["signal_ids"] = [*inc.signal_ids, signal.id]
        if (
            signal.fingerprint
            and len(inc.fingerprints) < MAX_FINGERPRINTS
            and signal.fingerprint not in inc.fingerprints
        ):
            update["fingerprints"] = [*inc.fingerprints, signal.fingerprint]
        if signal.group_key and signal.group_key not in inc.group_keys:
            update["group_keys"] = [*inc.group_keys, signal.group_key]
        # What matching and recovery read must survive a crash; a plain repeat need not.
        persist = "fingerprints" in update or "group_keys" in update
        disposition = "folded into open incident"
        fingerprints = update.get("fingerprints", inc.fingerprints)
        assert isinstance(fingerprints, list)
        # An incident is resolved when every alert in it is, not when the first one is (two
        # alerts in one notification, one resolving, is still a firing incident).
        resolved = [f for f in inc.resolved_fingerprints if f != signal.fingerprint]
        if signal.status == "resolved":
            # A resolution that names no alert resolves the incident as a whole.
            resolved = [*resolved, signal.fingerprint] if signal.fingerprint else fingerprints
        if resolved != inc.resolved_fingerprints:
            update["resolved_fingerprints"] = resolved
        still_firing = set(fingerprints) - set(resolved)
        if signal.status == "resolved":
            # Shown, never matched on: like a plain repeat it waits for the next write (the
            # audit log has the resolution either way).
            if not still_firing:
                update["resolved_at"] = signal.observed_at
            disposition = "resolved notification recorded"
            if still_firing:
                disposition += f"; {len(still_firing)} other alert(s) of the incident still firing"
        elif inc.resolved_at is not None:
            update["resolved_at"] = None  # fired again
        if signal.status != "resolved" and base.get("cooldown"):
            disposition = "suppressed: same symptom within the cooldown after the last incident"
        new = inc.model_copy(update=update)
        self.recorder.record(
            AuditKind.SIGNAL,
            incident_id=inc.id,
            actor=signal.source,
            data={**{k: v for k, v in base.items() if k != "cooldown"}, "disposition": disposition},
        )
        self._incidents[inc.id] = new  # only once the record of the change is written
        self._version += 1
        return new.model_copy(), False, persist

    def _replace(self, inc: Incident) -> tuple[int, list[Incident]] | None:
        """Under the lock: put the changed incident in the index (and the shared store, if
        any); the snapshot to write once the lock is released, or None with a shared store."""
        self._incidents[inc.id] = inc
        self._version += 1
        if self._shared is not None:
            self._shared.put([inc])
            return None
        return self._snapshot()

    def _snapshot(self) -> tuple[int, list[Incident]]:
        """Under the lock: the index as it is now. Incidents are replaced on change, never
        mutated, so a list of them stays consistent after the lock is released."""
        return self._version, list(self._incidents.values())

    def _persist(self, snapshot: tuple[int, list[Incident]]) -> None:
        """Write a snapshot taken under the lock, unless a newer one is on disk already.

        The audit log is synced first: the index never gets ahead of it (recovery after a
        crash looks up each incident's opening signal there). Outside the lock, so other
        signals are decided meanwhile and share that fsync.
        """
        self.recorder.audit.sync()
        version, incidents = snapshot
        with self._save_lock:
            if version <= self._saved:
                return
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner-only
            with os.fdopen(fd, "wb") as out:
                out.write(_INDEX.dump_json(incidents, indent=1))
            os.replace(tmp, self.path)
            self._saved = version
