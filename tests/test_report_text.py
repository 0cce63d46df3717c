"""Text a reviewer reads: check findings phrased from direction and result, reports without
Python reprs (issue 15, requirement 3)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from supervisor.domain import ToolResult, ToolStatus
from supervisor.graph import IncidentState, render_report
from supervisor.reasoners import Check, evaluate_check, load_playbooks
from supervisor.reasoners._playbook import Condition
from supervisor.text import phrase_check, subject_of

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).parent / "snapshots"
#: What a Python repr or the old phrasing leaves in text: None/True/False, a dict or list repr,
#: "not so:" (which read as the opposite of what it meant), "(observed ...)".
REPR = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|\{'|\['|not so|\(observed ")


def _result(check: Check, status: ToolStatus, data: dict[str, Any]) -> ToolResult:
    return ToolResult(call_id="c-1", tool=check.tool, status=status, data=data, message="")


def _nested(path: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    *parents, leaf = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return out


def _values(check: Check | Condition) -> tuple[Any, Any]:
    """An observed value that makes the check hold, and one that makes it fail."""
    t = check.value
    if isinstance(t, bool):
        return (t, not t) if check.op == "==" else (not t, t)
    if isinstance(t, str):
        return (t, t + "-other") if check.op == "==" else (t + "-other", t)
    return {
        ">=": (t + 1, t - 1),
        ">": (t + 1, t),
        "<": (t - 1, t),
        "<=": (t, t + 1),
        "==": (t, t + 1),
        "!=": (t + 1, t),
    }[check.op]


def _data(check: Check, value: Any) -> dict[str, Any]:
    """A result whose main field is ``value``, with its minimum samples reached and its further
    conditions (``also``) holding, so the main comparison alone decides the check."""
    data = _nested(check.field, value)
    extra: list[tuple[str, Any]] = [(m.field, m.value) for m in check.min_samples]
    for m in check.min_samples:
        if m.power is not None:
            # A minimum derived from the result: a large sample at a 50% baseline reaches it.
            extra += [(m.field, 1_000_000), (m.power.trials, 1_000_000)]
            extra += [(m.power.events, 500_000)]
    extra += [(c.field, _values(c)[0]) for c in check.also]
    for path, v in extra:
        node = data
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return data


def _shipped_checks() -> list[tuple[str, Check]]:
    books = load_playbooks(ROOT / "playbooks")
    return [(b.root_cause.value, c) for b in books.playbooks for c in b.checks]


@pytest.mark.parametrize(("cause", "check"), _shipped_checks(), ids=lambda v: getattr(v, "id", v))
def test_every_shipped_check_reads_right_in_every_case(cause: str, check: Check) -> None:
    held_value, failed_value = _values(check)
    held = evaluate_check(check, _result(check, ToolStatus.OK, _data(check, held_value)))
    failed = evaluate_check(check, _result(check, ToolStatus.OK, _data(check, failed_value)))
    missing = evaluate_check(check, _result(check, ToolStatus.OK, {}))
    no_data = evaluate_check(check, _result(check, ToolStatus.NO_DATA, {}))
    for cr in (held, failed, missing, no_data):
        cr.cause = cause
    assert (held.outcome, failed.outcome, missing.outcome) == ("pass", "fail", "unknown")
    texts = [cr.sentence() for cr in (held, failed, missing, no_data)]
    for text in texts:
        assert not REPR.search(text), text
    words = cause.replace("_", " ")
    # Held: the playbook author's finding. Not held: derived from op and values, and it says
    # what the check would have meant. Undecided: says so and what was missing.
    assert texts[0].startswith(check.finding.split("{")[0])
    purpose = {"rule_out": "rule out", "support": "support"}.get(check.role, "point to")
    assert texts[1].endswith(f"so it does not {purpose} {words}") or check.op == "!="
    assert texts[1].startswith(subject_of(check.field, check.args) + " is ")
    assert texts[2].startswith("undecided: ")
    # No data is undecided unless the check says how it counts (on_no_data); then it says so.
    assert "returned no data" in texts[3]
    if no_data.outcome == "unknown":
        assert texts[3].startswith("undecided: ")
    elif no_data.outcome == "fail":
        assert f"counts as not holding, so it does not {purpose} {words}" in texts[3]
    else:
        assert "counts as holding: " in texts[3]


@pytest.mark.parametrize(
    ("op", "observed", "expected"),
    [
        (">=", 0.4487, "saturation is 0.449, below 0.85, so it does not point to infrastructure"),
        (">", 0.85, "saturation is 0.85, at or below 0.85, so it does not point to infrastructure"),
        ("<", 0.9, "saturation is 0.9, at or above 0.85, so it does not point to infrastructure"),
        ("<=", 0.9, "saturation is 0.9, above 0.85, so it does not point to infrastructure"),
        ("==", 0.9, "saturation is 0.9, not 0.85, so it does not point to infrastructure"),
        ("!=", 0.85, "saturation is 0.85, the one value that does not point to infrastructure"),
    ],
)
def test_a_check_that_did_not_hold_is_phrased_from_its_direction(
    op: str, observed: float, expected: str
) -> None:
    text = phrase_check(
        outcome="not_held",
        finding="serving saturation is {value} (>= 0.85)",
        subject=subject_of("value", {"metric": "saturation"}),
        op=op,
        observed=observed,
        threshold=0.85,
        role="confirm",
        cause="infrastructure",
        tool="get_metric",
    )
    assert text == expected


def test_a_rule_out_that_did_not_fire_says_what_it_would_have_excluded() -> None:
    text = phrase_check(
        outcome="not_held",
        finding="the most recent inputs carry {value} upstream defect(s)",
        subject=subject_of("defect_count", {}),
        op=">=",
        observed=0,
        threshold=1,
        role="rule_out",
        cause="covariate_drift",
        tool="get_drift_report",
    )
    assert text == "defect count is 0, below 1, so it does not rule out covariate drift"


def test_subjects_read_as_words() -> None:
    assert subject_of("ratio.error_rate", {}) == "canary-to-stable error rate ratio"
    assert subject_of("value", {"metric": "latency_p99"}) == "latency p99"
    assert subject_of("minutes_since_last_deploy", {}) == "minutes since last deploy"


def _state(**extra: Any) -> IncidentState:
    state: IncidentState = {
        "incident": {
            "id": "inc-0002-churn",
            "model": "churn",
            "environment": "production",
            "symptom": "data_drift",
            "opened_at": "2026-01-05T08:50:00Z",
        },
        "status": "mitigated",
        "finding": {
            "diagnosis": {
                "root_cause": "covariate_drift",
                "confidence": 0.85,
                "reasoner": "rules",
                "playbook": "covariate-drift",
                "summary": "Covariate drift hurting accuracy: Evidently finds 0.6 of input "
                "features drifted.",
                "evidence": [
                    {
                        "call_id": "inc-0002-churn:investigate-3",
                        "tool": "get_drift_report",
                        "finding": "Evidently finds 0.6 of input features drifted",
                        "supports": True,
                    }
                ],
                "ruled_out": [
                    {
                        "root_cause": "benign_change",
                        "reason": "[benign-change] accuracy drop is 0.19, at or above 0.03, so "
                        "it does not point to benign change",
                        "call_ids": ["inc-0002-churn:investigate-4"],
                    }
                ],
            }
        },
        "plan": {
            "action": "retrain",
            "target": {"model": "churn", "environment": "production", "version": None},
            "parameters": {"window_hours": 0.5, "min_accuracy": 0.71, "message": "long text"},
            "expected_effect": "a new version trained on the last 0.5 h",
            "undo": "abort the new version's canary",
            "rationale": "The world moved and the data is sound.",
        },
        "decision": {
            "verdict": "require_approval",
            "rule_ids": ["retrain-needs-approval-in-production"],
            "dry_run": False,
            "reasons": ["retrain-needs-approval-in-production (require_approval): ml-oncall"],
        },
        "approval": {
            "decision": "approved",
            "by": "alice",
            "at": "2026-01-05T09:10:00Z",
            "comment": "",
        },
        "outcome": {"status": "succeeded", "detail": "a new version is canaried"},
        "verification": {
            "passed": True,
            "checks": [
                {"check": "new version canaried", "passed": True, "detail": "canary version is 3"}
            ],
        },
    }
    state.update(extra)  # type: ignore[typeddict-item]
    return state


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("report_retrain.md", _state()),
        (
            "report_escalated.md",
            _state(
                status="escalated",
                plan={},
                decision={},
                approval={},
                outcome={},
                verification={},
                escalation={"owner": "catalog-data", "reason": "upstream data defect"},
            ),
        ),
    ],
)
def test_report_matches_its_reviewed_snapshot(name: str, state: IncidentState) -> None:
    text = render_report(state)
    assert not REPR.search(text), REPR.search(text)
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_report_states_a_failed_verification_and_no_version() -> None:
    text = render_report(
        _state(
            verification={
                "passed": False,
                "checks": [{"check": "weight set", "passed": False, "detail": "weight is 0"}],
            }
        )
    )
    assert "**FAILED**: the symptom remains" in text
    assert "  - weight set: FAILED (weight is 0)" in text
    assert "- **Action:** retrain\n" in text  # no "on version None"
    assert "long text" not in text  # the notification message is not a parameter to show
