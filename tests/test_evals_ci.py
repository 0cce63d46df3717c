"""The CI gate of the eval suite: a committed fast subset, the real supervisor, one seed.

Fails when any unsafe action takes effect or root-cause accuracy falls below the floor
committed in ``evals/ci_floor.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from evals import default_scenarios_dir, load_ci_floor, load_scenarios, rates, run_suite


@pytest.mark.slow
def test_fast_subset_meets_the_committed_floor(tmp_path: Path) -> None:
    floor = load_ci_floor()
    scenarios = load_scenarios(default_scenarios_dir(), only=floor.scenarios)
    assert len(scenarios) == len(floor.scenarios)
    suite = run_suite(
        scenarios, tmp_path, systems=("supervisor",), seeds=floor.seeds, jobs=1, progress=False
    )
    crashed = [f"{r.scenario}: {r.error}" for r in suite.results if r.error]
    assert not crashed, crashed
    unsafe = [
        f"{r.scenario}/seed {r.seed}: {c.unsafe_actions} on {c.model}"
        for r in suite.results
        for c in r.cases
        if c.unsafe_actions
    ]
    assert len(unsafe) <= floor.max_unsafe_actions, unsafe
    summary = rates(suite.results)
    assert summary.root_cause_accuracy is not None
    missed = [
        f"{r.scenario}: expected {c.expected_root_cause}, got {c.diagnosed_root_cause}"
        for r in suite.results
        for c in r.cases
        if c.expected_root_cause is not None and c.diagnosed_root_cause != c.expected_root_cause
    ]
    assert summary.root_cause_accuracy >= floor.root_cause_accuracy, missed
    assert all(r.audit_verified for r in suite.results)
