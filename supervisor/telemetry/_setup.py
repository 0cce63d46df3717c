"""Tracing setup: a TracerProvider of our own with console, JSON-lines file and OTLP exporters.

The provider is returned, never installed as the global one, so tests and several runs in one
process do not fight over global state. Spans still become "current" through the OpenTelemetry
context (a contextvar), which is what :func:`supervisor.telemetry.current_ids` reads.

Console and file exporters run behind a ``SimpleSpanProcessor``: each span is written when it
ends, so nothing is lost if the process dies. OTLP goes over the network, so it runs behind a
``BatchSpanProcessor`` (spans are exported in the background); :meth:`Tracing.shutdown` and
:meth:`Tracing.force_flush` drain it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Tracer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._exporters import JsonLinesSpanExporter, RedactingSpanExporter

TRACER_NAME = "supervisor"


class TelemetryConfig(BaseModel):
    """Where spans go. With every exporter off, spans are still created (ids for the audit log)
    but exported nowhere."""

    model_config = ConfigDict(extra="forbid")

    console: bool = Field(default=False, description="Print each finished span to stdout.")
    file: Path | None = Field(default=None, description="Append spans as JSON lines to this file.")
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint, e.g. 'http://collector:4318/v1/traces'.",
    )
    service_name: str = Field(default="mlops-supervisor", description="OTel service.name.")

    @field_validator("otlp_endpoint")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(
                f"{value!r} is not an http(s) URL; fix: e.g. 'http://collector:4318/v1/traces'"
            )
        return value


@dataclass(frozen=True)
class Tracing:
    """A configured TracerProvider and the tracer the supervisor uses."""

    provider: TracerProvider

    @property
    def tracer(self) -> Tracer:
        """The supervisor's tracer on this provider."""
        return self.provider.get_tracer(TRACER_NAME)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every finished span now; False if an exporter timed out."""
        return self.provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and close every exporter. Spans started afterwards are not exported."""
        self.provider.shutdown()


def _otlp_exporter(endpoint: str) -> SpanExporter:
    # Imported only when configured: it pulls in requests and protobuf.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint)


def setup_tracing(config: TelemetryConfig) -> Tracing:
    """Build a TracerProvider with the exporters ``config`` asks for; every exporter redacts."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: config.service_name}))
    if config.console:
        provider.add_span_processor(
            # sys.stdout as it is now (the SDK default binds it at import time)
            SimpleSpanProcessor(RedactingSpanExporter(ConsoleSpanExporter(out=sys.stdout)))
        )
    if config.file is not None:
        provider.add_span_processor(
            SimpleSpanProcessor(RedactingSpanExporter(JsonLinesSpanExporter(config.file)))
        )
    if config.otlp_endpoint:
        provider.add_span_processor(
            BatchSpanProcessor(RedactingSpanExporter(_otlp_exporter(config.otlp_endpoint)))
        )
    return Tracing(provider=provider)
