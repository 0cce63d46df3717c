"""The ids of the current span, for records that must point back at their trace.

Kept apart from the SDK setup so that the audit log needs only the light OpenTelemetry API.
"""

from __future__ import annotations

from opentelemetry import trace

ZERO_TRACE_ID = "0" * 32
ZERO_SPAN_ID = "0" * 16


def current_ids() -> tuple[str, str]:
    """Return ``(trace_id, span_id)`` of the active span as 32 and 16 lowercase hex digits.

    Without an active (valid) span both are all zeros, so records written outside any trace
    still have ids of the right shape.
    """
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return ZERO_TRACE_ID, ZERO_SPAN_ID
    return trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id)
