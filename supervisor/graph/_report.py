"""The Markdown incident report a human reads."""

from __future__ import annotations

from typing import Any

from supervisor.audit import redact_text

from ._state import IncidentState


def render_report(state: IncidentState) -> str:
    """One Markdown page: what happened, why, what the guard said and what was done."""
    inc = state["incident"]
    finding: dict[str, Any] = state.get("finding") or {}
    diag: dict[str, Any] = finding.get("diagnosis") or {}
    plan: dict[str, Any] = state.get("plan") or {}
    decision: dict[str, Any] = state.get("decision") or {}
    target: dict[str, Any] = plan.get("target") or {}
    rules = ", ".join(decision.get("rule_ids", []))
    lines = [
        f"# Incident {inc['id']}: {inc['model']} ({inc['environment']}), {inc['symptom']}",
        "",
        f"- **Status:** {state.get('status', 'open')}",
        f"- **Opened:** {inc['opened_at']}",
        f"- **Root cause:** `{diag.get('root_cause', 'n/a')}` "
        f"(confidence {diag.get('confidence', 0):.2f},"
        f" reasoner `{diag.get('reasoner', 'n/a')}`, playbook `{diag.get('playbook')}`)",
        f"- **Action:** `{plan.get('action', 'n/a')}` on version `{target.get('version')}`",
        f"- **Guard:** `{decision.get('verdict', 'n/a')}` by rules {rules}"
        + (" (dry run)" if decision.get("dry_run") else ""),
        "",
        "## Diagnosis",
        "",
        diag.get("summary", "No diagnosis."),
        "",
        "### Evidence",
        "",
    ]
    lines += [
        f"- `{e['call_id']}` ({e['tool']}): {e['finding']}" for e in diag.get("evidence", [])
    ] or ["- none"]
    lines += ["", "### Ruled out", ""]
    lines += [f"- `{r['root_cause']}`: {r['reason']}" for r in diag.get("ruled_out", [])] or [
        "- nothing else was considered"
    ]
    if plan:
        shown = {k: v for k, v in plan.get("parameters", {}).items() if k != "message"}
        lines += [
            "",
            "## Proposed action",
            "",
            f"- **Action:** `{plan['action']}`, parameters `{shown}`",
            f"- **Expected effect:** {plan.get('expected_effect')}",
            f"- **Undo:** {plan.get('undo')}",
            f"- **Why:** {plan.get('rationale')}",
        ]
    if decision:
        lines += ["", "## Guard decision", ""] + [f"- {r}" for r in decision.get("reasons", [])]
    if approval := state.get("approval"):
        lines += [
            "",
            "## Approval",
            "",
            f"- {approval['decision']} by **{approval['by']}** at {approval['at']}",
        ]
    if outcome := state.get("outcome"):
        lines += ["", "## Outcome", "", f"- `{outcome['status']}`: {outcome.get('detail', '')}"]
    if verification := state.get("verification"):
        lines += ["", "## Verification", "", f"- passed: **{verification['passed']}**"]
        lines += [
            f"  - {c['check']}: {'ok' if c['passed'] else 'FAILED'} ({c['detail']})"
            for c in verification["checks"]
        ]
    if escalation := state.get("escalation"):
        lines += [
            "",
            "## Escalation",
            "",
            f"- paged **{escalation.get('owner')}**: {escalation.get('reason')}",
        ]
    return redact_text("\n".join(lines) + "\n")
