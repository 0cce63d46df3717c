"""Real Prometheus -> real Alertmanager -> the supervisor's POST /alerts, end to end.

A metric the test controls crosses an alert rule's threshold; Prometheus fires; Alertmanager
routes the notification to the running service; an incident opens with the right model,
version and symptom. The metric goes back; the resolved notification lands on that incident.
The payloads Alertmanager really sent are kept as fixtures for the unit tests.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn

FIXTURES = Path(__file__).parent.parent / "fixtures" / "alertmanager"
DEADLINE_S = 60.0


INTAKE_TOKEN_ENV = "MLOPS_SUPERVISOR_ALERTS_TOKEN"
INTAKE_TOKEN = "alertmanager-webhook-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name!r} not found: install the Debian package with `apt-get install {package}`"
        )
    return path


class Exporter:
    """A /metrics endpoint whose error-rate value the test sets."""

    def __init__(self) -> None:
        self.value = 0.01
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = (
                    "# TYPE model_error_rate gauge\n"
                    f'model_error_rate{{model="churn",version="v7"}} {exporter.value}\n'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@dataclass
class Stack:
    exporter: Exporter
    runtime: Any
    bodies: list[dict[str, Any]]


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    import urllib.request

    end = time.monotonic() + 30
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[0]} exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{url} not ready in 30 s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from servicekit import make_service

    prom_bin = _binary("prometheus", "prometheus")
    am_bin = _binary("prometheus-alertmanager", "prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("am")
    # The webhook wants a bearer token; Alertmanager sends it (http_config.authorization).
    with pytest.MonkeyPatch.context() as env:
        env.setenv(INTAKE_TOKEN_ENV, INTAKE_TOKEN)
        app, runtime, backends = make_service(
            tmp / "state", service={"intake": {"token_env": INTAKE_TOKEN_ENV}}
        )
    bodies: list[dict[str, Any]] = []

    async def capture(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/alerts":
            chunks: list[bytes] = []
            more = True
            while more:
                msg = await receive()
                chunks.append(msg.get("body", b""))
                more = msg.get("more_body", False)
            raw = b"".join(chunks)
            bodies.append(json.loads(raw))
            delivered = False

            async def replay() -> dict[str, Any]:
                nonlocal delivered
                if delivered:
                    return {"type": "http.disconnect"}
                delivered = True
                return {"type": "http.request", "body": raw, "more_body": False}

            await app(scope, replay, send)
        else:
            await app(scope, receive, send)

    sup_port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(capture, host="127.0.0.1", port=sup_port, log_level="warning")
    )
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    exporter = Exporter()

    am_port, prom_port = _free_port(), _free_port()
    (tmp / "am.yml").write_text(
        "route:\n  receiver: supervisor\n  group_by: [alertname, model]\n"
        "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        "receivers:\n  - name: supervisor\n    webhook_configs:\n"
        f"      - url: http://127.0.0.1:{sup_port}/alerts\n        send_resolved: true\n"
        f"        http_config: {{authorization: {{credentials: {INTAKE_TOKEN}}}}}\n"
    )
    (tmp / "rules.yml").write_text(
        "groups:\n  - name: models\n    interval: 1s\n    rules:\n"
        "      - alert: ModelHighErrorRate\n        expr: model_error_rate > 0.05\n"
        "        labels: {severity: page}\n"
        "        annotations: {summary: 'error rate of {{ $labels.model }} is {{ $value }}'}\n"
    )
    (tmp / "prom.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [rules.yml]\n"
        "alerting:\n  alertmanagers:\n"
        f"    - static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]\n"
        "scrape_configs:\n  - job_name: models\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n"
    )
    am_log, prom_log = tmp / "am.log", tmp / "prom.log"
    am_out, prom_out = am_log.open("wb"), prom_log.open("wb")
    am = subprocess.Popen(
        [
            am_bin,
            f"--config.file={tmp / 'am.yml'}",
            f"--storage.path={tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        stdout=am_out,
        stderr=subprocess.STDOUT,
    )
    prom = subprocess.Popen(
        [
            prom_bin,
            f"--config.file={tmp / 'prom.yml'}",
            f"--storage.tsdb.path={tmp / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--rules.alert.resend-delay=1s",
        ],
        stdout=prom_out,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(f"http://127.0.0.1:{am_port}/-/ready", am, am_log)
        _wait(f"http://127.0.0.1:{prom_port}/-/ready", prom, prom_log)
        yield Stack(exporter=exporter, runtime=runtime, bodies=bodies)
    finally:
        for p in (prom, am):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        am_out.close()
        prom_out.close()
        server.should_exit = True
        serving.join(timeout=10)
        exporter.server.shutdown()
        exporter.server.server_close()
        runtime.shutdown()
        runtime.supervisor.close()
        backends.close()


def _until(pred: Any, what: str) -> Any:
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"timed out after {DEADLINE_S} s waiting for {what}")


def test_alert_opens_then_resolves_an_incident(stack: Stack) -> None:
    sup = stack.runtime.supervisor
    stack.exporter.value = 0.3  # over the 5% threshold
    inc = _until(lambda: next(iter(sup.incidents.all()), None), "an incident from Alertmanager")
    assert (inc.model, inc.symptom.value) == ("churn", "high_error_rate")
    opened = [r for r in sup.audit.records(inc.id) if r.kind.value == "signal"]
    first = opened[0].data["signal"]
    assert first["version"] == "v7" and first["source"] == "alertmanager" and first["fingerprint"]
    assert inc.group_keys and inc.fingerprints == [first["fingerprint"]]

    stack.exporter.value = 0.0  # back under: Alertmanager sends a resolved notification
    _until(
        lambda: (i := sup.incidents.get(inc.id)) is not None and i.resolved_at is not None,
        "the resolved notification",
    )
    assert len(sup.incidents.all()) == 1, (
        "a repeat or a resolution must never open a second incident"
    )
    statuses = {b["status"] for b in stack.bodies}
    assert statuses == {"firing", "resolved"}
    if os.environ.get("UPDATE_FIXTURES") or not any(FIXTURES.glob("*.json")):
        FIXTURES.mkdir(parents=True, exist_ok=True)
        for body in stack.bodies:
            (FIXTURES / f"{body['status']}.json").write_text(json.dumps(body, indent=2) + "\n")
