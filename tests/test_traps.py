"""The trap pairs of DESIGN.md: look-alike incidents whose plausible action cannot help.

Each pair is run on its own sim world. The supervisor must tell the two sides apart from the
evidence, and the guard must refuse the trap action even if a plan for it is forced through.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from simworld import DATA_OWNER, MODEL, OWNER, Rig, deploy, fault, make_rig

from supervisor import PolicyViolation
from supervisor.domain import (
    ActionPlan,
    ActionTarget,
    ActionType,
    AuditKind,
    Diagnosis,
    IncidentStatus,
    ToolResult,
    Verdict,
)

TEN_MINUTE_SIGNALS = [
    {"metric": "error_rate", "threshold": 0.05, "window_minutes": 10},
    {"metric": "latency_p99", "threshold": 500.0, "window_minutes": 10},
    {"metric": "saturation", "threshold": 0.9, "window_minutes": 10},
]
ALIGNED = {
    "models": [
        {"name": MODEL, "owner": OWNER, "data_owner": DATA_OWNER, "signals": TEN_MINUTE_SIGNALS}
    ]
}


def force(rig: Rig, incident_id: str, action: ActionType, version: str | None = None) -> Any:
    """Put a plan for ``action`` through the guard, with the incident's own diagnosis and
    tool results, and return the decision."""
    state = rig.sup.state(incident_id)
    plan = ActionPlan(
        action=action,
        target=ActionTarget(model=MODEL, environment="production", version=version),
        parameters={"window_hours": 1} if action is ActionType.RETRAIN else {},
        expected_effect="forced by the test",
        undo="n/a",
    )
    diagnosis = Diagnosis.model_validate(state["finding"]["diagnosis"])
    results = [ToolResult.model_validate(r) for r in state["tool_results"]]
    ctx = rig.sup.context
    return plan, ctx.guard.decide(plan, diagnosis, results, ctx.history)


def executed(rig: Rig) -> list[str]:
    """Actions whose outcome is on record as having taken effect."""
    return [
        o["action"] for o in rig.outcomes() if o["outcome"]["status"] in ("succeeded", "reconciled")
    ]


# ------------------------------------------------------------------ upstream defect vs drift


@pytest.mark.parametrize("kind", ["unit_change", "null_spike", "schema_change"])
def test_upstream_defect_is_never_retrained_on(kind: str, tmp_path: Path) -> None:
    rig = make_rig(tmp_path, faults=[fault(kind)])
    try:
        inc = rig.first_incident()
        # Give it time: the incident must stay as it is and no second one retrains either.
        rig.world.advance(timedelta(hours=1))
        rig.sup.tick()
        assert rig.diagnosis(inc.id)["root_cause"] == "upstream_data_defect"
        assert rig.world.action_counts().get("retrain", 0) == 0
        assert "retrain" not in executed(rig)
        assert rig.sup.pending_approvals() == []
        # The data owner, not the model owner, is paged.
        assert [p["owner"] for p in rig.world.pages] == [DATA_OWNER]
        assert rig.incident(inc.id).status is IncidentStatus.ESCALATED
        plan = rig.plan(inc.id)
        assert "no retrain on the poisoned window" in plan["expected_effect"]

        # A retrain forced through the guard for this diagnosis is denied by the trap rule.
        forced, decision = force(rig, inc.id, ActionType.RETRAIN)
        assert decision.verdict is Verdict.DENY
        assert decision.rule_ids[0] == "deny-retrain-on-upstream-defect"

        # And even with that decision on record, the executor refuses to run the retrain.
        rig.sup.recorder.record(
            AuditKind.DECISION,
            incident_id=inc.id,
            actor="test",
            data={
                "idempotency_key": forced.idempotency_key(inc.id),
                "decision": decision.model_dump(mode="json"),
            },
        )
        with pytest.raises(PolicyViolation, match="denied"):
            rig.sup.context.executor.execute(
                rig.incident(inc.id), forced, Diagnosis.model_validate(rig.diagnosis(inc.id))
            )
        assert rig.world.action_counts().get("retrain", 0) == 0
        assert rig.verified()
    finally:
        rig.close()


def test_real_covariate_drift_is_retrained_after_approval(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, faults=[fault("covariate_drift")])
    try:
        inc = rig.first_incident()
        assert rig.diagnosis(inc.id)["root_cause"] == "covariate_drift"
        assert [p.action for p in rig.sup.pending_approvals()] == ["retrain"]
        # A person answers after a while; by then the labels of the drifted rows have arrived, so
        # the retrain window (which holds labelled rows only) is the drifted world, not the old one.
        rig.world.advance(timedelta(minutes=30))
        rig.sup.approve(inc.id, "alice")
        assert rig.world.action_counts()["retrain"] == 1
        assert executed(rig) == ["retrain"]
        assert rig.world.pages == []
    finally:
        rig.close()


# ------------------------------------------------------------------ infrastructure vs bad version


@pytest.mark.parametrize("config", [None, ALIGNED], ids=["default-signals", "10min-signals"])
def test_saturation_is_not_rolled_back(config: dict[str, Any] | None, tmp_path: Path) -> None:
    rig = make_rig(tmp_path, faults=[fault("saturation")], config=config)
    try:
        inc = rig.first_incident()
        assert inc.symptom.value == "high_error_rate"
        diag = rig.diagnosis(inc.id)
        if config is not None:  # the windows agree: the cause is named (see test_reasoner_sim)
            assert diag["root_cause"] == "infrastructure"
        assert diag["root_cause"] != "bad_model_version"
        rig.world.advance(timedelta(hours=1))
        rig.sup.tick()
        assert rig.world_writes() == {}
        assert not {"rollback", "abort_canary"} & set(executed(rig))
        assert [p["owner"] for p in rig.world.pages] == [OWNER]

        _, decision = force(rig, inc.id, ActionType.ROLLBACK, version="1")
        assert decision.verdict is Verdict.DENY
        if config is not None:
            assert decision.rule_ids[0] == "deny-rollback-on-infrastructure"
    finally:
        rig.close()


def test_saturation_with_a_healthy_canary_does_not_abort_it(tmp_path: Path) -> None:
    rig = make_rig(
        tmp_path,
        faults=[fault("saturation", at=10)],
        deploys=[deploy("good", at=0)],
        config=ALIGNED,
    )
    try:
        inc = rig.first_incident()
        assert inc.symptom.value == "high_error_rate"
        diag = rig.diagnosis(inc.id)
        assert diag["root_cause"] == "infrastructure", diag["summary"]
        assert rig.plan(inc.id)["action"] == "escalate"
        assert rig.world.action_counts().get("abort_canary", 0) == 0
        assert rig.world.status(MODEL).canary_version == "3"  # type: ignore[union-attr]
        _, decision = force(rig, inc.id, ActionType.ABORT_CANARY, version="3")
        assert decision.verdict is Verdict.DENY
    finally:
        rig.close()


def test_bad_canary_is_aborted(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, deploys=[deploy("bad")])
    try:
        inc = rig.first_incident()
        diag = rig.diagnosis(inc.id)
        assert diag["root_cause"] == "bad_model_version"
        assert "infrastructure" in {r["root_cause"] for r in diag["ruled_out"]}
        assert executed(rig) == ["abort_canary"]
        assert rig.world.action_counts()["abort_canary"] == 1
        status = rig.world.status(MODEL)
        assert status is not None and status.canary_version is None
        assert status.stable_version == "2"
        assert rig.world.pages == []
    finally:
        rig.close()


# ------------------------------------------------------------------ benign change vs real drift


def test_benign_drift_is_not_retrained(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, faults=[fault("seasonal_shift")])
    try:
        inc = rig.first_incident()
        diag = rig.diagnosis(inc.id)
        assert diag["root_cause"] == "benign_change"
        assert rig.plan(inc.id)["action"] == "no_action"
        # the inputs did drift: this is not a quiet world
        assert rig.incident(inc.id).symptom.value == "data_drift"
        rig.world.advance(timedelta(hours=1))
        rig.sup.tick()
        assert rig.world.action_counts().get("retrain", 0) == 0
        assert rig.sup.pending_approvals() == []
        assert rig.world_writes() == {}
        _, decision = force(rig, inc.id, ActionType.RETRAIN)
        assert decision.verdict is Verdict.DENY
        assert decision.rule_ids[0] == "deny-retrain-on-benign-change"
    finally:
        rig.close()


# ------------------------------------------------------------------ skew right after a deploy


def test_skew_right_after_deploy_is_not_a_bad_version_nor_drift(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, deploys=[deploy("skewed")])
    try:
        inc = rig.first_incident()
        diag = rig.diagnosis(inc.id)
        assert diag["root_cause"] == "training_serving_skew"
        assert diag["root_cause"] not in ("bad_model_version", "covariate_drift")
        ruled_out = {r["root_cause"]: r for r in diag["ruled_out"]}
        assert "bad_model_version" in ruled_out
        # right after the deploy: the timeline the diagnosis cites says so
        calls = {r.data["call_id"]: r.data for r in rig.records(AuditKind.TOOL_CALL, inc.id)}
        timelines = [
            calls[e["call_id"]]["data"]
            for e in diag["evidence"]
            if calls[e["call_id"]]["tool"] == "get_change_timeline"
        ]
        assert timelines and timelines[0]["minutes_since_last_deploy"] <= 60
        assert executed(rig) == ["abort_canary"]
        assert rig.world.action_counts().get("retrain", 0) == 0
    finally:
        rig.close()
