"""One LLM call as an OpenTelemetry span (GenAI semantic conventions) and an audit record.

The audit record carries the sha256 of the prompt and of the response by default; with
``llm.audit_text: full`` it also carries their text, always redacted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode, Tracer

from supervisor.audit._redact import redact, redact_text
from supervisor.telemetry import safe_attributes

from ._budget import token_cost
from ._client import ChatClient
from ._config import LLMConfig
from ._types import ChatRequest, ChatResponse


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class CallOutcome:
    """A finished LLM call: the response (None when it failed), its audit record and latency."""

    response: ChatResponse | None
    record: dict[str, Any]
    latency_seconds: float
    error: Exception | None = None


def traced_call(
    client: ChatClient,
    request: ChatRequest,
    *,
    config: LLMConfig,
    tracer: Tracer | None = None,
    incident_id: str | None = None,
    step: int = 0,
    timeout: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> CallOutcome:
    """Send ``request`` in a ``chat {model}`` span; errors are returned, not raised."""
    tracer = tracer or trace.get_tracer("supervisor.llm")
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": config.system,
        "gen_ai.provider.name": config.system,
        "gen_ai.request.model": request.model,
        "gen_ai.request.max_tokens": request.max_tokens,
        "gen_ai.request.temperature": request.temperature,
        "incident.id": incident_id,
        "llm.step": step,
    }
    if config.base_url:
        attrs["server.address"] = config.base_url
    prompt = request.canonical()
    record: dict[str, Any] = {
        "event": "llm_call",
        "step": step,
        "model": request.model,
        "prompt_sha256": sha256(prompt),
        "messages": len(request.messages),
    }
    if config.audit_text == "full":
        record["prompt"] = redact(request.model_dump(mode="json")["messages"])
    started = monotonic()
    with tracer.start_as_current_span(
        f"chat {request.model}", kind=trace.SpanKind.CLIENT, attributes=safe_attributes(attrs)
    ) as span:
        try:
            response = client.complete(request, timeout=timeout)
        except Exception as err:  # an endpoint failure ends the investigation, honestly
            latency = monotonic() - started
            span.set_attribute("error.type", type(err).__name__)
            span.set_status(Status(StatusCode.ERROR, redact_text(str(err))[:300]))
            record.update(error=redact_text(str(err)), latency_ms=round(latency * 1000, 1))
            return CallOutcome(None, record, latency, err)
        latency = monotonic() - started
        finish = [response.finish_reason] if response.finish_reason else []
        span.set_attributes(
            safe_attributes(
                {
                    "gen_ai.response.model": response.model,
                    "gen_ai.response.id": response.id,
                    "gen_ai.usage.input_tokens": response.input_tokens,
                    "gen_ai.usage.output_tokens": response.output_tokens,
                    "gen_ai.response.finish_reasons": finish,
                }
            )
        )
    record.update(
        response_sha256=sha256(response.text()),
        finish_reason=response.finish_reason,
        input_tokens=response.input_tokens,
        output_tokens=response.output_tokens,
        cost_usd=token_cost(config.price(), response.input_tokens, response.output_tokens),
        latency_ms=round(latency * 1000, 1),
        tool_calls=[t.name for t in response.tool_calls],
    )
    if config.audit_text == "full":
        record["response"] = redact_text(response.text())
    return CallOutcome(response, record, latency)
