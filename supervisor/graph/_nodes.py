"""The graph's nodes: triage, investigate, diagnose, propose, guard, approval, act, verify,
escalate and report. Each runs in its own span and writes its audit records."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt
from opentelemetry import trace

from supervisor.domain import (
    ActionOutcome,
    ActionPlan,
    ActionType,
    Approval,
    AuditKind,
    Diagnosis,
    Incident,
    IncidentStatus,
    MetricName,
    OutcomeStatus,
    PolicyDecision,
    RootCause,
    Signal,
    ToolResult,
    Verdict,
)
from supervisor.policy import approval_deadline
from supervisor.reasoners import Finding, InvestigationSession, insufficient

from ._context import RecheckPending, SupervisorContext, VerifyPending
from ._labels import MAX_RECHECKS, escalate_instead, label_wait, waiting
from ._propose import plan_action
from ._report import render_report
from ._state import IncidentState
from ._verify import verify_action

Ctx = Runtime[SupervisorContext]


def _incident(state: IncidentState) -> Incident:
    return Incident.model_validate(state["incident"])


def _session(
    ctx: SupervisorContext, incident: Incident, node: str, prefix: str = ""
) -> InvestigationSession:
    """A bounded session whose every tool call is a span (timing the call) and an audit record."""

    def on_result(result: ToolResult) -> None:
        span = trace.get_current_span()
        span.set_attribute("tool.status", result.status.value)
        span.set_attribute("tool.call_id", result.call_id)
        ctx.recorder.record(
            AuditKind.TOOL_CALL,
            incident_id=incident.id,
            actor=node,
            data=result.model_dump(mode="json"),
        )

    return InvestigationSession(
        incident,
        ctx.tools,
        ctx.tool_ctx,
        ctx.config.limits,
        on_result=on_result,
        span=lambda tool: ctx.recorder.span(f"tool.{tool}", incident_id=incident.id),
        prefix=f"{prefix}{node}-",
    )


def triage(state: IncidentState, runtime: Ctx) -> dict[str, Any]:
    """Drop noise: a signal already resolved before anyone looked needs no investigation."""
    ctx, inc = runtime.context, _incident(state)
    with ctx.recorder.span("node.triage", incident_id=inc.id):
        resolved = (state.get("signal") or {}).get("status") == "resolved"
        status = IncidentStatus.CLOSED if resolved else IncidentStatus.INVESTIGATING
        ctx.recorder.record(
            AuditKind.INCIDENT_UPDATED,
            incident_id=inc.id,
            actor="triage",
            data={
                "status": status.value,
                "reason": "resolved before triage" if resolved else "triaged",
            },
        )
    return {"status": status.value}


def investigate(state: IncidentState, runtime: Ctx) -> dict[str, Any]:
    """The reasoner chooses read-only tool calls, within the incident's bounds."""
    ctx, inc = runtime.context, _incident(state)
    with ctx.recorder.span(
        "node.investigate", incident_id=inc.id, attributes={"reasoner": ctx.reasoner.name}
    ):
        # A re-check investigates again: its call ids must not repeat the first pass's.
        rechecks = state.get("rechecks", 0)
        session = _session(ctx, inc, "investigate", f"recheck{rechecks}-" if rechecks else "")
        finding = ctx.reasoner.investigate(inc, session)
        ctx.recorder.record(
            AuditKind.REASONER_STEP,
            incident_id=inc.id,
            actor=ctx.reasoner.name,
            data={
                "tool_calls": session.tool_calls,
                "candidate": finding.diagnosis.root_cause.value,
                "playbook": finding.diagnosis.playbook,
            },
        )
    return {
        "finding": finding.model_dump(mode="json"),
        "tool_results": [r.model_dump(mode="json") for r in session.results],
    }


def diagnose(state: IncidentState, runtime: Ctx) -> dict[str, Any]:
    """Accept the diagnosis only if every piece of evidence cites a result actually received."""
    ctx, inc = runtime.context, _incident(state)
    with ctx.recorder.span("node.diagnose", incident_id=inc.id) as span:
        finding = Finding.model_validate(state["finding"])
        received = {r["call_id"] for r in state.get("tool_results", [])}
        cited = {e.call_id for e in finding.diagnosis.evidence}
        if not cited <= received:
            finding = insufficient(
                f"the reasoner cited results it never received: {sorted(cited - received)}",
                [],
                [],
            )
        results = [ToolResult.model_validate(r) for r in state.get("tool_results", [])]
        signal = Signal.model_validate(state["signal"]) if state.get("signal") else None
        wait = label_wait(
            inc, finding, ctx.watched(inc.model, inc.environment), results, ctx.clock.now(), signal
        )
        if wait is not None and state.get("rechecks", 0) >= MAX_RECHECKS:
            wait = dataclasses.replace(wait, past_deadline=True)
        if wait is not None:
            finding = (
                escalate_instead(finding, wait) if wait.past_deadline else waiting(finding, wait)
            )
        span.set_attribute("diagnosis.root_cause", finding.diagnosis.root_cause.value)
        span.set_attribute("diagnosis.confidence", finding.diagnosis.confidence)
        ctx.recorder.record(
            AuditKind.DIAGNOSIS,
            incident_id=inc.id,
            actor=finding.diagnosis.reasoner,
            data={"diagnosis": finding.diagnosis.model_dump(mode="json")},
        )
        due = ""
        if wait is not None and not wait.past_deadline:
            due = wait.due.isoformat()
            ctx.recorder.record(
                AuditKind.RECHECK_SCHEDULED,
                incident_id=inc.id,
                actor="diagnose",
                data={**wait.record(), "postponed": finding.action.value},
            )
    return {"finding": finding.model_dump(mode="json"), "recheck_due": due}


def route_diagnose(state: IncidentState) -> str:
    return "await_labels" if state.get("recheck_due") else "propose"


def await_labels(state: IncidentState, runtime: Ctx) -> dict[str, Any]:
    """Wait until the labels the decision needs are in, then investigate again. Nothing
    irreversible happened: no action was proposed. Like verify's settle time, the wait is a
    sleep or, with ``defer_waits``, :class:`RecheckPending` for the runtime to resume at the
    due time (kept in the incident index, so a restart keeps it)."""
    ctx, inc = runtime.context, _incident(state)
    due = datetime.fromisoformat(state["recheck_due"])
    wait = (due - ctx.clock.now()).total_seconds()
    if wait > 0:
        if ctx.defer_waits:
            raise RecheckPending(inc.id, due)
        ctx.clock.sleep(wait)
    rechecks = state.get("rechecks", 0) + 1
    with ctx.recorder.span("node.await_labels", incident_id=inc.id):
        ctx.recorder.record(
            AuditKind.RECHECK_DUE,
            incident_id=inc.id,
            actor="await_labels",
            data={"recheck_at": due.isoformat(), "rechecks": rechecks},
        )
    return {"recheck_due": "", "rechecks": rechecks}


def propose(state: IncidentState, runtime: Ctx) -> dict[str, Any]:
    """One action from the closed set, with target, parameters, expected effect and undo."""
    ctx, inc = runtime.context, _incident(state)
    with ctx.recorder.span("node.propose", incident_id=inc.id) as span:
        finding = Finding.model_validate(state["finding"])
        results = [ToolResult.model_validate(r) for r in state.get("tool_results", [])]
        plan = plan_action(
            inc, finding, ctx.watched(inc.model, inc.environment), ctx.tool_ctx.backends, results
        )
        span.set_attribute("action.type", plan.action.value)
        ctx.recorder.record(
            AuditKind.PROPOSAL,
            incident_id=inc.id,
            actor="propose",
            data={
                "idempotency_key": plan.idempotency_key(inc.id),
                "plan": plan.model_dump(mode="json"),
            },
        )
    return {"plan": plan.model_dump(mode="json")}


def guard(state: IncidentState, runtime: Ctx) -> dict[str, Any]:
    """The policy engine alone decides; the decision is on record before anything can act."""
    ctx, inc = runtime.context, _incident(state)
    with ctx.recorder.span("node.guard", incident_id=inc.id) as span:
        plan = ActionPlan.model_validate(state["plan"])
        diagnosis = Diagnosis.model_validate(state["finding"]["diagnosis"])
        results = [ToolResult.model_validate(r) for r in state.get("tool_results", [])]
        decision = ctx.guard.decide(plan, diagnosis, results, ctx.history)
        span.set_attribute("guard.verdict", decision.verdict.value)
        span.set_attribute("guard.rules", ",".join(decision.rule_ids))
        ctx.recorder.record(
            AuditKind.DECISION,
            incident_id=inc.id,
            actor="guard",
            data={
                "idempotency_key": plan.idempotency_key(inc.id),
                "decision": decision.model_dump(mode="json"),
                "evidence": [e.call_id for e in diagnosis.evidence],
            },
        )
    return {"decision": decision.model_dump(mode="json")}


def route_guard(state: IncidentState) -> str:
    verdict = Verdict(state["decision"]["verdict"])
    if verdict is Verdict.ALLOW:
        return "act"
    if verdict is Verdict.REQUIRE_APPROVAL:
        return "request_approval"
    return "escalate"


def request_approval(state: IncidentState, runtime: Ctx) -> dict[str, Any]:
    """Ask for approval, once: this node finishes before the graph pauses, so it never repeats."""
    ctx, inc = runtime.context, _incident(state)
    decision = PolicyDecision.model_validate(state["decision"])
    key = ActionPlan.model_validate(state["plan"]).idempotency_key(inc.id)
    deadline = approval_deadline(decision)
    with ctx.recorder.span("node.request_approval", incident_id=inc.id):
        ctx.recorder.record(
            AuditKind.APPROVAL_REQUESTED,
            incident_id=inc.id,
            actor="guard",
            data={
                "idempotency_key": key,
                "approvers": decision.approvers,
                "groups": decision.approver_groups,
                "deadline": None if deadline is None else deadline.isoformat(),
            },
        )
    return {"status": IncidentStatus.AWAITING_APPROVAL.value}


def await_approval(state: IncidentState, runtime: Ctx) -> dict[str, Any]:
    """Pause until a person answers. Nothing before ``interrupt`` has side effects."""
    ctx, inc = runtime.context, _incident(state)
    decision = PolicyDecision.model_validate(state["decision"])
    plan = ActionPlan.model_validate(state["plan"])
    answer = interrupt(
        {
            "incident_id": inc.id,
            "action": plan.action.value,
            "approvers": decision.approvers,
            "deadline": (d.isoformat() if (d := approval_deadline(decision)) else None),
        }
    )
    approval = Approval.model_validate(answer)
    deadline = approval_deadline(decision)
    if approval.decision == "approved" and deadline is not None and approval.at > deadline:
        approval = Approval(
            decision="timed_out",
            by="timeout",
            at=approval.at,
            comment=f"approval by {approval.by} arrived after the deadline {deadline.isoformat()}",
        )
    if approval.decision == "approved" and approval.by not in decision.approvers:
        approval = Approval(
            decision="denied",
            by=approval.by,
            at=approval.at,
            comment=f"{approval.by} is not an approver for this action",
        )
    with ctx.recorder.span(
        "node.await_approval", incident_id=inc.id, attributes={"approval": approval.decision}
    ):
        ctx.recorder.record(
            AuditKind.APPROVAL,
            incident_id=inc.id,
            actor=approval.by,
            data={
                "idempotency_key": plan.idempotency_key(inc.id),
                "approval": approval.model_dump(mode="json"),
            },
        )
    return {"approval": approval.model_dump(mode="json")}


def route_approval(state: IncidentState) -> str:
    return "act" if state["approval"]["decision"] == "approved" else "escalate"


def act(state: IncidentState, runtime: Ctx) -> dict[str, Any]:
    """Run the action through the executor (idempotent, reconciling)."""
    ctx, inc = runtime.context, _incident(state)
    with ctx.recorder.span("node.act", incident_id=inc.id) as span:
        plan = ActionPlan.model_validate(state["plan"])
        diagnosis = Diagnosis.model_validate(state["finding"]["diagnosis"])
        outcome = ctx.executor.execute(inc, plan, diagnosis)
        span.set_attribute("action.outcome", outcome.status.value)
    due = ctx.clock.now() + timedelta(seconds=ctx.config.timing.verify_settle_seconds)
    return {
        "outcome": outcome.model_dump(mode="json"),
        "status": IncidentStatus.ACTING.value,
        "verify_due": due.isoformat(),
    }


def route_act(state: IncidentState) -> str:
    outcome = ActionOutcome.model_validate(state["outcome"])
    if outcome.status is OutcomeStatus.FAILED:
        return "escalate"
    if outcome.action in (ActionType.ESCALATE, ActionType.NO_ACTION) or outcome.status in (
        OutcomeStatus.DRY_RUN,
        OutcomeStatus.SUPPRESSED,
    ):
        return "report"
    return "verify"


def verify(state: IncidentState, runtime: Ctx) -> dict[str, Any]:
    """After the settle time (from the action, on the injected clock), check the symptom is
    gone. The wait is a sleep, or, with ``defer_waits``, :class:`VerifyPending` for the caller
    to resume the incident when it is due (a service keeps no worker asleep)."""
    ctx, inc = runtime.context, _incident(state)
    plan = ActionPlan.model_validate(state["plan"])
    outcome = ActionOutcome.model_validate(state["outcome"])
    settle = timedelta(seconds=ctx.config.timing.verify_settle_seconds)
    due = (
        datetime.fromisoformat(state["verify_due"])
        if state.get("verify_due")
        else ctx.clock.now() + settle  # a checkpoint written before verify_due existed
    )
    wait = (due - ctx.clock.now()).total_seconds()
    if wait > 0:
        if ctx.defer_waits:
            raise VerifyPending(inc.id, due)
        ctx.clock.sleep(wait)
    with ctx.recorder.span("node.verify", incident_id=inc.id) as span:
        watched = ctx.watched(inc.model, inc.environment)
        threshold = next(
            (s.threshold for s in watched.signals if s.metric is MetricName.ERROR_RATE), 0.05
        )
        result = verify_action(plan, outcome, _session(ctx, inc, "verify"), threshold)
        span.set_attribute("verify.passed", result["passed"])
        ctx.recorder.record(AuditKind.VERIFICATION, incident_id=inc.id, actor="verify", data=result)
    status = IncidentStatus.MITIGATED if result["passed"] else IncidentStatus.VERIFYING
    return {"verification": result, "status": status.value}


def route_verify(state: IncidentState) -> str:
    return "report" if state["verification"]["passed"] else "escalate"


def escalate(state: IncidentState, runtime: Ctx) -> dict[str, Any]:
    """Page a human owner with the reason the supervisor did not (or could not) fix it."""
    ctx, inc = runtime.context, _incident(state)
    watched = ctx.watched(inc.model, inc.environment)
    diag = (state.get("finding") or {}).get("diagnosis") or {}
    if state.get("verification") and not state["verification"]["passed"]:
        reason = "the action did not clear the symptom"
    elif state.get("outcome") and state["outcome"]["status"] == OutcomeStatus.FAILED.value:
        reason = f"the action failed: {state['outcome']['detail']}"
    elif state.get("approval") and state["approval"]["decision"] != "approved":
        approval = state["approval"]
        reason = f"approval {approval['decision']} ({approval.get('comment') or approval['by']})"
    else:
        reason = (
            f"the guard denied {state['plan']['action']}: {'; '.join(state['decision']['reasons'])}"
        )
    owner = (
        watched.data_owner
        if diag.get("root_cause") == RootCause.UPSTREAM_DATA_DEFECT.value and watched.data_owner
        else watched.owner
    )
    with ctx.recorder.span("node.escalate", incident_id=inc.id):
        page_id = ctx.executor.write.notifier.page(
            owner, inc.id, f"{inc.model}: {reason}", at=ctx.clock.now()
        )
        ctx.recorder.record(
            AuditKind.ESCALATION,
            incident_id=inc.id,
            actor="escalate",
            data={"owner": owner, "reason": reason, "page_id": page_id},
        )
    return {
        "escalation": {"owner": owner, "reason": reason},
        "status": IncidentStatus.ESCALATED.value,
    }


def report(state: IncidentState, runtime: Ctx) -> dict[str, Any]:
    """Write the incident report and close the loop."""
    ctx, inc = runtime.context, _incident(state)
    status = state.get("status", IncidentStatus.OPEN.value)
    if status in (IncidentStatus.ACTING.value, IncidentStatus.INVESTIGATING.value):
        plan_action_type = (state.get("plan") or {}).get("action")
        status = (
            IncidentStatus.ESCALATED
            if plan_action_type == ActionType.ESCALATE.value
            else IncidentStatus.CLOSED
        ).value
    final: IncidentState = {**state, "status": status}
    with ctx.recorder.span("node.report", incident_id=inc.id):
        ctx.reports_dir.mkdir(parents=True, exist_ok=True)
        path = ctx.reports_dir / f"{inc.id}.md"
        path.write_text(render_report(final), encoding="utf-8")
        ctx.recorder.record(
            AuditKind.REPORT,
            incident_id=inc.id,
            actor="report",
            data={"path": str(path), "status": status},
        )
    return {"report_path": str(path), "status": status}
