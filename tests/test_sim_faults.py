"""Each injected fault and deploy leaves the signature its root cause is diagnosed by."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

import pytest

from supervisor.domain import MetricName, TimeWindow
from tools import DriftReport
from tools.sim import DeploySpec, FaultSpec, ModelSpec, SimWorld, WorldSpec, build_world

M = MetricName
MIN = timedelta(minutes=1)
ONSET = 30


def _world(*, faults: tuple[FaultSpec, ...] = (), deploys: tuple[DeploySpec, ...] = ()) -> SimWorld:
    spec = WorldSpec(
        seed=5,
        models=[ModelSpec(name="m", owner="team-m", data_owner="team-data")],
        faults=list(faults),
        deploys=list(deploys),
    )
    return build_world(spec)


@cache
def _faulted(kind: str) -> SimWorld:
    """A world 75 minutes in, with ``kind`` from minute 30 (shared: tests only read it)."""
    world = _world(faults=(FaultSpec(kind=kind, model="m", at_minutes=ONSET),))
    world.advance(75 * MIN)
    return world


def _value(
    world: SimWorld, metric: MetricName, *, before: bool, version: str | None = None
) -> float:
    # Before onset: minutes 10-30. After: the 20 minutes up to the newest labels (delay 10).
    end = world.start + ONSET * MIN if before else world.now
    reading = world.read("m", metric, version=version, window=20 * MIN, end=end)
    assert reading is not None
    return reading.value


def _drift(world: SimWorld) -> DriftReport:
    report = world.report("m", window=30 * MIN)
    assert report is not None
    return report


def _quality(report: DriftReport, feature: str) -> tuple[float, float | None]:
    (q,) = [q for q in report.quality if q.feature == feature]
    return q.null_share_current, q.scale_ratio


def test_no_fault_no_drift_and_steady_accuracy() -> None:
    world = _world()
    world.advance(75 * MIN)
    report = _drift(world)
    assert report.drift_share == 0.0 and not report.dataset_drift
    assert report.prediction_drift is not None and not report.prediction_drift.drifted
    assert _value(world, M.ACCURACY, before=False) > 0.8
    assert world.firing() == []


def test_covariate_drift_drifts_inputs_and_hurts_accuracy() -> None:
    world = _faulted("covariate_drift")
    report = _drift(world)
    assert report.dataset_drift and report.drift_share >= 0.6
    assert all(_quality(report, f)[0] == 0.0 for f in ("f0", "f1", "f2"))
    assert _value(world, M.ACCURACY, before=True) > 0.8
    assert _value(world, M.ACCURACY, before=False) < 0.65
    assert world.serving_accuracy("m") < 0.65


def test_concept_drift_hurts_accuracy_without_input_drift() -> None:
    world = _faulted("concept_drift")
    assert _drift(world).drift_share == 0.0
    assert _value(world, M.ACCURACY, before=False) < _value(world, M.ACCURACY, before=True) - 0.25


def test_null_spike_shows_as_nulls_and_hurts_accuracy_not_errors() -> None:
    world = _faulted("null_spike")
    report = _drift(world)
    nulls, _ = _quality(report, "f0")
    assert nulls == pytest.approx(0.9, abs=0.05)
    assert _value(world, M.ACCURACY, before=False) < _value(world, M.ACCURACY, before=True) - 0.15
    assert _value(world, M.ERROR_RATE, before=False) < 0.02


def test_unit_change_shows_as_a_thousandfold_scale() -> None:
    world = _faulted("unit_change")
    report = _drift(world)
    _, scale = _quality(report, "f0")
    assert scale == pytest.approx(1000, rel=0.15)
    assert {f.feature for f in report.features if f.drifted} == {"f0"}
    assert _value(world, M.ACCURACY, before=False) < 0.65


def test_schema_change_shows_as_a_missing_and_a_new_column() -> None:
    world = _faulted("schema_change")
    report = _drift(world)
    assert report.missing_columns == ["f0"]
    assert report.new_columns == ["f0_v2"]
    assert _value(world, M.ACCURACY, before=False) < _value(world, M.ACCURACY, before=True) - 0.15


def test_saturation_raises_latency_and_errors_but_not_quality() -> None:
    world = _faulted("saturation")
    assert _value(world, M.LATENCY_P99, before=False) > 3 * _value(
        world, M.LATENCY_P99, before=True
    )
    assert _value(world, M.ERROR_RATE, before=False) > 0.05
    assert _value(world, M.SATURATION, before=False) > 0.9
    accuracy = _value(world, M.ACCURACY, before=False) - _value(world, M.ACCURACY, before=True)
    assert abs(accuracy) < 0.06
    assert _drift(world).drift_share == 0.0
    assert {a.name for a in world.firing("m")} == {"HighErrorRate", "HighLatency", "Saturation"}
    (alert,) = [a for a in world.firing("m") if a.name == "Saturation"]
    assert alert.active_since == world.start + ONSET * MIN
    assert alert.labels["version"] == "2" and alert.labels["model"] == "m"


def test_seasonal_shift_drifts_inputs_but_accuracy_holds() -> None:
    world = _faulted("seasonal_shift")
    report = _drift(world)
    assert {f.feature for f in report.features if f.drifted} == {"f3", "f4"}
    accuracy = _value(world, M.ACCURACY, before=False) - _value(world, M.ACCURACY, before=True)
    assert abs(accuracy) < 0.06


def test_fault_ends_at_until_minutes() -> None:
    fault = FaultSpec(kind="saturation", model="m", at_minutes=10, until_minutes=20)
    world = _world(faults=(fault,))
    world.advance(40 * MIN)
    assert world.read("m", M.SATURATION, version=None, window=5 * MIN).value < 0.6  # type: ignore[union-attr]
    during = world.read("m", M.SATURATION, version=None, window=5 * MIN, end=world.now - 22 * MIN)
    assert during is not None and during.value > 0.9


def test_announced_defect_is_on_the_timeline_and_silent_one_is_not() -> None:
    loud = FaultSpec(kind="unit_change", model="m", at_minutes=10, params={"announced": True})
    world = _world(faults=(loud,))
    assert [e.kind for e in world.timeline("m", world.start)] == []
    world.advance(15 * MIN)
    (event,) = world.timeline("m", world.start)
    assert event.kind == "pipeline_change" and event.at == world.start + 10 * MIN
    assert "team-data" in event.detail and "'f0'" in event.detail
    assert world.timeline("m", world.start - timedelta(days=30))[0].kind == "registered"
    assert _faulted("unit_change").timeline("m", _faulted("unit_change").start) == []


# ---------------------------------------------------------------------------- retraining


def _retrain(world: SimWorld, start: float, end: float, key: str) -> str:
    window = TimeWindow(start=world.start + start * MIN, end=world.start + end * MIN)
    return world.retrain(
        "m", window=window, exclude=[], idempotency_key=key, min_accuracy=0.6
    ).version


@pytest.mark.parametrize("kind", ["null_spike", "unit_change", "schema_change"])
def test_retraining_on_a_poisoned_window_yields_a_worse_model(kind: str) -> None:
    world = _world(faults=(FaultSpec(kind=kind, model="m", at_minutes=60),))
    world.advance(130 * MIN)
    clean = _retrain(world, 0, 60, "clean")
    poisoned = _retrain(world, 60, 120, "poisoned")
    # Judged on the world as it should be (defect fixed), the poisoned model is clearly worse.
    assert world.evaluate("m", poisoned, clean=True) < world.evaluate("m", clean, clean=True) - 0.05
    # ...and excluding the poisoned window avoids it.
    window = TimeWindow(start=world.start, end=world.start + 120 * MIN)
    bad = TimeWindow(start=world.start + 60 * MIN, end=world.start + 120 * MIN)
    safe = world.retrain(
        "m", window=window, exclude=[bad], idempotency_key="safe", min_accuracy=0.6
    )
    assert world.evaluate("m", safe.version, clean=True) > 0.8


def test_retraining_on_the_drifted_window_restores_accuracy() -> None:
    world = _world(faults=(FaultSpec(kind="covariate_drift", model="m", at_minutes=30),))
    world.advance(100 * MIN)
    assert world.serving_accuracy("m") < 0.65
    new = _retrain(world, 30, 90, "drift")
    world.serve_version("m", new, expected_version="2", canary_weight=100)
    world.promote_canary("m", expected_version=new)
    assert world.serving_accuracy("m") > 0.8
    world.advance(30 * MIN)
    assert _value(world, M.ACCURACY, before=False) > 0.8


# ---------------------------------------------------------------------------- deploys


def _deployed(quality: str) -> SimWorld:
    deploy = DeploySpec(model="m", at_minutes=ONSET, quality=quality, canary_weight=30)
    world = _world(deploys=(deploy,))
    world.advance(75 * MIN)
    return world


def test_bad_canary_errs_and_is_slow_on_its_own_traffic() -> None:
    world = _deployed("bad")
    offline = {v.version: v.metrics["accuracy"] for v in world.versions("m")}
    assert offline["3"] < offline["2"] - 0.15
    assert _value(world, M.ERROR_RATE, before=False, version="3") > 0.05
    assert _value(world, M.ERROR_RATE, before=False, version="2") < 0.02
    p99 = _value(world, M.LATENCY_P99, before=False, version="3")
    assert p99 > 2 * _value(world, M.LATENCY_P99, before=False, version="2")
    assert _value(world, M.ACCURACY, before=False, version="3") < 0.7
    alerts = {(a.name, a.labels["version"]) for a in world.firing("m")}
    assert alerts == {("HighErrorRate", "3")}
    assert [e.kind for e in world.timeline("m", world.start)] == [
        "registered",
        "alias_moved",
        "canary_started",
    ]


def test_skewed_canary_validates_fine_but_serves_badly() -> None:
    world = _deployed("skewed")
    offline = {v.version: v.metrics["accuracy"] for v in world.versions("m")}
    assert offline["3"] > 0.8
    assert _value(world, M.ACCURACY, before=False, version="3") < 0.65
    assert _value(world, M.ACCURACY, before=False, version="2") > 0.8
    assert _value(world, M.ERROR_RATE, before=False, version="3") < 0.02
    assert world.evaluate("m", "3") < 0.65
    report = _drift(world)
    assert report.drift_share == 0.0  # inputs are fine; the skew is inside serving
    assert report.prediction_drift is not None and report.prediction_drift.drifted


def test_good_canary_is_healthy() -> None:
    world = _deployed("good")
    assert _value(world, M.ACCURACY, before=False, version="3") > 0.8
    assert _value(world, M.ERROR_RATE, before=False, version="3") < 0.02
    assert world.firing() == []
