"""What the rest of the supervisor needs of an audit store, whichever it is (the JSONL file,
:class:`~supervisor.audit.AuditLog`, or Postgres, :class:`~supervisor.audit.PostgresAuditLog`)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from supervisor.domain import AuditKind, AuditRecord


class AuditTrail(Protocol):
    """An append-only, hash-chained audit store."""

    def append(
        self,
        kind: AuditKind,
        *,
        incident_id: str | None,
        actor: str,
        data: dict[str, Any],
        ts: datetime | None = None,
    ) -> AuditRecord:
        """Redact, chain and store one record durably; return it."""
        ...

    def deferred_sync(self) -> AbstractContextManager[None]:
        """Appends inside return once written; leaving returns once they are durable."""
        ...

    def sync(self) -> None:
        """Make every record appended so far durable now."""
        ...

    def records(self, incident_id: str | None = None) -> list[AuditRecord]:
        """All records in order, or those of one incident."""
        ...

    def find(
        self,
        kind: AuditKind,
        *,
        incident_id: str | None = None,
        where: dict[str, Any] | None = None,
    ) -> list[AuditRecord]:
        """Records of ``kind`` whose data has every key of ``where`` with an equal value."""
        ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...
