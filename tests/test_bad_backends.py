"""A backend that fails never reads as healthy: the incident ends as insufficient_evidence,
escalates, acts on nothing, and the failure is logged."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from supervisor.config import config_from_dict
from supervisor.demo import demo_config
from supervisor.domain import AuditKind, Signal, SignalKind, Symptom
from supervisor.runtime import Supervisor
from supervisor.telemetry import TelemetryConfig, setup_tracing
from tools import WriteBackends, read_only
from tools.prometheus import PrometheusClient, PrometheusConfig, PrometheusMetrics
from tools.sim import build_world, demo_world_spec


class FakePrometheus:
    """A loopback HTTP server answering every request the way a broken Prometheus would."""

    def __init__(self, mode: str) -> None:
        self.release = threading.Event()

        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if mode == "slow":
                    fake.release.wait(5)
                if mode == "envelope":
                    body, status = (
                        json.dumps(
                            {
                                "status": "error",
                                "errorType": "bad_data",
                                "error": "parse error at char 3",
                            }
                        ).encode(),
                        400,
                    )
                elif mode == "html":
                    body, status = b"<html>502 Bad Gateway</html>", 200
                else:
                    body, status = (
                        json.dumps(
                            {"status": "success", "data": {"resultType": "vector", "result": []}}
                        ).encode(),
                        200,
                    )
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(params=["down", "slow", "envelope", "html", "empty"])
def prometheus_url(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    if request.param == "down":
        yield request.param, _closed_port_url()
        return
    fake = FakePrometheus(request.param)
    yield request.param, fake.url
    fake.close()


def test_broken_metrics_backend_escalates_without_acting(
    prometheus_url: tuple[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mode, url = prometheus_url
    world = build_world(demo_world_spec(7))
    world.advance(timedelta(minutes=90))  # the fraud canary is regressing by now
    client = PrometheusClient(
        PrometheusConfig(url=url, timeout_s=0.3, retries=1, backoff_s=0.0), clock=world.clock
    )
    read = read_only(
        metrics=PrometheusMetrics(client), alerts=world, drift=world, registry=world, deploy=world
    )
    write = WriteBackends(registry=world, deploy=world, train=world, notifier=world)
    config = config_from_dict(demo_config(tmp_path), source="test")
    tracing = setup_tracing(TelemetryConfig())
    sup = Supervisor(
        config, read=read, write=write, clock=world.clock, tracing=tracing, state_dir=tmp_path
    )
    try:
        signal = Signal(
            id="s1",
            kind=SignalKind.ALERT,
            source="test",
            model="fraud",
            symptom=Symptom.HIGH_ERROR_RATE,
            observed_at=world.clock.now(),
        )
        with caplog.at_level(logging.INFO, logger="mlops_supervisor.tools"):
            inc = sup.handle(signal)
        assert inc is not None
        diag = sup.audit.find(AuditKind.DIAGNOSIS, incident_id=inc.id)[-1].data["diagnosis"]
        assert diag["root_cause"] == "insufficient_evidence", diag
        actions = [
            r.data["action"] for r in sup.audit.find(AuditKind.ACTION_INTENT, incident_id=inc.id)
        ]
        assert actions in ([], ["escalate"])
        assert world.action_counts().get("abort_canary", 0) == 0
        assert sup.incidents.get(inc.id).status.value == "escalated"  # type: ignore[union-attr]
        tool_errors = [
            r
            for r in sup.audit.find(AuditKind.TOOL_CALL, incident_id=inc.id)
            if r.data["tool"] in ("get_metric", "compare_canary")
        ]
        assert tool_errors and all(r.data["status"] in ("error", "no_data") for r in tool_errors)
        assert any("get_metric" in m for m in caplog.messages), caplog.messages
        if mode != "empty":
            assert any("failed" in m and url in m for m in caplog.messages), caplog.messages
    finally:
        sup.close()
        client.close()
