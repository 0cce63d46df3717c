"""The one place steps are recorded: an OpenTelemetry span and an audit record per step.

Spans of one incident share one trace id derived from the incident id, so a reviewer can go
from any audit record to the whole incident's trace, across restarts and resumes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, TraceFlags, Tracer

from supervisor.audit import AuditTrail
from supervisor.domain import AuditKind, AuditRecord
from supervisor.telemetry import safe_attributes


def incident_trace_context(incident_id: str) -> Any:
    """An OpenTelemetry context whose parent is a fixed span of the incident's own trace."""
    digest = hashlib.sha256(incident_id.encode()).digest()
    trace_id = int.from_bytes(digest[:16], "big") or 1
    span_id = int.from_bytes(digest[16:24], "big") or 1
    parent = SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


class Recorder:
    """Opens spans and appends audit records stamped with the current span's ids."""

    def __init__(self, audit: AuditTrail, tracer: Tracer) -> None:
        self.audit = audit
        self.tracer = tracer

    @contextmanager
    def span(
        self,
        name: str,
        *,
        incident_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Iterator[Span]:
        """A span for one step; under the incident's trace when ``incident_id`` is given."""
        attrs = dict(attributes or {})
        ctx = None
        if incident_id is not None:
            attrs["incident.id"] = incident_id
            if not trace.get_current_span().get_span_context().is_valid:
                ctx = incident_trace_context(incident_id)
        with self.tracer.start_as_current_span(
            name, context=ctx, attributes=safe_attributes(attrs)
        ) as span:
            yield span

    def record(
        self, kind: AuditKind, *, incident_id: str | None, actor: str, data: dict[str, Any]
    ) -> AuditRecord:
        """Append one audit record (redacted by the log) stamped with the current span."""
        return self.audit.append(kind, incident_id=incident_id, actor=actor, data=data)
