"""SupervisorMetrics: drift figures and loop counters, read back from the text exposition."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from test_file_drift import HOUR, REF_SEED, T0, _rows, _write

import supervisor.metrics
from supervisor import SimClock
from supervisor.domain import ActionType, IncidentStatus, OutcomeStatus, ToolStatus, Verdict
from supervisor.metrics import ObservedDrift, SupervisorMetrics, data_defect_count
from tools import DriftReport, FeatureDrift, FeatureQuality, read_only
from tools._catalog import default_registry
from tools._toolkit import ToolContext
from tools.files import FileDriftAdapter, FileDriftSource
from tools.sim import build_world, demo_world_spec

END = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _quality(feature: str, **kw: object) -> FeatureQuality:
    base: dict[str, object] = {
        "feature": feature,
        "null_share_reference": 0.0,
        "null_share_current": 0.0,
        "dtype_reference": "float64",
        "dtype_current": "float64",
        "out_of_range_share": 0.0,
        "scale_ratio": 1.0,
    }
    return FeatureQuality.model_validate(base | kw)


def _report(model: str = "churn", **kw: object) -> DriftReport:
    base: dict[str, object] = {
        "model": model,
        "reference_rows": 600,
        "current_rows": 240,
        "window_start": END - timedelta(hours=1),
        "window_end": END,
        "drift_share": 0.5,
        "dataset_drift": True,
        "features": [
            FeatureDrift(
                feature="age", method="K-S p_value", threshold=0.05, score=1e-9, drifted=True
            ),
            FeatureDrift(
                feature="income", method="K-S p_value", threshold=0.05, score=0.4, drifted=False
            ),
        ],
        "quality": [
            _quality("age", out_of_range_share=0.125, scale_ratio=1.3),
            _quality("income", null_share_reference=0.01, null_share_current=0.5),
        ],
        "prediction_drift": FeatureDrift(
            feature="score",
            method="Wasserstein distance (normed)",
            threshold=0.1,
            score=0.2,
            drifted=True,
        ),
        "compute_seconds": 0.05,
    }
    return DriftReport.model_validate(base | kw)


def _samples(metrics: SupervisorMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.render().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(metrics: SupervisorMetrics, name: str, **labels: str) -> float | None:
    return _samples(metrics).get((name, frozenset(labels.items())))


def _names(metrics: SupervisorMetrics, name: str) -> set[frozenset[tuple[str, str]]]:
    return {labels for (n, labels) in _samples(metrics) if n == name}


def test_drift_report_becomes_gauges() -> None:
    metrics = SupervisorMetrics()
    metrics.observe_drift(_report())
    v = lambda name, **labels: _value(metrics, f"mlops_supervisor_{name}", **labels)  # noqa: E731
    assert v("drift_share", model="churn") == 0.5
    assert v("dataset_drift", model="churn") == 1.0
    assert v("feature_drift_score", model="churn", feature="age", method="K-S p_value") == 1e-9
    assert v("feature_drift_score", model="churn", feature="income", method="K-S p_value") == 0.4
    assert v("feature_drift_threshold", model="churn", feature="age", method="K-S p_value") == 0.05
    assert v("feature_drifted", model="churn", feature="age") == 1.0
    assert v("feature_drifted", model="churn", feature="income") == 0.0
    assert v("feature_null_share", model="churn", feature="income", window="reference") == 0.01
    assert v("feature_null_share", model="churn", feature="income", window="current") == 0.5
    assert v("feature_out_of_range_share", model="churn", feature="age") == 0.125
    assert v("feature_scale_ratio", model="churn", feature="age") == 1.3
    assert v("prediction_drift_score", model="churn", method="Wasserstein distance (normed)") == 0.2
    assert v("data_defects", model="churn") == 1.0  # the null spike on income
    assert v("drift_rows", model="churn", window="reference") == 600
    assert v("drift_rows", model="churn", window="current") == 240
    assert v("drift_window_end_timestamp_seconds", model="churn") == END.timestamp()
    assert v("drift_checks_total", model="churn", status="ok") == 1.0


def test_a_new_report_replaces_the_model_series_and_keeps_other_models() -> None:
    metrics = SupervisorMetrics()
    metrics.observe_drift(_report())
    metrics.observe_drift(_report("fraud", drift_share=0.1))
    later = _report(
        drift_share=0.0,
        features=[
            FeatureDrift(
                feature="age",
                method="Wasserstein distance (normed)",
                threshold=0.1,
                score=0.01,
                drifted=False,
            )
        ],
        quality=[_quality("age")],
        prediction_drift=None,
    )
    metrics.observe_drift(later)
    scores = _names(metrics, "mlops_supervisor_feature_drift_score")
    assert scores == {
        frozenset(
            {("model", "churn"), ("feature", "age"), ("method", "Wasserstein distance (normed)")}
        ),
        frozenset({("model", "fraud"), ("feature", "age"), ("method", "K-S p_value")}),
        frozenset({("model", "fraud"), ("feature", "income"), ("method", "K-S p_value")}),
    }
    assert _value(metrics, "mlops_supervisor_drift_share", model="churn") == 0.0
    assert _value(metrics, "mlops_supervisor_drift_share", model="fraud") == 0.1
    assert _names(metrics, "mlops_supervisor_prediction_drift_score") == {
        frozenset({("model", "fraud"), ("method", "Wasserstein distance (normed)")})
    }
    assert _value(metrics, "mlops_supervisor_drift_checks_total", model="churn", status="ok") == 2

    metrics.forget_model("fraud")
    assert not any(
        ("model", "fraud") in labels for labels in _names(metrics, "mlops_supervisor_drift_share")
    )


def test_failed_and_empty_checks_are_counted_from_zero() -> None:
    metrics = SupervisorMetrics(models=["churn"])
    assert (
        _value(metrics, "mlops_supervisor_drift_checks_total", model="churn", status="error") == 0
    )
    metrics.drift_check_failed("churn", "error")
    metrics.drift_check_failed("churn", "no_data")
    metrics.drift_check_failed("churn", "no_data")
    assert (
        _value(metrics, "mlops_supervisor_drift_checks_total", model="churn", status="error") == 1
    )
    assert (
        _value(metrics, "mlops_supervisor_drift_checks_total", model="churn", status="no_data") == 2
    )


def test_loop_counters_and_latency_histogram() -> None:
    metrics = SupervisorMetrics()
    # Closed vocabularies are exposed at 0 before anything happens.
    assert _value(metrics, "mlops_supervisor_incidents_total", state="escalated") == 0
    assert (
        _value(metrics, "mlops_supervisor_actions_total", action="rollback", outcome="failed") == 0
    )
    metrics.incident_entered(IncidentStatus.OPEN)
    metrics.incident_entered(IncidentStatus.OPEN)
    metrics.incident_entered(IncidentStatus.ESCALATED)
    metrics.set_incidents({IncidentStatus.INVESTIGATING: 3})
    metrics.guard_decision(Verdict.REQUIRE_APPROVAL, ActionType.RETRAIN)
    metrics.action_outcome(ActionType.ROLLBACK, OutcomeStatus.SUCCEEDED)
    metrics.tool_call("get_drift_report", ToolStatus.NO_DATA)
    metrics.add_llm_tokens(prompt=120, completion=30)
    metrics.add_llm_tokens(prompt=80, completion=0)
    for seconds in (0.03, 0.7, 45.0):
        metrics.observe_decision_latency(seconds)

    v = lambda name, **labels: _value(metrics, f"mlops_supervisor_{name}", **labels)  # noqa: E731
    assert v("incidents_total", state="open") == 2
    assert v("incidents_total", state="escalated") == 1
    assert v("incidents_current", state="investigating") == 3
    assert v("incidents_current", state="open") == 0
    assert v("guard_decisions_total", verdict="require_approval", action="retrain") == 1
    assert v("guard_decisions_total", verdict="allow", action="retrain") == 0
    assert v("actions_total", action="rollback", outcome="succeeded") == 1
    assert v("tool_calls_total", tool="get_drift_report", status="no_data") == 1
    assert v("llm_tokens_total", kind="prompt") == 200
    assert v("llm_tokens_total", kind="completion") == 30
    assert v("decision_latency_seconds_bucket", le="0.05") == 1
    assert v("decision_latency_seconds_bucket", le="1.0") == 2
    assert v("decision_latency_seconds_bucket", le="+Inf") == 3
    assert v("decision_latency_seconds_count") == 3
    assert v("decision_latency_seconds_sum") == pytest.approx(45.73)
    with pytest.raises(ValueError, match="negative"):
        metrics.add_llm_tokens(prompt=-1, completion=0)


def test_each_instance_has_its_own_registry_and_never_the_global_one() -> None:
    a, b = SupervisorMetrics(), SupervisorMetrics()
    a.observe_drift(_report())
    assert _value(a, "mlops_supervisor_drift_share", model="churn") == 0.5
    assert _value(b, "mlops_supervisor_drift_share", model="churn") is None
    assert REGISTRY.get_sample_value("mlops_supervisor_drift_share", {"model": "churn"}) is None
    shared = CollectorRegistry()
    assert SupervisorMetrics(shared).registry is shared
    assert a.content_type.startswith("text/plain; version=")


class _FixedDrift:
    """A drift port that answers with one fixed report (the port is the boundary here)."""

    def __init__(self, report: DriftReport) -> None:
        self._report = report

    def report(self, model: str, *, window: timedelta, end: datetime | None = None) -> DriftReport:
        return self._report


@pytest.mark.parametrize(
    "report",
    [
        _report(),
        _report(missing_columns=["a"], new_columns=["b", "c"]),
        _report(
            quality=[
                _quality("age", scale_ratio=1000.0),
                _quality("income", scale_ratio=0.001, dtype_current="object"),
                _quality("x", scale_ratio=0.0),
                _quality("y", null_share_current=0.19),
            ]
        ),
    ],
)
def test_defect_count_agrees_with_the_get_drift_report_tool(report: DriftReport) -> None:
    world = build_world(demo_world_spec())
    backends = read_only(
        metrics=world, alerts=world, drift=_FixedDrift(report), registry=world, deploy=world
    )
    result = default_registry().call(
        ToolContext(backends=backends, clock=SimClock(END)),
        "get_drift_report",
        {"model": "churn"},
        call_id="c1",
    )
    assert result.data is not None
    assert data_defect_count(report) == result.data["defect_count"]


def test_observed_drift_exposes_what_the_tool_sees_from_files(tmp_path: Path) -> None:
    _write(_rows(REF_SEED, T0, n=600).drop(columns="timestamp"), tmp_path / "ref.parquet")
    _write(_rows(12, T0, shift=1.5), tmp_path / "logs" / "a.parquet")
    metrics = SupervisorMetrics(models=["m", "gone"])
    sources = {
        "m": FileDriftSource(
            reference=str(tmp_path / "ref.parquet"), current=str(tmp_path / "logs")
        ),
        "gone": FileDriftSource(reference=str(tmp_path / "nope.csv"), current=str(tmp_path)),
    }
    drift = ObservedDrift(FileDriftAdapter(sources), metrics)
    world = build_world(demo_world_spec())
    backends = read_only(metrics=world, alerts=world, drift=drift, registry=world, deploy=world)
    tools_ = default_registry()

    def call(model: str, now: datetime) -> ToolStatus:
        ctx = ToolContext(backends=backends, clock=SimClock(now))
        return tools_.call(ctx, "get_drift_report", {"model": model}, call_id="c").status

    assert call("m", T0 + HOUR) is ToolStatus.OK
    assert call("m", T0) is ToolStatus.NO_DATA
    assert call("gone", T0 + HOUR) is ToolStatus.ERROR
    v = lambda name, **labels: _value(metrics, f"mlops_supervisor_{name}", **labels)  # noqa: E731
    assert v("drift_share", model="m") == 0.25
    assert v("feature_drifted", model="m", feature="f0") == 1.0
    score = v("feature_drift_score", model="m", feature="f0", method="K-S p_value")
    assert score is not None and score < 1e-10
    assert v("drift_checks_total", model="m", status="ok") == 1
    assert v("drift_checks_total", model="m", status="no_data") == 1
    assert v("drift_checks_total", model="gone", status="error") == 1
    assert v("drift_share", model="gone") is None


def test_public_exports_are_curated() -> None:
    exported = supervisor.metrics.__all__
    assert len(set(exported)) == len(exported)
    public = {n for n in vars(supervisor.metrics) if not n.startswith("_") and n != "annotations"}
    assert public == set(exported)


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, supervisor.metrics\n"
        "heavy = sorted(m for m in sys.modules"
        " if m.split('.')[0] in {'pandas', 'pyarrow', 'evidently', 'mlflow'})\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
