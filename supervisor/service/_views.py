"""What ``GET /incidents`` and ``GET /incidents/{id}`` answer, read from the audit log.

The audit log is the record of truth and is already redacted (invariant 4), so the views are
built from it rather than from the graph's checkpointed state.
"""

from __future__ import annotations

from typing import Any

from supervisor.domain import AuditKind, Incident, IncidentStatus, PolicyDecision
from supervisor.policy import approval_deadline
from supervisor.runtime import Supervisor


def incident_summary(inc: Incident) -> dict[str, Any]:
    """One line of ``GET /incidents``."""
    return {
        "id": inc.id,
        "model": inc.model,
        "environment": inc.environment,
        "symptom": inc.symptom.value,
        "status": inc.status.value,
        "opened_at": inc.opened_at.isoformat(),
        "updated_at": inc.updated_at.isoformat(),
        "ended_at": inc.ended_at.isoformat() if inc.ended_at else None,
        "signals": inc.signal_count,
    }


def incident_detail(sup: Supervisor, inc: Incident) -> dict[str, Any]:
    """Diagnosis with its evidence (each tied to the tool result it rests on), the guard's
    decisions, approvals, actions and their outcomes, verification, escalation and report."""
    records = sup.audit.records(inc.id)

    def of(kind: AuditKind) -> list[dict[str, Any]]:
        return [
            {"ts": r.ts.isoformat(), "actor": r.actor, **r.data} for r in records if r.kind is kind
        ]

    diagnoses = of(AuditKind.DIAGNOSIS)
    diagnosis = diagnoses[-1]["diagnosis"] if diagnoses else None
    tool_results = {r.data.get("call_id"): r.data for r in records if r.kind is AuditKind.TOOL_CALL}
    evidence = [
        {**e, "result": tool_results.get(e.get("call_id"))}
        for e in (diagnosis or {}).get("evidence", [])
    ]
    pending = None
    decisions = of(AuditKind.DECISION)
    if inc.status is IncidentStatus.AWAITING_APPROVAL and decisions:
        decision = PolicyDecision.model_validate(decisions[-1]["decision"])
        deadline = approval_deadline(decision)
        pending = {
            "action": decision.action.value,
            "approvers": decision.approvers,
            "deadline": deadline.isoformat() if deadline else None,
        }
    reports = of(AuditKind.REPORT)
    return {
        "incident": inc.model_dump(mode="json"),
        "diagnosis": diagnosis,
        "evidence": evidence,
        "proposals": of(AuditKind.PROPOSAL),
        "decisions": decisions,
        "pending_approval": pending,
        "approvals": of(AuditKind.APPROVAL_REQUESTED) + of(AuditKind.APPROVAL),
        "actions": {
            "intents": of(AuditKind.ACTION_INTENT),
            "outcomes": of(AuditKind.ACTION_OUTCOME),
            "reconciliations": of(AuditKind.RECONCILIATION),
        },
        "verification": of(AuditKind.VERIFICATION),
        "escalations": of(AuditKind.ESCALATION),
        "report": reports[-1] if reports else None,
        "audit_records": len(records),
    }
