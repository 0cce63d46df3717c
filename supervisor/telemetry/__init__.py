"""OpenTelemetry tracing: provider setup, span exporters, current ids and safe attributes."""

from ._attributes import safe_attributes
from ._context import current_ids
from ._exporters import JsonLinesSpanExporter, RedactingSpanExporter
from ._setup import TelemetryConfig, Tracing, setup_tracing

__all__ = [
    "JsonLinesSpanExporter",
    "RedactingSpanExporter",
    "TelemetryConfig",
    "Tracing",
    "current_ids",
    "safe_attributes",
    "setup_tracing",
]
