"""Sealing one audit record: its fields, its hash and its canonical line, in one serialisation.

Shared by every audit store (the JSONL file, Postgres), so the line a store writes is the line
``audit verify`` re-hashes, whichever store wrote it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from supervisor._clock import Clock
from supervisor.domain import AuditKind, AuditRecord

# The private module, not the package: supervisor.telemetry imports this package in turn.
from supervisor.telemetry._context import current_ids

from ._json import jsonable
from ._redact import redact
from ._verify import canonical_json

_TS = TypeAdapter(datetime)


def seal(
    *,
    seq: int,
    ts: datetime,
    kind: AuditKind,
    incident_id: str | None,
    actor: str,
    trace_id: str,
    span_id: str,
    data: dict[str, Any],
    prev_hash: str,
) -> tuple[AuditRecord, bytes]:
    """The record chained after ``prev_hash`` and its line (canonical JSON plus a newline).

    ``data`` must already be plain JSON (dicts, lists, strings, finite numbers, booleans,
    None) and redacted. The hash is sha256 over the canonical JSON of every field but ``hash``
    (:func:`supervisor.audit._verify.record_hash`). The canonical form sorts keys, and the
    top-level keys sort as ``actor, data | hash | incident_id, kind, prev_hash, seq, span_id,
    trace_id, ts``: so the hashed text and the line are the same two halves, the line with
    ``"hash"`` between them, and ``data`` (the bulk of a record) is serialised once.
    """
    when = ts.astimezone(UTC)
    head = canonical_json({"actor": actor, "data": data})
    tail = canonical_json(
        {
            "incident_id": incident_id,
            "kind": kind.value,
            "prev_hash": prev_hash,
            "seq": seq,
            "span_id": span_id,
            "trace_id": trace_id,
            "ts": _TS.dump_python(when, mode="json"),
        }
    )
    digest = hashlib.sha256(f"{head[:-1]},{tail[1:]}".encode()).hexdigest()
    line = f'{head[:-1]},"hash":"{digest}",{tail[1:]}\n'.encode()
    # Built from checked parts, so no validation: the chain rules hold by construction.
    record = AuditRecord.model_construct(
        seq=seq,
        ts=when,
        kind=kind,
        incident_id=incident_id,
        actor=actor,
        trace_id=trace_id,
        span_id=span_id,
        data=data,
        prev_hash=prev_hash,
        hash=digest,
    )
    return record, line


@dataclass(frozen=True)
class Draft:
    """A record before its place in the chain: redacted data, time, span; :meth:`seal` it."""

    ts: datetime
    kind: AuditKind
    incident_id: str | None
    actor: str
    trace_id: str
    span_id: str
    data: dict[str, Any]

    def seal(self, seq: int, prev_hash: str) -> tuple[AuditRecord, bytes]:
        """The record at ``seq`` after ``prev_hash``, and its line (see :func:`seal`)."""
        return seal(
            seq=seq,
            ts=self.ts,
            kind=self.kind,
            incident_id=self.incident_id,
            actor=self.actor,
            trace_id=self.trace_id,
            span_id=self.span_id,
            data=self.data,
            prev_hash=prev_hash,
        )


def draft(
    kind: AuditKind,
    *,
    incident_id: str | None,
    actor: str,
    data: dict[str, Any],
    ts: datetime | None,
    clock: Clock,
) -> Draft:
    """What every store does before it locks the chain: ``ts`` (default: the clock's now; it
    must be timezone-aware), ``data`` converted to plain JSON and redacted, and the active
    OpenTelemetry span's ids (zeros outside any span)."""
    when = clock.now() if ts is None else ts
    if when.tzinfo is None:
        raise ValueError(f"audit timestamps must be timezone-aware, got {when!r}")
    payload = redact(jsonable(data))
    if not isinstance(payload, dict):
        raise TypeError(f"audit data must be a mapping, got {type(data).__name__}")
    trace_id, span_id = current_ids()
    return Draft(when, kind, incident_id, actor, trace_id, span_id, payload)
