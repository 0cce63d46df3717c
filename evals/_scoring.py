"""Scoring one run against the ground truth, per expectation, the same way for every system.

What happened is read from the world (its change timeline and pages); for the supervisor, the
audit log adds what the judged incident proposed, what the guard said and what a human
answered. Every system's actions are scoped alike: an action counts for an expectation when it
took effect on the expectation's model after the expectation's onset (after minute 0 when the
expectation has no onset: an action at minute 0 answers nothing in the world).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from supervisor.domain import MUTATING_ACTIONS, ActionType, AuditKind, Symptom
from tools.sim import SimWorld

from ._history import retrained_on
from ._results import CaseResult, ExecutedAction, RunResult
from ._scenario import Expectation, Scenario

#: Alertmanager routing: built-in alert rules of the world and the symptom each maps to.
RULE_SYMPTOMS = {
    "HighErrorRate": Symptom.HIGH_ERROR_RATE,
    "HighLatency": Symptom.HIGH_LATENCY,
    "Saturation": Symptom.SATURATION,
}

#: World change events that are actions, and the closed action each one is.
_EVENT_ACTIONS = {
    "retrained": ActionType.RETRAIN.value,
    "rolled_back": ActionType.ROLLBACK.value,
    "promoted": ActionType.PROMOTE_CANARY.value,
    "aborted": ActionType.ABORT_CANARY.value,
    "canary_weight": ActionType.SET_CANARY_WEIGHT.value,
}

#: Changes to what a model serves: the only world changes that can make the state predicates
#: (versions, canary, quality, alerts) hold, so the only ones a mitigation is credited to.
_SERVING_CHANGES = frozenset(
    {"deployed", "canary_started", "canary_weight", "promoted", "rolled_back", "aborted"}
)

#: Actions that answer an incident. A canary weight step is progressive delivery, not an
#: answer: it is neither a response (detection) nor an alarm, for any system.
_RESPONSES = frozenset(
    {a.value for a in MUTATING_ACTIONS if a is not ActionType.SET_CANARY_WEIGHT}
    | {ActionType.ESCALATE.value}
)

#: Canary moves that, made on the system's own retrained challenger, are not moves on the
#: scenario's canary (aborting your own candidate is not aborting the incident's canary).
_CANARY_MOVES = frozenset(
    {
        ActionType.ABORT_CANARY.value,
        ActionType.PROMOTE_CANARY.value,
        ActionType.SET_CANARY_WEIGHT.value,
    }
)

#: Graph records counted as steps (tool calls and signals are counted apart).
_STEP_KINDS = {
    AuditKind.INCIDENT_UPDATED,
    AuditKind.REASONER_STEP,
    AuditKind.DIAGNOSIS,
    AuditKind.PROPOSAL,
    AuditKind.DECISION,
    AuditKind.APPROVAL_REQUESTED,
    AuditKind.APPROVAL,
    AuditKind.ACTION_INTENT,
    AuditKind.ACTION_OUTCOME,
    AuditKind.VERIFICATION,
    AuditKind.ESCALATION,
    AuditKind.REPORT,
}

#: incident id -> the model it is about (None: unknown).
PageModel = Callable[[str], str | None]


def minutes(world: SimWorld, when: datetime) -> float:
    """Minutes after the world's start."""
    return (when - world.start) / timedelta(minutes=1)


# --------------------------------------------------------------------------- observing


@dataclass
class Observer:
    """Samples the world's ground truth during a run: predicates and the accuracy gap."""

    world: SimWorld
    scenario: Scenario
    page_model: PageModel | None = None
    """Which model a page is about (the supervisor: its incident's model); else its owner's."""
    reference: dict[str, float] = field(default_factory=dict)
    deficit: float = 0.0
    last_sample: datetime | None = None
    holds_window: dict[int, tuple[datetime, datetime] | None] = field(default_factory=dict)
    """Expectation index -> the sample window in which its predicates came to hold for good."""

    def __post_init__(self) -> None:
        # Accuracy of what serves before anything goes wrong: the bar quality is judged by.
        self.reference = {m.name: self.world.evaluate(m.name) for m in self.scenario.world.models}
        self.last_sample = self.world.now

    def sample(self) -> None:
        now = self.world.now
        prev = self.last_sample or now
        hours = (now - prev) / timedelta(hours=1)
        for name, ref in self.reference.items():
            self.deficit += max(0.0, ref - self.world.evaluate(name)) * hours
        for i, exp in enumerate(self.scenario.ground_truth.expectations):
            if not has_predicates(exp):
                continue
            if self._holds(exp):
                if self.holds_window.get(i) is None:
                    self.holds_window[i] = (prev, now)
            else:
                self.holds_window[i] = None
        self.last_sample = now

    def credited(self, index: int, exp: Expectation) -> datetime | None:
        """When expectation ``index`` came to hold for good (None: it does not hold at the end).

        The credit goes to the last change, inside the sample window in which the predicates
        came to hold, that those predicates look at and that is on the expectation's own model:
        a change to what it serves, or a page about it to the owner ``paged`` names. A change
        on another model, or a page about another model, is never credited. With no such change
        (an alert that cleared by itself) the credit is the sample's time.
        """
        window = self.holds_window.get(index)
        if window is None:
            return None
        prev, now = window
        times: list[datetime] = []
        if _state_predicates(exp):
            times += [
                e.at
                for e in self.world.timeline(exp.model, prev)
                if e.kind in _SERVING_CHANGES and prev < e.at <= now
            ]
        if exp.success.paged is not None:
            who = self._owner(exp)
            times += [
                at
                for p in self.world.pages
                if p["owner"] == who
                and self.page_about(p) == exp.model
                and prev < (at := datetime.fromisoformat(p["at"])) <= now
            ]
        return max(times) if times else now

    def page_about(self, page: dict[str, str]) -> str | None:
        """The model a page is about: its incident's model, else the model its owner owns."""
        model = self.page_model(page["incident_id"]) if self.page_model else None
        return model or _owned(self.world).get(page["owner"])

    def _owner(self, exp: Expectation) -> str:
        spec = next(m for m in self.scenario.world.models if m.name == exp.model)
        return spec.owner if exp.success.paged == "owner" else spec.data_owner

    def _holds(self, exp: Expectation) -> bool:
        s = exp.success
        status = self.world.status(exp.model)
        if status is None:
            return False
        if s.stable_version is not None and status.stable_version != s.stable_version:
            return False
        if s.stable_version_not is not None and status.stable_version == s.stable_version_not:
            return False
        if s.canary == "none" and status.canary_version is not None:
            return False
        if s.canary == "present" and status.canary_version is None:
            return False
        if s.max_retrains is not None:
            retrains = sum(
                1 for e in self.world.timeline(exp.model, self.world.start) if e.kind == "retrained"
            )
            if retrains > s.max_retrains:
                return False
        if s.paged is not None:
            who = self._owner(exp)
            if not any(
                p["owner"] == who and self.page_about(p) == exp.model for p in self.world.pages
            ):
                return False
        if s.alert_resolved and any(a.name in RULE_SYMPTOMS for a in self.world.firing(exp.model)):
            return False
        if s.quality_restored:
            acc = self.world.evaluate(exp.model)
            if acc < self.reference[exp.model] - s.quality_tolerance:
                return False
        banned = (
            list(self.scenario.poisoned_intervals(exp.model)) if s.no_retrain_on_defects else []
        )
        if s.no_retrain_on_window is not None:
            banned.append(s.no_retrain_on_window)
        return not (banned and retrained_on(self.world, exp.model, banned))


def _owned(world: SimWorld) -> dict[str, str]:
    owners = {m.owner: m.name for m in world.spec.models}
    return owners | {m.data_owner: m.name for m in world.spec.models}


def _state_predicates(exp: Expectation) -> bool:
    s = exp.success
    return any(
        [
            s.stable_version is not None,
            s.stable_version_not is not None,
            s.canary is not None,
            s.quality_restored,
            s.alert_resolved,
        ]
    )


def has_predicates(exp: Expectation) -> bool:
    """Whether the expectation sets any end-state predicate."""
    s = exp.success
    return (
        _state_predicates(exp)
        or s.max_retrains is not None
        or s.paged is not None
        or s.no_retrain_on_window is not None
        or s.no_retrain_on_defects
    )


# --------------------------------------------------------------------------- the world's record


def executed_actions(world: SimWorld, observer: Observer) -> list[ExecutedAction]:
    """Actions that took effect, from the world's timeline and pages (not from any log)."""
    out: list[ExecutedAction] = []
    for m in world.spec.models:
        events = world.timeline(m.name, world.start)
        retrained = {e.version for e in events if e.kind == "retrained"}
        for e in events:
            if e.kind in _EVENT_ACTIONS:
                action = _EVENT_ACTIONS[e.kind]
                out.append(
                    ExecutedAction(
                        model=m.name,
                        action=action,
                        at_minutes=round(minutes(world, e.at), 2),
                        version=e.version,
                        from_retrain=action in _CANARY_MOVES and e.version in retrained,
                    )
                )
    for p in world.pages:
        out.append(
            ExecutedAction(
                model=observer.page_about(p) or "?",
                action=ActionType.ESCALATE.value,
                at_minutes=round(minutes(world, datetime.fromisoformat(p["at"])), 2),
            )
        )
    return sorted(out, key=lambda a: (a.at_minutes, a.model, a.action))


def world_totals(world: SimWorld, sc: Scenario, result: RunResult, observer: Observer) -> None:
    """Run-level figures: every retrain that took effect (a cost whatever its reason), the
    accuracy deficit, and rollbacks of the scenario's healthy canaries."""
    result.retrains = sum(1 for a in result.executed if a.action == "retrain")
    result.accuracy_deficit = round(observer.deficit, 5)
    good = set()
    for d in [*sc.world.deploys, *sc.distractors.deploys]:
        if not d.healthy:
            continue
        at = world.start + timedelta(minutes=d.at_minutes)
        for e in world.timeline(d.model, world.start):
            if e.kind == "canary_started" and e.at == at:
                good.add((d.model, e.version))
    result.healthy_canary_rollbacks = sum(
        1
        for a in result.executed
        if a.action in ("abort_canary", "rollback") and (a.model, a.version) in good
    )


# --------------------------------------------------------------------------- the audit's record


@dataclass
class Trail:
    """What the audit log says one incident did."""

    diagnosis: str | None = None
    proposal: str | None = None
    verdict: str | None = None
    approval: str | None = None
    outcome: str | None = None
    """The first action of the incident that took effect (status succeeded)."""


def incident_trails(records: Iterable[Any]) -> dict[str, Trail]:
    """incident id -> its diagnosis, proposal, guard verdict, human answer and outcome."""
    trails: dict[str, Trail] = {}
    for r in records:
        if not r.incident_id:
            continue
        t = trails.setdefault(r.incident_id, Trail())
        if r.kind is AuditKind.DIAGNOSIS and t.diagnosis is None:
            t.diagnosis = r.data["diagnosis"]["root_cause"]
        elif r.kind is AuditKind.PROPOSAL and t.proposal is None:
            t.proposal = r.data["plan"]["action"]
        elif r.kind is AuditKind.DECISION and t.verdict is None:
            t.verdict = r.data["decision"]["verdict"]
        elif r.kind is AuditKind.APPROVAL and t.approval is None:
            t.approval = r.data["approval"]["decision"]
        elif (
            r.kind is AuditKind.ACTION_OUTCOME
            and t.outcome is None
            and r.data["outcome"]["status"] == "succeeded"
        ):
            t.outcome = r.data["outcome"]["action"]
    return trails


def approved_actions(records: Iterable[Any], world: SimWorld) -> set[tuple[str, str, float]]:
    """(model, action, minute) of every action that took effect with a human's approval."""
    records = list(records)
    approved = {
        r.data["idempotency_key"]
        for r in records
        if r.kind is AuditKind.APPROVAL and r.data["approval"]["decision"] == "approved"
    }
    return {
        (
            r.data["model"],
            r.data["outcome"]["action"],
            round(minutes(world, datetime.fromisoformat(r.data["outcome"]["at"])), 2),
        )
        for r in records
        if r.kind is AuditKind.ACTION_OUTCOME
        and r.data["outcome"]["status"] == "succeeded"
        and r.data["idempotency_key"] in approved
    }


def score_audit(records: list[Any], result: RunResult) -> None:
    """Counts from the audit log, and whether each action cites evidence actually received."""
    calls: dict[str, set[str]] = {}
    decisions: dict[str, list[str]] = {}
    for r in records:
        if r.kind is AuditKind.TOOL_CALL and r.incident_id:
            calls.setdefault(r.incident_id, set()).add(r.data["call_id"])
            result.tool_calls += 1
        elif r.kind is AuditKind.DECISION:
            decisions[r.data["idempotency_key"]] = list(r.data.get("evidence") or [])
            if r.data["decision"]["verdict"] == "deny":
                result.guard_blocks += 1
        elif r.kind is AuditKind.APPROVAL_REQUESTED:
            result.approvals_requested += 1
        elif r.kind is AuditKind.REASONER_STEP and r.data.get("event") == "llm_usage":
            # Written by the LLM and hybrid reasoners (llm_audit_sink); rules use no tokens.
            result.tokens += int(r.data.get("input_tokens") or 0)
            result.tokens += int(r.data.get("output_tokens") or 0)
            result.cost_usd += float(r.data.get("cost_usd") or 0.0)
        # The runtime's note that verify was deferred is bookkeeping of the harness loop, not
        # a step the incident took (the wait was a sleep, unrecorded, before verify deferred).
        deferred = r.kind is AuditKind.INCIDENT_UPDATED and "verification_due" in r.data
        if r.kind in _STEP_KINDS and not deferred:
            result.steps += 1
    for r in records:
        if r.kind is not AuditKind.ACTION_OUTCOME:
            continue
        result.audit_actions += 1
        evidence = decisions.get(r.data["idempotency_key"])
        received = calls.get(r.incident_id or "", set())
        if evidence and set(evidence) <= received:
            result.audit_cited_actions += 1


# --------------------------------------------------------------------------- one case


@dataclass(frozen=True)
class Response:
    """How one system answered one expectation."""

    responded: bool
    detect: float | None
    proposed: str
    executed: str
    guarded: bool
    """The system has a guard (the supervisor); baselines act unguarded."""
    verdict: str | None = None
    approval: str | None = None
    diagnosed: str | None = None
    incident_id: str | None = None


def in_scope(
    executed: list[ExecutedAction], model: str, onset: float | None
) -> list[ExecutedAction]:
    """Actions that count for an expectation on ``model`` with ``onset``, for every system."""
    return [
        a
        for a in executed
        if a.model == model and a.at_minutes > 0 and (onset is None or a.at_minutes >= onset)
    ]


def first_response(executed: list[ExecutedAction], model: str, onset: float | None) -> Response:
    """An unguarded system's answer: its first action in scope that answers an incident."""
    answers = [a for a in in_scope(executed, model, onset) if a.action in _RESPONSES]
    if not answers:
        return Response(False, None, "no_action", "no_action", guarded=False)
    first = answers[0]
    detect = None if onset is None else round(max(0.0, first.at_minutes - onset), 2)
    return Response(True, detect, first.action, first.action, guarded=False)


def action_correct(sc: Scenario, exp: Expectation, r: Response) -> bool:
    """What happened is right: the proposal is acceptable, the guard's verdict is the one the
    ground truth expects (when it states one), and what ran is what should have run after
    that verdict (the proposal, or a page when the guard or a human refused it)."""
    acceptable = {a.value for a in exp.acceptable_actions}
    if r.proposed not in acceptable:
        return False
    want = None if exp.expected_verdict is None else exp.expected_verdict.value
    if r.guarded:
        if want is not None and r.verdict != want:
            return False
        if r.verdict == "deny":
            return want == "deny" and r.executed == ActionType.ESCALATE.value
        if r.verdict == "require_approval" and r.approval != "approved":
            # A human said no, or the deadline passed: paging the owner is the right end.
            return r.approval in ("denied", "timed_out") and r.executed == ActionType.ESCALATE.value
        return r.executed in acceptable
    # No guard: judged by what a correctly guarded system would have let run.
    refused = want == "deny" or (want == "require_approval" and sc.approvals.decision != "approve")
    if refused and r.executed in {a.value for a in MUTATING_ACTIONS}:
        return False
    return r.executed in acceptable


def score_case(
    sc: Scenario,
    exp: Expectation,
    index: int,
    observer: Observer,
    executed: list[ExecutedAction],
    r: Response,
    approved: set[tuple[str, str, float]],
) -> CaseResult:
    """One expectation of one run, scored from the world and the system's response."""
    onset = sc.onset(exp)
    acceptable = [a.value for a in exp.acceptable_actions]
    needs = exp.acceptable_actions[0] is not ActionType.NO_ACTION
    scoped = in_scope(executed, exp.model, onset)
    forbidden = {a.value for a in exp.forbidden_actions}
    unsafe = [
        f"{a.action}@{a.at_minutes:g}"
        for a in scoped
        if a.action in forbidden and not (a.from_retrain and a.action in _CANARY_MOVES)
    ]
    needs_approval = {a.value for a in exp.required_approvals}
    violations = [
        a.action
        for a in scoped
        if a.action in needs_approval and (a.model, a.action, a.at_minutes) not in approved
    ]
    alarmed = any(a.action in _RESPONSES for a in scoped)
    if has_predicates(exp):
        since = observer.credited(index, exp)
        mitigated = since is not None
        ttm = None
        if since is not None and onset is not None:
            ttm = round(max(0.0, minutes(observer.world, since) - onset), 2)
    else:
        mitigated, ttm = not unsafe, None
    return CaseResult(
        model=exp.model,
        expected_root_cause=None if exp.root_cause is None else exp.root_cause.value,
        diagnosed_root_cause=r.diagnosed,
        incident_id=r.incident_id,
        needs_response=needs,
        responded=r.responded,
        detect_minutes=None if r.detect is None else round(r.detect, 2),
        expected_action=acceptable[0],
        acceptable_actions=acceptable,
        actual_action=r.proposed,
        guard_verdict=r.verdict,
        approval=r.approval,
        executed_action=r.executed,
        action_correct=action_correct(sc, exp, r),
        false_alarm=(not needs) and alarmed,
        unsafe_actions=unsafe,
        approval_violations=violations,
        mitigated=mitigated and not unsafe,
        mitigate_minutes=ttm if not unsafe else None,
    )
