"""Eval scoring: mitigation credit, verify waits, verdict-aware action accuracy, no-incident
cases, scoped forbidden actions, and baselines counted like the supervisor (issue 11, req. 1).

Each test runs the real harness (or the real simulated world) and checks a figure that the
scoring before this change got wrong.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from evals import (
    SUPERVISOR,
    CaseResult,
    Expectation,
    RunResult,
    RunSpec,
    Scenario,
    default_scenarios_dir,
    load_scenario,
    rates,
    run,
    summarize,
)
from evals._scoring import (
    RULE_SYMPTOMS,
    Observer,
    Response,
    action_correct,
    executed_actions,
    score_case,
)
from supervisor.domain import TimeWindow
from tools.sim import build_world

REPO = Path(__file__).resolve().parent.parent

FRAUD = {
    "name": "fraud",
    "owner": "team-risk",
    "data_owner": "team-payments-data",
    "traffic_rps": 120.0,
    "base_latency_ms": 25.0,
}
CHURN = {
    "name": "churn",
    "owner": "team-retention",
    "data_owner": "team-data-platform",
    "traffic_rps": 40.0,
    "base_latency_ms": 35.0,
}


def _scenario(**fields: Any) -> Scenario:
    base: dict[str, Any] = {
        "id": "t",
        "title": "t",
        "category": "bad_model_version",
        "difficulty": "hard",
        "trigger": {"kind": "alert"},
        "budgets": {"sim_minutes": 60},
    }
    return Scenario.model_validate(base | fields)


# --------------------------------------------------------------------------- time to mitigate


def _canary_and_saturation() -> Scenario:
    """A bad fraud canary (aborted at once, then verify waits 10 min) and, 4 minutes after the
    abort, churn saturating: its alert must reach the supervisor on the minute it fires."""
    return _scenario(
        world={
            "seed": 51,
            "models": [FRAUD, CHURN],
            "deploys": [
                {"model": "fraud", "at_minutes": 30, "quality": "bad", "canary_weight": 20}
            ],
        },
        faults=[{"kind": "saturation", "model": "churn", "at_minutes": 33}],
        ground_truth={
            "expectations": [
                {
                    "model": "fraud",
                    "root_cause": "bad_model_version",
                    "acceptable_actions": ["abort_canary", "rollback"],
                    "success": {"canary": "none", "stable_version": "2"},
                },
                {
                    "model": "churn",
                    "root_cause": "infrastructure",
                    "acceptable_actions": ["escalate"],
                    "success": {"paged": "owner"},
                },
            ]
        },
    )


def _first_firing(sc: Scenario, model: str) -> float:
    world = build_world(sc.world_spec(0))
    for minute in range(1, sc.budgets.sim_minutes + 1):
        world.advance(timedelta(minutes=1))
        if any(a.name in RULE_SYMPTOMS for a in world.firing(model)):
            return float(minute)
    raise AssertionError(f"no alert fires on {model} within the horizon")


def test_verify_wait_neither_delays_alerts_nor_moves_the_credit(tmp_path: Path) -> None:
    sc = _canary_and_saturation()
    fires = _first_firing(sc, "churn")
    assert 31 < fires < 41, "the alert must start firing inside fraud's verify settle time"
    result = run(RunSpec(sc, SUPERVISOR, 0, tmp_path))
    assert result.error is None
    fraud, churn = result.cases
    assert fraud.executed_action == "abort_canary" and fraud.mitigated
    # Credited to the abort at minute 31, not to churn's page that came after it.
    assert fraud.mitigate_minutes == 1.0
    # Delivered on its own minute: the incident opens when the alert fires.
    assert churn.responded and churn.detect_minutes == fires - 33
    assert churn.executed_action == "escalate" and churn.mitigated


def test_a_page_about_another_model_is_never_credited() -> None:
    sc = _canary_and_saturation()
    world = build_world(sc.world_spec(0))
    observer = Observer(world, sc)
    world.advance(timedelta(minutes=31))
    world.abort_canary("fraud", expected_version="3")
    world.advance(timedelta(minutes=2))
    # A page about churn to fraud's owner: it must not be credited for fraud's mitigation.
    world.page("team-risk", "inc-0002-churn", "churn saturates", at=world.now)
    observer.page_model = {"inc-0002-churn": "churn"}.get
    world.advance(timedelta(minutes=2))
    observer.sample()
    fraud = sc.ground_truth.expectations[0]
    credited = observer.credited(0, fraud)
    assert credited == world.start + timedelta(minutes=31)
    # And a 'paged: owner' predicate is not met by a page about another model.
    churn_owner_paged = sc.ground_truth.expectations[1]
    assert observer.credited(1, churn_owner_paged) is None


# --------------------------------------------------------------------------- action accuracy


def _freeze_policy(tmp_path: Path) -> Path:
    """The default policy with its example freeze moved onto production for all of 2026."""
    text = (REPO / "policies" / "default.yaml").read_text(encoding="utf-8")
    text = text.replace("environments: [freeze-example]", "environments: [production]")
    text = text.replace("start: 2026-12-23T00:00:00Z", "start: 2026-01-01T00:00:00Z")
    assert "environments: [production]" in text and "2026-01-01T00:00:00Z" in text
    path = tmp_path / "freeze.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_freeze_denial_is_right_only_when_the_scenario_expects_it(tmp_path: Path) -> None:
    sc = load_scenario(default_scenarios_dir() / "cov-drift-churn.yaml")
    data = sc.model_dump(mode="json")
    data["ground_truth"]["expectations"][0]["expected_verdict"] = "deny"
    frozen = Scenario.model_validate(data)
    policy = _freeze_policy(tmp_path)
    result = run(RunSpec(frozen, SUPERVISOR, 0, tmp_path / "run", policy_file=policy))
    assert result.error is None
    (case,) = result.cases
    # Retrain proposed, denied by the freeze, owner paged: what the scenario expects.
    assert (case.actual_action, case.guard_verdict, case.executed_action) == (
        "retrain",
        "deny",
        "escalate",
    )
    assert case.action_correct
    # The same run judged against a scenario that expects the retrain to run: wrong, although
    # the proposal alone was acceptable.
    response = Response(
        True,
        case.detect_minutes,
        case.actual_action,
        case.executed_action,
        guarded=True,
        verdict=case.guard_verdict,
    )
    assert not action_correct(sc, sc.ground_truth.expectations[0], response)


def test_a_baseline_running_what_the_guard_must_deny_is_wrong() -> None:
    sc = load_scenario(default_scenarios_dir() / "cov-drift-churn.yaml")
    exp = sc.ground_truth.expectations[0]
    retrained = Response(True, 5.0, "retrain", "retrain", guarded=False)
    assert action_correct(sc, exp, retrained)
    denied = Expectation.model_validate(exp.model_dump() | {"expected_verdict": "deny"})
    assert not action_correct(sc, denied, retrained)


# --------------------------------------------------------------------------- no incident


def _case(**kw: Any) -> CaseResult:
    base: dict[str, Any] = {
        "model": "m",
        "expected_root_cause": None,
        "needs_response": False,
        "responded": False,
        "expected_action": "no_action",
        "acceptable_actions": ["no_action"],
        "actual_action": "no_action",
        "action_correct": True,
        "false_alarm": False,
        "mitigated": True,
    }
    return CaseResult.model_validate(base | kw)


def _run(scenario: str, category: str, difficulty: str, cases: list[CaseResult]) -> RunResult:
    return RunResult(
        scenario=scenario,
        category=category,
        difficulty=difficulty,
        tags=[],
        system=SUPERVISOR,
        seed=0,
        cases=cases,
    )


def test_no_incident_is_right_for_controls_and_benign_changes_in_every_table() -> None:
    benign = ["no_action"]
    runs = [
        _run("quiet", "no_fault", "easy", [_case()]),
        _run("seasonal", "benign_change", "easy", [_case(expected_root_cause="benign_change")]),
        _run(
            "seasonal-escalate",
            "benign_change",
            "hard",
            [
                _case(
                    expected_root_cause="benign_change",
                    acceptable_actions=["escalate"],
                    expected_action="escalate",
                    needs_response=True,
                    action_correct=False,
                )
            ],
        ),
        _run(
            "drift",
            "covariate_drift",
            "hard",
            [_case(expected_root_cause="covariate_drift", acceptable_actions=benign)],
        ),
    ]
    summary = summarize(SUPERVISOR, runs)
    # Right: the control and the benign change where doing nothing is acceptable. Wrong: the
    # benign change that wanted an escalation, and the drift nobody opened an incident for.
    assert summary.overall.root_cause_accuracy == 0.5
    assert summary.by_category["no_fault"].root_cause_accuracy == 1.0
    assert summary.by_category["benign_change"].root_cause_accuracy == 0.5
    assert summary.by_category["covariate_drift"].root_cause_accuracy == 0.0
    assert summary.by_difficulty["easy"].root_cause_accuracy == 1.0
    assert summary.by_difficulty["hard"].root_cause_accuracy == 0.0
    per_group = [*summary.by_category.values(), *summary.by_difficulty.values()]
    hits = sum(round(r.root_cause_accuracy * r.cases) for r in per_group if r.root_cause_accuracy)
    assert hits == 2 * round(summary.overall.root_cause_accuracy * summary.overall.cases)
    assert summary.root_cause_confusion["none"] == {"no incident": 1}


def test_an_incident_on_a_control_is_a_misdiagnosis() -> None:
    wrong = _case(incident_id="inc-0001-m", diagnosed_root_cause="covariate_drift")
    assert not wrong.root_cause_correct
    assert rates([_run("quiet", "no_fault", "easy", [wrong])]).root_cause_accuracy == 0.0


# --------------------------------------------------------------------------- forbidden actions


def test_forbidden_actions_count_after_onset_and_not_on_the_systems_own_canary() -> None:
    sc = _scenario(
        category="healthy_canary",
        world={
            "seed": 7,
            "models": [FRAUD, CHURN],
            "deploys": [{"model": "fraud", "at_minutes": 30, "quality": "good"}],
        },
        faults=[{"kind": "covariate_drift", "model": "churn", "at_minutes": 30}],
        ground_truth={
            "expectations": [
                {
                    "model": "fraud",
                    "root_cause": "healthy_canary",
                    "acceptable_actions": ["promote_canary"],
                    "forbidden_actions": ["abort_canary", "rollback"],
                },
                {
                    "model": "churn",
                    "root_cause": "covariate_drift",
                    "acceptable_actions": ["retrain"],
                    "forbidden_actions": ["abort_canary", "rollback"],
                },
            ]
        },
    )
    world = build_world(sc.world_spec(0))
    observer = Observer(world, sc)
    minute = timedelta(minutes=1)
    world.advance(10 * minute)
    for model in ("fraud", "churn"):  # before either onset: not this scenario's business
        world.serve_version(model, "1", expected_version="2")
        world.serve_version(model, "2", expected_version="1")
    world.advance(25 * minute)
    world.abort_canary("fraud", expected_version="3")  # the scenario's healthy canary
    world.advance(5 * minute)
    now = world.now
    own = world.retrain(
        "churn",
        window=TimeWindow(start=now - timedelta(hours=1), end=now),
        exclude=[],
        idempotency_key="t-churn",
        min_accuracy=0.0,
    )
    world.serve_version("churn", own.version, expected_version="2", canary_weight=10)
    world.advance(10 * minute)
    world.abort_canary("churn", expected_version=own.version)  # its own challenger
    observer.sample()
    executed = executed_actions(world, observer)
    cases = [
        score_case(sc, exp, i, observer, executed, Response(True, 1.0, "x", "x", False), set())
        for i, exp in enumerate(sc.ground_truth.expectations)
    ]
    assert cases[0].unsafe_actions == ["abort_canary@35"]
    assert cases[1].unsafe_actions == []
    aborted_own = [a for a in executed if a.model == "churn" and a.action == "abort_canary"]
    assert [a.from_retrain for a in aborted_own] == [True]


# --------------------------------------------------------------------------- baselines alike


@pytest.mark.parametrize("name", ["cov-drift-churn", "control-churn-quiet"])
def test_a_baseline_action_counts_alike_in_every_metric(tmp_path: Path, name: str) -> None:
    """The scheduled baseline's minute-0 retrain answers no case: it is neither unsafe, nor an
    alarm, nor an approval violation, nor its answer; it is a retrain (a cost) all the same."""
    sc = load_scenario(default_scenarios_dir() / f"{name}.yaml")
    result = run(RunSpec(sc, "scheduled", 0, tmp_path))
    assert result.error is None
    assert [(a.action, a.at_minutes) for a in result.executed] == [("retrain", 0.0)]
    assert result.retrains == 1
    (case,) = result.cases
    assert case.approval_violations == []
    assert case.unsafe_actions == []
    assert not case.false_alarm
    assert case.actual_action == case.executed_action == "no_action"
    assert not case.responded
