"""The Markdown incident report a human reads, rendered from ``supervisor/text/templates``."""

from __future__ import annotations

from typing import Any

from supervisor.audit import redact_text
from supervisor.text import render

from ._state import IncidentState


def render_report(state: IncidentState) -> str:
    """One Markdown page: what happened, why, what the guard said and what was done."""
    finding: dict[str, Any] = state.get("finding") or {}
    plan: dict[str, Any] = state.get("plan") or {}
    text = render(
        "report.md.j2",
        inc=state["incident"],
        status=state.get("status", "open"),
        diag=finding.get("diagnosis") or {},
        plan=plan,
        # The notification text is long and shown in the escalation section instead.
        parameters={k: v for k, v in (plan.get("parameters") or {}).items() if k != "message"},
        decision=state.get("decision") or {},
        approval=state.get("approval") or {},
        outcome=state.get("outcome") or {},
        verification=state.get("verification") or {},
        escalation=state.get("escalation") or {},
    )
    return redact_text(text)
