"""The running supervisor: wiring and the incident lifecycle."""

from ._history import AuditActionHistory
from ._supervisor import PendingApproval, Supervisor

__all__ = ["AuditActionHistory", "PendingApproval", "Supervisor"]
