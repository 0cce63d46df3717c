"""Action history for rate limits, read from the audit log (the one source of truth)."""

from __future__ import annotations

from datetime import datetime

from supervisor.audit import AuditTrail
from supervisor.domain import ActionType, AuditKind

_COUNTED = {"succeeded", "reconciled"}


class AuditActionHistory:
    """Counts actions that took effect, per model, from ``action_outcome`` records."""

    def __init__(self, audit: AuditTrail) -> None:
        self.audit = audit

    def count(self, action: ActionType, model: str, environment: str, since: datetime) -> int:
        n = 0
        for rec in self.audit.find(
            AuditKind.ACTION_OUTCOME,
            where={"action": action.value, "model": model, "environment": environment},
        ):
            if rec.ts >= since and rec.data["outcome"]["status"] in _COUNTED:
                n += 1
        return n
