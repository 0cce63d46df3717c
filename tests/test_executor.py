"""The executor: invariant 1 (no action without a decision on record), exactly-once actions
(idempotency keys), and reconciliation after a crash between intent and outcome, on the sim world.

A "crash after the call" is staged by recording the intent as the executor would and applying
the backend change directly on the world, as if the process died right after the call; a
"crash before the call" records the intent only. One variant kills a real child process with
SIGKILL between intent and outcome and reconciles in this one.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from simworld import MODEL, REPO, AfterWrite, deploy, exit_after, make_rig, world_spec

from supervisor import PolicyViolation, SimClock
from supervisor._recorder import Recorder
from supervisor.audit import AuditLog, verify
from supervisor.cli import main as cli_main
from supervisor.demo import load_world, save_world, sim_backends
from supervisor.domain import (
    ActionPlan,
    ActionTarget,
    ActionType,
    Approval,
    AuditKind,
    Diagnosis,
    Evidence,
    Incident,
    IncidentStatus,
    OutcomeStatus,
    PolicyDecision,
    RootCause,
    Symptom,
    TimeWindow,
    Verdict,
)
from supervisor.executor import Executor
from supervisor.telemetry import TelemetryConfig, Tracing, setup_tracing
from tools import WriteBackends
from tools.sim import SimWorld, build_world

A = ActionType


@dataclass
class Bench:
    """An executor over a sim world, with its own audit log."""

    world: SimWorld
    audit: AuditLog
    recorder: Recorder
    executor: Executor
    tracing: Tracing
    incident: Incident

    def close(self) -> None:
        self.audit.close()
        self.tracing.shutdown()


def new_world() -> SimWorld:
    """Stable version 2, canary version 3 at 20% since the start; 70 minutes of history."""
    world = build_world(world_spec(deploys=[deploy("good", at=0)]))
    world.advance(timedelta(minutes=70))
    return world


def open_bench(world: SimWorld, state_dir: Path) -> Bench:
    state_dir.mkdir(parents=True, exist_ok=True)
    tracing = setup_tracing(TelemetryConfig())
    audit = AuditLog(state_dir / "audit.jsonl", world.clock)
    recorder = Recorder(audit, tracing.tracer)
    read, write = sim_backends(world)
    incident = Incident(
        id="inc-0001-m",
        model=MODEL,
        environment="production",
        symptom=Symptom.CANARY_ANALYSIS,
        opened_at=world.now,
        updated_at=world.now,
    )
    return Bench(
        world, audit, recorder, Executor(read, write, recorder, world.clock), tracing, incident
    )


@pytest.fixture
def bench(tmp_path: Path) -> Any:
    b = open_bench(new_world(), tmp_path / "state")
    yield b
    b.close()


def plan_for(action: ActionType) -> ActionPlan:
    version = {A.ABORT_CANARY: "3", A.PROMOTE_CANARY: "3", A.ROLLBACK: "1"}.get(action)
    params: dict[str, Any] = {}
    if action is A.SET_CANARY_WEIGHT:
        version, params = "3", {"weight": 50}
    if action is A.RETRAIN:
        params = {"window_hours": 1, "min_accuracy": 0.0, "canary_weight": 10}
    return ActionPlan(
        action=action,
        target=ActionTarget(model=MODEL, environment="production", version=version),
        parameters=params,
        expected_effect=f"{action.value} done",
        undo="by hand",
    )


DIAGNOSIS = Diagnosis(
    root_cause=RootCause.BAD_MODEL_VERSION,
    confidence=0.9,
    summary="test diagnosis",
    evidence=[Evidence(call_id="inc-0001-m:t1", tool="compare_canary", finding="canary worse")],
)


def record_decision(
    b: Bench, plan: ActionPlan, verdict: Verdict = Verdict.ALLOW, **kw: Any
) -> None:
    decision = PolicyDecision(
        verdict=verdict,
        action=plan.action,
        rule_ids=["test-rule"],
        approvers=["alice"] if verdict is Verdict.REQUIRE_APPROVAL else [],
        decided_at=b.world.now,
        **kw,
    )
    b.recorder.record(
        AuditKind.DECISION,
        incident_id=b.incident.id,
        actor="guard",
        data={
            "idempotency_key": plan.idempotency_key(b.incident.id),
            "decision": decision.model_dump(mode="json"),
        },
    )


def record_intent(b: Bench, plan: ActionPlan) -> None:
    """What the executor records right before it calls the backend."""
    b.recorder.record(
        AuditKind.ACTION_INTENT,
        incident_id=b.incident.id,
        actor="executor",
        data={
            "idempotency_key": plan.idempotency_key(b.incident.id),
            "action": plan.action.value,
            "target": plan.target.model_dump(),
            "parameters": plan.parameters,
            "attempt": 1,
        },
    )


def execute(b: Bench, plan: ActionPlan) -> Any:
    return b.executor.execute(b.incident, plan, DIAGNOSIS)


def kinds_after(b: Bench, n: int) -> list[str]:
    return [r.kind.value for r in b.audit.records(b.incident.id)[n:]]


#: Per action: the world counters it moves, and how to apply it by hand (the "call" that
#: happened before the crash).
COUNTERS: dict[ActionType, set[str]] = {
    A.ABORT_CANARY: {"abort_canary"},
    A.PROMOTE_CANARY: {"promote_canary", "set_alias"},
    A.ROLLBACK: {"rollback", "set_alias"},
    A.SET_CANARY_WEIGHT: {"set_canary_weight"},
    A.RETRAIN: {"retrain", "canary_started"},
}


def apply_by_hand(world: SimWorld, plan: ActionPlan, key: str) -> None:
    a = plan.action
    if a is A.ABORT_CANARY:
        world.abort_canary(MODEL, expected_version="3")
    elif a is A.PROMOTE_CANARY:
        world.promote_canary(MODEL, expected_version="3")
        world.set_alias(MODEL, "champion", "3", expected="2")
    elif a is A.ROLLBACK:
        world.serve_version(MODEL, "1", expected_version="2")
        world.set_alias(MODEL, "champion", "1", expected="2")
    elif a is A.SET_CANARY_WEIGHT:
        world.set_canary_weight(MODEL, 50, expected_version="3")
    elif a is A.RETRAIN:
        run = retrain_by_hand(world, key)
        world.serve_version(MODEL, run.version, expected_version="2", canary_weight=10)


def retrain_by_hand(world: SimWorld, key: str) -> Any:
    window = TimeWindow(start=world.now - timedelta(hours=1), end=world.now)
    return world.retrain(MODEL, window=window, exclude=[], idempotency_key=key, min_accuracy=0.0)


def writes(world: SimWorld) -> dict[str, int]:
    return {k: v for k, v in world.action_counts().items() if v}


ACTIONS = list(COUNTERS)


# ------------------------------------------------------------------ idempotency


@pytest.mark.parametrize("action", ACTIONS, ids=[a.value for a in ACTIONS])
def test_same_plan_twice_changes_the_world_once(action: ActionType, bench: Bench) -> None:
    plan = plan_for(action)
    record_decision(bench, plan)
    first = execute(bench, plan)
    assert first.status is OutcomeStatus.SUCCEEDED, first.detail
    once = writes(bench.world)
    assert set(once) == COUNTERS[action] and set(once.values()) == {1}
    second = execute(bench, plan)
    assert second.status is OutcomeStatus.SKIPPED_DUPLICATE
    assert second.idempotency_key == first.idempotency_key
    assert writes(bench.world) == once
    assert len(bench.audit.find(AuditKind.ACTION_INTENT)) == 1
    assert verify(bench.audit.path).ok


def test_a_restarted_executor_does_not_repeat_a_finished_action(tmp_path: Path) -> None:
    world = new_world()
    b = open_bench(world, tmp_path / "state")
    plan = plan_for(A.ABORT_CANARY)
    record_decision(b, plan)
    assert execute(b, plan).status is OutcomeStatus.SUCCEEDED
    b.close()
    b = open_bench(world, tmp_path / "state")  # a new process reading the same audit log
    try:
        assert execute(b, plan).status is OutcomeStatus.SKIPPED_DUPLICATE
        assert world.action_counts()["abort_canary"] == 1
    finally:
        b.close()


def test_idempotency_key_names_incident_action_target_and_intended_state() -> None:
    plan = plan_for(A.SET_CANARY_WEIGHT)
    key = plan.idempotency_key("inc-1")
    assert plan.model_copy().idempotency_key("inc-1") == key
    assert plan.idempotency_key("inc-2") != key
    assert plan.model_copy(update={"parameters": {"weight": 60}}).idempotency_key("inc-1") != key
    other_target = plan.target.model_copy(update={"version": "4"})
    assert plan.model_copy(update={"target": other_target}).idempotency_key("inc-1") != key
    # wording does not change what the action does, so not its key
    assert plan.model_copy(update={"rationale": "new words"}).idempotency_key("inc-1") == key


# ------------------------------------------------------------------ invariant 1


def test_no_decision_on_record_raises(bench: Bench) -> None:
    plan = plan_for(A.ABORT_CANARY)
    with pytest.raises(PolicyViolation, match="no guard decision"):
        execute(bench, plan)
    # a decision for another plan (another intended state) does not count
    record_decision(bench, plan_for(A.PROMOTE_CANARY))
    with pytest.raises(PolicyViolation, match="no guard decision"):
        execute(bench, plan)
    assert writes(bench.world) == {}
    assert bench.audit.find(AuditKind.ACTION_INTENT) == []


def test_deny_decision_raises(bench: Bench) -> None:
    plan = plan_for(A.ROLLBACK)
    record_decision(bench, plan, Verdict.DENY)
    with pytest.raises(PolicyViolation, match="denied"):
        execute(bench, plan)
    assert writes(bench.world) == {}
    assert bench.audit.find(AuditKind.ACTION_INTENT) == []


def _approval(b: Bench, plan: ActionPlan, decision: str, by: str = "alice") -> None:
    answer = Approval.model_validate({"decision": decision, "by": by, "at": b.world.now})
    b.recorder.record(
        AuditKind.APPROVAL,
        incident_id=b.incident.id,
        actor=by,
        data={
            "idempotency_key": plan.idempotency_key(b.incident.id),
            "approval": answer.model_dump(mode="json"),
        },
    )


@pytest.mark.parametrize("answer", [None, "denied", "timed_out"])
def test_require_approval_without_an_approval_raises(answer: str | None, bench: Bench) -> None:
    plan = plan_for(A.RETRAIN)
    record_decision(bench, plan, Verdict.REQUIRE_APPROVAL)
    if answer is not None:
        _approval(bench, plan, answer)
    with pytest.raises(PolicyViolation, match="requires an approval"):
        execute(bench, plan)
    assert writes(bench.world) == {}
    assert bench.audit.find(AuditKind.ACTION_INTENT) == []


def test_require_approval_with_an_approval_runs(bench: Bench) -> None:
    plan = plan_for(A.SET_CANARY_WEIGHT)
    record_decision(bench, plan, Verdict.REQUIRE_APPROVAL)
    _approval(bench, plan, "approved")
    assert execute(bench, plan).status is OutcomeStatus.SUCCEEDED
    assert bench.world.status(MODEL).canary_weight == 50  # type: ignore[union-attr]


def test_the_latest_decision_counts(bench: Bench) -> None:
    plan = plan_for(A.ABORT_CANARY)
    record_decision(bench, plan, Verdict.ALLOW)
    record_decision(bench, plan, Verdict.DENY)
    with pytest.raises(PolicyViolation):
        execute(bench, plan)
    assert writes(bench.world) == {}


def test_dry_run_records_but_does_not_act(bench: Bench) -> None:
    plan = plan_for(A.ABORT_CANARY)
    record_decision(bench, plan, dry_run=True)
    outcome = execute(bench, plan)
    assert outcome.status is OutcomeStatus.DRY_RUN
    assert writes(bench.world) == {}
    assert bench.audit.find(AuditKind.ACTION_INTENT) == []


def test_a_failing_backend_call_is_a_failed_outcome_with_the_world_unchanged(
    bench: Bench,
) -> None:
    plan = plan_for(A.PROMOTE_CANARY).model_copy(
        update={"target": ActionTarget(model=MODEL, environment="production", version="9")}
    )
    record_decision(bench, plan)
    outcome = execute(bench, plan)
    assert outcome.status is OutcomeStatus.FAILED
    assert "changed under us" in outcome.detail or "not in the registry" in outcome.detail
    assert writes(bench.world) == {}


# ------------------------------------------------------------------ crash and reconcile


@pytest.mark.parametrize("action", ACTIONS, ids=[a.value for a in ACTIONS])
def test_crash_after_the_call_is_reconciled_not_repeated(action: ActionType, bench: Bench) -> None:
    plan = plan_for(action)
    key = plan.idempotency_key(bench.incident.id)
    record_decision(bench, plan)
    record_intent(bench, plan)
    apply_by_hand(bench.world, plan, key)  # ... and the process died here
    applied = writes(bench.world)
    assert set(applied) == COUNTERS[action]
    n = len(bench.audit.records(bench.incident.id))

    outcome = execute(bench, plan)
    assert outcome.status is OutcomeStatus.RECONCILED, outcome.detail
    assert writes(bench.world) == applied  # not applied twice
    assert kinds_after(bench, n) == ["action_interrupted", "reconciliation", "action_outcome"]
    [rec] = bench.audit.find(AuditKind.RECONCILIATION)
    assert rec.data["applied"] is True and rec.data["idempotency_key"] == key
    [out] = bench.audit.find(AuditKind.ACTION_OUTCOME)
    assert out.data["outcome"]["status"] == "reconciled"
    # and once reconciled, it is a duplicate like any finished action
    assert execute(bench, plan).status is OutcomeStatus.SKIPPED_DUPLICATE
    assert writes(bench.world) == applied
    assert verify(bench.audit.path).ok


@pytest.mark.parametrize("action", ACTIONS, ids=[a.value for a in ACTIONS])
def test_crash_before_the_call_executes_once(action: ActionType, bench: Bench) -> None:
    plan = plan_for(action)
    record_decision(bench, plan)
    record_intent(bench, plan)  # ... and the process died before calling the backend
    n = len(bench.audit.records(bench.incident.id))

    outcome = execute(bench, plan)
    assert outcome.status is OutcomeStatus.SUCCEEDED, outcome.detail
    assert set(writes(bench.world)) == COUNTERS[action]
    assert set(writes(bench.world).values()) == {1}
    assert kinds_after(bench, n) == [
        "action_interrupted",
        "reconciliation",
        "action_intent",
        "action_outcome",
    ]
    [rec] = bench.audit.find(AuditKind.RECONCILIATION)
    assert rec.data["applied"] is False
    assert bench.audit.find(AuditKind.ACTION_INTENT)[-1].data["attempt"] == 2
    assert verify(bench.audit.path).ok


def test_crash_between_promote_and_alias_move_finishes_without_repeating(bench: Bench) -> None:
    plan = plan_for(A.PROMOTE_CANARY)
    record_decision(bench, plan)
    record_intent(bench, plan)
    bench.world.promote_canary(MODEL, expected_version="3")  # died before moving the alias
    outcome = execute(bench, plan)
    assert outcome.status is OutcomeStatus.SUCCEEDED
    assert writes(bench.world) == {"promote_canary": 1, "set_alias": 1}
    champion = [v.version for v in bench.world.versions(MODEL) if "champion" in v.aliases]
    assert champion == ["3"]


def test_crash_after_training_finds_the_run_instead_of_training_again(bench: Bench) -> None:
    plan = plan_for(A.RETRAIN)
    key = plan.idempotency_key(bench.incident.id)
    record_decision(bench, plan)
    record_intent(bench, plan)
    run = retrain_by_hand(bench.world, key)  # trained and registered, died before the canary
    outcome = execute(bench, plan)
    assert outcome.status is OutcomeStatus.SUCCEEDED
    assert outcome.state["retrain"]["run_id"] == run.run_id
    assert writes(bench.world) == {"retrain": 1, "canary_started": 1}
    assert bench.world.status(MODEL).canary_version == run.version  # type: ignore[union-attr]


# ------------------------------------------------------------------ crash inside the graph


def _dying(write: WriteBackends) -> WriteBackends:
    return WriteBackends(
        registry=write.registry,
        deploy=AfterWrite(write.deploy, exit_after("killed")),  # type: ignore[arg-type]
        train=write.train,
        notifier=write.notifier,
    )


def test_graph_stopped_mid_action_resumes_and_reconciles(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, deploys=[deploy("bad")], wrap_write=_dying)
    with pytest.raises(SystemExit, match="killed after abort_canary"):
        rig.tick_until(lambda r: False, bound=timedelta(hours=2))
    [inc] = rig.incidents()
    assert rig.world.action_counts()["abort_canary"] == 1
    assert rig.records(AuditKind.ACTION_INTENT, inc.id)
    assert rig.outcomes(inc.id) == []
    rig = rig.reopen()  # restart with healthy backends
    try:
        assert rig.sup.resume_unfinished() == [inc.id]
        assert rig.world.action_counts()["abort_canary"] == 1
        [outcome] = rig.outcomes(inc.id)
        assert outcome["outcome"]["status"] == "reconciled"
        assert "action_interrupted" in rig.kinds(inc.id)
        assert rig.incident(inc.id).status is IncidentStatus.MITIGATED
        assert rig.verified()
    finally:
        rig.close()


# ------------------------------------------------------------------ a real SIGKILL


CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path

    from supervisor._recorder import Recorder
    from supervisor.audit import AuditLog
    from supervisor.demo import load_world, save_world, sim_backends
    from supervisor.domain import ActionPlan, Diagnosis, Incident
    from supervisor.executor import Executor
    from supervisor.telemetry import TelemetryConfig, setup_tracing
    from tools import WriteBackends

    state, when = Path(sys.argv[1]), sys.argv[2]
    job = json.loads((state / "job.json").read_text())
    world = load_world(state)


    class Dying:
        # The write port dies with SIGKILL before or after the real call, world saved first.
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            real = getattr(self._inner, name)

            def call(*args, **kwargs):
                if when == "after":
                    real(*args, **kwargs)
                save_world(world, state)
                os.kill(os.getpid(), signal.SIGKILL)

            return call


    read, write = sim_backends(world)
    write = WriteBackends(
        registry=write.registry, deploy=Dying(write.deploy), train=write.train,
        notifier=write.notifier,
    )
    tracing = setup_tracing(TelemetryConfig())
    audit = AuditLog(state / "audit.jsonl", world.clock)
    executor = Executor(read, write, Recorder(audit, tracing.tracer), world.clock)
    executor.execute(
        Incident.model_validate(job["incident"]),
        ActionPlan.model_validate(job["plan"]),
        Diagnosis.model_validate(job["diagnosis"]),
    )
    sys.exit(3)  # not reached: the call above kills the process
    """
)


@pytest.mark.parametrize(
    ("action", "when", "expected"),
    [
        (A.ABORT_CANARY, "after", OutcomeStatus.RECONCILED),
        (A.PROMOTE_CANARY, "before", OutcomeStatus.SUCCEEDED),
    ],
)
def test_sigkill_between_intent_and_outcome(
    action: ActionType, when: str, expected: OutcomeStatus, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    world = new_world()
    b = open_bench(world, state)
    plan = plan_for(action)
    record_decision(b, plan)
    b.close()
    save_world(world, state)
    job = {
        "incident": b.incident.model_dump(mode="json"),
        "plan": plan.model_dump(mode="json"),
        "diagnosis": DIAGNOSIS.model_dump(mode="json"),
    }
    (state / "job.json").write_text(json.dumps(job))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run(
        [sys.executable, str(script), str(state), when],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    world = load_world(state)
    assert world is not None
    counter = "abort_canary" if action is A.ABORT_CANARY else "promote_canary"
    assert world.action_counts().get(counter, 0) == (1 if when == "after" else 0)
    b = open_bench(world, state)
    try:
        assert len(b.audit.find(AuditKind.ACTION_INTENT)) == 1
        assert b.audit.find(AuditKind.ACTION_OUTCOME) == []
        outcome = execute(b, plan)
        assert outcome.status is expected
        assert world.action_counts()[counter] == 1
        assert [r.kind.value for r in b.audit.records()][-2:] == [
            *(["reconciliation"] if when == "after" else ["action_intent"]),
            "action_outcome",
        ]
        assert b.audit.find(AuditKind.ACTION_INTERRUPTED)
    finally:
        b.close()
    assert cli_main(["audit", "verify", str(state / "audit.jsonl")]) == 0


def test_fixture_world_is_as_described() -> None:
    world = new_world()
    status = world.status(MODEL)
    assert status is not None
    assert (status.stable_version, status.canary_version, status.canary_weight) == ("2", "3", 20)
    assert world.action_counts() == {}
    assert isinstance(world.clock, SimClock)


# ------------------------------------------------------------------ stale plans


def _replace_canary(world: SimWorld) -> str:
    """Someone else puts up another canary (version 4) after the plan was made."""
    run = retrain_by_hand(world, "someone-else")
    world.serve_version(MODEL, run.version, expected_version="2", canary_weight=10)
    return str(run.version)


def test_abort_of_a_canary_that_changed_under_us_fails(bench: Bench) -> None:
    plan = plan_for(A.ABORT_CANARY)  # abort version 3
    record_decision(bench, plan)
    other = _replace_canary(bench.world)
    outcome = execute(bench, plan)
    assert bench.world.status(MODEL).canary_version == other  # type: ignore[union-attr]
    assert outcome.status is OutcomeStatus.FAILED


def test_weight_of_a_canary_that_changed_under_us_is_not_set(bench: Bench) -> None:
    plan = plan_for(A.SET_CANARY_WEIGHT)  # version 3 to 50%
    record_decision(bench, plan)
    _replace_canary(bench.world)
    outcome = execute(bench, plan)
    assert bench.world.status(MODEL).canary_weight == 10  # type: ignore[union-attr]
    assert outcome.status is OutcomeStatus.FAILED


def test_crash_after_a_retrain_that_failed_validation_is_not_reconciled(bench: Bench) -> None:
    plan = plan_for(A.RETRAIN).model_copy(
        update={"parameters": {"window_hours": 1, "min_accuracy": 0.99, "canary_weight": 10}}
    )
    key = plan.idempotency_key(bench.incident.id)
    record_decision(bench, plan)
    record_intent(bench, plan)
    window = TimeWindow(start=bench.world.now - timedelta(hours=1), end=bench.world.now)
    run = bench.world.retrain(
        MODEL, window=window, exclude=[], idempotency_key=key, min_accuracy=0.99
    )
    assert not run.validation_passed
    outcome = execute(bench, plan)
    assert bench.world.status(MODEL).canary_version == "3"  # type: ignore[union-attr]
    assert outcome.status is OutcomeStatus.FAILED, outcome.detail


def test_a_retrain_that_fails_validation_is_a_failed_outcome(bench: Bench) -> None:
    plan = plan_for(A.RETRAIN).model_copy(
        update={"parameters": {"window_hours": 1, "min_accuracy": 0.99, "canary_weight": 10}}
    )
    record_decision(bench, plan)
    outcome = execute(bench, plan)
    assert outcome.status is OutcomeStatus.FAILED
    assert "failed validation" in outcome.detail
    assert writes(bench.world) == {"retrain": 1}  # registered and tagged, never served
    assert bench.world.status(MODEL).canary_version == "3"  # type: ignore[union-attr]
