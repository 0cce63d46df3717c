"""Tracing setup: the JSON-lines file exporter, OTLP export to a loopback collector, current
ids, and redaction of span data."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import Status, StatusCode
from pydantic import ValidationError

import supervisor.telemetry
from supervisor.telemetry import TelemetryConfig, current_ids, safe_attributes, setup_tracing

FAKE_SECRET = "hunter2-" + "s3cr3t"


def test_public_exports() -> None:
    assert set(supervisor.telemetry.__all__) == {
        "JsonLinesSpanExporter",
        "RedactingSpanExporter",
        "TelemetryConfig",
        "Tracing",
        "current_ids",
        "safe_attributes",
        "setup_tracing",
    }


def _read_spans(path: Path) -> dict[str, dict[str, Any]]:
    spans = [json.loads(line) for line in path.read_text().splitlines()]
    return {s["name"]: s for s in spans}


def test_file_exporter_writes_spans_with_parent_links(tmp_path: Path) -> None:
    path = tmp_path / "spans" / "spans.jsonl"
    tracing = setup_tracing(TelemetryConfig(file=path, service_name="sup-test"))
    with tracing.tracer.start_as_current_span("incident") as parent:
        parent.set_attribute("model", "churn")
        with tracing.tracer.start_as_current_span("tool_call") as child:
            child.set_status(Status(StatusCode.ERROR, "no data"))
    # SimpleSpanProcessor: spans are on disk as soon as they end, before any flush
    spans = _read_spans(path)
    tracing.shutdown()
    assert set(spans) == {"incident", "tool_call"}
    p, c = spans["incident"], spans["tool_call"]
    assert p["parent_span_id"] is None
    assert c["parent_span_id"] == p["span_id"]
    assert c["trace_id"] == p["trace_id"] == f"{parent.get_span_context().trace_id:032x}"
    assert c["span_id"] == f"{child.get_span_context().span_id:016x}"
    assert p["attributes"] == {"model": "churn"}
    assert c["status"] == {"code": "ERROR", "description": "no data"}
    assert p["service"] == "sup-test"
    assert p["start"] <= c["start"] <= c["end"] <= p["end"]
    assert p["duration_ms"] >= 0


def test_exported_spans_are_redacted(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    tracing = setup_tracing(TelemetryConfig(file=path))
    with tracing.tracer.start_as_current_span("call") as span:
        span.set_attribute("api_key", FAKE_SECRET)
        span.set_attribute("url", f"https://mlflow/api?token={FAKE_SECRET}")
        span.add_event("retry", {"detail": f"password={FAKE_SECRET}"})
    tracing.shutdown()
    assert FAKE_SECRET not in path.read_text()
    (span_dict,) = _read_spans(path).values()
    assert span_dict["attributes"] == {
        "api_key": "[REDACTED]",
        "url": "https://mlflow/api?token=[REDACTED]",
    }
    assert span_dict["events"][0]["attributes"] == {"detail": "password=[REDACTED]"}


def test_console_exporter(capsys: pytest.CaptureFixture[str]) -> None:
    tracing = setup_tracing(TelemetryConfig(console=True))
    with tracing.tracer.start_as_current_span("console-span"):
        pass
    tracing.shutdown()
    assert '"name": "console-span"' in capsys.readouterr().out


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, int]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], len(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, int]]]]:
    received: list[tuple[str, str, int]] = []
    handler = type("Handler", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    server.shutdown()
    server.server_close()
    thread.join()


def test_otlp_exports_to_the_configured_endpoint(
    collector: tuple[str, list[tuple[str, str, int]]],
) -> None:
    endpoint, received = collector
    tracing = setup_tracing(TelemetryConfig(otlp_endpoint=endpoint))
    with tracing.tracer.start_as_current_span("to-collector"):
        pass
    tracing.shutdown()  # drains the batch processor
    assert len(received) == 1
    path, content_type, size = received[0]
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    assert size > 0


def test_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        TelemetryConfig.model_validate({"consol": True})
    assert TelemetryConfig().service_name == "mlops-supervisor"


def test_current_ids() -> None:
    assert current_ids() == ("0" * 32, "0" * 16)
    tracing = setup_tracing(TelemetryConfig())
    with tracing.tracer.start_as_current_span("outer") as outer:
        outer_ids = current_ids()
        with tracing.tracer.start_as_current_span("inner") as inner:
            inner_ids = current_ids()
        assert current_ids() == outer_ids
    assert current_ids() == ("0" * 32, "0" * 16)
    tracing.shutdown()
    o, i = outer.get_span_context(), inner.get_span_context()
    assert outer_ids == (f"{o.trace_id:032x}", f"{o.span_id:016x}")
    assert inner_ids == (f"{o.trace_id:032x}", f"{i.span_id:016x}")
    assert len(inner_ids[0]) == 32 and len(inner_ids[1]) == 16


def test_tracings_are_independent(tmp_path: Path) -> None:
    first = setup_tracing(TelemetryConfig(file=tmp_path / "a.jsonl"))
    second = setup_tracing(TelemetryConfig(file=tmp_path / "b.jsonl"))
    with first.tracer.start_as_current_span("only-a"):
        pass
    first.shutdown()
    second.shutdown()
    assert list(_read_spans(tmp_path / "a.jsonl")) == ["only-a"]
    assert (tmp_path / "b.jsonl").read_text() == ""


def test_safe_attributes() -> None:
    assert safe_attributes(
        {
            "model": "churn",
            "count": 3,
            "ratio": 0.5,
            "ok": True,
            "password": FAKE_SECRET,
            "secret_flag": False,
            "url": f"https://u:{FAKE_SECRET}@host/x",
            "labels": ["a", f"token={FAKE_SECRET}"],
            "scores": [1.0, 2.0],
            "mixed": [1, "a"],
            "args": {"window": "1h", "token": FAKE_SECRET},
            "missing": None,
        }
    ) == {
        "model": "churn",
        "count": 3,
        "ratio": 0.5,
        "ok": True,
        "password": "[REDACTED]",
        "secret_flag": False,
        "url": "https://u:[REDACTED]@host/x",
        "labels": ["a", "token=[REDACTED]"],
        "scores": [1.0, 2.0],
        "mixed": '[1,"a"]',
        "args": '{"token":"[REDACTED]","window":"1h"}',
    }
