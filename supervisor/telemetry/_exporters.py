"""Span exporters: a JSON-lines file exporter and a wrapper that redacts before any export."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from supervisor.audit._redact import redact_text

from ._attributes import safe_attributes


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    """One span as the JSON object the file exporter writes (one per line)."""
    ctx = span.get_span_context()
    parent = span.parent
    duration_ms = (
        (span.end_time - span.start_time) / 1e6
        if span.end_time is not None and span.start_time is not None
        else None
    )
    return {
        "name": span.name,
        "trace_id": trace.format_trace_id(ctx.trace_id) if ctx else None,
        "span_id": trace.format_span_id(ctx.span_id) if ctx else None,
        "parent_span_id": trace.format_span_id(parent.span_id) if parent else None,
        "kind": span.kind.name,
        "start": _iso(span.start_time),
        "end": _iso(span.end_time),
        "duration_ms": duration_ms,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": e.name, "at": _iso(e.timestamp), "attributes": dict(e.attributes or {})}
            for e in span.events
        ],
        "status": {"code": span.status.status_code.name, "description": span.status.description},
        "service": span.resource.attributes.get("service.name"),
    }


class JsonLinesSpanExporter(SpanExporter):
    """Append each finished span as one JSON line to a file (see :func:`span_to_dict`)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()
        self._file: TextIO | None = path.open("a", encoding="utf-8")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(
            json.dumps(span_to_dict(s), ensure_ascii=False, default=str) + "\n" for s in spans
        )
        with self._lock:
            if self._file is None:
                return SpanExportResult.FAILURE
            self._file.write(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._lock:
            if self._file is not None:
                self._file.flush()
        return True

    def shutdown(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _redacted_span(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    if status.description:
        status = Status(status.status_code, redact_text(status.description))
    return ReadableSpan(
        name=redact_text(span.name),
        context=span.get_span_context(),
        parent=span.parent,
        resource=span.resource,
        attributes=safe_attributes(dict(span.attributes or {})),
        events=[
            Event(e.name, safe_attributes(dict(e.attributes or {})), e.timestamp)
            for e in span.events
        ],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Redact span names, attributes, event attributes (exception messages and stack traces
    included) and status descriptions, then hand the spans to ``inner``.

    Code should still pass attributes through :func:`safe_attributes`; this wrapper is the
    backstop that keeps a forgotten call from leaking a secret to a collector.
    """

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([_redacted_span(s) for s in spans])

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._inner.shutdown()
