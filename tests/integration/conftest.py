"""Real servers for integration tests.

``prometheus``: one Prometheus from the Debian package (``apt-get install prometheus``) per test
session, on a free loopback port with a temporary data dir. It holds

* backfilled history (``promtool tsdb create-blocks-from openmetrics``): the deterministic
  series of :data:`SEEDED` ending at ``server.seeded_end``, so values are known exactly;
* a live scrape, every second, of a loopback exporter the tests control
  (``server.exporter.set(text)``), and the alerting rule ``ModelDown`` (``model_up == 0``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

_READY_TIMEOUT_S = 30.0

#: Backfilled series: (metric name, labels, value at step 0, increase per step). 15 s steps.
SEED_STEP_S = 15
SEED_STEPS = 80  # 20 minutes of history
SEEDED: list[tuple[str, dict[str, str], float, float]] = []


def _seed_model(model: str, version: str, ok: float, err: float, slow: bool) -> None:
    base = {"model": model, "version": version}
    SEEDED.append(("model_requests_total", {**base, "status": "200"}, 0, ok))
    SEEDED.append(("model_requests_total", {**base, "status": "500"}, 0, err))
    n = ok + err
    # Fast versions answer within 0.1 s, slow ones between 0.25 s and 0.5 s.
    for le in ("0.1", "0.25", "0.5", "+Inf"):
        in_bucket = n if (not slow or le in ("0.5", "+Inf")) else 0
        SEEDED.append(("model_request_duration_seconds_bucket", {**base, "le": le}, 0, in_bucket))
    SEEDED.append(("model_request_duration_seconds_count", base, 0, n))
    SEEDED.append(("model_prediction_score_sum", base, 0, 0.7 * n))
    SEEDED.append(("model_prediction_score_count", base, 0, n))
    SEEDED.append(("model_accuracy", base, 0.91, 0))
    SEEDED.append(("node_cpu_saturation", base, 0.4, 0))


_seed_model("fraud", "v1", ok=10, err=1, slow=False)
_seed_model("fraud", "v2", ok=6, err=4, slow=True)
_seed_model("churn", "v3", ok=5, err=0, slow=False)
# "idle" exports its series but serves nothing: ratios are 0/0, i.e. no data.
_seed_model("idle", "v1", ok=0, err=0, slow=False)

_RULES = """\
groups:
  - name: models
    interval: 1s
    rules:
      - alert: ModelDown
        expr: model_up == 0
        labels:
          severity: page
        annotations:
          summary: "model {{ $labels.model }} stopped answering"
"""


class Exporter:
    """A loopback ``/metrics`` endpoint serving whatever text the test sets."""

    def __init__(self) -> None:
        self._text = ""
        self._lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def set(self, text: str) -> None:
        """Serve ``text`` (Prometheus text exposition) from the next scrape on."""
        with self._lock:
            self._text = text

    def text(self) -> str:
        with self._lock:
            return self._text

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class PrometheusServer:
    """A running Prometheus and what it was seeded with."""

    url: str
    exporter: Exporter
    seeded_end: datetime
    data_dir: Path

    def self_metric(self, name: str, **labels: str) -> float:
        """A value from Prometheus's own ``/metrics`` (e.g. how many queries it answered)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        for line in text.splitlines():
            if line.startswith((name + "{", name + " ")) and all(w in line for w in wanted):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openmetrics(end: datetime) -> str:
    start = end.timestamp() - SEED_STEP_S * SEED_STEPS
    lines = []
    for name, labels, first, step in SEEDED:
        rendered = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for i in range(SEED_STEPS + 1):
            lines.append(f"{name}{{{rendered}}} {first + step * i} {start + SEED_STEP_S * i:.0f}")
    return "\n".join([*lines, "# EOF", ""])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"prometheus exited with {proc.returncode}; log:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"prometheus not ready after {_READY_TIMEOUT_S}s; log:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus on loopback, seeded and scraping a test-controlled exporter."""
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if binary is None or promtool is None:
        pytest.fail(
            "the prometheus and promtool binaries are not on PATH; "
            "install them with `apt-get install prometheus` (Debian package, 2.42)"
        )
    root = tmp_path_factory.mktemp("prometheus")
    data = root / "data"
    data.mkdir()
    end = datetime.fromtimestamp(int(time.time()) // 60 * 60 - 120, tz=UTC)
    (root / "seed.om").write_text(_openmetrics(end))
    subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "-q",
            str(root / "seed.om"),
            str(data),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    exporter = Exporter()
    (root / "rules.yml").write_text(_RULES)
    (root / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files: [rules.yml]\n"
        "scrape_configs:\n  - job_name: exporter\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n"
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "prometheus.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=30d",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
    try:
        _wait_ready(url, proc, log)
        yield PrometheusServer(url=url, exporter=exporter, seeded_end=end, data_dir=data)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        exporter.close()
