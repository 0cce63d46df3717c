"""Domain types: the vocabulary every other package speaks."""

from ._governance import (
    ActionOutcome,
    Approval,
    AuditKind,
    AuditRecord,
    OutcomeStatus,
    PolicyDecision,
    Verdict,
)
from ._reasoning import (
    ActionPlan,
    ActionTarget,
    Diagnosis,
    Evidence,
    JsonScalar,
    RuledOut,
    TimeWindow,
    ToolResult,
    ToolStatus,
)
from ._signals import Incident, IncidentStatus, Signal, SignalKind
from ._vocab import MUTATING_ACTIONS, ActionType, MetricName, RootCause, Symptom

__all__ = [
    "MUTATING_ACTIONS",
    "ActionOutcome",
    "ActionPlan",
    "ActionTarget",
    "ActionType",
    "Approval",
    "AuditKind",
    "AuditRecord",
    "Diagnosis",
    "Evidence",
    "Incident",
    "IncidentStatus",
    "JsonScalar",
    "MetricName",
    "OutcomeStatus",
    "PolicyDecision",
    "RootCause",
    "RuledOut",
    "Signal",
    "SignalKind",
    "Symptom",
    "TimeWindow",
    "ToolResult",
    "ToolStatus",
    "Verdict",
]
