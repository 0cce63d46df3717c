"""The Prometheus adapter against a scripted loopback HTTP server: error paths, retries,
no-data handling, batching and the snapshot. Real-server behaviour is in tests/integration."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from supervisor import BackendError, SimClock
from supervisor.domain import MetricName
from tools import AlertsPort, MetricsPort
from tools.prometheus import (
    PrometheusAlerts,
    PrometheusClient,
    PrometheusConfig,
    PrometheusMetrics,
)

END = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)


@dataclass
class Answer:
    status: int = 200
    body: Any = field(
        default_factory=lambda: {
            "status": "success",
            "data": {"resultType": "vector", "result": []},
        }
    )
    content_type: str = "application/json"
    delay_s: float = 0.0


class FakePrometheus:
    """Answers requests from a script (the last answer repeats) and records each request."""

    def __init__(self) -> None:
        self.script: deque[Answer] = deque([Answer()])
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                fake.requests.append((url.path, parse_qs(url.query)))
                answer = fake.script.popleft() if len(fake.script) > 1 else fake.script[0]
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                raw = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
                body = raw.encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def answer(self, *answers: Answer) -> None:
        self.script = deque(answers)

    def queries(self) -> list[str]:
        return [q["query"][0] for path, q in self.requests if path == "/api/v1/query"]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def vector(*series: tuple[dict[str, str], str]) -> dict[str, Any]:
    result = [{"metric": labels, "value": [END.timestamp(), value]} for labels, value in series]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.fixture
def fake() -> Iterator[FakePrometheus]:
    server = FakePrometheus()
    yield server
    server.close()


@pytest.fixture
def clock() -> SimClock:
    return SimClock(END)


def make_client(url: str, clock: SimClock, **settings: Any) -> PrometheusClient:
    return PrometheusClient(PrometheusConfig(url=url, **settings), clock=clock)


@pytest.fixture
def client(fake: FakePrometheus, clock: SimClock) -> Iterator[PrometheusClient]:
    with make_client(fake.url, clock, retries=2, backoff_s=0.5, timeout_s=2) as c:
        yield c


# --------------------------------------------------------------------------- error paths


def test_server_down_raises_backend_error_naming_url_query_and_what_to_check(
    clock: SimClock,
) -> None:
    fake = FakePrometheus()
    url = fake.url
    fake.close()  # nothing listens on the port any more
    with make_client(url, clock, retries=2, backoff_s=0.5) as c:
        with pytest.raises(BackendError) as err:
            PrometheusMetrics(c).read("fraud", MetricName.ERROR_RATE, version=None, window=WINDOW)
        assert c.requests_sent == 3  # connection errors are retried
    msg = str(err.value)
    assert url in msg and "model_requests_total" in msg
    assert "3 attempts" in msg and "check that Prometheus is running" in msg
    # Backoff went through the injected clock: 0.5 s then 1 s, no real sleeping.
    assert clock.now() == END + timedelta(seconds=1.5)


def test_slow_server_times_out_into_backend_error(fake: FakePrometheus, clock: SimClock) -> None:
    fake.answer(Answer(delay_s=1.0))
    with make_client(fake.url, clock, retries=1, timeout_s=0.2, backoff_s=0) as c:
        started = time.monotonic()
        with pytest.raises(
            BackendError, match=r"did not answer .* within timeout_s=0.2 \(2 attempts\)"
        ):
            c.query("up", at=END)
        assert time.monotonic() - started < 1.5
    assert len(fake.requests) == 2


def test_5xx_is_retried_then_succeeds(
    fake: FakePrometheus, client: PrometheusClient, clock: SimClock
) -> None:
    unavailable = Answer(
        503, {"status": "error", "errorType": "unavailable", "error": "overloaded"}
    )
    fake.answer(
        unavailable,
        Answer(502, "<html>bad gateway</html>", "text/html"),
        Answer(body=vector(({"model": "fraud"}, "0.25"))),
    )
    result = client.query("up", at=END)
    assert result[0]["value"][1] == "0.25"
    assert len(fake.requests) == 3 and client.requests_sent == 3 and client.queries_issued == 1
    assert clock.now() == END + timedelta(seconds=1.5)


def test_5xx_that_persists_stops_after_bounded_attempts(
    fake: FakePrometheus, client: PrometheusClient
) -> None:
    fake.answer(
        Answer(503, {"status": "error", "errorType": "timeout", "error": "query timed out"})
    )
    with pytest.raises(
        BackendError, match=r"HTTP 503: timeout: query timed out.*check Prometheus health"
    ):
        client.query("up", at=END)
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("status", "error_type"), [(400, "bad_data"), (422, "execution"), (404, "not_found")]
)
def test_4xx_error_envelope_is_not_retried(
    fake: FakePrometheus, client: PrometheusClient, status: int, error_type: str
) -> None:
    fake.answer(
        Answer(
            status, {"status": "error", "errorType": error_type, "error": "parse error at char 5"}
        )
    )
    with pytest.raises(BackendError) as err:
        client.query("rate(x[5m]", at=END)
    assert len(fake.requests) == 1
    msg = str(err.value)
    assert f"HTTP {status}: {error_type}: parse error at char 5" in msg
    assert "'rate(x[5m]'" in msg and "not retried" in msg and "PromQL template" in msg


def test_error_envelope_with_200_is_a_backend_error(
    fake: FakePrometheus, client: PrometheusClient
) -> None:
    fake.answer(Answer(200, {"status": "error", "errorType": "internal", "error": "boom"}))
    with pytest.raises(BackendError, match="internal: boom"):
        client.query("up", at=END)
    assert len(fake.requests) == 1


def test_non_json_body_is_a_backend_error(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.answer(Answer(200, "<html>Please log in</html>", "text/html"))
    with pytest.raises(BackendError) as err:
        client.query("up", at=END)
    msg = str(err.value)
    assert "non-JSON body (text/html)" in msg and "Please log in" in msg and "not a proxy" in msg
    assert len(fake.requests) == 1


def test_query_sends_evaluation_time_and_server_side_timeout(
    fake: FakePrometheus, client: PrometheusClient
) -> None:
    client.query("up", at=END)
    _, params = fake.requests[0]
    assert float(params["time"][0]) == END.timestamp()
    assert params["timeout"] == ["2s"]


# --------------------------------------------------------------------------- no data


def test_empty_result_is_none_not_zero(fake: FakePrometheus, client: PrometheusClient) -> None:
    metrics = PrometheusMetrics(client)
    assert metrics.read("fraud", MetricName.ERROR_RATE, version="v2", window=WINDOW) is None
    assert metrics.observe(["fraud"], [MetricName.ERROR_RATE], WINDOW) == {}


def test_nan_value_is_no_data_and_series_of_other_models_are_dropped(
    fake: FakePrometheus, client: PrometheusClient
) -> None:
    fake.answer(
        Answer(
            body=vector(
                ({"model": "fraud", "version": "v1", "supervisor_part": "value"}, "NaN"),
                ({"model": "fraud", "version": "v1", "supervisor_part": "samples"}, "0"),
                ({"model": "fraud", "version": "v2", "supervisor_part": "value"}, "0"),
                ({"model": "fraud", "version": "v2", "supervisor_part": "samples"}, "120.4"),
                ({"model": "other", "version": "v1", "supervisor_part": "value"}, "0.5"),
            )
        )
    )
    readings = PrometheusMetrics(client).observe(["fraud"], [MetricName.ERROR_RATE], WINDOW)
    assert set(readings) == {("fraud", "v2", MetricName.ERROR_RATE)}
    reading = readings[("fraud", "v2", MetricName.ERROR_RATE)]
    assert (reading.value, reading.samples) == (0.0, 120)  # a real zero: 120 requests, no errors
    assert (reading.window_start, reading.window_end) == (END - WINDOW, END)


def test_series_without_model_label_is_a_template_error(
    fake: FakePrometheus, client: PrometheusClient
) -> None:
    fake.answer(
        Answer(
            body=vector(
                ({"supervisor_part": "value"}, "1"),
            )
        )
    )
    with pytest.raises(BackendError, match=r"lacks the model label 'model'.*by \(\$\{by\}\)"):
        PrometheusMetrics(client).observe(["fraud"], [MetricName.THROUGHPUT], WINDOW)


def test_scalar_result_is_a_backend_error(fake: FakePrometheus, client: PrometheusClient) -> None:
    fake.answer(
        Answer(body={"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}})
    )
    with pytest.raises(BackendError, match="not an instant vector"):
        PrometheusMetrics(client).observe(["fraud"], [MetricName.THROUGHPUT], WINDOW)


def test_signal_without_template_has_no_data_and_sends_nothing(
    fake: FakePrometheus, clock: SimClock
) -> None:
    with make_client(fake.url, clock, label_scheme="kserve") as c:
        metrics = PrometheusMetrics(c)
        assert MetricName.ACCURACY not in metrics.supported_metrics
        assert metrics.read("fraud", MetricName.ACCURACY, version=None, window=WINDOW) is None
        assert metrics.observe(["fraud"], [MetricName.ACCURACY], WINDOW) == {}
    assert fake.requests == []


# --------------------------------------------------------------------------- batching


@pytest.mark.parametrize("n_models", [1, 10, 250])
def test_observe_sends_one_query_per_metric_whatever_the_number_of_models(
    fake: FakePrometheus, client: PrometheusClient, n_models: int
) -> None:
    models = [f"m{i}" for i in range(n_models)]
    PrometheusMetrics(client).observe(models, list(MetricName), WINDOW)
    assert client.queries_issued == len(MetricName) == len(fake.queries())
    query = fake.queries()[0]
    if n_models > client.config.max_models_in_selector:
        assert 'model!=""' in query and "m249" not in query  # filtered client-side instead
    else:
        assert f'model=~"{"|".join(models)}"' in query or f'model="{models[0]}"' in query


def test_observe_splits_one_answer_per_model_and_version(
    fake: FakePrometheus, client: PrometheusClient
) -> None:
    def part(model: str, version: str | None, kind: str, value: str) -> tuple[dict[str, str], str]:
        labels = {"model": model, "supervisor_part": kind}
        if version:
            labels["version"] = version
        return labels, value

    fake.answer(
        Answer(
            body=vector(
                part("fraud", "v1", "value", "0.01"),
                part("fraud", "v1", "samples", "1000"),
                part("fraud", "v2", "value", "0.2"),
                part("fraud", "v2", "samples", "100"),
                part("fraud", None, "value", "0.0272"),
                part("fraud", None, "samples", "1100"),
                part("churn", "v3", "value", "0"),
                part("churn", "v3", "samples", "50"),
            )
        )
    )
    readings = PrometheusMetrics(client).observe(
        ["fraud", "churn"], [MetricName.ERROR_RATE], WINDOW
    )
    got = {(m, v): (r.value, r.samples) for (m, v, _), r in readings.items()}
    assert got == {
        ("fraud", "v1"): (0.01, 1000),
        ("fraud", "v2"): (0.2, 100),
        ("fraud", None): (0.0272, 1100),
        ("churn", "v3"): (0.0, 50),
    }


def test_read_serves_from_fresh_snapshot_then_queries_again(
    fake: FakePrometheus, client: PrometheusClient, clock: SimClock
) -> None:
    fake.answer(
        Answer(
            body=vector(
                ({"model": "fraud", "version": "v2", "supervisor_part": "value"}, "0.2"),
                ({"model": "fraud", "version": "v2", "supervisor_part": "samples"}, "100"),
            )
        )
    )
    metrics = PrometheusMetrics(client)
    metrics.observe(["fraud"], [MetricName.ERROR_RATE], WINDOW)
    sent = len(fake.requests)
    hit = metrics.read("fraud", MetricName.ERROR_RATE, version="v2", window=WINDOW)
    assert hit is not None and hit.value == 0.2
    assert metrics.read("fraud", MetricName.ERROR_RATE, version="v9", window=WINDOW) is None
    assert len(fake.requests) == sent  # both answered from the batch
    # Another window, or an old snapshot, goes to Prometheus; the version is in the selector.
    metrics.read("fraud", MetricName.ERROR_RATE, version="v2", window=timedelta(minutes=10))
    clock.advance(timedelta(seconds=client.config.snapshot_max_age_s + 1))
    metrics.read("fraud", MetricName.ERROR_RATE, version="v2", window=WINDOW)
    assert len(fake.requests) == sent + 2
    assert 'version="v2"' in fake.queries()[-1] and "[600s]" in fake.queries()[-2]


def test_adapters_implement_the_ports(client: PrometheusClient) -> None:
    assert isinstance(PrometheusMetrics(client), MetricsPort)
    assert isinstance(PrometheusAlerts(client), AlertsPort)


# --------------------------------------------------------------------------- alerts


def test_alerts_returns_firing_ones_with_model_and_fingerprint(
    fake: FakePrometheus, client: PrometheusClient
) -> None:
    alerts = [
        {
            "labels": {"alertname": "ModelDown", "model": "fraud", "severity": "page"},
            "annotations": {"summary": "fraud is down"},
            "state": "firing",
            "activeAt": "2026-01-05T07:58:00.123456789Z",
            "value": "0e+00",
        },
        {
            "labels": {"alertname": "HighLatency", "model": "churn"},
            "annotations": {},
            "state": "pending",
            "activeAt": "2026-01-05T07:59:00Z",
            "value": "1e+00",
        },
        {
            "labels": {"alertname": "NodeDown", "instance": "n1"},
            "annotations": {},
            "state": "firing",
            "activeAt": "2026-01-05T07:50:00Z",
            "value": "1e+00",
        },
    ]
    fake.answer(Answer(body={"status": "success", "data": {"alerts": alerts}}))
    port = PrometheusAlerts(client)
    firing = port.firing()
    assert [(a.name, a.model) for a in firing] == [("NodeDown", None), ("ModelDown", "fraud")]
    down = firing[1]
    assert down.active_since == datetime(2026, 1, 5, 7, 58, 0, 123456, tzinfo=UTC)
    assert down.annotations == {"summary": "fraud is down"} and down.labels["severity"] == "page"
    assert len(down.fingerprint) == 16 and down.fingerprint != firing[0].fingerprint
    assert [a.name for a in port.firing("fraud")] == ["ModelDown"]
    assert port.firing("churn") == []  # pending is not firing
    assert fake.requests[0][0] == "/api/v1/alerts"


def test_alerts_error_envelope_is_a_backend_error(
    fake: FakePrometheus, client: PrometheusClient
) -> None:
    fake.answer(Answer(403, {"status": "error", "errorType": "forbidden", "error": "no"}))
    with pytest.raises(BackendError, match=r"rejected GET /api/v1/alerts: HTTP 403.*not retried"):
        PrometheusAlerts(client).firing()
    assert len(fake.requests) == 1


def test_observe_without_totals_leaves_version_none_to_a_targeted_read(
    fake: FakePrometheus, client: PrometheusClient
) -> None:
    metrics = PrometheusMetrics(client)
    metrics.observe(["fraud"], [MetricName.THROUGHPUT], WINDOW, totals=False)
    assert "by (model, version)" in fake.queries()[0] and "by (model)" not in fake.queries()[0]
    metrics.read("fraud", MetricName.THROUGHPUT, version="v1", window=WINDOW)
    assert len(fake.queries()) == 1  # per-version reads come from the snapshot
    metrics.read("fraud", MetricName.THROUGHPUT, version=None, window=WINDOW)
    assert len(fake.queries()) == 2 and "by (model)" in fake.queries()[1]


def test_concurrent_observe_counts_every_query(fake: FakePrometheus, clock: SimClock) -> None:
    with make_client(fake.url, clock, max_concurrency=4) as c:
        PrometheusMetrics(c).observe(["a", "b"], list(MetricName), WINDOW)
        assert c.queries_issued == c.requests_sent == len(MetricName) == len(fake.queries())
