"""Invariant 6 (bounded): per-incident limits end an investigation as insufficient_evidence and
escalate; identical tool calls are answered from the session's cache and recorded once."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path

import pytest
from simworld import OWNER, Rig, fault, make_rig, open_session, world_spec

from supervisor import SimClock
from supervisor.config import Limits
from supervisor.domain import AuditKind, IncidentStatus, Symptom, ToolResult
from supervisor.reasoners import BudgetExceeded, InvestigationSession
from tools.sim import build_world


def investigate_calls(rig: Rig, incident_id: str) -> list[dict[str, object]]:
    return [
        r.data for r in rig.records(AuditKind.TOOL_CALL, incident_id) if r.actor == "investigate"
    ]


def assert_stopped_by_budget(rig: Rig, limit: int) -> None:
    inc = rig.first_incident()
    diag = rig.diagnosis(inc.id)
    assert diag["root_cause"] == "insufficient_evidence"
    assert "max_tool_calls" in diag["summary"]
    assert len(investigate_calls(rig, inc.id)) == limit
    [step] = rig.records(AuditKind.REASONER_STEP, inc.id)
    assert step.data["tool_calls"] == limit
    assert rig.plan(inc.id)["action"] == "escalate"
    assert rig.decision(inc.id)["verdict"] == "allow"
    # escalated to the owner; nothing that changes a backend ran
    assert rig.incident(inc.id).status is IncidentStatus.ESCALATED
    assert [o["action"] for o in rig.outcomes(inc.id)] == ["escalate"]
    assert rig.world_writes() == {}
    assert [p["owner"] for p in rig.world.pages] == [OWNER]
    assert rig.verified()


def test_max_tool_calls_ends_as_insufficient_evidence_and_escalates(tmp_path: Path) -> None:
    rig = make_rig(
        tmp_path, faults=[fault("covariate_drift")], config={"limits": {"max_tool_calls": 2}}
    )
    try:
        assert_stopped_by_budget(rig, 2)
    finally:
        rig.close()


def test_the_limit_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_SUPERVISOR_LIMITS__MAX_TOOL_CALLS", "3")
    rig = make_rig(tmp_path, faults=[fault("covariate_drift")])
    try:
        assert rig.sup.config.limits.max_tool_calls == 3
        assert_stopped_by_budget(rig, 3)
    finally:
        rig.close()


def test_with_the_default_budget_the_same_incident_is_diagnosed(tmp_path: Path) -> None:
    """The control for the two tests above: it is the bound, not the world, that stops them."""
    rig = make_rig(tmp_path, faults=[fault("covariate_drift")])
    try:
        inc = rig.first_incident()
        assert rig.diagnosis(inc.id)["root_cause"] == "covariate_drift"
        # The first investigation (the retrain then waits for the drifted rows' labels and a
        # re-check investigates again, with its own calls).
        recheck = rig.records(AuditKind.RECHECK_SCHEDULED, inc.id)
        cut = recheck[0].seq if recheck else math.inf
        calls = [
            r.data
            for r in rig.records(AuditKind.TOOL_CALL, inc.id)
            if r.actor == "investigate" and r.seq < cut
        ]
        assert 3 < len(calls) <= rig.sup.config.limits.max_tool_calls
        # Several playbooks read the same drift report; it was fetched and recorded once.
        keys = Counter((c["tool"], tuple(sorted(c["args"].items()))) for c in calls)  # type: ignore[union-attr]
        assert max(keys.values()) == 1, keys
        # Three windows (the last 5 and 15 minutes for defects, the last hour for drift), each
        drift = [c for c in calls if c["tool"] == "get_drift_report"]
        assert sorted(c["args"]["window_minutes"] for c in drift) == [5, 15, 60]  # type: ignore[index]
        # ... although more than one playbook's evidence rests on them (the diagnosis on
        # record is the last investigation's, after any re-check)
        due = rig.records(AuditKind.RECHECK_DUE, inc.id)
        since = due[-1].seq if due else -1
        drift = [
            r.data
            for r in rig.records(AuditKind.TOOL_CALL, inc.id)
            if r.actor == "investigate" and r.seq > since and r.data["tool"] == "get_drift_report"
        ]
        cited = [e for e in rig.diagnosis(inc.id)["evidence"] if e["tool"] == "get_drift_report"]
        assert len(cited) >= 2 and {e["call_id"] for e in cited} <= {d["call_id"] for d in drift}
        ruled = [
            r for r in rig.diagnosis(inc.id)["ruled_out"] if drift[0]["call_id"] in r["call_ids"]
        ]
        assert ruled, "the look-alikes were judged on the same cached report"
    finally:
        rig.close()


# ------------------------------------------------------------------ the session itself


def _session(limits: Limits, **kw: object) -> tuple[InvestigationSession, list[ToolResult]]:
    world = build_world(world_spec())
    seen: list[ToolResult] = []
    session = open_session(world, Symptom.HIGH_ERROR_RATE, limits, on_result=seen.append, **kw)
    return session, seen


def test_identical_calls_are_answered_from_the_cache() -> None:
    session, seen = _session(Limits(max_tool_calls=2))
    first = session.call("get_metric", {"metric": "error_rate", "window_minutes": 10})
    again = session.call("get_metric", {"window_minutes": 10, "metric": "error_rate"})
    assert first.ok and again is first
    assert session.tool_calls == 1 and seen == [first]
    # a different question is a new call, and the bound counts only real calls
    other = session.call("get_metric", {"metric": "latency_p99", "window_minutes": 10})
    assert other.call_id != first.call_id and session.tool_calls == 2
    assert session.call("get_metric", {"metric": "error_rate", "window_minutes": 10}) is first
    with pytest.raises(BudgetExceeded) as err:
        session.call("get_deployment_status")
    assert err.value.bound == "max_tool_calls" and err.value.limit == 2
    assert len(seen) == 2


def test_wall_time_bound_uses_the_injected_monotonic_clock() -> None:
    ticks = itertools.count(0.0, 50.0)  # every reading is 50 s after the one before
    session, seen = _session(Limits(max_wall_seconds=120.0), monotonic=lambda: next(ticks))
    assert session.call("get_deployment_status").ok  # 50 s in
    assert session.call("get_model_versions").ok  # 100 s in
    with pytest.raises(BudgetExceeded) as err:
        session.call("get_change_timeline")  # 150 s in
    assert err.value.bound == "max_wall_seconds"
    assert [r.tool for r in seen] == ["get_deployment_status", "get_model_versions"]


def test_session_clock_is_the_sim_clock() -> None:
    session, _ = _session(Limits())
    result = session.call("get_deployment_status")
    assert isinstance(session.tool_ctx.clock, SimClock)
    assert result.observed_at == session.tool_ctx.clock.now()
