"""Simulated-world features the wider scenario format needs: full and zero-traffic deploys,
per-deploy behaviour, gradual and periodic faults, history before minute 0, day-long label
delays."""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from supervisor.domain import MetricName as M
from supervisor.domain import TimeWindow
from tools.sim import DeploySpec, FaultSpec, ModelSpec, PastChange, WorldSpec, build_world

MIN = timedelta(minutes=1)


def _spec(seed: int = 5, *, model: ModelSpec | None = None, **kw: object) -> WorldSpec:
    return WorldSpec(
        seed=seed,
        models=[model or ModelSpec(name="m", owner="team-m", data_owner="team-data")],
        **kw,
    )


def _read(world: object, metric: M, version: str | None = None, minutes: int = 10) -> float:
    r = world.read("m", metric, version=version, window=minutes * MIN)  # type: ignore[attr-defined]
    assert r is not None, (metric, version)
    return float(r.value)


# --------------------------------------------------------------------------- deploys


def test_a_full_rollout_replaces_stable_and_moves_the_champion() -> None:
    world = build_world(
        _spec(deploys=[DeploySpec(model="m", at_minutes=30, quality="bad", mode="full")])
    )
    world.advance(29 * MIN)
    assert world.status("m").stable_version == "2"  # type: ignore[union-attr]
    world.advance(21 * MIN)
    status = world.status("m")
    assert status is not None
    assert (status.stable_version, status.canary_version) == ("3", None)
    champion = [v.version for v in world.versions("m") if "champion" in v.aliases]
    assert champion == ["3"]
    kinds = [(e.kind, e.version) for e in world.timeline("m", world.start)]
    assert ("deployed", "3") in kinds and ("canary_started", "3") not in kinds
    # All traffic is the bad version now: its error rate (+6 points) is the model's.
    assert _read(world, M.ERROR_RATE) > 0.05
    # A rollback restores version 2 as stable.
    world.serve_version("m", "2", expected_version="3")
    world.advance(11 * MIN)
    assert _read(world, M.ERROR_RATE) < 0.02


def test_full_rollouts_take_no_canary_weight() -> None:
    with pytest.raises(ValidationError, match="canary_weight applies to mode 'canary' only"):
        DeploySpec(model="m", at_minutes=1, quality="good", mode="full", canary_weight=50)


def test_a_zero_weight_canary_is_deployed_but_answers_no_data() -> None:
    world = build_world(
        _spec(deploys=[DeploySpec(model="m", at_minutes=10, quality="good", canary_weight=0)])
    )
    world.advance(40 * MIN)
    status = world.status("m")
    assert status is not None
    assert (status.canary_version, status.canary_weight) == ("3", 0)
    for metric in (M.ERROR_RATE, M.THROUGHPUT, M.ACCURACY):
        assert world.read("m", metric, version="3", window=20 * MIN) is None
    assert _read(world, M.THROUGHPUT, version="2") > 0


def test_per_deploy_error_latency_and_collapse_overrides() -> None:
    deploy = DeploySpec(
        model="m",
        at_minutes=5,
        quality="good",
        canary_weight=50,
        error_rate_add=0.1,
        latency_factor=3.0,
        collapse=1,
    )
    world = build_world(_spec(deploys=[deploy]))
    world.advance(40 * MIN)
    assert _read(world, M.ERROR_RATE, "3") - _read(world, M.ERROR_RATE, "2") > 0.08
    ratio = _read(world, M.LATENCY_P50, "3") / _read(world, M.LATENCY_P50, "2")
    assert 2.5 < ratio < 3.5
    # Collapsed: one class, one score, for every row.
    assert _read(world, M.PREDICTION_SCORE_MEAN, "3", minutes=20) == pytest.approx(0.97)
    assert world.evaluate("m", "3") < world.evaluate("m", "2") - 0.15


def test_a_good_deploy_with_a_degrading_override_is_not_healthy() -> None:
    def deploy(**kw: object) -> DeploySpec:
        return DeploySpec.model_validate({"model": "m", "at_minutes": 1, "quality": "good", **kw})

    assert deploy().healthy and deploy(latency_factor=0.8).healthy
    assert not deploy(latency_factor=3).healthy
    assert not deploy(error_rate_add=0.01).healthy
    assert not deploy(collapse=1).healthy
    assert not deploy(quality="skewed").healthy


def test_deploy_overrides_default_from_quality() -> None:
    world = build_world(
        _spec(deploys=[DeploySpec(model="m", at_minutes=5, quality="bad", latency_factor=1.0)])
    )
    world.advance(30 * MIN)
    # The bad version still errs more, but the override took its slowness away.
    assert _read(world, M.ERROR_RATE, "3") > 0.05
    assert _read(world, M.LATENCY_P50, "3") / _read(world, M.LATENCY_P50, "2") < 1.3


# --------------------------------------------------------------------------- faults


def test_fault_level_ramps_and_recurs() -> None:
    ramp = FaultSpec(kind="concept_drift", model="m", at_minutes=30, params={"ramp_minutes": 60})
    assert ramp.level(np.array([29.0, 30.0, 60.0, 90.0, 500.0])).tolist() == [0, 0, 0.5, 1, 1]
    weekend = FaultSpec(
        kind="seasonal_shift", model="m", at_minutes=100, every_minutes=1000, duration_minutes=200
    )
    # Occurrences at [100, 300), [1100, 1300), and the one before the run, [-900, -700).
    minutes = np.array([-800.0, -600.0, 99.0, 100.0, 299.0, 300.0, 1150.0])
    assert weekend.level(minutes).tolist() == [1, 0, 0, 1, 1, 0, 1]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"every_minutes": 100}, "needs both every_minutes and duration_minutes"),
        ({"every_minutes": 100, "duration_minutes": 100}, "must be shorter than every_minutes"),
        ({"kind": "null_spike", "params": {"ramp_minutes": 10}}, "unknown params"),
        ({"params": {"ramp_minutes": -1}}, "ramp_minutes -1.0 must be >= 0"),
    ],
)
def test_bad_fault_timing_is_rejected(fields: dict[str, object], message: str) -> None:
    data: dict[str, object] = {"kind": "concept_drift", "model": "m", "at_minutes": 10, **fields}
    with pytest.raises(ValidationError, match=message):
        FaultSpec.model_validate(data)


def test_gradual_concept_drift_hurts_by_degrees() -> None:
    fault = FaultSpec(kind="concept_drift", model="m", at_minutes=10, params={"ramp_minutes": 120})
    world = build_world(_spec(faults=[fault]))
    accuracy = []
    for minute in (10, 70, 130):
        world.advance(timedelta(minutes=minute) - (world.now - world.start))
        accuracy.append(world.evaluate("m", rows=4000))
    assert accuracy[0] - accuracy[1] > 0.05
    assert accuracy[1] - accuracy[2] > 0.05


def test_a_periodic_fault_is_on_only_during_its_occurrences() -> None:
    fault = FaultSpec(
        kind="saturation", model="m", at_minutes=20, every_minutes=60, duration_minutes=15
    )
    world = build_world(_spec(faults=[fault]))
    world.advance(30 * MIN)  # inside [20, 35)
    assert _read(world, M.SATURATION, minutes=5) > 0.9
    world.advance(20 * MIN)  # minute 50: off until 80
    assert _read(world, M.SATURATION, minutes=5) < 0.6
    world.advance(40 * MIN)  # minute 90: inside [80, 95)
    assert _read(world, M.SATURATION, minutes=5) > 0.9


def test_existing_covariate_ramp_is_unchanged() -> None:
    # The generalised ramp must give the rows the old covariate-only ramp gave.
    fault = FaultSpec(kind="covariate_drift", model="m", at_minutes=0, params={"ramp_minutes": 60})
    world = build_world(_spec(faults=[fault]))
    rows = world._models["m"].stream.minute(30)
    clean = build_world(_spec()).__dict__["_models"]["m"].stream.minute(30)
    level = np.clip(rows.t / 60.0 / 60.0, 0.0, 1.0)
    shift = world._models["m"].stream._shift(fault)
    np.testing.assert_allclose(rows.z, clean.z + np.outer(level, shift))


# --------------------------------------------------------------------------- labels, history


def test_labels_days_late_answer_only_windows_that_ended_a_label_delay_ago() -> None:
    model = ModelSpec(name="m", owner="o", data_owner="d", label_delay_minutes=3 * 24 * 60)
    world = build_world(_spec(model=model))
    world.advance(60 * MIN)
    started = time.perf_counter()
    assert world.read("m", M.ACCURACY, version=None, window=60 * MIN) is None
    end = world.now - timedelta(days=3)
    old = world.read("m", M.ACCURACY, version=None, window=60 * MIN, end=end)
    assert old is not None and old.samples >= 1000 and old.value > 0.7
    assert old.window_end == end
    # A retrain can only fit rows whose labels have arrived: 3 days back.
    result = world.retrain(
        "m",
        window=TimeWindow(start=end - timedelta(hours=2), end=end),
        exclude=[],
        idempotency_key="k",
        min_accuracy=0.0,
    )
    assert result.details["rows_used"] >= 3000
    # Reading days back costs what any window of that length costs.
    assert time.perf_counter() - started < 5.0


def test_history_is_on_the_timeline_before_the_start() -> None:
    spec = _spec(
        history=[
            PastChange(action="retrain", model="m", at_minutes=-300),
            PastChange(action="rollback", model="m", at_minutes=-120),
        ],
        deploys=[DeploySpec(model="m", at_minutes=10, quality="good")],
    )
    world = build_world(spec)
    before = world.timeline("m", world.start - timedelta(hours=6))
    assert [
        (e.kind, round((e.at - world.start) / MIN))
        for e in before
        if e.kind in ("retrained", "rolled_back")
    ] == [
        ("retrained", -300),
        ("rolled_back", -120),
    ]
    assert world.timeline("m", world.start) == []  # nothing an eval scores as an action
    retrained = world.versions("m")[-1]
    assert (retrained.version, retrained.aliases) == ("3", ["challenger"])
    assert world.status("m").stable_version == "2"  # type: ignore[union-attr]
    world.advance(20 * MIN)
    assert world.status("m").canary_version == "4"  # type: ignore[union-attr]


def test_history_must_lie_before_the_start_and_within_a_week() -> None:
    for minute in (0, 5, -7 * 24 * 60 - 1):
        with pytest.raises(ValidationError):
            PastChange(action="retrain", model="m", at_minutes=minute)
    with pytest.raises(ValidationError, match="unknown model 'x'"):
        _spec(history=[PastChange(action="retrain", model="x", at_minutes=-5)])


def test_new_features_are_deterministic() -> None:
    spec = _spec(
        deploys=[DeploySpec(model="m", at_minutes=5, quality="good", mode="full", collapse=0)],
        faults=[
            FaultSpec(
                kind="concept_drift", model="m", at_minutes=1,
                every_minutes=50, duration_minutes=20, params={"ramp_minutes": 10},
            )
        ],
        history=[PastChange(action="retrain", model="m", at_minutes=-30)],
    )  # fmt: skip

    def numbers() -> list[float]:
        world = build_world(spec)
        world.advance(45 * MIN)
        metrics = (M.ERROR_RATE, M.ACCURACY, M.PREDICTION_SCORE_MEAN)
        return [_read(world, m, minutes=30) for m in metrics] + [world.evaluate("m")]

    assert numbers() == numbers()
