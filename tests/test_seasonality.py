"""Issue 12 requirement 7: drift judged against the same hours one cycle earlier.

A shift that recurs every cycle (absent against last week's same hours) with flat labelled
quality is benign_change; drift that is new (present against last week too) still goes the
usual way; a backend without a history of inputs says so instead of pretending.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from supervisor import ConfigError, SimClock
from supervisor.config import Limits, config_from_dict
from supervisor.domain import Incident, RootCause, Symptom
from supervisor.reasoners import InvestigationSession, RulesReasoner, load_playbooks
from tools import SeasonalReference
from tools._catalog import DriftSummary, default_registry, get_drift_report
from tools._drift import family_drifted
from tools._toolkit import ToolContext
from tools.files import FileDriftAdapter, FileDriftConfig, FileDriftSource
from tools.sim import FaultSpec, ModelSpec, SimWorld, WorldSpec, build_world

ROOT = Path(__file__).resolve().parent.parent
WEEK = SeasonalReference(period="7d")

# --------------------------------------------------------------------------- config


def _config(drift: dict[str, object]) -> None:
    config_from_dict(
        {"models": [{"name": "m", "owner": "team-m", "drift": drift}]}, source="watch.yaml"
    )


def test_seasonality_defaults_off_and_parses_periods() -> None:
    cfg = config_from_dict(
        {
            "models": [
                {"name": "m", "owner": "o"},
                {"name": "n", "owner": "o", "drift": {"seasonality": {"period": "1w"}}},
            ]
        },
        source="watch.yaml",
    )
    assert cfg.models[0].drift.seasonality is None
    season = cfg.models[1].drift.seasonality
    assert season is not None and season.delta == timedelta(days=7)
    assert season.reference_window == "same_hours"
    assert SeasonalReference(period="24h").period_minutes == 1440


@pytest.mark.parametrize(
    ("drift", "needles"),
    [
        (
            {"seasonality": {"period": "7x"}},
            ["models.0.drift.seasonality.period", "'7x'", "whole number and a unit"],
        ),
        (
            {"seasonality": {"period": "0d"}},
            ["models.0.drift.seasonality.period", "not a positive duration"],
        ),
        (
            {"window_minutes": 120, "seasonality": {"period": "1h"}},
            ["models.0.drift", "seasonality.period '1h' is shorter than window_minutes 120"],
        ),
        (
            {"seasonality": {"period": "7d", "reference_window": "same day"}},
            ["models.0.drift.seasonality.reference_window", "same_hours"],
        ),
        ({"seasonality": {"period": "7d", "cycles": 2}}, ["seasonality.cycles", "remove"]),
    ],
)
def test_bad_seasonality_is_rejected_naming_the_field(
    drift: dict[str, object], needles: list[str]
) -> None:
    with pytest.raises(ConfigError) as err:
        _config(drift)
    for needle in needles:
        assert needle in str(err.value), str(err.value)


def test_scenario_watch_takes_seasonality() -> None:
    from evals._scenario import load_scenario

    sc = load_scenario(ROOT / "evals/scenarios/seasonal-weekly-shift-important-flat-quality.yaml")
    assert sc.watch.drift.seasonality == WEEK
    with pytest.raises(ValueError, match="shorter than the 60-minute drift window"):
        type(sc.watch.drift)(seasonality=SeasonalReference(period="30m"))


# --------------------------------------------------------------------------- the tool


def _world(fault: FaultSpec, seed: int) -> SimWorld:
    spec = WorldSpec(
        seed=seed, models=[ModelSpec(name="m", owner="o", data_owner="d")], faults=[fault]
    )
    world = build_world(spec)
    world.advance(timedelta(minutes=90))
    return world


def _weekly(feature: int, magnitude: float) -> FaultSpec:
    """A shift every week for two days, in effect now and the same hours last week."""
    return FaultSpec(
        kind="seasonal_shift",
        model="m",
        at_minutes=30,
        every_minutes=7 * 24 * 60,
        duration_minutes=2 * 24 * 60,
        params={"magnitude": magnitude, "features": [feature]},
    )


def _new_drift() -> FaultSpec:
    return FaultSpec(kind="covariate_drift", model="m", at_minutes=30, params={"magnitude": 2.0})


def _ctx(world: SimWorld, seasonal: bool) -> ToolContext:
    return ToolContext(
        backends=world.read_backends(),
        clock=world.clock,
        seasonality={"m": WEEK} if seasonal else {},
    )


def _report(world: SimWorld, seasonal: bool) -> DriftSummary:
    out = get_drift_report(_ctx(world, seasonal), "m", 60)
    assert out is not None
    return out


def test_recurring_shift_is_absent_against_last_week() -> None:
    world = _world(_weekly(0, 0.4), seed=11)
    plain = _report(world, seasonal=False)
    assert plain.seasonal is None and plain.recurring_drift is False
    rep = _report(world, seasonal=True)
    # Against the training reference the shift matters ...
    assert rep.important_drift and rep.prediction_drift_score is not None
    assert rep.prediction_drift_score >= 0.25
    # ... against the same hours last week it is not there: it recurs.
    s = rep.seasonal
    assert s is not None and s.status == "ok" and s.period == "7d"
    assert s.reference_end == world.now - timedelta(days=7)
    assert s.reference_rows >= 200 and s.current_rows >= 200
    assert s.drift_absent and s.weighted_drift_share is not None and s.weighted_drift_share < 0.25
    assert rep.recurring_drift is True
    assert "against the same hours 7d earlier" in s.note and "did not drift" in s.note


def test_new_drift_is_present_against_last_week_too() -> None:
    world = _world(_new_drift(), seed=208)
    rep = _report(world, seasonal=True)
    s = rep.seasonal
    assert rep.important_drift and s is not None and s.status == "ok"
    assert not s.drift_absent and s.weighted_drift_share is not None
    assert s.weighted_drift_share >= 0.5
    assert rep.recurring_drift is False
    assert "drifted too" in s.note


class _NoHistory:
    """A drift port with no history of inputs (only the training comparison)."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world

    def report(self, model: str, *, window: timedelta, end: datetime | None = None) -> object:
        return self.world.report(model, window=window, end=end)


def test_backend_without_history_says_so() -> None:
    from tools import read_only

    world = _world(_weekly(0, 0.4), seed=11)
    read = read_only(
        metrics=world,
        alerts=world,
        drift=_NoHistory(world),
        registry=world,
        deploy=world,  # type: ignore[arg-type]
    )
    out = get_drift_report(ToolContext(read, world.clock, {"m": WEEK}), "m", 60)
    assert out is not None and out.seasonal is not None
    assert out.seasonal.status == "unavailable"
    assert out.seasonal.note == (
        "no seasonal reference available: the drift backend keeps no history of inputs"
    )
    assert out.recurring_drift is False


# --------------------------------------------------------------------------- file adapter

NOW = datetime(2026, 1, 17, 12, 0, tzinfo=UTC)


def _logs(directory: Path, start: datetime, minutes: int, shift: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = minutes * 10
    times = [start + timedelta(seconds=6 * i) for i in range(n)]
    frame = pd.DataFrame(
        {
            "timestamp": [t.timestamp() for t in times],
            "a": rng.normal(10 + shift, 1, n),
            "b": rng.normal(5, 1, n),
            "prediction": rng.random(n),
        }
    )
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_csv(directory / f"log-{seed}.csv", index=False)


def test_file_adapter_reads_the_same_logs_one_period_back(tmp_path: Path) -> None:
    ref = tmp_path / "reference.csv"
    pd.DataFrame(
        {"a": np.random.default_rng(1).normal(10, 1, 600), "b": 5.0, "prediction": 0.5}
    ).to_csv(ref, index=False)
    logs = tmp_path / "logs"
    # The shift of feature a is in the current hour and in the same hour last week.
    _logs(logs, NOW - timedelta(hours=1), 60, shift=3.0, seed=2)
    _logs(logs, NOW - timedelta(days=7, hours=1), 60, shift=3.0, seed=3)
    adapter = FileDriftAdapter(
        {"m": FileDriftSource(reference=str(ref), current=str(logs))},
        FileDriftConfig(),
        clock=SimClock(NOW),
    )
    rep = adapter.seasonal_report("m", window=timedelta(hours=1), period=WEEK.delta)
    assert rep is not None and rep.reference_rows >= 200
    # Against the training reference feature a drifted; against last week's same hour it did
    # not (Holm-corrected, as the drift tool decides).
    training = adapter.report("m", window=timedelta(hours=1))
    assert training is not None and family_drifted(training.features)["a"] is True
    assert family_drifted(rep.features)["a"] is False
    # Logs that do not reach back one period give no seasonal reference (not "no drift").
    assert (
        adapter.seasonal_report("m", window=timedelta(hours=1), period=timedelta(days=14)) is None
    )


# --------------------------------------------------------------------------- the diagnosis


def _diagnose(world: SimWorld, seasonal: bool) -> tuple[RootCause, str, list[str]]:
    now = world.now
    incident = Incident(
        id="inc-0001-m",
        model="m",
        environment="production",
        symptom=Symptom.DATA_DRIFT,
        opened_at=now,
        updated_at=now,
    )
    session = InvestigationSession(incident, default_registry(), _ctx(world, seasonal), Limits())
    finding = RulesReasoner(load_playbooks(ROOT / "playbooks")).investigate(incident, session)
    d = finding.diagnosis
    return d.root_cause, finding.action.value, [e.finding for e in d.evidence if e.supports]


def test_recurring_drift_with_flat_quality_is_benign_only_with_seasonality() -> None:
    world = _world(_weekly(0, 0.4), seed=11)
    # Without a seasonal reference the moved outputs read as covariate drift: a retrain.
    cause, action, _ = _diagnose(world, seasonal=False)
    assert (cause, action) == (RootCause.COVARIATE_DRIFT, "retrain")
    cause, action, evidence = _diagnose(world, seasonal=True)
    assert (cause, action) == (RootCause.BENIGN_CHANGE, "no_action")
    recurs = [e for e in evidence if e.startswith("the drift recurs every cycle")]
    assert recurs and "against the same hours 7d earlier" in recurs[0], evidence
    # The rule-out that did not fire names the condition that decided it.
    assert "recurring drift is yes, not no, so it does not rule out benign change" in evidence


def test_new_drift_still_goes_the_usual_way_with_seasonality() -> None:
    world = _world(_new_drift(), seed=208)
    cause, action, evidence = _diagnose(world, seasonal=True)
    assert (cause, action) == (RootCause.COVARIATE_DRIFT, "retrain"), evidence
    assert not any("recurs" in e for e in evidence)


def test_wrapping_ports_forward_or_say_there_is_no_history() -> None:
    from supervisor.metrics import ObservedDrift, SupervisorMetrics
    from supervisor.service._backends import RoutedDrift
    from tools import NoSeasonalHistory

    world = _world(_weekly(0, 0.4), seed=11)
    hour = timedelta(hours=1)
    routed = RoutedDrift({"m": _NoHistory(world)}, fallback=world)  # type: ignore[dict-item]
    with pytest.raises(NoSeasonalHistory, match="keeps no history of inputs"):
        routed.seasonal_report("m", window=hour, period=WEEK.delta)
    observed = ObservedDrift(world, SupervisorMetrics())
    rep = observed.seasonal_report("m", window=hour, period=WEEK.delta)
    assert rep is not None and rep.reference_rows >= 200
    with pytest.raises(NoSeasonalHistory):
        ObservedDrift(_NoHistory(world), SupervisorMetrics()).seasonal_report(  # type: ignore[arg-type]
            "m", window=hour, period=WEEK.delta
        )
