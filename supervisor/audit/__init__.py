"""The audit trail: an append-only, hash-chained JSONL log, its verification, redaction of
secrets, and a human-readable timeline."""

from ._log import AuditLog
from ._postgres import PostgresAuditLog, export_postgres, verify_postgres
from ._redact import REDACTED, is_secret_key, redact, redact_text
from ._repair import RepairResult, repair
from ._show import render_timeline, summarize
from ._trail import AuditTrail
from ._verify import GENESIS_HASH, VerifyResult, verify

__all__ = [
    "GENESIS_HASH",
    "REDACTED",
    "AuditLog",
    "AuditTrail",
    "PostgresAuditLog",
    "RepairResult",
    "VerifyResult",
    "export_postgres",
    "is_secret_key",
    "redact",
    "redact_text",
    "render_timeline",
    "repair",
    "summarize",
    "verify",
    "verify_postgres",
]
