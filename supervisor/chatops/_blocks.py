"""Block Kit for incidents and command answers. Every dynamic string is redacted and escaped
here, so secrets never reach Slack and untrusted text (alert labels, summaries) cannot become
a mention, a link or markup."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from supervisor.audit import redact, redact_text
from supervisor.domain import Incident, IncidentStatus

if TYPE_CHECKING:
    from supervisor.graph import IncidentState

APPROVE_ACTION = "mlops_approve"
DENY_ACTION = "mlops_deny"
ACTIONS_BLOCK = "mlops_approval"

Block = dict[str, Any]

_SECTION_MAX = 3000  # Slack's limit on a section's text
_HEADER_MAX = 150
_MAX_EVIDENCE = 5

_ICONS = {
    IncidentStatus.OPEN: ":large_yellow_circle:",
    IncidentStatus.INVESTIGATING: ":mag:",
    IncidentStatus.AWAITING_APPROVAL: ":raised_hand:",
    IncidentStatus.ACTING: ":gear:",
    IncidentStatus.VERIFYING: ":hourglass_flowing_sand:",
    IncidentStatus.MITIGATED: ":white_check_mark:",
    IncidentStatus.ESCALATED: ":rotating_light:",
    IncidentStatus.CLOSED: ":white_check_mark:",
}


def safe(value: object) -> str:
    """``value`` as text fit for mrkdwn: secrets masked, ``& < >`` escaped (Slack's rule)."""
    text = redact_text(str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str) -> Block:
    """A mrkdwn section; ``text`` must already be safe."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _SECTION_MAX)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, _SECTION_MAX)}]}


def _when(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return safe(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return "n/a"


def incident_title(incident: Incident) -> str:
    """One plain line naming an incident (the notification fallback text)."""
    return redact_text(
        f"Incident {incident.id}: {incident.model} ({incident.environment}), "
        f"{incident.symptom.value} [{incident.status.value}]"
    )


def incident_blocks(
    incident: Incident,
    state: IncidentState,
    *,
    buttons: bool = True,
    paused_by: str | None = None,
) -> list[Block]:
    """The incident's message: diagnosis, key evidence, proposed action, the guard's verdict,
    and, while it awaits approval, Approve and Deny buttons (``buttons=False`` leaves them
    out, e.g. in an ephemeral ``explain``)."""
    finding: dict[str, Any] = state.get("finding") or {}
    diag: dict[str, Any] = finding.get("diagnosis") or {}
    plan: dict[str, Any] = state.get("plan") or {}
    decision: dict[str, Any] = state.get("decision") or {}
    target: dict[str, Any] = plan.get("target") or {}
    status = incident.status
    header = f"{incident.id}: {incident.model} ({incident.environment}), {incident.symptom.value}"
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(redact_text(header), _HEADER_MAX)},
        }
    ]
    fields = [
        f"*Status*\n{_ICONS.get(status, '')} `{status.value}`",
        f"*Opened*\n{_when(incident.opened_at)}",
    ]
    if diag:
        fields.append(
            f"*Root cause*\n`{safe(diag.get('root_cause'))}` "
            f"(confidence {float(diag.get('confidence', 0)):.2f})"
        )
    if plan:
        version = target.get("version")
        fields.append(
            f"*Proposed action*\n`{safe(plan.get('action'))}`"
            + (f" on version `{safe(version)}`" if version else "")
        )
    if decision:
        fields.append(
            f"*Policy verdict*\n`{safe(decision.get('verdict'))}`"
            + (" (dry run)" if decision.get("dry_run") else "")
        )
        fields.append(
            "*Deciding rules*\n" + (", ".join(f"`{safe(r)}`" for r in decision["rule_ids"]) or "-")
        )
    blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]})
    if paused_by is not None:
        blocks.append(
            context(f":double_vertical_bar: Actions are paused ({safe(paused_by)}): "
                    "the supervisor investigates and reports but does not act.")
        )  # fmt: skip
    if diag:
        blocks.append(section(f"*Diagnosis*\n{safe(diag.get('summary', ''))}"))
        evidence = sorted(diag.get("evidence", []), key=lambda e: not e.get("supports", True))
        lines = [f"• `{safe(e['tool'])}`: {safe(e['finding'])}" for e in evidence[:_MAX_EVIDENCE]]
        if len(evidence) > _MAX_EVIDENCE:
            lines.append(f"_…and {len(evidence) - _MAX_EVIDENCE} more in the report_")
        blocks.append(section("*Key evidence*\n" + ("\n".join(lines) or "none")))
    else:
        blocks.append(section("_Investigating…_"))
    if plan:
        blocks.append(
            section(
                f"*Proposed action* `{safe(plan.get('action'))}`\n"
                f"*Expected effect:* {safe(plan.get('expected_effect', ''))}\n"
                f"*Undo:* {safe(plan.get('undo', ''))}"
            )
        )
    if decision.get("reasons"):
        blocks.append(section("*Guard*\n" + "\n".join(f"• {safe(r)}" for r in decision["reasons"])))
    approval: dict[str, Any] | None = state.get("approval")
    if status is IncidentStatus.AWAITING_APPROVAL and approval is None:
        approvers = ", ".join(safe(a) for a in decision.get("approvers", [])) or "nobody"
        timeout = decision.get("approval_timeout_s")
        blocks.append(
            context(
                f":raised_hand: Approval needed from {approvers}"
                + (f" within {int(timeout // 60)} min (then denied)" if timeout else "")
            )
        )
        if buttons:
            blocks.append(approval_buttons(incident.id, str(plan.get("action", "action"))))
    if approval is not None:
        verb = {"approved": ":white_check_mark: Approved", "denied": ":no_entry: Denied",
                "timed_out": ":alarm_clock: Timed out (denied)"}.get(
            approval.get("decision", ""), safe(approval.get("decision")))  # fmt: skip
        who = "" if approval.get("by") == "timeout" else f" by *{safe(approval.get('by'))}*"
        blocks.append(context(f"{verb}{who} at {_when(approval.get('at'))}"))
    after: list[str] = []
    if outcome := state.get("outcome"):
        after.append(f"*Outcome* `{safe(outcome['status'])}`: {safe(outcome.get('detail', ''))}")
    if verification := state.get("verification"):
        after.append(f"*Verification* {'passed' if verification['passed'] else 'FAILED'}")
    if escalation := state.get("escalation"):
        after.append(
            f"*Escalated* to *{safe(escalation.get('owner'))}*: {safe(escalation.get('reason'))}"
        )
    if after:
        blocks.append(section("\n".join(after)))
    result: list[Block] = redact(blocks)  # belt and braces: nothing unredacted leaves
    return result


def approval_buttons(incident_id: str, action: str) -> Block:
    """Approve and Deny; each carries the incident id as its value."""
    return {
        "type": "actions",
        "block_id": ACTIONS_BLOCK,
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": incident_id,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Approve?"},
                    "text": {
                        "type": "mrkdwn",
                        "text": _cut(f"Run `{safe(action)}` for {safe(incident_id)}?", 300),
                    },
                    "confirm": {"type": "plain_text", "text": "Approve"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            },
            {
                "type": "button",
                "action_id": DENY_ACTION,
                "text": {"type": "plain_text", "text": "Deny"},
                "style": "danger",
                "value": incident_id,
            },
        ],
    }
