"""A human-readable timeline of audit records."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from supervisor.domain import AuditKind, AuditRecord

from ._redact import redact_text

_SUMMARY_WIDTH = 120

# The data keys worth a glance for each kind, most telling first. Keys a record lacks are
# skipped; a record with none of them falls back to its first primitive values.
_KEYS_BY_KIND: dict[AuditKind, tuple[str, ...]] = {
    AuditKind.SIGNAL: ("kind", "source", "model", "symptom", "alertname", "summary", "status"),
    AuditKind.INCIDENT_OPENED: ("model", "symptom", "status", "title", "signal_id"),
    AuditKind.INCIDENT_UPDATED: ("status", "reason", "note"),
    AuditKind.TOOL_CALL: ("tool", "name", "status", "args", "error", "summary"),
    AuditKind.REASONER_STEP: ("reasoner", "step", "thought", "tool", "summary", "tokens"),
    AuditKind.DIAGNOSIS: ("root_cause", "confidence", "summary", "evidence"),
    AuditKind.PROPOSAL: ("action", "target", "params", "expected_effect", "rationale"),
    AuditKind.DECISION: ("verdict", "action", "rule_ids", "dry_run", "reasons"),
    AuditKind.APPROVAL_REQUESTED: ("action", "approvers", "approver_groups", "timeout_s"),
    AuditKind.APPROVAL: ("decision", "by", "comment"),
    AuditKind.ACTION_INTENT: ("action", "target", "idempotency_key", "intended_state"),
    AuditKind.ACTION_INTERRUPTED: ("action", "idempotency_key", "reason"),
    AuditKind.RECONCILIATION: ("action", "idempotency_key", "found", "result", "status"),
    AuditKind.ACTION_OUTCOME: ("status", "action", "idempotency_key", "detail"),
    AuditKind.VERIFICATION: ("resolved", "status", "symptom", "detail", "summary"),
    AuditKind.ESCALATION: ("to", "owner", "reason", "summary"),
    AuditKind.REPORT: ("path", "url", "channel", "summary"),
}


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ",".join(str(v) for v in value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def summarize(record: AuditRecord) -> str:
    """One line saying what a record is about, from the data keys that matter for its kind."""
    data = record.data
    keys = [k for k in _KEYS_BY_KIND.get(record.kind, ()) if k in data]
    if not keys:
        keys = [k for k, v in data.items() if isinstance(v, str | int | float | bool)][:4]
    text = " ".join(f"{k}={_fmt(data[k])}" for k in keys)
    text = redact_text(" ".join(text.split()))  # one line, and never a secret
    if len(text) > _SUMMARY_WIDTH:
        text = text[: _SUMMARY_WIDTH - 1] + "…"
    return text


def render_timeline(records: Iterable[AuditRecord], incident_id: str | None = None) -> str:
    """Render records as an aligned timeline: seq, time (UTC), incident, kind, actor, summary.

    With ``incident_id``, only that incident's records are shown.
    """
    chosen: Sequence[AuditRecord] = [
        r for r in records if incident_id is None or r.incident_id == incident_id
    ]
    if not chosen:
        return "(no records" + (f" for incident {incident_id!r})" if incident_id else ")") + "\n"
    rows = [
        (
            str(r.seq),
            r.ts.strftime("%Y-%m-%d %H:%M:%S"),
            r.incident_id or "-",
            r.kind.value,
            r.actor,
            summarize(r),
        )
        for r in chosen
    ]
    header = ("SEQ", "TIME (UTC)", "INCIDENT", "KIND", "ACTOR", "SUMMARY")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)), row[5]])
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"
