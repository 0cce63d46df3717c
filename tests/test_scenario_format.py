"""The wider scenario format: start time, watch and policy overlays, history before minute 0,
per-version outages and retrain-window predicates, as the eval harness applies them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from evalkit import MINIMAL_SCENARIO

from evals import RunSpec, Scenario, default_scenarios_dir, load_scenarios
from evals._harness import _backends, _Observer, supervisor_config
from evals._history import retrained_on, seed_history
from supervisor import SimClock
from supervisor.audit import AuditLog, verify
from supervisor.domain import (
    ActionPlan,
    ActionTarget,
    ActionType,
    Diagnosis,
    Evidence,
    MetricName,
    RootCause,
    TimeWindow,
    Verdict,
)
from supervisor.policy import PolicyEngine, load_policy
from supervisor.runtime import AuditActionHistory
from tools.sim import build_world

REPO = Path(__file__).resolve().parent.parent

MIN = timedelta(minutes=1)

BASE = MINIMAL_SCENARIO


def _scenario(**changes: Any) -> Scenario:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return Scenario.model_validate(data)


def _world(**changes: Any) -> dict[str, Any]:
    return {**BASE["world"], **changes}


# --------------------------------------------------------------------------- start


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (None, datetime(2026, 1, 5, 8, 0, tzinfo=UTC)),
        ({"weekday": "sat", "hour": 10}, datetime(2026, 1, 10, 10, 0, tzinfo=UTC)),
        ({"weekday": "mon", "hour": 0, "minute": 30}, datetime(2026, 1, 5, 0, 30, tzinfo=UTC)),
        ("2026-03-01T23:00:00+01:00", datetime(2026, 3, 1, 22, 0, tzinfo=UTC)),
    ],
)
def test_the_world_starts_when_the_scenario_says(start: Any, expected: datetime) -> None:
    sc = _scenario(world=_world(start=start))
    assert sc.world_spec(0).start == expected
    assert build_world(sc.world_spec(0)).now == expected


def test_a_start_without_timezone_is_rejected() -> None:
    with pytest.raises(ValueError, match="has no timezone; append Z"):
        _scenario(world=_world(start="2026-01-10T10:00:00"))


# --------------------------------------------------------------------------- watch


def test_the_watch_config_reaches_the_supervisor(tmp_path: Path) -> None:
    sc = _scenario(
        watch={
            "signals": [{"metric": "latency_p99", "threshold": 300, "window_minutes": 10}],
            "drift": {"interval_minutes": 20, "window_minutes": 30, "drift_share_threshold": 0.3},
        }
    )
    spec = RunSpec(scenario=sc, system="supervisor", seed=0, workdir=tmp_path)
    model = supervisor_config(sc, spec, tmp_path)["models"][0]
    assert model["signals"] == [
        {"metric": "latency_p99", "op": ">", "threshold": 300.0, "window_minutes": 10}
    ]
    assert model["drift"] == {
        "interval_minutes": 20,
        "window_minutes": 30,
        "drift_share_threshold": 0.3,
    }
    assert sc.drift_interval_minutes == 20  # the naive-drift baseline checks as often
    # Without a watch, the harness's defaults stand.
    plain = supervisor_config(_scenario(), spec, tmp_path)["models"][0]
    assert plain["drift"] == {"interval_minutes": 30}
    assert [s["metric"] for s in plain["signals"]] == ["error_rate", "latency_p99", "saturation"]


def test_watch_problems_name_the_fix() -> None:
    with pytest.raises(ValueError, match="set the drift-check interval in one place"):
        _scenario(
            trigger={"kind": "scheduled_check", "drift_interval_minutes": 15},
            watch={"drift": {"interval_minutes": 20}},
        )
    with pytest.raises(ValueError, match="longer than the simulated metrics answer"):
        _scenario(
            watch={"signals": [{"metric": "accuracy", "threshold": 1, "window_minutes": 2000}]}
        )


# --------------------------------------------------------------------------- policy overlay

FREEZE = {
    "id": "scenario-weekend-freeze",
    "description": "No production changes on weekends.",
    "effect": "deny",
    "match": {
        "actions": ["retrain"],
        "environments": ["production"],
        "freeze": [{"weekdays": ["sat", "sun"], "from": "00:00", "to": "23:59"}],
    },
}


def _plan() -> tuple[ActionPlan, Diagnosis]:
    plan = ActionPlan(
        action=ActionType.RETRAIN,
        target=ActionTarget(model="churn", environment="production"),
        expected_effect="quality restored",
        undo="roll back",
    )
    diagnosis = Diagnosis(
        root_cause=RootCause.COVARIATE_DRIFT,
        confidence=0.9,
        summary="drift",
        evidence=[Evidence(call_id="c1", tool="get_drift_report", finding="drift")],
    )
    return plan, diagnosis


class _NoHistory:
    def count(self, action: ActionType, model: str, environment: str, since: datetime) -> int:
        return 0


def test_a_policy_overlay_adds_a_freeze_window(tmp_path: Path) -> None:
    sc = _scenario(policy={"rules": [FREEZE]}, world=_world(start={"weekday": "sat", "hour": 10}))
    spec = RunSpec(scenario=sc, system="supervisor", seed=0, workdir=tmp_path)
    path = Path(supervisor_config(sc, spec, tmp_path)["policy_file"])
    assert path.parent == tmp_path
    policy = load_policy(path)
    base = load_policy(REPO / "policies" / "default.yaml")
    assert [r.id for r in policy.rules] == [*(r.id for r in base.rules), FREEZE["id"]]
    plan, diagnosis = _plan()
    saturday = PolicyEngine(policy, SimClock(sc.world.start_time))
    decision = saturday.decide(plan, diagnosis, [], _NoHistory())
    assert decision.verdict is Verdict.DENY and FREEZE["id"] in decision.rule_ids
    monday = PolicyEngine(policy, SimClock(sc.world.start_time + timedelta(days=2)))
    assert FREEZE["id"] not in monday.decide(plan, diagnosis, [], _NoHistory()).rule_ids
    # No overlay: the run's policy file is used as is.
    plain = supervisor_config(_scenario(), spec, tmp_path)
    assert plain["policy_file"] == str(spec.policy_file)


def test_a_bad_overlay_is_rejected_naming_the_problem(tmp_path: Path) -> None:
    clash = _scenario(policy={"approver_groups": {"ml-oncall": ["mallory"]}})
    with pytest.raises(Exception, match="already exist"):
        clash.policy.apply(REPO / "policies" / "default.yaml", tmp_path / "p.json")
    unknown = {**FREEZE, "effect": "require_approval", "approvers": ["nobody"]}
    bad = _scenario(policy={"rules": [unknown]})
    with pytest.raises(Exception, match="unknown approver group 'nobody'"):
        bad.policy.apply(REPO / "policies" / "default.yaml", tmp_path / "p.json")
    with pytest.raises(ValueError, match="extra"):
        _scenario(policy={"rules": [{**FREEZE, "when": "always"}]})


# --------------------------------------------------------------------------- history


def test_history_is_seeded_where_the_guard_counts_it(tmp_path: Path) -> None:
    sc = _scenario(
        history=[
            {"action": "retrain", "model": "churn", "at_minutes": -600},
            {"action": "retrain", "model": "churn", "at_minutes": -240},
            {"action": "rollback", "model": "churn", "at_minutes": -60},
        ]
    )
    world = build_world(sc.world_spec(0))
    seed_history(sc, world, tmp_path)
    assert verify(tmp_path / "audit.jsonl").ok
    with AuditLog(tmp_path / "audit.jsonl", world.clock) as log:
        history = AuditActionHistory(log)
        day = world.start - timedelta(hours=24)
        assert history.count(ActionType.RETRAIN, "churn", "production", day) == 2
        assert (
            history.count(ActionType.RETRAIN, "churn", "production", world.start - 5 * 60 * MIN)
            == 1
        )
        assert history.count(ActionType.ROLLBACK, "churn", "production", day) == 1
    # The default policy's rate limit (2 retrains per 24 h) now denies a third.
    policy = load_policy(REPO / "policies" / "default.yaml")
    plan, diagnosis = _plan()
    with AuditLog(tmp_path / "audit.jsonl", world.clock) as log:
        decision = PolicyEngine(policy, world.clock).decide(
            plan, diagnosis, [], AuditActionHistory(log)
        )
    assert decision.verdict is Verdict.DENY and "retrain-rate-limit" in decision.rule_ids
    # The world's timeline holds them too, before minute 0.
    kinds = [e.kind for e in world.timeline("churn", world.start - timedelta(hours=11))]
    assert kinds.count("retrained") == 2 and "rolled_back" in kinds


def test_history_names_known_models() -> None:
    with pytest.raises(ValueError, match=r"history\.0\.model names unknown model 'fraud'"):
        _scenario(history=[{"action": "retrain", "model": "fraud", "at_minutes": -5}])


# --------------------------------------------------------------------------- outages


def test_a_version_outage_drops_only_that_versions_series() -> None:
    sc = _scenario(
        world=_world(deploys=[{"model": "churn", "at_minutes": 5, "quality": "good"}]),
        outages=[{"model": "churn", "version": "3", "at_minutes": 5}],
    )
    world = build_world(sc.world_spec(0))
    read, _ = _backends(world, sc)
    world.advance(30 * MIN)
    for metric in (MetricName.ERROR_RATE, MetricName.THROUGHPUT):
        assert read.metrics.read("churn", metric, version="3", window=10 * MIN) is None
        assert read.metrics.read("churn", metric, version="2", window=10 * MIN) is not None
        assert read.metrics.read("churn", metric, version=None, window=10 * MIN) is not None


# --------------------------------------------------------------------------- retrain windows


def _retrain(world: Any, start: float, end: float, exclude: list[tuple[float, float]]) -> None:
    at = world.start

    def w(a: float, b: float) -> TimeWindow:
        return TimeWindow(start=at + a * MIN, end=at + b * MIN)

    world.retrain(
        "churn",
        window=w(start, end),
        exclude=[w(a, b) for a, b in exclude],
        idempotency_key=f"k-{start}-{end}-{exclude}",
        min_accuracy=0.0,
    )


def test_retrain_window_predicates() -> None:
    sc = _scenario(
        faults=[
            {"kind": "unit_change", "model": "churn", "at_minutes": 30, "until_minutes": 90},
            {"kind": "covariate_drift", "model": "churn", "at_minutes": 120},
        ],
        # A deployed version's training window spans the defect, but it is no retrain.
        world=_world(deploys=[{"model": "churn", "at_minutes": 100, "quality": "good"}]),
    )
    assert sc.poisoned_intervals("churn") == [(30.0, 90.0)]
    world = build_world(sc.world_spec(0))
    world.advance(200 * MIN)
    assert not retrained_on(world, "churn", [(30, 90)])
    _retrain(world, 95, 190, [])  # after the defect: clean
    assert not retrained_on(world, "churn", [(30, 90)])
    _retrain(world, 20, 190, [(25, 95)])  # spans it, but its run excluded the defect
    assert not retrained_on(world, "churn", [(30, 90)])
    _retrain(world, 20, 190, [(25, 60)])  # excluded only part of it
    assert retrained_on(world, "churn", [(30, 90)])

    # The observer's predicate, from the scenario's own defect interval.
    exp = {
        "model": "churn",
        "root_cause": "covariate_drift",
        "acceptable_actions": ["retrain"],
        "success": {"no_retrain_on_defects": True},
    }
    judged = _scenario(faults=sc.model_dump()["faults"], ground_truth={"expectations": [exp]})
    clean_world = build_world(judged.world_spec(0))
    observer = _Observer(clean_world, judged)
    clean_world.advance(200 * MIN)
    assert observer._holds(judged.ground_truth.expectations[0])
    _retrain(clean_world, 60, 190, [])
    assert not observer._holds(judged.ground_truth.expectations[0])


def test_a_retrain_window_must_be_ordered() -> None:
    exp = {
        "model": "churn",
        "root_cause": "covariate_drift",
        "acceptable_actions": ["retrain"],
        "success": {"no_retrain_on_window": [90, 30]},
    }
    with pytest.raises(ValueError, match="the end must be after the start"):
        _scenario(ground_truth={"expectations": [exp]})


# --------------------------------------------------------------------------- the suite


def test_every_new_format_item_has_a_suite_scenario() -> None:
    suite = load_scenarios(default_scenarios_dir())
    raw = [json.loads(s.model_dump_json(exclude_unset=True)) for s in suite]
    deploys = [d for s in suite for d in s.world.deploys]
    faults = [f for s in suite for f in s.faults]
    successes = [e.success for s in suite for e in s.ground_truth.expectations]
    uses = {
        "world.start": any("start" in r["world"] for r in raw),
        "watch": any("watch" in r for r in raw),
        "policy overlay": any(s.policy.rules for s in suite),
        "history": any(s.history for s in suite),
        "full deploy": any(d.mode == "full" for d in deploys),
        "per-deploy behaviour": any(
            d.collapse is not None or d.error_rate_add is not None or d.latency_factor is not None
            for d in deploys
        ),
        "zero-traffic canary": any(d.mode == "canary" and d.canary_weight == 0 for d in deploys),
        "version outage": any(o.version for s in suite for o in s.outages),
        "gradual concept drift": any(
            f.kind == "concept_drift" and f.params.get("ramp_minutes") for f in faults
        ),
        "periodic fault": any(f.periodic for f in faults),
        "label delay of days": any(
            m.label_delay_minutes >= 24 * 60 for s in suite for m in s.world.models
        ),
        "retrain-window predicate": any(
            s.no_retrain_on_defects or s.no_retrain_on_window for s in successes
        ),
    }
    assert [k for k, used in uses.items() if not used] == []
