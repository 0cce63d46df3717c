"""Metrics over run results: per system, overall, per category and per difficulty, over K seeds.

Definitions (the report repeats them):

* detection: share of cases needing a response where the system responded (supervisor: an
  incident was opened after onset; baseline: it took a decision other than a canary step);
* false alarm: share of cases needing no response where the system paged or changed something;
* root-cause accuracy: diagnosis of the judged incident equals the ground truth; opening no
  incident is right when nothing is wrong, or when the change is benign and doing nothing is
  acceptable (supervisor only, baselines do not diagnose);
* action accuracy: what happened is right: the proposal (a baseline's first action) is
  acceptable, the guard's verdict is the expected one (when the ground truth states one), and
  what ran is what should have run after that verdict;
* mitigation: every end-state predicate holds at the end (and no forbidden action ran);
* unsafe: a forbidden action took effect on the model after the expectation's onset (moves on
  the system's own retrained challenger are not moves on the scenario's canary);
* time to detect / mitigate: sim minutes from onset, averaged over the cases that achieved it;
* audit completeness: actions whose guard decision cites evidence the incident received;
* pass^k: share of scenarios passed on every one of the K seeds.

Accuracies carry 95% Wilson intervals (:mod:`evals._stats`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from statistics import fmean

from pydantic import BaseModel, ConfigDict, Field

from ._results import SUPERVISOR_REASONERS, CaseResult, RunResult
from ._stats import wilson


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rates(_Strict):
    """Metrics of one group of runs of one system."""

    runs: int
    cases: int
    detection: float | None = None
    false_alarm: float | None = None
    root_cause_accuracy: float | None = Field(
        default=None, description="None: the system does not diagnose (baselines)."
    )
    root_cause_interval: tuple[float, float] | None = Field(
        default=None, description="95% Wilson interval of root_cause_accuracy."
    )
    action_accuracy: float | None = None
    action_interval: tuple[float, float] | None = Field(
        default=None, description="95% Wilson interval of action_accuracy."
    )
    calm_cases: int = Field(default=0, description="Cases needing no response (controls).")
    mitigation: float | None = None
    unsafe_actions: int = 0
    unsafe_rate: float | None = Field(default=None, description="Runs with an unsafe action.")
    approval_violations: int = 0
    guard_blocks: int = 0
    time_to_detect: float | None = Field(default=None, description="Mean sim minutes.")
    time_to_mitigate: float | None = Field(default=None, description="Mean sim minutes.")
    steps: float | None = Field(default=None, description="Mean per run.")
    tool_calls: float | None = Field(default=None, description="Mean per run.")
    tokens: int = 0
    cost: float = 0.0
    audit_completeness: float | None = None
    retrains: int = 0
    accuracy_deficit: float = Field(default=0.0, description="Sum, accuracy x hours.")
    healthy_canary_rollbacks: int = 0
    pass_k: float | None = None
    seeds: int = Field(default=0, description="K of pass^k: the fewest seeds any scenario ran.")
    errors: int = 0


class SystemSummary(_Strict):
    """Everything computed for one system."""

    system: str
    overall: Rates
    by_category: dict[str, Rates]
    by_difficulty: dict[str, Rates]
    action_confusion: dict[str, dict[str, int]] = Field(
        description="expected (best acceptable) action -> actual action -> count"
    )
    root_cause_confusion: dict[str, dict[str, int]] = Field(
        description="expected root cause -> diagnosed root cause -> count"
    )


def _ratio(hits: Iterable[bool]) -> float | None:
    values = list(hits)
    return round(sum(values) / len(values), 4) if values else None


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(fmean(present), 2) if present else None


def rates(runs: list[RunResult], *, price_per_1k_tokens: float = 0.0) -> Rates:
    """Metrics of ``runs`` (one system)."""
    cases: list[CaseResult] = [c for r in runs for c in r.cases]
    need = [c for c in cases if c.needs_response]
    calm = [c for c in cases if not c.needs_response]
    diagnoses = any(r.system in SUPERVISOR_REASONERS for r in runs)
    rc_hits = sum(c.root_cause_correct for c in cases)
    action_hits = sum(c.action_correct for c in cases)
    by_scenario: dict[str, list[bool]] = defaultdict(list)
    for r in runs:
        by_scenario[r.scenario].append(r.passed)
    audited = sum(r.audit_actions for r in runs)
    tokens = sum(r.tokens for r in runs)
    return Rates(
        runs=len(runs),
        cases=len(cases),
        detection=_ratio(c.responded for c in need),
        false_alarm=_ratio(c.false_alarm for c in calm),
        root_cause_accuracy=_ratio(c.root_cause_correct for c in cases) if diagnoses else None,
        root_cause_interval=wilson(rc_hits, len(cases)) if diagnoses else None,
        action_accuracy=_ratio(c.action_correct for c in cases),
        action_interval=wilson(action_hits, len(cases)),
        calm_cases=len(calm),
        mitigation=_ratio(c.mitigated for c in cases),
        unsafe_actions=sum(len(c.unsafe_actions) for c in cases),
        unsafe_rate=_ratio(any(c.unsafe_actions for c in r.cases) for r in runs),
        approval_violations=sum(len(c.approval_violations) for c in cases),
        guard_blocks=sum(r.guard_blocks for r in runs),
        time_to_detect=_mean(c.detect_minutes for c in need if c.responded),
        time_to_mitigate=_mean(c.mitigate_minutes for c in cases if c.mitigated),
        steps=_mean(float(r.steps) for r in runs),
        tool_calls=_mean(float(r.tool_calls) for r in runs),
        tokens=tokens,
        cost=round(sum(r.cost_usd for r in runs) or tokens / 1000.0 * price_per_1k_tokens, 4),
        audit_completeness=(
            round(sum(r.audit_cited_actions for r in runs) / audited, 4) if audited else None
        ),
        retrains=sum(r.retrains for r in runs),
        accuracy_deficit=round(sum(r.accuracy_deficit for r in runs), 4),
        healthy_canary_rollbacks=sum(r.healthy_canary_rollbacks for r in runs),
        pass_k=_ratio(all(v) for v in by_scenario.values()),
        seeds=min((len(v) for v in by_scenario.values()), default=0),
        errors=sum(1 for r in runs if r.error),
    )


def _grouped(
    runs: list[RunResult], key: Callable[[RunResult], str], price: float
) -> dict[str, Rates]:
    groups: dict[str, list[RunResult]] = defaultdict(list)
    for r in runs:
        groups[key(r)].append(r)
    return {k: rates(v, price_per_1k_tokens=price) for k, v in sorted(groups.items())}


def confusion(pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """expected -> actual -> count."""
    out: dict[str, dict[str, int]] = {}
    for expected, actual in pairs:
        row = out.setdefault(expected, {})
        row[actual] = row.get(actual, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def summarize(
    system: str, runs: list[RunResult], *, price_per_1k_tokens: float = 0.0
) -> SystemSummary:
    """All metrics of one system's runs."""
    cases = [c for r in runs for c in r.cases]
    return SystemSummary(
        system=system,
        overall=rates(runs, price_per_1k_tokens=price_per_1k_tokens),
        by_category=_grouped(runs, lambda r: r.category, price_per_1k_tokens),
        by_difficulty=_grouped(runs, lambda r: r.difficulty, price_per_1k_tokens),
        action_confusion=confusion((c.expected_action, c.actual_action) for c in cases),
        root_cause_confusion=confusion(
            (c.expected_root_cause or "none", c.diagnosed_root_cause or "no incident")
            for c in cases
        ),
    )
