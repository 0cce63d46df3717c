"""The in-memory index an audit store answers queries from (the file and Postgres stores)."""

from __future__ import annotations

from typing import Any

from supervisor.domain import AuditKind, AuditRecord

from ._json import jsonable


class RecordIndex:
    """Every record of a chain in order, by kind and by incident. Not locked: the store that
    owns it holds its own lock around every call."""

    def __init__(self) -> None:
        self._records: list[AuditRecord] = []
        self._by_kind: dict[AuditKind, list[int]] = {}
        self._by_incident: dict[str | None, list[int]] = {}

    def add(self, record: AuditRecord) -> None:
        """Index the next record of the chain (its seq is its position)."""
        position = len(self._records)
        self._records.append(record)
        self._by_kind.setdefault(record.kind, []).append(position)
        self._by_incident.setdefault(record.incident_id, []).append(position)

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, seq: int) -> AuditRecord:
        return self._records[seq]

    def select(self, incident_id: str | None = None) -> list[AuditRecord]:
        """All records in order, or only those of ``incident_id``. Copies: mutate freely."""
        if incident_id is None:
            found = list(self._records)
        else:
            found = [self._records[i] for i in self._by_incident.get(incident_id, [])]
        return [r.model_copy(deep=True) for r in found]

    def find(
        self, kind: AuditKind, incident_id: str | None, where: dict[str, Any] | None
    ) -> list[AuditRecord]:
        """Records of ``kind`` in order, optionally of one incident, whose ``data`` has every
        top-level key of ``where`` with an equal value (compared after JSON conversion, so
        enums match their values). Copies."""
        wanted = jsonable(where or {})
        found = [
            r
            for r in (self._records[i] for i in self._by_kind.get(kind, []))
            if (incident_id is None or r.incident_id == incident_id)
            and all(k in r.data and r.data[k] == v for k, v in wanted.items())
        ]
        return [r.model_copy(deep=True) for r in found]
