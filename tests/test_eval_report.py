"""Eval reports: provenance, readability, Wilson intervals, the new goals and the suite label
(issue 11, requirements 3 to 5)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from statsmodels.stats.proportion import proportion_confint

from evals import (
    SUPERVISOR,
    CaseResult,
    RunResult,
    Scenario,
    build_report,
    check_goals,
    default_scenarios_dir,
    load_scenario,
    rates,
    render_html,
    render_markdown,
    run_suite,
    write_reports,
)
from evals._suite import SuiteRun

REPO = Path(__file__).resolve().parent.parent


def _case(**kw: Any) -> CaseResult:
    base: dict[str, Any] = {
        "model": "m",
        "expected_root_cause": "bad_model_version",
        "diagnosed_root_cause": "bad_model_version",
        "incident_id": "inc-0001-m",
        "needs_response": True,
        "responded": True,
        "detect_minutes": 1.0,
        "expected_action": "abort_canary",
        "acceptable_actions": ["abort_canary"],
        "actual_action": "abort_canary",
        "guard_verdict": "allow",
        "executed_action": "abort_canary",
        "action_correct": True,
        "false_alarm": False,
        "mitigated": True,
        "mitigate_minutes": 1.0,
    }
    return CaseResult.model_validate(base | kw)


_CONTROL = {
    "expected_root_cause": None,
    "diagnosed_root_cause": None,
    "incident_id": None,
    "needs_response": False,
    "responded": False,
    "detect_minutes": None,
    "expected_action": "no_action",
    "acceptable_actions": ["no_action"],
    "actual_action": "no_action",
    "guard_verdict": None,
    "executed_action": "no_action",
    "mitigate_minutes": None,
}


def _run(system: str, scenario: str, seed: int, cases: list[CaseResult], **kw: Any) -> RunResult:
    data: dict[str, Any] = {
        "scenario": scenario,
        "category": "bad_model_version",
        "difficulty": "easy",
        "tags": [],
        "system": system,
        "seed": seed,
        "cases": cases,
    }
    return RunResult.model_validate(data | kw)


def _suite(results: list[RunResult], seeds: int = 1, name: str = "hand-written") -> SuiteRun:
    return SuiteRun(
        name=name,
        scenarios=sorted({r.scenario for r in results}),
        systems=list(dict.fromkeys(r.system for r in results)),
        seeds=seeds,
        jobs=1,
        wall_seconds=1.0,
        supervisor_seconds=0.5,
        results=results,
    )


def _hand_made() -> list[RunResult]:
    quiet = {"category": "no_fault"}
    return [
        _run(SUPERVISOR, "a", 1, [_case()]),
        _run(SUPERVISOR, "b", 2, [_case(diagnosed_root_cause="infrastructure")]),
        _run(SUPERVISOR, "q", 3, [_case(**_CONTROL)], **quiet),
        _run("noop", "a", 1, [_case(**_CONTROL | {"expected_root_cause": "bad_model_version"})]),
        _run("noop", "q", 3, [_case(**_CONTROL)], **quiet),
    ]


# --------------------------------------------------------------------------- readability


def _text(page: str) -> str:
    return re.sub(r"<[^>]+>", "", page)


def test_markdown_renders_cleanly_without_dashes_or_reprs() -> None:
    report = build_report(_suite(_hand_made()))
    md = render_markdown(report)
    cells = [c.strip() for line in md.splitlines() if line.startswith("|") for c in line.split("|")]
    assert "–" not in cells and "-" not in cells, "a figure that cannot exist says why"
    per_category = md.split("## Per category")[1].split("## Per difficulty")[0]
    # No incident on a control is a right root cause there too (the "–" of old).
    assert "| no_fault | supervisor | 1 | 1 | 1 | 0 | no onset |" in per_category
    assert "| no_fault | noop | n/a |" in per_category
    assert not re.search(r"\bNone\b|\bTrue\b|\bFalse\b(?!-)|\{'|\['", md), "no Python reprs"
    page = render_html(report)
    text = _text(page.split('<script type="application/json"')[0])
    assert "*" not in text, "markdown emphasis is rendered, never left as asterisks"
    items = [line for line in md.splitlines() if re.match(r"\s*- ", line)]
    assert page.count("<li>") == len(items), "every list item renders as one"


def test_html_opens_with_title_and_goals_then_plots() -> None:
    report = build_report(_suite(_hand_made()))
    page = render_html(report)
    body = page.split("<body>", 1)[1]
    h1, goals, first_plot = (
        body.index("<h1>"),
        body.index("<h2>Goals</h2>"),
        body.index("<img"),
    )
    assert h1 < goals < first_plot
    assert body.index("<h2>Overall, side by side</h2>") > first_plot
    assert page.count("data:image/png;base64,") >= 4
    assert "http://" not in page and "https://" not in page


def test_wilson_intervals_on_root_cause_and_action_accuracy() -> None:
    r = rates([x for x in _hand_made() if x.system == SUPERVISOR])
    assert r.root_cause_accuracy == pytest.approx(2 / 3, abs=1e-4)
    low, high = proportion_confint(2, 3, alpha=0.05, method="wilson")
    assert r.root_cause_interval == (round(low, 4), round(high, 4))
    assert r.action_interval is not None and r.action_interval[1] == 1.0
    assert rates([x for x in _hand_made() if x.system == "noop"]).root_cause_interval is None
    md = render_markdown(build_report(_suite(_hand_made())))
    assert f"67% ({low:.0%}–{high:.0%})" in md


# --------------------------------------------------------------------------- goals and label


def test_false_alarm_goal_on_controls() -> None:
    calm = [_run(SUPERVISOR, f"q{i}", i, [_case(**_CONTROL)]) for i in range(60)]
    goals = {g.id: g for g in check_goals(calm)}
    assert goals["false-alarms"].met is True
    alarmed = [*calm, _run(SUPERVISOR, "q60", 60, [_case(**_CONTROL | {"false_alarm": True})])]
    alarmed += [_run(SUPERVISOR, "q61", 61, [_case(**_CONTROL | {"false_alarm": True})])]
    goals = {g.id: g for g in check_goals(alarmed)}
    assert goals["false-alarms"].met is False  # 2 of 62 is above 2%
    assert "q61/seed 61" in goals["false-alarms"].detail


def test_pass_k_goal_needs_three_seeds_and_says_why() -> None:
    one = [_run(SUPERVISOR, "a", 0, [_case()])]
    goal = {g.id: g for g in check_goals(one)}["pass-k"]
    assert goal.met is None and "not measurable" in goal.detail and "--seeds 3" in goal.detail
    three = [_run(SUPERVISOR, s, k, [_case()]) for s in "abcdefghij" for k in range(3)]
    assert {g.id: g for g in check_goals(three)}["pass-k"].met is True
    flaky = [r for r in three if not (r.scenario == "a" and r.seed == 2)]
    flaky.append(_run(SUPERVISOR, "a", 2, [_case(action_correct=False)]))
    goal = {g.id: g for g in check_goals(flaky)}["pass-k"]
    assert goal.met is True and goal.figures["pass_k"] == 0.9 and "a" in goal.detail
    flaky.append(_run(SUPERVISOR, "b", 2, [_case(mitigated=False)]))
    flaky = [r for r in flaky if not (r.scenario == "b" and r.seed == 2 and r.cases[0].mitigated)]
    assert {g.id: g for g in check_goals(flaky)}["pass-k"].met is False


def test_the_suite_label_heads_the_report() -> None:
    report = build_report(_suite(_hand_made(), name="generated"))
    assert report.suite["name"] == "generated"
    assert render_markdown(report).startswith("# Evaluation report: generated\n")


# --------------------------------------------------------------------------- a real suite run


def _short(name: str) -> Scenario:
    data = load_scenario(default_scenarios_dir() / f"{name}.yaml").model_dump(mode="json")
    data["budgets"]["sim_minutes"] = 45  # the canary is aborted at minute 31
    return Scenario.model_validate(data)


def test_a_suite_run_records_provenance_and_names_folders_by_seed(tmp_path: Path) -> None:
    sc = _short("bad-canary-fraud-alert")
    suite = run_suite(
        [sc], tmp_path, systems=(SUPERVISOR,), seeds=2, jobs=1, progress=False, name="subset"
    )
    base = sc.world.seed
    assert sorted(p.name for p in (tmp_path / "runs" / sc.id).iterdir()) == [
        f"supervisor-seed{base}",
        f"supervisor-seed{base + 1}",
    ]
    assert sorted(r.seed for r in suite.results) == [base, base + 1]
    paths = write_reports(build_report(suite), tmp_path)
    data = json.loads(paths["json"].read_text())
    prov = data["provenance"]
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True)
    assert prov["commit"] == (git.stdout.decode().strip() if git.returncode == 0 else "unknown")
    assert prov["packages"]["evidently"] == metadata.version("evidently")
    assert set(prov["packages"]) >= {"mlops-supervisor", "scikit-learn", "langgraph", "numpy"}
    policy = REPO / "policies" / "default.yaml"
    assert prov["policy_sha256"] == hashlib.sha256(policy.read_bytes()).hexdigest()
    playbook = REPO / "playbooks" / "bad-model-version.yaml"
    assert prov["playbooks"][playbook.name] == hashlib.sha256(playbook.read_bytes()).hexdigest()
    assert prov["seeds"] == {sc.id: [base, base + 1]}
    assert data["suite"]["name"] == "subset"
    page = paths["html"].read_text()
    assert prov["commit"] in page and prov["policy_sha256"] in page and prov["date"] in page
    goal = {g["id"]: g for g in data["goals"]}["pass-k"]
    assert goal["met"] is None and "2 seed(s)" in goal["detail"]
