"""Prometheus adapter config, built-in schemes and PromQL rendering (no server needed)."""

from __future__ import annotations

import re

import pytest

import tools.prometheus
from supervisor import ConfigError
from supervisor._yaml import parse_model
from supervisor.domain import MetricName
from tools.prometheus import (
    BUILTIN_SCHEMES,
    LabelScheme,
    PrometheusConfig,
    SignalQuery,
    label_fingerprint,
)
from tools.prometheus._promql import Selection, batch_query, promql_string, regex_literal, render


def test_public_exports() -> None:
    assert sorted(tools.prometheus.__all__) == sorted(
        [
            "BUILTIN_SCHEMES",
            "PLACEHOLDERS",
            "LabelScheme",
            "ObservationKey",
            "PrometheusAlerts",
            "PrometheusClient",
            "PrometheusConfig",
            "PrometheusMetrics",
            "SignalQuery",
            "Snapshot",
            "label_fingerprint",
        ]
    )
    for name in tools.prometheus.__all__:
        assert getattr(tools.prometheus, name) is not None


def test_config_rejects_unknown_fields_and_bad_values_naming_them() -> None:
    with pytest.raises(ConfigError) as err:
        parse_model(PrometheusConfig, {"url": "prom:9090", "retry": 3, "timeout_s": 0}, "prom.yaml")
    msg = str(err.value)
    assert "prom.yaml: url:" in msg and "http://prometheus:9090" in msg
    assert "prom.yaml: retry: Extra inputs are not permitted" in msg
    assert "prom.yaml: timeout_s:" in msg


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("sum by (${by}) (rate(x{${selector}}[${windw}]))", "unknown placeholder"),
        ("sum(rate(x{${selector}}[${window}]))", "lacks placeholder(s) ['by']"),
        ('sum by (${by}) (rate(x{job="a"}[${window}]))', "does not restrict the model"),
    ],
)
def test_templates_are_checked_when_loaded(template: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        parse_model(
            PrometheusConfig,
            {"url": "http://p:9090", "templates": {"throughput": {"value": template}}},
            "prom.yaml",
        )


def test_templates_override_the_builtin_scheme_per_signal() -> None:
    custom = SignalQuery(value="sum by (${by}) (rate(my_requests_total{${selector}}[${window}]))")
    config = PrometheusConfig(
        url="http://p:9090/", label_scheme="kserve", templates={MetricName.THROUGHPUT: custom}
    )
    scheme = config.scheme()
    assert config.url == "http://p:9090"
    assert scheme.templates[MetricName.THROUGHPUT] == custom
    assert (
        scheme.templates[MetricName.ERROR_RATE]
        == BUILTIN_SCHEMES["kserve"].templates[MetricName.ERROR_RATE]
    )


def test_builtin_schemes_use_the_real_metric_names() -> None:
    kserve = " ".join(q.value for q in BUILTIN_SCHEMES["kserve"].templates.values())
    assert (
        "revision_app_request_count" in kserve and "revision_app_request_latencies_bucket" in kserve
    )
    fastapi = " ".join(q.value for q in BUILTIN_SCHEMES["fastapi"].templates.values())
    assert "http_requests_total" in fastapi and "http_request_duration_seconds_bucket" in fastapi
    plain = BUILTIN_SCHEMES["model_labels"]
    assert set(plain.templates) == set(MetricName)


def test_selector_escapes_names_and_maps_models_to_label_values() -> None:
    scheme = BUILTIN_SCHEMES["kserve"]
    sel = Selection(("fraud", 'we"ird.v1'), version="fraud-predictor-00002")
    rendered = render(
        "x{${selector}} by (${by}) [${window}]", scheme, sel, per_version=True, window="300s"
    )
    assert rendered == (
        'x{service_name=~"fraud-predictor|we\\"ird\\\\.v1-predictor",'
        'revision_name="fraud-predictor-00002"} by (service_name, revision_name) [300s]'
    )
    assert scheme.model_of("fraud-predictor") == "fraud" and scheme.model_of("other") is None
    assert regex_literal("a.b|c") == r"a\.b\|c" and promql_string('a"b') == '"a\\"b"'


def test_extra_selector_and_all_models_selection() -> None:
    scheme = BUILTIN_SCHEMES["fastapi"]
    rendered = render("${selector}|${by}", scheme, Selection(None), per_version=False, window="60s")
    assert rendered == 'job!="",handler="/predict"|job'


def test_batch_query_tags_value_and_samples_per_grouping() -> None:
    scheme = BUILTIN_SCHEMES["model_labels"]
    query = batch_query(
        scheme.templates[MetricName.ERROR_RATE],
        scheme,
        Selection(("fraud",)),
        window="300s",
        per_version=True,
        per_model=True,
    )
    assert query.count("label_replace(") == 4
    assert (
        query.count('"supervisor_part", "value"') == 2
        and query.count('"supervisor_part", "samples"') == 2
    )
    assert "by (model, version)" in query and "by (model)" in query


def test_label_scheme_validation() -> None:
    with pytest.raises(ValueError, match="both 'model'"):
        LabelScheme(name="x", model_label="model", version_label="model", templates={})
    with pytest.raises(ValueError, match="exactly once"):
        LabelScheme(
            name="x", model_label="m", model_value="{name}", version_label="v", templates={}
        )


def test_fingerprint_is_prometheus_labelset_fingerprint() -> None:
    # Go's model.LabelSet{}.Fingerprint() is the FNV-1a 64 offset basis.
    assert label_fingerprint({}) == "cbf29ce484222325"
    a = label_fingerprint({"alertname": "ModelDown", "model": "fraud"})
    assert a == label_fingerprint({"model": "fraud", "alertname": "ModelDown"})
    assert a != label_fingerprint({"alertname": "ModelDown", "model": "churn"})
