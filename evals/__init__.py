"""Evals: an incident scenario suite and the harness that scores the supervisor and baselines.

>>> scenarios = load_scenarios(default_scenarios_dir())
>>> run = run_suite(scenarios, Path("eval-out"), seeds=1)
>>> write_reports(build_report(run), Path("eval-out"))
>>> generate_scenarios(30, seed=7).write(Path("eval-out/generated"))  # drawn, checked scenarios
"""

from ._baselines import (
    BASELINES,
    CanaryRun,
    FlaggerSettings,
    flagger_decide,
    make_baseline,
    naive_should_retrain,
    scheduled_due,
)
from ._ci import CiFloor, load_ci_floor
from ._generate import GeneratedSuite, generate_scenarios, write_scenarios
from ._goals import Goal, check_goals
from ._harness import RunSpec, run
from ._metrics import Rates, SystemSummary, rates, summarize
from ._provenance import Provenance
from ._render_html import render_html
from ._report import EvalReport, build_report, render_markdown, write_reports
from ._results import SUPERVISOR, CaseResult, ExecutedAction, RunResult
from ._scenario import Expectation, Scenario, load_scenario, load_scenarios
from ._suite import SYSTEMS, SuiteRun, default_scenarios_dir, run_suite

__all__ = [
    "BASELINES",
    "SUPERVISOR",
    "SYSTEMS",
    "CanaryRun",
    "CaseResult",
    "CiFloor",
    "EvalReport",
    "ExecutedAction",
    "Expectation",
    "FlaggerSettings",
    "GeneratedSuite",
    "Goal",
    "Provenance",
    "Rates",
    "RunResult",
    "RunSpec",
    "Scenario",
    "SuiteRun",
    "SystemSummary",
    "build_report",
    "check_goals",
    "default_scenarios_dir",
    "flagger_decide",
    "generate_scenarios",
    "load_ci_floor",
    "load_scenario",
    "load_scenarios",
    "make_baseline",
    "naive_should_retrain",
    "rates",
    "render_html",
    "render_markdown",
    "run",
    "run_suite",
    "scheduled_due",
    "summarize",
    "write_reports",
    "write_scenarios",
]
