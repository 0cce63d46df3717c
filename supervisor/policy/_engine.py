"""The guard: evaluates a policy against one action plan and returns the decision.

Deterministic: the same policy, plan, diagnosis, tool results, history counts and clock time
always give the same decision. Nothing here reads the wall clock, the network or a global.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Protocol

from supervisor._clock import Clock
from supervisor.domain import (
    ActionPlan,
    ActionType,
    Diagnosis,
    PolicyDecision,
    ToolResult,
    Verdict,
)

from ._model import DEFAULT_RULE_ID, Policy, Rule, RuleMatch

#: Higher is more restrictive; the most restrictive matching effect wins.
SEVERITY: dict[Verdict, int] = {Verdict.ALLOW: 0, Verdict.REQUIRE_APPROVAL: 1, Verdict.DENY: 2}


class ActionHistory(Protocol):
    """How often an action already ran: the guard's only view of the past (for rate limits)."""

    def count(self, action: ActionType, model: str, environment: str, since: datetime) -> int:
        """Number of times ``action`` ran on ``model`` in ``environment`` at or after ``since``."""
        ...


@dataclass(frozen=True)
class _Facts:
    """What one decision is made on, gathered once."""

    plan: ActionPlan
    diagnosis: Diagnosis
    results: Sequence[ToolResult]
    history: ActionHistory
    now: datetime

    def cited_ok_tools(self) -> set[str]:
        """Tools with an ``ok`` result the incident received AND the diagnosis cites.

        The tool name comes from the received result, not from the evidence's own claim, so a
        citation of a call that never happened (or failed) does not count.
        """
        ok_by_call = {r.call_id: r.tool for r in self.results if r.ok}
        return {ok_by_call[e.call_id] for e in self.diagnosis.evidence if e.call_id in ok_by_call}


def _match(m: RuleMatch, f: _Facts) -> list[str] | None:
    """Why the rule's conditions hold (one fragment each), or None if one does not.

    Cheap checks first; the history port is asked last, and only if everything else held.
    """
    why: list[str] = []
    target, diag = f.plan.target, f.diagnosis
    if m.actions is not None:
        if f.plan.action not in m.actions:
            return None
        why.append(f"action {f.plan.action.value}")
    if m.models is not None:
        if not any(fnmatchcase(target.model, g) for g in m.models):
            return None
        why.append(f"model {target.model}")
    if m.environments is not None:
        if not any(fnmatchcase(target.environment, g) for g in m.environments):
            return None
        why.append(f"environment {target.environment}")
    if m.root_causes is not None:
        if diag.root_cause not in m.root_causes:
            return None
        why.append(f"root cause {diag.root_cause.value}")
    if m.not_root_causes is not None:
        if diag.root_cause in m.not_root_causes:
            return None
        why.append(f"root cause {diag.root_cause.value} not excluded")
    if m.confidence_below is not None:
        if not diag.confidence < m.confidence_below:
            return None
        why.append(f"confidence {diag.confidence:g} < {m.confidence_below:g}")
    if m.confidence_at_least is not None:
        if not diag.confidence >= m.confidence_at_least:
            return None
        why.append(f"confidence {diag.confidence:g} >= {m.confidence_at_least:g}")
    if m.missing_evidence is not None:
        cited = f.cited_ok_tools()
        missing = [tool for tool in m.missing_evidence if tool not in cited]
        if not missing:
            return None
        why.append(f"no cited ok result from {', '.join(missing)}")
    if m.freeze is not None:
        inside = [w.describe() for w in m.freeze if w.contains(f.now)]
        if not inside:
            return None
        why.append(f"{f.now.isoformat()} inside freeze {inside[0]}")
    if m.rate_limit is not None:
        limit = m.rate_limit
        since = f.now - limit.window()
        counted = limit.counted(f.plan.action)
        ran = sum(f.history.count(a, target.model, target.environment, since) for a in counted)
        if ran < limit.max:
            return None
        names = " or ".join(a.value for a in counted)
        why.append(f"{ran} {names} in the last {limit.per_hours:g}h (max {limit.max})")
    return why or ["matches every plan"]


class PolicyEngine:
    """Decides allow / deny / require_approval for action plans under one policy.

    Precedence:
      1. Every rule whose ``match`` holds is collected (conditions AND-ed, list entries OR-ed).
      2. The most restrictive effect among them wins: deny > require_approval > allow.
      3. The decision lists ALL matching rules, winning effect first, then by severity, then
         in file order, with one reason line each (overridden rules are marked so).
      4. If no rule matches, ``defaults.verdict`` decides and the rule id is ``default``.
    ``escalate`` and ``no_action`` get no special treatment: the policy file must allow them.

    Dry run: the decision is a dry run if ``defaults.dry_run`` or any matching rule says so.
    Approvers: the groups of the matching require_approval rules (each falling back to
    ``defaults.approvers``), expanded to people; the timeout is the shortest such rule's,
    falling back to ``defaults.approval_timeout_minutes``.
    """

    def __init__(self, policy: Policy, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock

    @property
    def policy(self) -> Policy:
        return self._policy

    def decide(
        self,
        plan: ActionPlan,
        diagnosis: Diagnosis,
        results: Sequence[ToolResult],
        history: ActionHistory,
    ) -> PolicyDecision:
        """Evaluate every rule against this plan and return the decision, naming its rules."""
        now = self._clock.now()
        now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
        facts = _Facts(plan, diagnosis, results, history, now)
        matched: list[tuple[int, Rule, list[str]]] = []
        for index, rule in enumerate(self._policy.rules):
            why = _match(rule.match, facts)
            if why is not None:
                matched.append((index, rule, why))
        if not matched:
            return self._default(plan, now)

        matched.sort(key=lambda m: (-SEVERITY[m[1].effect], m[0]))
        verdict = matched[0][1].effect
        reasons = []
        for _, rule, why in matched:
            label = rule.effect.value
            if rule.effect is not verdict:
                label += f", overridden by {verdict.value}"
            reasons.append(f"{rule.id} ({label}): {rule.description} [{'; '.join(why)}]")
        deciding = [rule for _, rule, _ in matched if rule.effect is verdict]
        groups: list[str] = []
        timeout: float | None = None
        if verdict is Verdict.REQUIRE_APPROVAL:
            defaults = self._policy.defaults
            for rule in deciding:
                groups.extend(g for g in rule.approvers or defaults.approvers if g not in groups)
            timeout = min(
                r.approval_timeout_minutes or defaults.approval_timeout_minutes for r in deciding
            )
        return PolicyDecision(
            verdict=verdict,
            action=plan.action,
            rule_ids=[rule.id for _, rule, _ in matched],
            reasons=reasons,
            dry_run=self._policy.defaults.dry_run or any(r.dry_run for _, r, _ in matched),
            approver_groups=groups,
            approvers=self._policy.members(groups),
            approval_timeout_s=None if timeout is None else timeout * 60,
            decided_at=now,
        )

    def _default(self, plan: ActionPlan, now: datetime) -> PolicyDecision:
        defaults = self._policy.defaults
        verdict = defaults.verdict
        approval = verdict is Verdict.REQUIRE_APPROVAL
        groups = list(defaults.approvers) if approval else []
        where = f"{plan.target.environment}/{plan.target.model}"
        return PolicyDecision(
            verdict=verdict,
            action=plan.action,
            rule_ids=[DEFAULT_RULE_ID],
            reasons=[
                f"{DEFAULT_RULE_ID} ({verdict.value}): no rule matched "
                f"{plan.action.value} on {where}; the policy default applies"
            ],
            dry_run=defaults.dry_run,
            approver_groups=groups,
            approvers=self._policy.members(groups),
            approval_timeout_s=defaults.approval_timeout_minutes * 60 if approval else None,
            decided_at=now,
        )


def approval_deadline(decision: PolicyDecision) -> datetime | None:
    """When an unanswered approval request turns into a deny; None if no approval is needed."""
    if decision.verdict is not Verdict.REQUIRE_APPROVAL or decision.approval_timeout_s is None:
        return None
    return decision.decided_at + timedelta(seconds=decision.approval_timeout_s)
