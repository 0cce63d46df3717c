"""The audit trail: an append-only, hash-chained JSONL log, its verification, redaction of
secrets, and a human-readable timeline."""

from ._log import AuditLog
from ._redact import REDACTED, is_secret_key, redact, redact_text
from ._show import render_timeline, summarize
from ._verify import GENESIS_HASH, VerifyResult, verify

__all__ = [
    "GENESIS_HASH",
    "REDACTED",
    "AuditLog",
    "VerifyResult",
    "is_secret_key",
    "redact",
    "redact_text",
    "render_timeline",
    "summarize",
    "verify",
]
