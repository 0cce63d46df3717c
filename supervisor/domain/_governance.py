"""Policy decisions, approvals, action outcomes and audit records."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._vocab import ActionType


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Verdict(StrEnum):
    """What the guard decides. Only the guard decides."""

    ALLOW = "allow"
    DENY = "deny"
    REQUIRE_APPROVAL = "require_approval"


class PolicyDecision(_Strict):
    """The guard's decision on one action plan, naming the rules that made it."""

    verdict: Verdict
    action: ActionType
    rule_ids: list[str] = Field(description="Ids of the rules that decided, most decisive first.")
    reasons: list[str] = Field(default_factory=list, description="One line per deciding rule.")
    dry_run: bool = Field(default=False, description="If true the action is recorded, not run.")
    approver_groups: list[str] = Field(default_factory=list)
    approvers: list[str] = Field(default_factory=list, description="People who may approve.")
    approval_timeout_s: float | None = Field(default=None)
    decided_at: datetime


class Approval(_Strict):
    """A human's answer to an approval request (or its timeout)."""

    decision: Literal["approved", "denied", "timed_out"]
    by: str = Field(description="Identity of the approver, or 'timeout'.")
    at: datetime
    comment: str = ""


class OutcomeStatus(StrEnum):
    """How an action ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED_DUPLICATE = "skipped_duplicate"
    DRY_RUN = "dry_run"
    SUPPRESSED = "suppressed"  # the pause switch held it back: recorded, not run
    RECONCILED = "reconciled"


class ActionOutcome(_Strict):
    """What the executor observed after running (or reconciling) an action."""

    idempotency_key: str
    action: ActionType
    status: OutcomeStatus
    detail: str = ""
    state: dict[str, Any] = Field(default_factory=dict, description="Backend state afterwards.")
    at: datetime


class AuditKind(StrEnum):
    """Every kind of record the audit trail holds."""

    SIGNAL = "signal"
    INCIDENT_OPENED = "incident_opened"
    INCIDENT_UPDATED = "incident_updated"
    TOOL_CALL = "tool_call"
    REASONER_STEP = "reasoner_step"
    DIAGNOSIS = "diagnosis"
    PROPOSAL = "proposal"
    DECISION = "decision"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL = "approval"
    ACTION_INTENT = "action_intent"
    ACTION_INTERRUPTED = "action_interrupted"
    RECONCILIATION = "reconciliation"
    ACTION_OUTCOME = "action_outcome"
    VERIFICATION = "verification"
    ESCALATION = "escalation"
    REPORT = "report"
    #: A decision that needs labels not in yet is postponed until they arrive (late labels).
    RECHECK_SCHEDULED = "recheck_scheduled"
    #: A scheduled re-check came due: the incident is investigated again on fresh evidence.
    RECHECK_DUE = "recheck_due"


class AuditRecord(_Strict):
    """One append-only, hash-chained line of the audit log."""

    seq: int = Field(ge=0, description="Position in the log, from 0.")
    ts: datetime = Field(description="Backend (or sim) time the step happened.")
    kind: AuditKind
    incident_id: str | None = None
    actor: str = Field(description="Who did it: a node name, a reasoner, a person.")
    trace_id: str = Field(description="OpenTelemetry trace id (32 hex) of the writing span.")
    span_id: str = Field(description="OpenTelemetry span id (16 hex) of the writing span.")
    data: dict[str, Any] = Field(default_factory=dict, description="Redacted payload.")
    prev_hash: str = Field(description="Hash of the previous record; 64 zeros for the first.")
    hash: str = Field(description="sha256 over the canonical JSON of this record without it.")
