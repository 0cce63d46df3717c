"""Built-in label schemes for common serving stacks.

Every template groups ``by (${by})`` so one query answers every model and version at once.
Ratios add ``or 0 * denominator`` to the numerator: a version that served requests without
errors has an error rate of 0, while a version that served nothing has no data at all.
Latencies are in seconds.
"""

from __future__ import annotations

from supervisor.domain import MetricName

from ._config import LabelScheme, SignalQuery


def _sum_rate(series: str) -> str:
    return f"sum by (${{by}}) (rate({series}[${{window}}]))"


def _sum_increase(series: str) -> str:
    return f"sum by (${{by}}) (increase({series}[${{window}}]))"


def _request_signals(
    *, requests: str, error_matcher: str, duration: str, duration_scale: float = 1.0
) -> dict[MetricName, SignalQuery]:
    """Error rate, latency quantiles and throughput from a request counter and a histogram."""
    total = f"{requests}{{${{selector}}}}"
    errors = f"{requests}{{${{selector}},{error_matcher}}}"
    buckets = f"{duration}_bucket{{${{selector}}}}"
    observations = _sum_increase(f"{duration}_count{{${{selector}}}}")
    scale = "" if duration_scale == 1.0 else f" / {duration_scale:g}"

    def quantile(q: float) -> SignalQuery:
        value = (
            f"histogram_quantile({q}, sum by (${{by}}, le) (rate({buckets}[${{window}}]))){scale}"
        )
        return SignalQuery(value=value, samples=observations)

    return {
        MetricName.ERROR_RATE: SignalQuery(
            value=f"({_sum_rate(errors)} or 0 * {_sum_rate(total)}) / {_sum_rate(total)}",
            samples=_sum_increase(total),
        ),
        MetricName.LATENCY_P50: quantile(0.5),
        MetricName.LATENCY_P99: quantile(0.99),
        MetricName.THROUGHPUT: SignalQuery(value=_sum_rate(total), samples=_sum_increase(total)),
    }


def _gauge_signal(series: str, aggregate: str) -> SignalQuery:
    selected = f"{series}{{${{selector}}}}"
    return SignalQuery(
        value=f"{aggregate} by (${{by}}) (avg_over_time({selected}[${{window}}]))",
        samples=f"sum by (${{by}}) (count_over_time({selected}[${{window}}]))",
    )


#: Labels ``model`` and ``version`` on metrics the model server exports itself.
MODEL_LABELS = LabelScheme(
    name="model_labels",
    model_label="model",
    version_label="version",
    templates={
        **_request_signals(
            requests="model_requests_total",
            error_matcher='status=~"5..|error"',
            duration="model_request_duration_seconds",
        ),
        MetricName.SATURATION: _gauge_signal("node_cpu_saturation", "max"),
        MetricName.PREDICTION_SCORE_MEAN: SignalQuery(
            value=_sum_rate("model_prediction_score_sum{${selector}}")
            + " / "
            + _sum_rate("model_prediction_score_count{${selector}}"),
            samples=_sum_increase("model_prediction_score_count{${selector}}"),
        ),
        MetricName.ACCURACY: _gauge_signal("model_accuracy", "avg"),
    },
)

#: KServe in serverless mode: the Knative queue-proxy's request metrics, per revision.
#: The predictor of InferenceService ``m`` is the Knative service ``m-predictor``; a canary is
#: a second revision of it, so the version is the revision name. Latencies are exported in ms.
KSERVE = LabelScheme(
    name="kserve",
    model_label="service_name",
    model_value="{model}-predictor",
    version_label="revision_name",
    templates=_request_signals(
        requests="revision_app_request_count",
        error_matcher='response_code_class="5xx"',
        duration="revision_app_request_latencies",
        duration_scale=1000.0,
    ),
)

#: prometheus-fastapi-instrumentator defaults: ``http_requests_total`` (status grouped as
#: ``2xx``/``5xx``) and ``http_request_duration_seconds``, per ``handler``. The model is the
#: scrape ``job`` and the version a target label added by relabelling.
FASTAPI = LabelScheme(
    name="fastapi",
    model_label="job",
    version_label="version",
    extra_selector='handler="/predict"',
    templates=_request_signals(
        requests="http_requests_total",
        error_matcher='status="5xx"',
        duration="http_request_duration_seconds",
    ),
)

BUILTIN_SCHEMES: dict[str, LabelScheme] = {s.name: s for s in (MODEL_LABELS, KSERVE, FASTAPI)}
