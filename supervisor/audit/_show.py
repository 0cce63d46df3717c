"""A human-readable timeline of audit records, and the filters ``audit show`` offers.

Each record's summary comes from one template (``supervisor/text/templates/audit_line.txt.j2``)
that reads the fields where the writers keep them (``data.decision.verdict``,
``data.diagnosis.root_cause``, ``data.approval.by``, ...), so no summary is a Python repr.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from supervisor.domain import AuditKind, AuditRecord
from supervisor.text import plain, render

from ._redact import redact_text

_SUMMARY_WIDTH = 160


def summarize(record: AuditRecord) -> str:
    """One line saying what a record is about: the verdict, root cause, approver, ..."""
    try:
        text = render("audit_line.txt.j2", kind=record.kind.value, d=record.data)
    except Exception:  # a record of an older or unknown shape still gets a line
        text = plain({k: v for k, v in record.data.items() if not isinstance(v, dict | list)})
    text = redact_text(" ".join(text.split()))  # one line, and never a secret
    if len(text) > _SUMMARY_WIDTH:
        text = text[: _SUMMARY_WIDTH - 1] + "…"
    return text


def select(
    records: Iterable[AuditRecord],
    *,
    incident_id: str | None = None,
    kinds: Sequence[AuditKind] = (),
    since: datetime | None = None,
) -> Iterator[AuditRecord]:
    """The records of one incident, of some kinds, at or after ``since`` (each filter optional)."""
    for r in records:
        if incident_id is not None and r.incident_id != incident_id:
            continue
        if kinds and r.kind not in kinds:
            continue
        if since is not None and r.ts < since:
            continue
        yield r


def render_timeline(records: Iterable[AuditRecord], incident_id: str | None = None) -> str:
    """Render records as an aligned timeline: seq, time (UTC), incident, kind, actor, summary.

    With ``incident_id``, only that incident's records are shown.
    """
    chosen = list(select(records, incident_id=incident_id))
    if not chosen:
        return "(no records" + (f" for incident {incident_id})" if incident_id else ")") + "\n"
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


def render_json_lines(records: Iterable[AuditRecord]) -> str:
    """One JSON object per line, each record as stored (already redacted when written)."""
    return "".join(
        json.dumps(r.model_dump(mode="json"), sort_keys=True, ensure_ascii=False) + "\n"
        for r in records
    )
