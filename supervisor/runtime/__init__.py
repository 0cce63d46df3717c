"""The running supervisor: wiring and the incident lifecycle."""

from ._history import AuditActionHistory
from ._supervisor import LeaderGate, NotLeader, PendingApproval, Supervisor

__all__ = ["AuditActionHistory", "LeaderGate", "NotLeader", "PendingApproval", "Supervisor"]
