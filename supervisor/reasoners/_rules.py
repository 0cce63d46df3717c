"""The rules reasoner: deterministic, driven by playbooks, needs no network.

Playbooks are tried highest priority first. A playbook matches when every ``confirm`` check
passes, at least one ``confirm_any`` check passes (if it has any) and no ``rule_out`` check
passes. The first match is the diagnosis; every other playbook tried is listed as ruled out with
the check that rejected it. A check whose tool returned no data or an error is *unknown*, never
a pass: if no playbook matches and some were undecided, the diagnosis is insufficient_evidence.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from supervisor.domain import (
    ActionType,
    Diagnosis,
    Evidence,
    Incident,
    RootCause,
    RuledOut,
    TimeWindow,
    ToolResult,
    ToolStatus,
)
from supervisor.stats import min_samples_for_effect
from supervisor.text import CheckOutcome, phrase_check, plain, subject_of

from ._base import Finding
from ._playbook import Check, MinSamples, Playbook, PlaybookSet, field_value
from ._session import BudgetExceeded, InvestigationSession

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}

Outcome = Literal["pass", "fail", "unknown"]
#: An ``also`` condition that did not hold: (field, op, constant, value seen).
_Failed = tuple[str, str, Any, Any]


@dataclass
class CheckResult:
    check: Check
    outcome: Outcome
    result: ToolResult
    value: Any = None
    #: (count field, count seen, minimum) when the sample was too small to decide.
    short: tuple[str, Any, int] | None = None
    #: (field, op, constant, value seen) of the further condition (``also``) that did not hold,
    #: so the sentence names the condition that decided, not the main field.
    failed_also: _Failed | None = None

    #: The root cause of the playbook the check belongs to, for "... that would point to X".
    cause: str = "this root cause"

    def sentence(self) -> str:
        """The check in words: the playbook's finding when it held, otherwise a sentence derived
        from its direction and values (templates in :mod:`supervisor.text`)."""
        finding = _FIELD.sub(
            lambda m: _fmt(field_value(self.result.data, m.group(1))), self.check.finding
        ).replace("{value}", _fmt(self.value))
        # A no_data result can be decided by the check's on_no_data; the templates say so.
        outcome: CheckOutcome = (
            "undecided"
            if self.outcome == "unknown"
            else "held"
            if self.outcome == "pass"
            else "not_held"
        )
        field, op, threshold, observed = (
            (self.check.field, self.check.op, self.check.value, self.value)
            if self.failed_also is None or outcome != "not_held"
            else self.failed_also
        )
        return phrase_check(
            outcome=outcome,
            finding=finding,
            subject=subject_of(field, self.check.args),
            op=op,
            observed=observed,
            threshold=threshold,
            role=self.check.role,
            cause=self.cause,
            tool=self.result.tool,
            status=self.result.status.value,
            message=self.result.message,
            samples=self.short,
        )


#: ``{some.path}`` in a finding is replaced by that field of the tool result.
_FIELD = re.compile(r"\{(?!value\})([a-z_][a-z0-9_.]*)\}")


def _fmt(v: Any) -> str:
    if v is None or isinstance(v, bool | dict):
        return plain(v)  # "none", "yes"/"no", "k=v": never a Python repr in a finding
    if isinstance(v, list):
        return "; ".join(_fmt(x) for x in v) or "none"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@dataclass
class PlaybookVerdict:
    playbook: Playbook
    matched: bool
    undecided: bool
    checks: list[CheckResult] = field(default_factory=list)
    reason: str = ""


def evaluate_check(check: Check, result: ToolResult) -> CheckResult:
    """Decide one check on one tool result.

    The predicate (and its ``also`` conditions) is decided first; then each minimum sample that
    guards that outcome must be met, else the check is undecided (see ``MinSamples.guards``).
    """
    if result.status is not ToolStatus.OK:
        if result.status is ToolStatus.NO_DATA and check.on_no_data != "unknown":
            return CheckResult(check, check.on_no_data, result)
        return CheckResult(check, "unknown", result)
    value = field_value(result.data, check.field)
    if value is None:
        return CheckResult(check, "unknown", result)
    outcome, failed = _predicate(check, result.data)
    for need in check.min_samples:
        if outcome != "unknown" and need.guards not in ("both", outcome):
            continue
        have = field_value(result.data, need.field)
        minimum = _minimum(need, result.data)
        if minimum is None:
            assert need.power is not None  # only a derived minimum can be missing
            short = (need.power.events, field_value(result.data, need.power.events), 1)
            return CheckResult(check, "unknown", result, value, short=short)
        if not isinstance(have, int | float) or have < minimum:
            return CheckResult(check, "unknown", result, value, short=(need.field, have, minimum))
    return CheckResult(check, outcome, result, value, failed_also=failed)


def _predicate(check: Check, data: Any) -> tuple[Outcome, _Failed | None]:
    """The check's field and ``also`` conditions, ignoring sample sizes; with a fail, the
    ``also`` condition that failed (None when the main field did)."""
    conditions = [(check.field, check.op, check.value, True)]
    conditions += [(c.field, c.op, c.value, False) for c in check.also]
    for path, op, constant, main in conditions:
        got = field_value(data, path)
        if got is None and not main:
            # A test that could not be computed (e.g. no variance) decides nothing.
            return "unknown", None
        try:
            ok = _OPS[op](got, constant)
        except TypeError:
            return "unknown", None
        if not ok:
            return "fail", None if main else (path, op, constant, got)
    return "pass", None


def _minimum(need: MinSamples, data: Any) -> int | None:
    """The minimum a count must reach: the constant, or the power-derived size if larger.

    None when the power-derived size cannot be computed from the result (no baseline counts,
    an empty baseline, or a zero baseline rate that no ratio can move).
    """
    if need.power is None:
        return need.value
    p = need.power
    events = field_value(data, p.events)
    trials = field_value(data, p.trials)
    have = field_value(data, need.field)
    if not all(isinstance(x, int | float) for x in (events, trials, have)) or not have:
        return None
    derived = min_samples_for_effect(
        int(events),
        int(trials),
        effect=p.effect,
        size=p.size,
        alpha=p.alpha,
        power=p.power,
        # The baseline's size over the compared sample's, as observed (a 5% canary: 19).
        allocation=float(trials) / float(have),
    )
    return None if derived is None else max(need.value, derived)


def run_playbook(playbook: Playbook, session: InvestigationSession) -> PlaybookVerdict:
    """Run a playbook's checks (short-circuiting on the first decisive rejection)."""
    verdict = PlaybookVerdict(playbook, matched=False, undecided=False)
    any_checks = [c for c in playbook.checks if c.role == "confirm_any"]
    any_passed = False
    # rule_out and confirm checks first: they can end the playbook early.
    ordered = sorted(
        playbook.checks,
        key=lambda c: {"confirm": 0, "rule_out": 1, "confirm_any": 2, "support": 3}[c.role],
    )
    for check in ordered:
        if check.role == "confirm_any" and any_passed:
            continue
        cr = evaluate_check(check, session.call(check.tool, dict(check.args)))
        cr.cause = playbook.root_cause.value
        verdict.checks.append(cr)
        if check.role == "confirm" and cr.outcome != "pass":
            verdict.undecided = cr.outcome == "unknown"
            verdict.reason = cr.sentence()
            return verdict
        if check.role == "rule_out" and cr.outcome == "pass":
            verdict.reason = f"ruled out: {cr.sentence()}"
            return verdict
        if check.role == "confirm_any" and cr.outcome == "pass":
            any_passed = True
    if any_checks and not any_passed:
        outcomes = [c.outcome for c in verdict.checks if c.check.role == "confirm_any"]
        verdict.undecided = "unknown" in outcomes
        verdict.reason = "none of: " + "; ".join(
            c.sentence() for c in verdict.checks if c.check.role == "confirm_any"
        )
        return verdict
    verdict.matched = True
    return verdict


class RulesReasoner:
    """Deterministic reasoner over a set of playbooks."""

    name = "rules"

    def __init__(self, playbooks: PlaybookSet) -> None:
        self.playbooks = playbooks

    def investigate(self, incident: Incident, session: InvestigationSession) -> Finding:
        verdicts: list[PlaybookVerdict] = []
        try:
            # Every applicable playbook is run, so the report can say why each look-alike was
            # ruled out; the highest-priority match wins.
            for pb in self.playbooks.for_symptom(incident.symptom.value):
                verdicts.append(run_playbook(pb, session))
        except BudgetExceeded as err:
            return insufficient(f"investigation stopped: {err}", verdicts, session.results)
        matched = [v for v in verdicts if v.matched]
        if matched:
            winner = matched[0]
            for other in matched[1:]:
                other.reason = (
                    f"also consistent, but outranked by the more specific {winner.playbook.id!r} "
                    f"(priority {winner.playbook.priority} > {other.playbook.priority})"
                )
            return self._finding(winner, verdicts, session)
        undecided = [v.playbook.id for v in verdicts if v.undecided]
        why = (
            f"evidence missing for {undecided}"
            if undecided
            else "no playbook explains the evidence"
        )
        return insufficient(why, verdicts, session.results)

    def _finding(
        self, match: PlaybookVerdict, verdicts: list[PlaybookVerdict], session: InvestigationSession
    ) -> Finding:
        pb = match.playbook
        passed_support = [
            c for c in match.checks if c.check.role == "support" and c.outcome == "pass"
        ]
        confidence = min(0.99, pb.base_confidence + pb.support_bonus * len(passed_support))
        evidence = [
            Evidence(
                call_id=c.result.call_id,
                tool=c.result.tool,
                finding=c.sentence(),
                supports=c.outcome == "pass",
            )
            for c in match.checks
            if c.outcome != "unknown"
            and (c.check.role != "rule_out")
            and not (c.check.role in ("confirm_any", "support") and c.outcome != "pass")
        ]
        # rule_out checks that did not fire are evidence too: they exclude the look-alikes.
        evidence += [
            Evidence(
                call_id=c.result.call_id,
                tool=c.result.tool,
                finding=c.sentence(),
                supports=True,
            )
            for c in match.checks
            if c.check.role == "rule_out" and c.outcome == "fail"
        ]
        diagnosis = Diagnosis(
            poisoned_windows=_poisoned(pb, match),
            root_cause=pb.root_cause,
            confidence=round(confidence, 3),
            summary=f"{pb.title}: " + "; ".join(e.finding for e in evidence if e.supports) + ".",
            evidence=evidence,
            ruled_out=_ruled_out(v for v in verdicts if v is not match),
            playbook=pb.id,
            reasoner=self.name,
        )
        return Finding(
            diagnosis=diagnosis,
            action=pb.action.type,
            parameters=dict(pb.action.parameters),
            rationale=pb.action.rationale,
        )


def _poisoned(pb: Playbook, match: PlaybookVerdict) -> list[TimeWindow]:
    """An upstream defect poisons the window it was found in: no retrain may train on it."""
    if pb.root_cause is not RootCause.UPSTREAM_DATA_DEFECT:
        return []
    out = []
    for c in match.checks:
        data = c.result.data
        if c.result.tool == "get_drift_report" and c.result.ok and c.result.observed_at:
            start = c.result.observed_at - timedelta(minutes=int(data["window_minutes"]))
            out.append(TimeWindow(start=start, end=c.result.observed_at))
    return out[:1]


def _ruled_out(verdicts: Any) -> list[RuledOut]:
    seen: set[RootCause] = set()
    out = []
    for v in verdicts:
        if v.playbook.root_cause in seen:
            continue
        seen.add(v.playbook.root_cause)
        out.append(
            RuledOut(
                root_cause=v.playbook.root_cause,
                reason=f"[{v.playbook.id}] {v.reason}",
                call_ids=[c.result.call_id for c in v.checks],
            )
        )
    return out


def insufficient(
    why: str, verdicts: list[PlaybookVerdict], results: Sequence[ToolResult]
) -> Finding:
    """The honest answer when the evidence does not settle it: escalate to a human."""
    evidence = [
        Evidence(
            call_id=r.call_id,
            tool=r.tool,
            finding=f"{r.tool} returned {r.status.value}: {r.message}",
            supports=True,
        )
        for r in results
        if r.status is not ToolStatus.OK
    ][:8]
    return Finding(
        diagnosis=Diagnosis(
            root_cause=RootCause.INSUFFICIENT_EVIDENCE,
            confidence=0.0,
            summary=f"Root cause not established: {why}.",
            evidence=evidence,
            ruled_out=_ruled_out(verdicts),
            reasoner="rules",
        ),
        action=ActionType.ESCALATE,
        rationale="No playbook is confirmed by the evidence; a human must look.",
    )
