"""The Prometheus adapter against a real Prometheus (session fixture in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from supervisor import BackendError, SystemClock
from supervisor.domain import MetricName
from tools.prometheus import (
    PrometheusAlerts,
    PrometheusClient,
    PrometheusConfig,
    PrometheusMetrics,
    SignalQuery,
)

if TYPE_CHECKING:
    from conftest import PrometheusServer

WINDOW = timedelta(minutes=5)
E = MetricName


@pytest.fixture
def client(prometheus: PrometheusServer) -> Iterator[PrometheusClient]:
    with PrometheusClient(
        PrometheusConfig(url=prometheus.url, timeout_s=5), clock=SystemClock()
    ) as c:
        yield c


def test_observe_reads_each_signal_per_model_and_version(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    got = PrometheusMetrics(client).observe(
        ["fraud", "churn", "idle", "absent"], list(MetricName), WINDOW, end=prometheus.seeded_end
    )

    def value(model: str, version: str | None, metric: MetricName) -> float:
        return got[(model, version, metric)].value

    # Seeded per 15 s: fraud v1 10 ok + 1 error, fraud v2 6 ok + 4 errors, churn v3 5 ok.
    assert value("fraud", "v1", E.ERROR_RATE) == pytest.approx(1 / 11)
    assert value("fraud", "v2", E.ERROR_RATE) == pytest.approx(0.4)
    assert value("fraud", None, E.ERROR_RATE) == pytest.approx(5 / 21)
    assert value("churn", "v3", E.ERROR_RATE) == 0.0  # traffic without errors: a real zero
    assert value("fraud", "v1", E.THROUGHPUT) == pytest.approx(11 / 15)
    assert value("fraud", None, E.THROUGHPUT) == pytest.approx(21 / 15)
    assert got[("fraud", "v1", E.THROUGHPUT)].samples == 220  # 20 steps x 11 requests
    assert value("fraud", "v1", E.LATENCY_P50) == pytest.approx(0.05)  # inside the 0.1 s bucket
    assert value("fraud", "v2", E.LATENCY_P50) == pytest.approx(0.375)  # inside (0.25, 0.5]
    assert value("fraud", "v2", E.LATENCY_P99) == pytest.approx(0.4975)
    assert value("fraud", "v2", E.PREDICTION_SCORE_MEAN) == pytest.approx(0.7)
    assert value("churn", "v3", E.ACCURACY) == pytest.approx(0.91)
    assert got[("churn", "v3", E.ACCURACY)].samples == 21  # gauge samples in the window
    assert value("fraud", "v2", E.SATURATION) == pytest.approx(0.4)
    # "idle" serves nothing: ratios and quantiles have no data (absent), never zero.
    for metric in (E.ERROR_RATE, E.LATENCY_P50, E.LATENCY_P99, E.PREDICTION_SCORE_MEAN):
        assert ("idle", "v1", metric) not in got and ("idle", None, metric) not in got
    assert not any(model == "absent" for model, _, _ in got)
    reading = got[("fraud", "v2", E.ERROR_RATE)]
    assert reading.window_end == prometheus.seeded_end
    assert reading.window_start == prometheus.seeded_end - WINDOW


def test_observe_sends_one_query_per_metric_as_prometheus_counts(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    metrics = PrometheusMetrics(client)
    for models in (["fraud"], ["fraud", "churn", "idle"]):
        before = prometheus.self_metric("prometheus_http_requests_total", handler="/api/v1/query")
        client.queries_issued = 0
        metrics.observe(models, list(MetricName), WINDOW, end=prometheus.seeded_end)
        after = prometheus.self_metric("prometheus_http_requests_total", handler="/api/v1/query")
        assert client.queries_issued == len(MetricName)
        assert after - before == len(MetricName)


def test_read_targets_one_version_and_uses_the_snapshot(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    metrics = PrometheusMetrics(client)
    end = prometheus.seeded_end
    canary = metrics.read("fraud", E.ERROR_RATE, version="v2", window=WINDOW, end=end)
    overall = metrics.read("fraud", E.ERROR_RATE, version=None, window=WINDOW, end=end)
    assert canary is not None and canary.value == pytest.approx(0.4) and canary.samples == 200
    assert overall is not None and overall.value == pytest.approx(5 / 21)
    assert metrics.read("fraud", E.ERROR_RATE, version="v9", window=WINDOW, end=end) is None
    assert metrics.read("idle", E.ERROR_RATE, version=None, window=WINDOW, end=end) is None
    metrics.observe(["fraud"], [E.ERROR_RATE], WINDOW, end=end)
    sent = client.requests_sent
    again = metrics.read("fraud", E.ERROR_RATE, version="v2", window=WINDOW, end=end)
    assert again == canary and client.requests_sent == sent


def test_bad_promql_is_a_backend_error_and_not_retried(prometheus: PrometheusServer) -> None:
    broken = SignalQuery(value="sum by (${by}) (rate(model_requests_total{${selector}}[${window}])")
    config = PrometheusConfig(url=prometheus.url, retries=3, templates={E.THROUGHPUT: broken})
    with PrometheusClient(config, clock=SystemClock()) as c:
        with pytest.raises(BackendError) as err:
            PrometheusMetrics(c).read("fraud", E.THROUGHPUT, version=None, window=WINDOW)
        assert c.requests_sent == 1
    msg = str(err.value)
    assert prometheus.url in msg and "HTTP 400: bad_data" in msg and "model_requests_total" in msg


def test_alerts_port_sees_a_rule_firing_for_a_model(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    alerts = PrometheusAlerts(client)
    assert alerts.firing("fraud") == []
    prometheus.exporter.set('model_up{model="fraud"} 0\nmodel_up{model="churn"} 1\n')
    deadline = time.monotonic() + 20
    firing = alerts.firing("fraud")
    while not firing and time.monotonic() < deadline:
        time.sleep(0.25)
        firing = alerts.firing("fraud")
    assert [a.name for a in firing] == ["ModelDown"], "ModelDown did not fire within 20 s"
    alert = firing[0]
    assert alert.model == "fraud" and alert.state == "firing"
    assert alert.labels["severity"] == "page" and alert.labels["job"] == "exporter"
    assert alert.annotations["summary"] == "model fraud stopped answering"
    assert alerts.firing("churn") == []
    prometheus.exporter.set('model_up{model="fraud"} 1\nmodel_up{model="churn"} 1\n')
