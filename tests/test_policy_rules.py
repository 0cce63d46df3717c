"""The guard's decisions: each rule kind alone, precedence, determinism, and default.yaml."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from supervisor import SimClock
from supervisor.domain import (
    ActionPlan,
    ActionTarget,
    ActionType,
    Diagnosis,
    Evidence,
    PolicyDecision,
    RootCause,
    ToolResult,
    ToolStatus,
    Verdict,
)
from supervisor.policy import Policy, PolicyEngine, approval_deadline, load_policy, parse_policy

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"
MONDAY = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # SimClock's default start, a Monday


class FakeHistory:
    """Counts actions from a list of (action, model, environment, at) runs."""

    def __init__(self, runs: Sequence[tuple[ActionType, str, str, datetime]] = ()) -> None:
        self.runs = list(runs)
        self.calls: list[tuple[ActionType, str, str, datetime]] = []

    def count(self, action: ActionType, model: str, environment: str, since: datetime) -> int:
        self.calls.append((action, model, environment, since))
        return sum(
            1
            for a, m, e, at in self.runs
            if (a, m, e) == (action, model, environment) and at >= since
        )


def plan(
    action: ActionType = ActionType.RETRAIN, model: str = "fraud", environment: str = "production"
) -> ActionPlan:
    return ActionPlan(
        action=action,
        target=ActionTarget(model=model, environment=environment),
        expected_effect="error rate back under 1%",
        undo="roll back to the previous version",
    )


def result(call_id: str, tool: str, status: ToolStatus = ToolStatus.OK) -> ToolResult:
    return ToolResult(call_id=call_id, tool=tool, status=status)


def diagnosis(
    root_cause: RootCause = RootCause.COVARIATE_DRIFT,
    confidence: float = 0.9,
    cites: Sequence[tuple[str, str]] = (
        ("c1", "drift_report"),
        ("q1", "get_model_quality"),
        ("d1", "get_drift_report"),
        ("k1", "compare_canary"),
    ),
) -> Diagnosis:
    return Diagnosis(
        root_cause=root_cause,
        confidence=confidence,
        summary="test",
        evidence=[Evidence(call_id=c, tool=t, finding="seen") for c, t in cites],
    )


def policy(*rules: dict[str, Any], **top: Any) -> Policy:
    data: dict[str, Any] = {
        "version": 1,
        "approver_groups": {"ml-oncall": ["alice", "bob"], "data-owners": ["carol", "alice"]},
        "defaults": {"approvers": ["ml-oncall"]},
        "rules": list(rules),
    }
    data.update(top)
    return parse_policy(data, "test-policy")


def rule(rule_id: str, effect: str = "deny", **match: Any) -> dict[str, Any]:
    return {"id": rule_id, "description": f"rule {rule_id}", "effect": effect, "match": match}


def decide(
    pol: Policy,
    p: ActionPlan | None = None,
    d: Diagnosis | None = None,
    results: Sequence[ToolResult] | None = None,
    history: FakeHistory | None = None,
    now: datetime = MONDAY,
) -> PolicyDecision:
    d = d or diagnosis()
    if results is None:  # by default the incident received every result the diagnosis cites
        results = [result(e.call_id, e.tool) for e in d.evidence]
    return PolicyEngine(pol, SimClock(now)).decide(
        p or plan(), d, results, history or FakeHistory()
    )


def matches(pol: Policy, **kw: Any) -> bool:
    """Whether rule 'r' of ``pol`` matched (the default verdict is allow, 'r' denies)."""
    decision = decide(pol, **kw)
    return decision.rule_ids == ["r"]


def only(**match: Any) -> Policy:
    return policy(rule("r", **match), defaults={"verdict": "allow"})


# --- each rule kind on its own ---------------------------------------------------------


def test_actions_scope() -> None:
    pol = only(actions=["retrain", "rollback"])
    assert matches(pol, p=plan(ActionType.RETRAIN))
    assert matches(pol, p=plan(ActionType.ROLLBACK))
    assert not matches(pol, p=plan(ActionType.ABORT_CANARY))


def test_model_glob_scope() -> None:
    pol = only(models=["fraud-*", "churn"])
    assert matches(pol, p=plan(model="fraud-eu"))
    assert matches(pol, p=plan(model="churn"))
    assert not matches(pol, p=plan(model="churn-v2"))
    assert not matches(pol, p=plan(model="Fraud-eu"))  # case-sensitive


def test_environment_glob_scope() -> None:
    pol = only(environments=["prod*"])
    assert matches(pol, p=plan(environment="prod-eu"))
    assert matches(pol, p=plan(environment="production"))
    assert not matches(pol, p=plan(environment="staging"))


def test_root_causes() -> None:
    pol = only(root_causes=["upstream_data_defect", "infrastructure"])
    assert matches(pol, d=diagnosis(RootCause.INFRASTRUCTURE))
    assert not matches(pol, d=diagnosis(RootCause.COVARIATE_DRIFT))


def test_not_root_causes() -> None:
    pol = only(not_root_causes=["healthy_canary"])
    assert matches(pol, d=diagnosis(RootCause.BAD_MODEL_VERSION))
    assert not matches(pol, d=diagnosis(RootCause.HEALTHY_CANARY))


def test_confidence_below_is_strict() -> None:
    pol = only(confidence_below=0.7)
    assert matches(pol, d=diagnosis(confidence=0.69))
    assert not matches(pol, d=diagnosis(confidence=0.7))


def test_confidence_at_least_is_inclusive() -> None:
    pol = only(confidence_at_least=0.8)
    assert matches(pol, d=diagnosis(confidence=0.8))
    assert not matches(pol, d=diagnosis(confidence=0.79))


def test_conditions_are_anded() -> None:
    pol = only(actions=["retrain"], root_causes=["covariate_drift"], confidence_below=0.7)
    assert matches(pol, d=diagnosis(confidence=0.5))
    assert not matches(pol, d=diagnosis(confidence=0.9))
    assert not matches(pol, p=plan(ActionType.ROLLBACK), d=diagnosis(confidence=0.5))


def test_missing_evidence_needs_a_cited_ok_result_of_each_tool() -> None:
    pol = only(missing_evidence=["drift_report", "metrics"])
    both = diagnosis(cites=[("c1", "drift_report"), ("c2", "metrics")])
    received = [result("c1", "drift_report"), result("c2", "metrics")]
    assert not matches(pol, d=both, results=received)
    # One of the tools was never cited.
    d = diagnosis(cites=[("c1", "drift_report")])
    decision = decide(pol, d=d, results=received)
    assert decision.rule_ids == ["r"]
    assert "no cited ok result from metrics" in decision.reasons[0]
    # Cited but not ok: a no_data answer is not evidence.
    failed = [result("c1", "drift_report"), result("c2", "metrics", ToolStatus.NO_DATA)]
    assert matches(pol, d=both, results=failed)
    # Cited but never received: the evidence's own tool claim is not trusted.
    assert matches(pol, d=both, results=[result("c1", "drift_report")])
    # Received ok but not cited by the diagnosis.
    assert matches(pol, d=d, results=received)


def test_missing_evidence_uses_the_received_tool_name_not_the_claim() -> None:
    pol = only(missing_evidence=["drift_report"])
    claims = diagnosis(cites=[("c1", "drift_report")])
    assert matches(pol, d=claims, results=[result("c1", "metrics")])


def test_rate_limit_counts_this_action_model_and_window() -> None:
    pol = only(rate_limit={"max": 2, "per_hours": 24})
    recent = MONDAY - timedelta(hours=3)
    old = MONDAY - timedelta(hours=25)
    retrain = ActionType.RETRAIN
    one = FakeHistory([(retrain, "fraud", "production", recent)])
    assert not matches(pol, history=one)
    two = FakeHistory([*one.runs, (retrain, "fraud", "production", recent)])
    assert matches(pol, history=two)
    # Runs outside the window, on another model, env or action do not count.
    others = FakeHistory(
        [
            *one.runs,
            (retrain, "fraud", "production", old),
            (retrain, "churn", "production", recent),
            (retrain, "fraud", "staging", recent),
            (ActionType.ROLLBACK, "fraud", "production", recent),
        ]
    )
    assert not matches(pol, history=others)
    assert others.calls == [(retrain, "fraud", "production", MONDAY - timedelta(hours=24))]
    assert "2 retrain in the last 24h (max 2)" in decide(pol, history=two).reasons[0]


def test_rate_limit_history_not_asked_when_other_conditions_fail() -> None:
    pol = only(actions=["rollback"], rate_limit={"max": 1, "per_hours": 1})
    history = FakeHistory()
    decide(pol, p=plan(ActionType.RETRAIN), history=history)
    assert history.calls == []


def test_fixed_freeze_window_is_half_open() -> None:
    start = datetime(2026, 12, 24, tzinfo=UTC)
    pol = only(freeze=[{"start": start, "end": "2026-12-27T00:00:00+00:00"}])
    assert matches(pol, now=start)
    assert matches(pol, now=datetime(2026, 12, 26, 23, 59, tzinfo=UTC))
    assert not matches(pol, now=datetime(2026, 12, 27, tzinfo=UTC))
    assert not matches(pol, now=start - timedelta(seconds=1))


def test_fixed_freeze_compares_across_timezones() -> None:
    pol = only(freeze=[{"start": "2026-12-24T00:00:00+01:00", "end": "2026-12-25T00:00:00+01:00"}])
    assert matches(pol, now=datetime(2026, 12, 23, 23, 30, tzinfo=UTC))
    assert not matches(pol, now=datetime(2026, 12, 24, 23, 30, tzinfo=UTC))


def test_weekly_freeze_with_injected_clock() -> None:
    pol = only(freeze=[{"weekdays": ["sat", "sun"], "from": "18:00", "to": "23:59"}])
    saturday = datetime(2026, 1, 10, tzinfo=UTC)
    clock = SimClock(saturday + timedelta(hours=17, minutes=59))
    engine = PolicyEngine(pol, clock)

    def denied() -> bool:
        decision = engine.decide(plan(), diagnosis(), [], FakeHistory())
        return decision.verdict is Verdict.DENY

    assert not denied()  # Saturday 17:59
    clock.advance(timedelta(minutes=1))
    assert denied()  # Saturday 18:00
    clock.set(saturday + timedelta(hours=23, minutes=59, seconds=59))
    assert denied()  # the `to` minute is inclusive
    clock.set(saturday + timedelta(days=1, hours=0, minutes=30))
    assert not denied()  # Sunday 00:30, before 18:00
    clock.set(saturday + timedelta(days=2, hours=19))
    assert not denied()  # Monday 19:00


def test_weekly_freeze_defaults_to_whole_days() -> None:
    pol = only(freeze=[{"weekdays": ["mon"]}])
    assert matches(pol, now=MONDAY.replace(hour=0, minute=0))
    assert matches(pol, now=MONDAY.replace(hour=23, minute=59, second=30))
    assert not matches(pol, now=MONDAY + timedelta(days=1))


def test_weekly_freeze_is_in_utc() -> None:
    pol = only(freeze=[{"weekdays": ["mon"], "from": "08:00", "to": "08:59"}])
    # 09:30 in UTC+1 is 08:30 UTC.
    plus_one = timezone(timedelta(hours=1))
    assert matches(pol, now=datetime(2026, 1, 5, 9, 30, tzinfo=plus_one))


def test_dry_run_from_any_matching_rule() -> None:
    pol = policy(
        {**rule("a", "allow"), "dry_run": True},
        rule("b", "allow", actions=["retrain"]),
    )
    decision = decide(pol)
    assert decision.verdict is Verdict.ALLOW
    assert decision.dry_run is True


def test_dry_run_from_defaults_and_not_otherwise() -> None:
    assert decide(policy(rule("a", "allow"))).dry_run is False
    assert decide(policy(rule("a", "allow"), defaults={"dry_run": True})).dry_run is True
    no_match = policy(defaults={"verdict": "allow", "dry_run": True})
    assert decide(no_match).dry_run is True


def test_approvers_expand_groups_to_people() -> None:
    pol = policy(
        {**rule("a", "require_approval"), "approvers": ["ml-oncall"]},
        {**rule("b", "require_approval"), "approvers": ["data-owners", "ml-oncall"]},
    )
    decision = decide(pol)
    assert decision.verdict is Verdict.REQUIRE_APPROVAL
    assert decision.approver_groups == ["ml-oncall", "data-owners"]
    assert decision.approvers == ["alice", "bob", "carol"]
    assert pol.is_approver("carol", decision)
    assert not pol.is_approver("mallory", decision)
    assert not pol.is_approver("Alice", decision)


def test_approvers_fall_back_to_defaults() -> None:
    decision = decide(policy(rule("a", "require_approval")))
    assert decision.approver_groups == ["ml-oncall"]
    assert decision.approvers == ["alice", "bob"]


def test_approvers_only_from_winning_rules() -> None:
    pol = policy(
        {**rule("a", "require_approval"), "approvers": ["data-owners"]},
        rule("b", "deny"),
    )
    decision = decide(pol)
    assert decision.verdict is Verdict.DENY
    assert decision.approvers == []
    assert decision.approval_timeout_s is None
    assert not pol.is_approver("carol", decision)


def test_approval_timeout_is_the_shortest_with_default_fallback() -> None:
    pol = policy(
        {**rule("a", "require_approval"), "approval_timeout_minutes": 15},
        rule("b", "require_approval"),
        defaults={"approvers": ["ml-oncall"], "approval_timeout_minutes": 45},
    )
    decision = decide(pol)
    assert decision.approval_timeout_s == 15 * 60
    assert approval_deadline(decision) == MONDAY + timedelta(minutes=15)
    only_default = decide(policy(rule("b", "require_approval")))
    assert only_default.approval_timeout_s == 60 * 60
    assert approval_deadline(decide(policy(rule("c", "allow")))) is None


# --- precedence --------------------------------------------------------------------------


def test_deny_beats_require_approval_beats_allow_and_all_matches_are_listed() -> None:
    pol = policy(
        rule("allow-1", "allow"),
        rule("approve-1", "require_approval"),
        rule("deny-1", "deny"),
        rule("allow-2", "allow"),
        rule("deny-2", "deny"),
        rule("not-matching", "deny", actions=["rollback"]),
    )
    decision = decide(pol)
    assert decision.verdict is Verdict.DENY
    assert decision.rule_ids == ["deny-1", "deny-2", "approve-1", "allow-1", "allow-2"]
    assert len(decision.reasons) == 5
    assert decision.reasons[0].startswith("deny-1 (deny): rule deny-1 [")
    assert decision.reasons[2].startswith("approve-1 (require_approval, overridden by deny)")


def test_require_approval_beats_allow() -> None:
    pol = policy(rule("allow-1", "allow"), rule("approve-1", "require_approval"))
    decision = decide(pol)
    assert decision.verdict is Verdict.REQUIRE_APPROVAL
    assert decision.rule_ids == ["approve-1", "allow-1"]


def test_an_allow_rule_cannot_override_default_deny_unless_it_matches() -> None:
    pol = policy(rule("allow-rollback", "allow", actions=["rollback"]))
    decision = decide(pol, p=plan(ActionType.RETRAIN))
    assert decision.verdict is Verdict.DENY
    assert decision.rule_ids == ["default"]
    assert "no rule matched retrain on production/fraud" in decision.reasons[0]
    assert decide(pol, p=plan(ActionType.ROLLBACK)).verdict is Verdict.ALLOW


def test_default_verdict_require_approval_uses_default_approvers() -> None:
    pol = policy(defaults={"verdict": "require_approval", "approvers": ["data-owners"]})
    decision = decide(pol)
    assert decision.verdict is Verdict.REQUIRE_APPROVAL
    assert decision.rule_ids == ["default"]
    assert decision.approvers == ["carol", "alice"]
    assert decision.approval_timeout_s == 3600


def test_escalate_is_not_special_cased() -> None:
    decision = decide(policy(), p=plan(ActionType.ESCALATE))
    assert decision.verdict is Verdict.DENY
    assert decision.rule_ids == ["default"]


def test_decision_is_deterministic() -> None:
    pol = load_policy(DEFAULT_POLICY)
    args = (plan(), diagnosis(), [result("c1", "drift_report")])
    first = decide(pol, *args)
    for _ in range(5):
        again = PolicyEngine(load_policy(DEFAULT_POLICY), SimClock(MONDAY)).decide(
            *args, FakeHistory()
        )
        assert again == first
    assert first.decided_at == MONDAY


# --- policies/default.yaml -----------------------------------------------------------------


@pytest.fixture(scope="module")
def default_policy() -> Policy:
    return load_policy(DEFAULT_POLICY)


def test_default_retrain_denied_on_upstream_data_defect(default_policy: Policy) -> None:
    d = decide(default_policy, plan(ActionType.RETRAIN), diagnosis(RootCause.UPSTREAM_DATA_DEFECT))
    assert d.verdict is Verdict.DENY
    assert d.rule_ids[0] == "deny-retrain-on-upstream-defect"


def test_default_rollback_denied_on_infrastructure(default_policy: Policy) -> None:
    d = decide(default_policy, plan(ActionType.ROLLBACK), diagnosis(RootCause.INFRASTRUCTURE))
    assert d.verdict is Verdict.DENY
    assert d.rule_ids == ["deny-rollback-on-infrastructure"]


def test_default_retrain_denied_on_benign_change(default_policy: Policy) -> None:
    d = decide(default_policy, plan(ActionType.RETRAIN), diagnosis(RootCause.BENIGN_CHANGE))
    assert d.verdict is Verdict.DENY
    assert "deny-retrain-on-benign-change" in d.rule_ids


def test_default_retrain_on_drift_needs_ml_oncall_in_production(default_policy: Policy) -> None:
    d = decide(default_policy, plan(ActionType.RETRAIN), diagnosis(RootCause.COVARIATE_DRIFT))
    assert d.verdict is Verdict.REQUIRE_APPROVAL
    assert d.rule_ids == ["retrain-needs-approval-in-production", "allow-retrain-on-drift"]
    assert d.approvers == ["alice", "bob"]
    assert d.approval_timeout_s == 120 * 60
    assert d.dry_run is False


def test_default_retrain_on_drift_in_staging_is_automatic(default_policy: Policy) -> None:
    d = decide(default_policy, plan(ActionType.RETRAIN, environment="staging"))
    assert d.verdict is Verdict.ALLOW


def test_default_retrain_rate_limited(default_policy: Policy) -> None:
    recent = MONDAY - timedelta(hours=1)
    runs = FakeHistory([(ActionType.RETRAIN, "fraud", "production", recent)] * 2)
    d = decide(default_policy, plan(ActionType.RETRAIN), history=runs)
    assert d.verdict is Verdict.DENY
    assert d.rule_ids[0] == "retrain-rate-limit"


def test_default_abort_canary_on_bad_version_allowed_when_confident(
    default_policy: Policy,
) -> None:
    bad = RootCause.BAD_MODEL_VERSION
    d = decide(default_policy, plan(ActionType.ABORT_CANARY), diagnosis(bad, 0.9))
    assert d.verdict is Verdict.ALLOW
    assert d.rule_ids == ["allow-revert"]
    unsure = decide(default_policy, plan(ActionType.ROLLBACK), diagnosis(bad, 0.7))
    assert unsure.verdict is Verdict.REQUIRE_APPROVAL
    guess = decide(default_policy, plan(ActionType.ROLLBACK), diagnosis(bad, 0.4))
    assert guess.verdict is Verdict.DENY
    assert guess.rule_ids[0] == "deny-low-confidence"


def test_default_promote_only_healthy_canary(default_policy: Policy) -> None:
    promote = plan(ActionType.PROMOTE_CANARY)
    healthy = RootCause.HEALTHY_CANARY
    assert decide(default_policy, promote, diagnosis(healthy, 0.85)).verdict is Verdict.ALLOW
    assert (
        decide(default_policy, promote, diagnosis(healthy, 0.6)).verdict is Verdict.REQUIRE_APPROVAL
    )
    bad = decide(default_policy, promote, diagnosis(RootCause.BAD_MODEL_VERSION, 0.95))
    assert bad.verdict is Verdict.DENY


@pytest.mark.parametrize("action", [ActionType.ESCALATE, ActionType.NO_ACTION])
def test_default_allows_non_mutating_actions_at_any_confidence(
    default_policy: Policy, action: ActionType
) -> None:
    d = decide(default_policy, plan(action), diagnosis(RootCause.INSUFFICIENT_EVIDENCE, 0.1, ()))
    assert d.verdict is Verdict.ALLOW


def test_default_freeze_example_only_blocks_its_environment(default_policy: Policy) -> None:
    saturday = datetime(2026, 1, 10, 12, tzinfo=UTC)
    frozen = plan(ActionType.SET_CANARY_WEIGHT, environment="freeze-example")
    assert decide(default_policy, frozen, now=saturday).verdict is Verdict.DENY
    assert decide(default_policy, frozen, now=MONDAY).verdict is Verdict.ALLOW
    demo = plan(ActionType.SET_CANARY_WEIGHT)
    assert decide(default_policy, demo, now=saturday).verdict is Verdict.ALLOW


def test_default_retrain_needs_quality_and_drift_evidence(default_policy: Policy) -> None:
    hearsay = diagnosis(RootCause.COVARIATE_DRIFT, cites=[("d1", "get_drift_report")])
    d = decide(default_policy, plan(ActionType.RETRAIN, environment="staging"), hearsay)
    assert d.verdict is Verdict.DENY and d.rule_ids[0] == "retrain-needs-quality-evidence"
    # citing a result the incident never received is no evidence either
    claimed = diagnosis(RootCause.COVARIATE_DRIFT)
    d = decide(default_policy, plan(ActionType.RETRAIN, environment="staging"), claimed, results=[])
    assert d.verdict is Verdict.DENY


def test_default_promotion_needs_a_canary_comparison(default_policy: Policy) -> None:
    no_cmp = diagnosis(RootCause.HEALTHY_CANARY, 0.9, cites=[("q1", "get_model_quality")])
    d = decide(default_policy, plan(ActionType.PROMOTE_CANARY), no_cmp)
    assert d.verdict is Verdict.DENY and "promote-needs-canary-evidence" in d.rule_ids


# --- rate limits on reverts and repeats (issue 12, requirement 8) --------------------------


def test_rate_limit_counting_sums_the_listed_actions() -> None:
    pol = only(rate_limit={"max": 2, "per_hours": 6, "counting": ["rollback", "abort_canary"]})
    recent = MONDAY - timedelta(hours=1)
    one_each = FakeHistory(
        [
            (ActionType.ABORT_CANARY, "fraud", "production", recent),
            (ActionType.ROLLBACK, "fraud", "production", recent),
        ]
    )
    d = decide(pol, p=plan(ActionType.ROLLBACK), history=one_each)
    assert d.rule_ids == ["r"]
    assert "2 rollback or abort_canary in the last 6h (max 2)" in d.reasons[0]
    # Without `counting` only the planned action counts: one rollback is under max 2.
    own = only(rate_limit={"max": 2, "per_hours": 6})
    assert not matches(own, p=plan(ActionType.ROLLBACK), history=one_each)


def test_default_second_revert_in_window_is_denied(default_policy: Policy) -> None:
    bad = diagnosis(RootCause.BAD_MODEL_VERSION, 0.9)
    recent = MONDAY - timedelta(hours=2)
    aborted = FakeHistory([(ActionType.ABORT_CANARY, "fraud", "production", recent)])
    # A rollback after an abort is a second revert, whichever kind came first.
    d = decide(default_policy, plan(ActionType.ROLLBACK), bad, history=aborted)
    assert d.verdict is Verdict.DENY
    assert d.rule_ids[0] == "revert-rate-limit"
    again = decide(default_policy, plan(ActionType.ABORT_CANARY), bad, history=aborted)
    assert again.rule_ids[0] == "revert-rate-limit"
    # Outside the 6 h window, on another model, or the first revert: allowed.
    old = FakeHistory(
        [(ActionType.ABORT_CANARY, "fraud", "production", MONDAY - timedelta(hours=7))]
    )
    assert decide(default_policy, plan(ActionType.ROLLBACK), bad, history=old).verdict is (
        Verdict.ALLOW
    )
    other = FakeHistory([(ActionType.ABORT_CANARY, "churn", "production", recent)])
    assert decide(default_policy, plan(ActionType.ROLLBACK), bad, history=other).verdict is (
        Verdict.ALLOW
    )


def test_default_repeats_of_the_same_action_are_limited(default_policy: Policy) -> None:
    healthy = diagnosis(RootCause.HEALTHY_CANARY, 0.9)
    recent = MONDAY - timedelta(hours=5)
    two = FakeHistory([(ActionType.PROMOTE_CANARY, "fraud", "production", recent)] * 2)
    assert decide(
        default_policy, plan(ActionType.PROMOTE_CANARY), healthy, history=two
    ).verdict is (Verdict.ALLOW)
    three = FakeHistory([(ActionType.PROMOTE_CANARY, "fraud", "production", recent)] * 3)
    d = decide(default_policy, plan(ActionType.PROMOTE_CANARY), healthy, history=three)
    assert d.verdict is Verdict.DENY
    assert d.rule_ids[0] == "repeat-action-rate-limit"
