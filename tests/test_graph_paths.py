"""Every path through the incident graph, on small sim worlds: allow, deny, approval granted,
denied, refused, timed out, resumed by a new process; one thread per incident; deduplication.

Each path ends with the audit log verifying.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from simworld import MODEL, OWNER, AfterWrite, Rig, deploy, fault, make_rig, write_policy

from supervisor import SupervisorError
from supervisor.domain import AuditKind, IncidentStatus, Signal, SignalKind, Symptom
from tools import WriteBackends

APPROVAL_TIMEOUT = timedelta(minutes=120)  # retrain-needs-approval-in-production


def order(rig: Rig, incident_id: str, *kinds: str) -> list[int]:
    """Positions of the first record of each kind in the incident's trail (must all exist)."""
    trail = rig.kinds(incident_id)
    return [trail.index(k) for k in kinds]


def awaiting_retrain(tmp_path: Path) -> tuple[Rig, str]:
    """A covariate-drift incident paused for approval of a retrain."""
    rig = make_rig(tmp_path, faults=[fault("covariate_drift")])
    inc = rig.first_incident()
    assert rig.incident(inc.id).status is IncidentStatus.AWAITING_APPROVAL
    return rig, inc.id


def answer_later(rig: Rig) -> None:
    """A person answers after a while; by then the labels of the drifted rows have arrived, so
    the retrain window (which holds labelled rows only) is the drifted world, not the old one."""
    rig.world.advance(timedelta(minutes=30))


def nothing_executed(rig: Rig, incident_id: str) -> None:
    assert rig.world_writes() == {}
    assert rig.records(AuditKind.ACTION_INTENT, incident_id) == []
    assert [o["action"] for o in rig.outcomes(incident_id)] in ([], ["escalate"])


# ------------------------------------------------------------------ guard: allow and deny


def test_allow_path_aborts_the_canary_and_verifies(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, deploys=[deploy("bad")])
    try:
        inc = rig.first_incident()
        decision = rig.decision(inc.id)
        assert decision["verdict"] == "allow" and decision["rule_ids"] == ["allow-revert"]
        [outcome] = rig.outcomes(inc.id)
        assert (outcome["action"], outcome["outcome"]["status"]) == ("abort_canary", "succeeded")
        assert rig.world.action_counts()["abort_canary"] == 1
        [verification] = rig.records(AuditKind.VERIFICATION, inc.id)
        assert verification.data["passed"] is True
        assert {c["check"] for c in verification.data["checks"]} == {
            "canary removed",
            "error rate back under threshold",
        }
        # the guard decided before the executor acted; verify came after the settle time
        a, b, c, d = order(rig, inc.id, "decision", "action_intent", "action_outcome", "report")
        assert a < b < c < d
        acted = rig.records(AuditKind.ACTION_OUTCOME, inc.id)[0].ts
        assert verification.ts - acted >= timedelta(seconds=600)  # verify_settle_seconds
        assert rig.incident(inc.id).status is IncidentStatus.MITIGATED
        assert rig.sup.state(inc.id)["status"] == "mitigated"
        assert (rig.state_dir / "reports" / f"{inc.id}.md").exists()
        assert rig.verified()
    finally:
        rig.close()


def test_deny_path_executes_nothing_and_escalates_naming_the_rule(tmp_path: Path) -> None:
    policy = write_policy(
        tmp_path / "policy.yaml",
        [
            {"id": "allow-revert", "description": "reverts are safe", "effect": "allow",
             "match": {"actions": ["abort_canary", "rollback"]}},
            {"id": "no-aborts-in-this-test", "description": "aborts are frozen", "effect": "deny",
             "match": {"actions": ["abort_canary"]}},
        ],
    )  # fmt: skip
    rig = make_rig(tmp_path, deploys=[deploy("bad")], policy_file=policy)
    try:
        inc = rig.first_incident()
        assert rig.plan(inc.id)["action"] == "abort_canary"
        decision = rig.decision(inc.id)
        assert decision["verdict"] == "deny"
        assert decision["rule_ids"][0] == "no-aborts-in-this-test"
        assert "allow-revert" in decision["rule_ids"]  # overridden, and said so
        nothing_executed(rig, inc.id)
        assert rig.outcomes(inc.id) == []
        status = rig.world.status(MODEL)
        assert status is not None and status.canary_version == "3"
        [esc] = rig.records(AuditKind.ESCALATION, inc.id)
        assert esc.data["owner"] == OWNER
        assert "no-aborts-in-this-test" in esc.data["reason"]
        assert [p["owner"] for p in rig.world.pages] == [OWNER]
        assert rig.incident(inc.id).status is IncidentStatus.ESCALATED
        assert rig.verified()
    finally:
        rig.close()


# ------------------------------------------------------------------ approvals


def test_approval_granted_runs_the_retrain(tmp_path: Path) -> None:
    rig, inc_id = awaiting_retrain(tmp_path)
    try:
        [pending] = rig.sup.pending_approvals()
        assert (pending.incident_id, pending.action) == (inc_id, "retrain")
        assert pending.approvers == ["alice", "bob"]
        decided = rig.decision(inc_id)
        assert decided["rule_ids"][0] == "retrain-needs-approval-in-production"
        assert pending.deadline == rig.world.now + APPROVAL_TIMEOUT
        assert rig.records(AuditKind.APPROVAL_REQUESTED, inc_id)
        nothing_executed(rig, inc_id)  # nothing before the approval

        rig.world.advance(timedelta(minutes=20))
        state = rig.sup.approve(inc_id, "alice", "looks right")
        assert state["approval"]["decision"] == "approved" and state["approval"]["by"] == "alice"
        [approval] = rig.records(AuditKind.APPROVAL, inc_id)
        assert approval.actor == "alice"
        assert rig.world.action_counts()["retrain"] == 1
        assert rig.world.action_counts()["canary_started"] == 1
        [outcome] = rig.outcomes(inc_id)
        assert (outcome["action"], outcome["outcome"]["status"]) == ("retrain", "succeeded")
        a, b, c = order(rig, inc_id, "approval", "action_intent", "action_outcome")
        assert a < b < c
        assert rig.incident(inc_id).status is IncidentStatus.MITIGATED
        assert rig.sup.pending_approvals() == []
        assert rig.verified()
    finally:
        rig.close()


def test_an_approved_incident_reads_acting_while_its_action_runs(tmp_path: Path) -> None:
    # What the API and Slack show mid-run: an approval resumes into the action, not back
    # into investigating.
    seen: list[IncidentStatus] = []
    rigs: list[Rig] = []

    def watched(write: WriteBackends) -> WriteBackends:
        def note(_: str) -> None:
            seen.extend(i.status for i in rigs[0].sup.incidents.all())

        train = AfterWrite(write.train, note)
        return WriteBackends(write.registry, write.deploy, train, write.notifier)  # type: ignore[arg-type]

    rig = make_rig(tmp_path, faults=[fault("covariate_drift")], wrap_write=watched)
    rigs.append(rig)
    try:
        inc = rig.first_incident()
        assert rig.incident(inc.id).status is IncidentStatus.AWAITING_APPROVAL and seen == []
        # A person answers after a while; by then the labels of the drifted rows have arrived, so
        # the retrain window (which holds labelled rows only) is the drifted world, not the old one.
        rig.world.advance(timedelta(minutes=30))
        rig.sup.approve(inc.id, "alice")
        assert seen and set(seen) == {IncidentStatus.ACTING}
        assert rig.incident(inc.id).status is IncidentStatus.MITIGATED
    finally:
        rig.close()


def test_approval_denied_executes_nothing(tmp_path: Path) -> None:
    rig, inc_id = awaiting_retrain(tmp_path)
    try:
        state = rig.sup.deny(inc_id, "bob", "not during the sale")
        assert state["approval"]["decision"] == "denied"
        nothing_executed(rig, inc_id)
        assert rig.incident(inc_id).status is IncidentStatus.ESCALATED
        [esc] = rig.records(AuditKind.ESCALATION, inc_id)
        assert "denied" in esc.data["reason"]
        assert rig.sup.pending_approvals() == []
        # an answered incident cannot be answered again
        with pytest.raises(SupervisorError, match="nothing to approve or deny"):
            rig.sup.approve(inc_id, "alice")
        nothing_executed(rig, inc_id)
        assert rig.verified()
    finally:
        rig.close()


def test_approval_by_a_non_approver_is_refused_and_audited(tmp_path: Path) -> None:
    rig, inc_id = awaiting_retrain(tmp_path)
    try:
        with pytest.raises(SupervisorError, match="'mallory' may not approve"):
            rig.sup.approve(inc_id, "mallory")
        [refused] = rig.records(AuditKind.APPROVAL, inc_id)
        assert refused.actor == "mallory" and refused.data["refused"] is True
        assert refused.data["approvers"] == ["alice", "bob"]
        # the graph is still paused at the approval, nothing ran
        snap = rig.sup.graph.get_state({"configurable": {"thread_id": inc_id}})
        assert snap.next == ("await_approval",)
        assert rig.incident(inc_id).status is IncidentStatus.AWAITING_APPROVAL
        assert [p.incident_id for p in rig.sup.pending_approvals()] == [inc_id]
        nothing_executed(rig, inc_id)
        assert rig.verified()
        # a real approver can still answer
        answer_later(rig)
        rig.sup.approve(inc_id, "bob")
        assert rig.world.action_counts()["retrain"] == 1
        assert rig.incident(inc_id).status is IncidentStatus.MITIGATED
        assert rig.verified()
    finally:
        rig.close()


@pytest.mark.parametrize("how", ["expire_approvals", "tick"])
def test_approval_timeout_is_a_deny(how: str, tmp_path: Path) -> None:
    rig, inc_id = awaiting_retrain(tmp_path)
    try:
        rig.world.advance(APPROVAL_TIMEOUT)  # exactly at the deadline: still open
        assert rig.sup.expire_approvals() == []
        rig.world.advance(timedelta(minutes=1))
        if how == "tick":
            rig.sup.tick()
        else:
            assert rig.sup.expire_approvals() == [inc_id]
        [answer] = rig.records(AuditKind.APPROVAL, inc_id)
        assert answer.data["approval"]["decision"] == "timed_out"
        assert answer.actor == "timeout"
        nothing_executed(rig, inc_id)
        assert rig.incident(inc_id).status is IncidentStatus.ESCALATED
        assert rig.sup.pending_approvals() == []
        assert len(rig.incidents()) == 1
        assert rig.verified()
    finally:
        rig.close()


def test_a_late_approval_counts_as_timed_out(tmp_path: Path) -> None:
    rig, inc_id = awaiting_retrain(tmp_path)
    try:
        rig.world.advance(APPROVAL_TIMEOUT + timedelta(minutes=5))
        state = rig.sup.approve(inc_id, "alice")  # nobody ran expire_approvals in between
        assert state["approval"]["decision"] == "timed_out"
        assert "after the deadline" in state["approval"]["comment"]
        nothing_executed(rig, inc_id)
        assert rig.incident(inc_id).status is IncidentStatus.ESCALATED
        assert rig.verified()
    finally:
        rig.close()


def test_paused_incident_resumes_in_a_new_supervisor(tmp_path: Path) -> None:
    rig, inc_id = awaiting_retrain(tmp_path)
    investigated = len(rig.records(AuditKind.TOOL_CALL, inc_id))
    rig = rig.reopen()  # a new process on the same state directory and world
    try:
        [pending] = rig.sup.pending_approvals()
        assert (pending.incident_id, pending.action) == (inc_id, "retrain")
        assert rig.sup.resume_unfinished() == []  # paused at an approval: not resumed by itself
        answer_later(rig)
        rig.sup.approve(inc_id, "alice")
        assert rig.incident(inc_id).status is IncidentStatus.MITIGATED
        assert rig.world.action_counts()["retrain"] == 1
        # resumed where it paused: the investigation was not run again
        investigate = [
            r for r in rig.records(AuditKind.TOOL_CALL, inc_id) if r.actor == "investigate"
        ]
        assert len(investigate) == investigated
        # one diagnosis per investigation: the first, and one per label re-check before it
        passes = 1 + len(rig.records(AuditKind.RECHECK_DUE, inc_id))
        assert len(rig.records(AuditKind.DIAGNOSIS, inc_id)) == passes
        assert len(rig.records(AuditKind.APPROVAL_REQUESTED, inc_id)) == 1
        assert rig.verified()
    finally:
        rig.close()


# ------------------------------------------------------------------ threads and dedup


def _signal(rig: Rig, n: int, symptom: Symptom, **kw: object) -> Signal:
    return Signal(
        id=f"sig-test-{n}",
        kind=SignalKind.ALERT,
        source="alertmanager",
        model=MODEL,
        symptom=symptom,
        observed_at=rig.world.now,
        **kw,  # type: ignore[arg-type]
    )


def test_one_thread_per_incident(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.sup.incidents.cooldown = timedelta(0)  # b must not fold into a, which may have ended
    try:
        rig.world.advance(timedelta(minutes=30))
        a = rig.sup.handle(_signal(rig, 1, Symptom.HIGH_ERROR_RATE))
        b = rig.sup.handle(_signal(rig, 2, Symptom.DATA_DRIFT))
        assert a is not None and b is not None and a.id != b.id
        for inc in (a, b):
            state = rig.sup.state(inc.id)
            assert state["incident"]["id"] == inc.id
            assert state["status"] == rig.incident(inc.id).status.value
        db = sqlite3.connect(rig.state_dir / "checkpoints.sqlite")
        try:
            threads = {t for (t,) in db.execute("SELECT DISTINCT thread_id FROM checkpoints")}
        finally:
            db.close()
        assert threads == {a.id, b.id}
        # each incident's steps share its own trace
        traces = {
            inc.id: {r.trace_id for r in rig.records(AuditKind.DIAGNOSIS, inc.id)}
            | {r.trace_id for r in rig.records(AuditKind.REPORT, inc.id)}
            for inc in (a, b)
        }
        assert all(len(t) == 1 for t in traces.values())
        assert traces[a.id] != traces[b.id]
        assert rig.verified()
    finally:
        rig.close()


def test_repeat_signals_never_open_a_second_incident(tmp_path: Path) -> None:
    rig, inc_id = awaiting_retrain(tmp_path)
    try:
        symptom_of = rig.incident(inc_id).symptom  # data_drift or quality_drop, whichever fired
        other = Symptom.HIGH_LATENCY
        first = rig.sup.handle(_signal(rig, 1, symptom_of, fingerprint="fp-1"))
        assert first is not None and first.id == inc_id
        # same fingerprint, another symptom; same groupKey; plain repeat of model+symptom
        for n, kw in enumerate(
            [
                {"symptom": other, "fingerprint": "fp-1"},
                {"symptom": symptom_of, "group_key": "gk-1"},
                {"symptom": symptom_of, "group_key": "gk-1"},
                {"symptom": symptom_of},
            ],
            start=2,
        ):
            symptom = kw.pop("symptom")
            got = rig.sup.handle(_signal(rig, n, symptom, **kw))  # type: ignore[arg-type]
            assert got is not None and got.id == inc_id
        # the scheduled checks keep seeing the drift, but the model is busy
        for _ in range(6):
            rig.world.advance(timedelta(minutes=5))
            rig.sup.tick()
        assert [i.id for i in rig.incidents()] == [inc_id]
        assert len(rig.records(AuditKind.INCIDENT_OPENED)) == 1
        folded = [r.data["disposition"] for r in rig.records(AuditKind.SIGNAL, inc_id)]
        assert folded.count("folded into open incident") == 5
        inc = rig.incident(inc_id)
        assert inc.fingerprints == ["fp-1"] and inc.group_keys == ["gk-1"]
        assert len(inc.signal_ids) == 6

        resolved = rig.sup.handle(_signal(rig, 9, symptom_of, status="resolved"))
        assert resolved is not None and resolved.id == inc_id
        assert rig.incident(inc_id).resolved_at == rig.world.now
        last = rig.records(AuditKind.SIGNAL, inc_id)[-1]
        assert last.data["disposition"] == "resolved notification recorded"
        assert len(rig.incidents()) == 1
        # a repeat never started a second graph run: one investigation (plus one per label
        # re-check it waited for before it paused), still paused
        passes = 1 + len(rig.records(AuditKind.RECHECK_DUE, inc_id))
        assert len(rig.records(AuditKind.DIAGNOSIS, inc_id)) == passes
        assert rig.incident(inc_id).status is IncidentStatus.AWAITING_APPROVAL
        assert rig.verified()
    finally:
        rig.close()


def test_signals_that_open_nothing_are_still_recorded(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    try:
        resolved = _signal(rig, 1, Symptom.HIGH_ERROR_RATE, status="resolved")
        assert rig.sup.handle(resolved) is None
        stranger = _signal(rig, 2, Symptom.HIGH_ERROR_RATE).model_copy(update={"model": "other"})
        assert rig.sup.handle(stranger) is None
        assert rig.incidents() == []
        dispositions = [r.data["disposition"] for r in rig.records(AuditKind.SIGNAL)]
        assert dispositions == [
            "ignored: resolved with no open incident",
            "ignored: model not in the watch config",
        ]
        assert rig.verified()
    finally:
        rig.close()


def test_same_symptom_after_an_ended_incident_is_suppressed_within_the_cooldown(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    try:
        rig.world.advance(timedelta(minutes=30))
        first = rig.sup.handle(_signal(rig, 1, Symptom.HIGH_ERROR_RATE))
        assert first is not None
        assert rig.incident(first.id).status in (IncidentStatus.ESCALATED, IncidentStatus.CLOSED)
        rig.world.advance(timedelta(minutes=30))
        again = rig.sup.handle(_signal(rig, 2, Symptom.HIGH_ERROR_RATE))
        assert again is not None and again.id == first.id
        assert (
            rig.records(AuditKind.SIGNAL, first.id)[-1].data["disposition"].startswith("suppressed")
        )
        assert len(rig.incidents()) == 1
        rig.world.advance(timedelta(hours=3))
        later = rig.sup.handle(_signal(rig, 3, Symptom.HIGH_ERROR_RATE))
        assert later is not None and later.id != first.id
        assert rig.verified()
    finally:
        rig.close()


def test_cooldown_is_measured_from_the_end_of_the_last_incident(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    try:
        rig.world.advance(timedelta(minutes=30))
        first = rig.sup.handle(_signal(rig, 1, Symptom.HIGH_ERROR_RATE))
        assert first is not None
        ended_at = rig.incident(first.id).updated_at
        for n in range(2, 9):  # the symptom persists: a signal every 30 minutes for 3.5 h
            rig.world.advance(timedelta(minutes=30))
            rig.sup.handle(_signal(rig, n, Symptom.HIGH_ERROR_RATE))
        assert rig.world.now - ended_at > timedelta(hours=3)
        assert len(rig.incidents()) == 2
    finally:
        rig.close()
