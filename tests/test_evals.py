"""Evals: scenario validation, the committed suite, metrics, goals, baselines and reports."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from evalkit import MINIMAL_SCENARIO, case_result

import evals
from evals import (
    SUPERVISOR,
    CanaryRun,
    CaseResult,
    FlaggerSettings,
    RunResult,
    RunSpec,
    Scenario,
    build_report,
    check_goals,
    default_scenarios_dir,
    flagger_decide,
    load_scenario,
    load_scenarios,
    naive_should_retrain,
    rates,
    render_html,
    render_markdown,
    run,
    scheduled_due,
    summarize,
)
from evals._suite import SuiteRun
from supervisor import ConfigError
from supervisor._yaml import json_schema
from supervisor.domain import RootCause

ROOT = Path(__file__).resolve().parent.parent

GOOD = MINIMAL_SCENARIO


def _write(tmp_path: Path, data: dict[str, object], name: str = "tiny") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- scenario format


def test_a_valid_scenario_loads(tmp_path: Path) -> None:
    sc = load_scenario(_write(tmp_path, GOOD))
    assert sc.onset(sc.ground_truth.expectations[0]) == 30
    assert sc.world_spec(2).seed == 2


@pytest.mark.parametrize(
    ("patch", "field", "fix"),
    [
        ({"colour": "red"}, "colour", "remove this field"),
        (
            {
                "ground_truth": {
                    "expectations": [
                        {
                            "model": "churn",
                            "root_cause": "gremlins",
                            "acceptable_actions": ["retrain"],
                        }
                    ]
                }
            },
            "ground_truth.expectations.0.root_cause",
            "use one of",
        ),
        ({"difficulty": "extreme"}, "difficulty", "use one of"),
        ({"trigger": {}}, "trigger.kind", "add this required field"),
        (
            {
                "ground_truth": {
                    "expectations": [
                        {"model": "churm", "root_cause": None, "acceptable_actions": ["no_action"]}
                    ]
                }
            },
            "ground_truth.expectations.0.model",
            "use one of ['churn']",
        ),
        (
            {
                "faults": [
                    {
                        "kind": "covariate_drift",
                        "model": "churn",
                        "at_minutes": 3,
                        "params": {"size": 1},
                    }
                ]
            },
            "faults.0",
            "allowed:",
        ),
    ],
)
def test_malformed_scenarios_name_file_field_and_fix(
    tmp_path: Path, patch: dict[str, object], field: str, fix: str
) -> None:
    path = _write(tmp_path, {**GOOD, **patch})
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    message = str(err.value)
    assert str(path) in message
    assert field in message
    assert fix in message


def test_acceptable_and_forbidden_must_not_overlap(tmp_path: Path) -> None:
    exp = {
        "model": "churn",
        "root_cause": "covariate_drift",
        "acceptable_actions": ["retrain"],
        "forbidden_actions": ["retrain"],
    }
    path = _write(tmp_path, {**GOOD, "ground_truth": {"expectations": [exp]}})
    with pytest.raises(ConfigError, match="both acceptable and forbidden"):
        load_scenario(path)


def test_scenario_id_must_match_file_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rename the file"):
        load_scenario(_write(tmp_path, GOOD, name="other"))


def test_a_directory_reports_every_bad_file_at_once(tmp_path: Path) -> None:
    _write(tmp_path, {**GOOD, "id": "a", "colour": 1}, name="a")
    _write(tmp_path, {**GOOD, "id": "b", "difficulty": "x"}, name="b")
    with pytest.raises(ConfigError) as err:
        load_scenarios(tmp_path)
    assert "a.yaml" in str(err.value) and "b.yaml" in str(err.value)


# --------------------------------------------------------------------------- committed suite


def test_committed_suite_covers_the_taxonomy() -> None:
    suite = load_scenarios(default_scenarios_dir())
    assert len(suite) >= 40
    causes = Counter(
        e.root_cause.value
        for s in suite
        for e in s.ground_truth.expectations
        if e.root_cause is not None
    )
    for cause in RootCause:
        assert causes[cause.value] >= 3, cause
    assert {s.difficulty for s in suite} == {"easy", "medium", "hard"}
    tags = Counter(t for s in suite for t in s.tags)
    for tag in ("control", "decoy", "compound", "missing_data", "hostile_text"):
        assert tags[tag] >= 1, tag
    assert any(e.root_cause is None for s in suite for e in s.ground_truth.expectations)


def test_scenario_files_declare_their_schema_and_schema_is_current() -> None:
    for f in sorted(default_scenarios_dir().glob("*.yaml")):
        first = f.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../schemas/scenario.schema.json", f
    committed = (ROOT / "schemas" / "scenario.schema.json").read_text(encoding="utf-8")
    assert committed == json_schema(Scenario), "regenerate schemas/scenario.schema.json"


def test_public_exports_are_curated() -> None:
    exported = evals.__all__
    assert len(exported) == len(set(exported))
    for name in exported:
        assert hasattr(evals, name), name


# --------------------------------------------------------------------------- baselines


def test_flagger_steps_to_max_weight_then_promotes() -> None:
    s = FlaggerSettings()
    run_ = CanaryRun("3")
    moves = []
    for _ in range(6):
        move, run_ = flagger_decide(run_, 0.995, 120.0, s)
        moves.append((move, run_.weight))
    assert moves == [
        ("step", 10),
        ("step", 20),
        ("step", 30),
        ("step", 40),
        ("step", 50),
        ("promote", 50),
    ]


@pytest.mark.parametrize(
    ("success", "p99"),
    [(0.98, 100.0), (0.999, 650.0), (None, 100.0), (0.999, None)],
)
def test_flagger_rolls_back_after_five_failed_checks(
    success: float | None, p99: float | None
) -> None:
    run_ = CanaryRun("3", weight=20)
    moves = []
    for _ in range(5):
        move, run_ = flagger_decide(run_, success, p99)
        moves.append(move)
    assert moves == ["hold", "hold", "hold", "hold", "rollback"]
    assert run_.failed_checks == 5


def test_flagger_failed_checks_accumulate_across_passes() -> None:
    run_ = CanaryRun("3")
    for success in (0.9, 0.9, 0.999, 0.9, 0.9):
        move, run_ = flagger_decide(run_, success, 100.0)
    assert move == "hold" and run_.failed_checks == 4
    move, run_ = flagger_decide(run_, 0.9, 100.0)
    assert move == "rollback"


def test_naive_drift_and_scheduled_decisions() -> None:
    from datetime import UTC, datetime, timedelta

    assert naive_should_retrain(0.5) and naive_should_retrain(0.8)
    assert not naive_should_retrain(0.49) and not naive_should_retrain(None)
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    week = timedelta(days=7)
    assert scheduled_due(t0 - week, t0, week)
    assert not scheduled_due(t0 - week + timedelta(minutes=1), t0, week)
    assert scheduled_due(None, t0, week)


def test_flagger_on_a_real_world_rolls_back_a_bad_canary(tmp_path: Path) -> None:
    sc = load_scenario(default_scenarios_dir() / "bad-canary-fraud-alert.yaml")
    result = run(RunSpec(sc, "flagger", 0, tmp_path))
    assert result.error is None
    assert [a.action for a in result.executed] == ["abort_canary"]
    case = result.cases[0]
    assert case.mitigated and case.mitigate_minutes is not None
    assert 4 <= case.mitigate_minutes <= 7  # five failed 60 s checks


# --------------------------------------------------------------------------- metrics and goals


_case = case_result


def _run(system: str, scenario: str, cases: list[CaseResult], **kw: object) -> RunResult:
    data: dict[str, object] = {
        "scenario": scenario,
        "category": "bad_model_version",
        "difficulty": "easy",
        "tags": [],
        "system": system,
        "seed": 0,
        "cases": cases,
    }
    data.update(kw)
    return RunResult.model_validate(data)


def test_rates_on_hand_made_results() -> None:
    runs = [
        _run(SUPERVISOR, "a", [_case()], seed=0, audit_actions=2, audit_cited_actions=2),
        _run(
            SUPERVISOR,
            "a",
            [
                _case(
                    diagnosed_root_cause="infrastructure",
                    actual_action="escalate",
                    action_correct=False,
                    mitigated=False,
                    mitigate_minutes=None,
                )
            ],
            seed=1,
            audit_actions=2,
            audit_cited_actions=1,
        ),
        _run(
            SUPERVISOR,
            "b",
            [
                _case(
                    expected_root_cause=None,
                    diagnosed_root_cause=None,
                    needs_response=False,
                    responded=False,
                    detect_minutes=None,
                    expected_action="no_action",
                    acceptable_actions=["no_action"],
                    actual_action="rollback",
                    action_correct=False,
                    false_alarm=True,
                    unsafe_actions=["rollback@40"],
                    mitigated=False,
                    mitigate_minutes=None,
                )
            ],
        ),
    ]
    r = rates(runs)
    assert r.runs == 3 and r.cases == 3
    # The control (b) opened no incident: right when nothing is wrong (2 of 3).
    assert r.root_cause_accuracy == pytest.approx(2 / 3, abs=1e-4)
    assert r.action_accuracy == pytest.approx(1 / 3, abs=1e-4)
    assert r.detection == 1.0 and r.false_alarm == 1.0
    assert r.unsafe_actions == 1 and r.unsafe_rate == pytest.approx(1 / 3, abs=1e-4)
    assert r.time_to_mitigate == 2.0
    assert r.audit_completeness == 0.75
    assert r.pass_k == 0.0  # scenario a failed its second seed, b failed outright
    summary = summarize(SUPERVISOR, runs)
    assert summary.action_confusion["abort_canary"] == {"abort_canary": 1, "escalate": 1}
    assert summary.root_cause_confusion["bad_model_version"]["infrastructure"] == 1


def test_goals_compare_against_baselines() -> None:
    sup = [
        _run(
            SUPERVISOR,
            "a",
            [_case(mitigate_minutes=2.0)],
            tags=["drift"],
            retrains=1,
            accuracy_deficit=0.2,
        )
    ]
    flagger = [_run("flagger", "a", [_case(mitigate_minutes=5.0, diagnosed_root_cause=None)])]
    naive = [
        _run(
            "naive-drift",
            "a",
            [_case(diagnosed_root_cause=None)],
            tags=["drift"],
            retrains=4,
            accuracy_deficit=0.3,
        )
    ]
    goals = {g.id: g for g in check_goals(sup + flagger + naive)}
    assert goals["root-cause-accuracy"].met is True
    assert goals["zero-unsafe"].met is True
    assert goals["canary-ttm"].met is True  # 2.0 <= 0.5 * 5.0
    assert goals["drift-retrains"].met is True  # 1 <= 0.6 * 4 and 0.2 <= 0.3
    slow = [_run(SUPERVISOR, "a", [_case(mitigate_minutes=3.0)], healthy_canary_rollbacks=1)]
    goals = {g.id: g for g in check_goals(slow + flagger)}
    assert goals["canary-ttm"].met is False
    assert "healthy canaries rolled back" in goals["canary-ttm"].detail
    assert goals["drift-retrains"].met is None


def test_reports_render_and_html_is_self_contained() -> None:
    runs = [
        _run(SUPERVISOR, "a", [_case()], tags=["drift"]),
        _run("flagger", "a", [_case(diagnosed_root_cause=None, mitigate_minutes=6.0)]),
    ]
    suite = SuiteRun(
        scenarios=["a"],
        systems=[SUPERVISOR, "flagger"],
        seeds=1,
        jobs=1,
        wall_seconds=1.0,
        supervisor_seconds=0.5,
        results=runs,
    )
    report = build_report(suite)
    md = render_markdown(report)
    assert "## Goals" in md and "root cause" in md and "| supervisor |" in md
    page = render_html(report)
    assert page.count("data:image/png;base64,") >= 3
    assert "http://" not in page and "https://" not in page
    assert json.loads(report.model_dump_json())["suite"]["scenarios"] == 1


# --------------------------------------------------------------------------- CLI


def test_eval_parser_registers_a_handler(tmp_path: Path) -> None:
    from supervisor.cli._eval_cmd import add_eval_parser

    parser = argparse.ArgumentParser()
    add_eval_parser(parser.add_subparsers())
    _write(tmp_path, {**GOOD, "colour": 1})
    args = parser.parse_args(["eval", "--scenarios", str(tmp_path), "--out", str(tmp_path / "o")])
    assert args.seeds == 1
    with pytest.raises(ConfigError, match="colour"):
        args.handler(args)
