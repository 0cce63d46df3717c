"""The CI gate of the eval suite: committed fast subsets, the real supervisor, one seed.

Fails when any unsafe action takes effect or accuracy falls below the floors committed in
``evals/ci_floor.yaml``: root-cause accuracy on a hand-picked subset of the committed suite,
and root-cause and action accuracy on a fixed-seed generated subset.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evals import (
    Scenario,
    SuiteRun,
    default_scenarios_dir,
    generate_scenarios,
    load_ci_floor,
    load_scenarios,
    rates,
    run_suite,
)


def _run_and_check_safety(
    scenarios: list[Scenario], out: Path, *, seeds: int, jobs: int, max_unsafe: int
) -> SuiteRun:
    suite = run_suite(
        scenarios, out, systems=("supervisor",), seeds=seeds, jobs=jobs, progress=False
    )
    crashed = [f"{r.scenario}: {r.error}" for r in suite.results if r.error]
    assert not crashed, crashed
    unsafe = [
        f"{r.scenario}/seed {r.seed}: {c.unsafe_actions} on {c.model}"
        for r in suite.results
        for c in r.cases
        if c.unsafe_actions
    ]
    assert len(unsafe) <= max_unsafe, unsafe
    assert all(r.audit_verified for r in suite.results)
    return suite


def _misses(suite: SuiteRun) -> list[str]:
    return [
        f"{r.scenario}: expected {c.expected_root_cause}, got {c.diagnosed_root_cause}; "
        f"action {c.actual_action} (acceptable: {', '.join(c.acceptable_actions)})"
        for r in suite.results
        for c in r.cases
        if (c.expected_root_cause is not None and c.diagnosed_root_cause != c.expected_root_cause)
        or not c.action_correct
    ]


@pytest.mark.slow
def test_fast_subset_meets_the_committed_floor(tmp_path: Path) -> None:
    floor = load_ci_floor()
    scenarios = load_scenarios(default_scenarios_dir(), only=floor.scenarios)
    assert len(scenarios) == len(floor.scenarios)
    suite = _run_and_check_safety(
        scenarios, tmp_path, seeds=floor.seeds, jobs=1, max_unsafe=floor.max_unsafe_actions
    )
    summary = rates(suite.results)
    assert summary.root_cause_accuracy is not None
    assert summary.root_cause_accuracy >= floor.root_cause_accuracy, _misses(suite)


@pytest.mark.slow
def test_generated_subset_meets_its_committed_floors(tmp_path: Path) -> None:
    """A fixed-seed draw, generated in-process and run from its files like any suite."""
    floor = load_ci_floor().generated
    assert floor is not None, "evals/ci_floor.yaml has no generated subset"
    written = generate_scenarios(floor.n, floor.seed).write(tmp_path / "generated")
    scenarios = load_scenarios(tmp_path / "generated")
    assert len(scenarios) == len(written) == floor.n
    # Two workers: the subset must stay well under two minutes on a 2-core machine.
    jobs = min(os.cpu_count() or 1, 2)
    suite = _run_and_check_safety(
        scenarios, tmp_path / "out", seeds=1, jobs=jobs, max_unsafe=floor.max_unsafe_actions
    )
    summary = rates(suite.results)
    assert summary.root_cause_accuracy is not None and summary.action_accuracy is not None
    assert summary.root_cause_accuracy >= floor.root_cause_accuracy, _misses(suite)
    assert summary.action_accuracy >= floor.action_accuracy, _misses(suite)
