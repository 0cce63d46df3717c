"""What ``/mlops`` answers and does, independent of Slack's transport.

Every answer is a :class:`Reply` (ephemeral by default). Approvals and pauses check the
person first; every refusal is audited.
"""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from supervisor._errors import SupervisorError
from supervisor.domain import IncidentStatus

from ._blocks import Block, incident_blocks, safe, section
from ._pause import PauseSwitch

if TYPE_CHECKING:
    from supervisor.runtime import Supervisor

USAGE = (
    "*/mlops* commands:\n"
    "• `status`: pause switch, incidents by status, pending approvals\n"
    "• `incidents`: the most recent incidents\n"
    "• `explain ID`: diagnosis, evidence, proposed action and verdict of an incident\n"
    "• `approve ID [comment]` / `deny ID [comment]`: answer a pending approval\n"
    "• `pause [MODEL]` / `resume [MODEL]`: stop or restart actions (all models without MODEL)"
)
MAX_LISTED = 20
_ENDED = {IncidentStatus.MITIGATED, IncidentStatus.ESCALATED, IncidentStatus.CLOSED}


@dataclass
class Reply:
    """An answer to a person: mrkdwn text (already safe) and optional blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    ok: bool = True

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"response_type": "ephemeral", "text": self.text}
        if self.blocks:
            out["blocks"] = self.blocks
        return out


@dataclass(frozen=True)
class Caller:
    """Who asked: the Slack user and the identity the policy knows them by."""

    slack_user: str
    identity: str
    channel: str | None = None


def parse(text: str) -> list[str]:
    """The words of a command; quotes group words, a stray quote is taken literally."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


class Commands:
    """The supervisor-side meaning of each chat command."""

    def __init__(self, supervisor: Supervisor, pause: PauseSwitch) -> None:
        self.supervisor = supervisor
        self.pause = pause

    # ------------------------------------------------------------------ reading

    def status(self) -> Reply:
        sup = self.supervisor
        st = self.pause.state()
        if st.global_ is not None:
            switch = (
                f":double_vertical_bar: *All actions paused* by {safe(st.global_.by)} "
                f"since {st.global_.at:%Y-%m-%d %H:%M} UTC"
            )
        else:
            switch = ":arrow_forward: Acting (no global pause)"
        lines = [switch]
        if st.models:
            lines.append(
                "Paused models: "
                + ", ".join(f"`{safe(m)}` (by {safe(e.by)})" for m, e in sorted(st.models.items()))
            )
        counts = Counter(i.status.value for i in sup.incidents.all())
        lines.append(
            "Incidents: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none")
        )
        for p in sup.pending_approvals():
            lines.append(
                f"• `{safe(p.incident_id)}` waits for approval of `{safe(p.action)}` by "
                + ", ".join(safe(a) for a in p.approvers)
                + (f" until {p.deadline:%H:%M} UTC" if p.deadline else "")
            )
        return Reply("\n".join(lines))

    def incidents(self) -> Reply:
        listed = sorted(self.supervisor.incidents.all(), key=lambda i: i.opened_at, reverse=True)
        if not listed:
            return Reply("No incidents.")
        lines = [
            f"`{safe(i.id)}` {safe(i.status.value)} · {safe(i.environment)}/{safe(i.model)} · "
            f"{safe(i.symptom.value)} · opened {i.opened_at:%Y-%m-%d %H:%M}"
            for i in listed[:MAX_LISTED]
        ]
        if len(listed) > MAX_LISTED:
            lines.append(f"_…and {len(listed) - MAX_LISTED} older_")
        return Reply("\n".join(lines), [section("\n".join(lines))])

    def explain(self, incident_id: str) -> Reply:
        inc = self.supervisor.incidents.get(incident_id)
        if inc is None:
            return self._unknown(incident_id)
        paused = self.pause.paused_by(inc.model)
        blocks = incident_blocks(
            inc,
            self.supervisor.state(incident_id),
            buttons=False,
            paused_by=None if paused is None else f"by {paused.by}",
        )
        return Reply(safe(f"Incident {inc.id}: {inc.status.value}"), blocks)

    # ------------------------------------------------------------------ approvals

    def check_answer(self, incident_id: str, caller: Caller, decision: str) -> Reply | None:
        """None if ``caller`` may answer; else the refusal (audited when it is about who)."""
        sup = self.supervisor
        inc = sup.incidents.get(incident_id)
        if inc is None:
            return self._unknown(incident_id)
        if inc.status is not IncidentStatus.AWAITING_APPROVAL:
            return Reply(
                f"`{safe(incident_id)}` is {safe(inc.status.value)}, not awaiting approval.",
                ok=False,
            )
        approvers = sup.refuse_non_approver(
            incident_id,
            caller.identity,
            decision,
            via="slack",
            slack_user=caller.slack_user,
            channel=caller.channel,
        )
        if approvers is None:
            return None
        verb = "approve" if decision == "approved" else "deny"
        return Reply(
            f":no_entry: You ({safe(caller.identity)}) may not {verb} `{safe(incident_id)}`; "
            "approvers are "
            + (", ".join(safe(a) for a in approvers) or "nobody")
            + ". The attempt is recorded in the audit log.",
            ok=False,
        )

    def answer(self, incident_id: str, caller: Caller, decision: str, comment: str = "") -> Reply:
        """Approve (``decision='approved'``) or deny; resumes the paused graph."""
        refused = self.check_answer(incident_id, caller, decision)
        if refused is not None:
            return refused
        note = f"via Slack by {caller.slack_user}" + (f": {comment}" if comment else "")
        try:
            if decision == "approved":
                self.supervisor.approve(incident_id, caller.identity, note)
            else:
                self.supervisor.deny(incident_id, caller.identity, note)
        except SupervisorError as err:
            return Reply(f":warning: {safe(err)}", ok=False)
        if not self.supervisor.leading():
            return Reply(
                f"`{safe(incident_id)}`: {decision} by {safe(caller.identity)}; "
                "the leader replica applies it within seconds."
            )
        inc = self.supervisor.incidents.get(incident_id)
        now = inc.status.value if inc is not None else "unknown"
        return Reply(
            f"`{safe(incident_id)}`: {decision} by {safe(caller.identity)}; "
            f"incident is now {safe(now)}."
        )

    # ------------------------------------------------------------------ pause switch

    def may_switch(self, caller: Caller) -> bool:
        """People in any approver group of the policy may pause and resume."""
        policy = self.supervisor.policy
        return caller.identity in policy.members(list(policy.approver_groups))

    def switch(self, verb: str, model: str | None, caller: Caller) -> Reply:
        """``pause`` or ``resume`` ``model`` (None: everything)."""
        scope = f"`{safe(model)}`" if model else "all models"
        if not self.may_switch(caller):
            self.pause.record_refused(verb, model, caller.identity, via="slack")
            return Reply(
                f":no_entry: You ({safe(caller.identity)}) may not {verb} the supervisor; "
                "people in the policy's approver groups may. The attempt is recorded.",
                ok=False,
            )
        try:
            if verb == "pause":
                changed = self.pause.pause(
                    model, caller.identity, f"via Slack by {caller.slack_user}"
                )
            else:
                changed = self.pause.resume(
                    model, caller.identity, f"via Slack by {caller.slack_user}"
                )
        except SupervisorError as err:
            return Reply(f":warning: {safe(err)}", ok=False)
        if verb == "pause":
            text = (
                f":double_vertical_bar: Paused {scope}: incidents are still investigated and "
                "reported, no action runs."
                if changed
                else f"{scope.capitalize()} already paused."
            )
        else:
            text = f":arrow_forward: Resumed {scope}." if changed else f"{scope} was not paused."
            if changed and model and self.pause.state().global_ is not None:
                text += " A global pause still holds."
        return Reply(text)

    def _unknown(self, incident_id: str) -> Reply:
        return Reply(f"No incident `{safe(incident_id)}`; `/mlops incidents` lists them.", ok=False)
