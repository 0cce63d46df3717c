"""Exactly-once actions under crashes, on the real adapters (issue 4, requirement 4).

For each action type a child process runs the executor over the real Kubernetes adapter (the
emulator lives in this test process, so it outlives the child), the MLflow registry and trainer
on a local sqlite store, and the pager; a write port sends SIGKILL to its own process right
before or right after one named backend call, i.e. after the intent is on record and before the
outcome is. This process then restarts the executor on the same audit log and backends, runs the
same plan again and checks, from the backends' own records (the emulator's request log, the
registry's alias log, the versions and runs tagged with the idempotency key, the pager), that the
action took effect exactly once; that the audit log reads intent -> action_interrupted ->
reconciliation -> (intent ->) action_outcome; and that ``audit verify`` passes.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from crashkit import (  # noqa: F401 (fixtures)
    INCIDENT,
    MLFLOW_WARNINGS,
    MODEL,
    NEEDS_APPROVAL,
    Child,
    Job,
    KillPoint,
    Lab,
    Station,
    alias_moves,
    applied_patches,
    clean_mlflow_globals_fixture,
    mlflow_template_fixture,
    open_lab,
    pager_world_fixture,
    plan_for,
    runs_with_key,
    spawn_child,
    versions_with_key,
)

from supervisor.audit import verify
from supervisor.cli import main as cli_main
from supervisor.domain import ActionType, OutcomeStatus

pytestmark = MLFLOW_WARNINGS

A = ActionType

#: What each action leaves in the backends' records once it took effect exactly once.
ONCE: dict[ActionType, dict[str, int]] = {
    A.ABORT_CANARY: {"patches": 1},
    A.SET_CANARY_WEIGHT: {"patches": 1},
    A.PROMOTE_CANARY: {"patches": 1, "champion_moves": 1},
    A.ROLLBACK: {"patches": 1, "champion_moves": 1},
    A.RETRAIN: {"patches": 1, "challenger_moves": 1, "versions": 1, "runs": 1},
    A.ESCALATE: {"pages": 1},
}

#: (stable, canary, weight) the emulator's InferenceService ends with, and the champion.
END_STATE: dict[ActionType, tuple[tuple[str, str | None, int], str]] = {
    A.ABORT_CANARY: (("2", None, 0), "2"),
    A.SET_CANARY_WEIGHT: (("2", "3", 50), "2"),
    A.PROMOTE_CANARY: (("3", None, 0), "3"),
    A.ROLLBACK: (("1", None, 0), "1"),
    A.RETRAIN: (("2", "4", 10), "2"),
    A.ESCALATE: (("2", "3", 20), "2"),
}


@dataclass(frozen=True)
class Case:
    action: ActionType
    kill: KillPoint
    #: What the backends show right after the kill (before the restart).
    killed: dict[str, int]
    #: The restarted executor's outcome.
    expected: OutcomeStatus

    @property
    def id(self) -> str:
        return f"{self.action.value}-{self.kill.label}"


def _before(action: ActionType, method: str) -> Case:
    return Case(action, KillPoint("before", method), {}, OutcomeStatus.SUCCEEDED)


def _after_all(action: ActionType, method: str) -> Case:
    return Case(action, KillPoint("after", method), ONCE[action], OutcomeStatus.RECONCILED)


CASES = [
    _before(A.ABORT_CANARY, "abort_canary"),
    _after_all(A.ABORT_CANARY, "abort_canary"),
    _before(A.SET_CANARY_WEIGHT, "set_canary_weight"),
    _after_all(A.SET_CANARY_WEIGHT, "set_canary_weight"),
    _before(A.PROMOTE_CANARY, "promote_canary"),
    # between its two writes: served, the champion alias not moved yet
    Case(
        A.PROMOTE_CANARY,
        KillPoint("after", "promote_canary"),
        {"patches": 1},
        OutcomeStatus.SUCCEEDED,
    ),
    _after_all(A.PROMOTE_CANARY, "set_alias"),
    _before(A.ROLLBACK, "serve_version"),
    _after_all(A.ROLLBACK, "set_alias"),
    _before(A.RETRAIN, "retrain"),
    _after_all(A.RETRAIN, "serve_version"),
    _before(A.ESCALATE, "page"),
    # paging is idempotent at the pager, so the executor pages again rather than reconcile
    Case(A.ESCALATE, KillPoint("after", "page"), ONCE[A.ESCALATE], OutcomeStatus.SUCCEEDED),
]


def facts(lab: Lab, key: str, pages: list[Any] | None = None) -> dict[str, int]:
    """What the backends themselves record about the action (zero counts left out)."""
    registry = lab.registry()
    found = {
        "patches": len(applied_patches(lab.emulator)),
        "champion_moves": len(alias_moves(registry, "champion")),
        "challenger_moves": len(alias_moves(registry, "challenger")),
        "versions": len(versions_with_key(registry, key)),
        "runs": runs_with_key(registry, key),
        "pages": len(lab.pages() if pages is None else pages),
    }
    return {k: v for k, v in found.items() if v}


def kinds(station: Station) -> list[str]:
    return [r.kind.value for r in station.audit.records(INCIDENT.id)]


def guard_kinds(action: ActionType) -> list[str]:
    if action in NEEDS_APPROVAL:
        return ["decision", "approval_requested", "approval"]
    return ["decision"]


def end_state(lab: Lab, station: Station) -> tuple[tuple[str, str | None, int], str]:
    status = station.backends.deploy.status(MODEL)
    assert status is not None
    served = (status.stable_version, status.canary_version, status.canary_weight)
    return served, str(lab.champion())


@dataclass
class Crash:
    lab: Lab
    child: Child


@pytest.fixture(scope="module")
def crashes(
    tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path, pager_world: Path
) -> Iterator[dict[str, Crash]]:
    """Every case's child, started at once (they are independent; running them side by side
    keeps the module's wall time down), each on its own lab."""
    started: dict[str, Crash] = {}
    try:
        for case in CASES:
            lab = open_lab(tmp_path_factory.mktemp(case.id), mlflow_template)
            if case.action is A.ESCALATE:
                lab.add_pager(pager_world)
            job = Job(lab.setup, plan_for(case.action).model_dump(mode="json"), case.kill)
            started[case.id] = Crash(lab, spawn_child(job, lab.root))
        yield started
    finally:
        for crash in started.values():
            crash.child.stop()
            crash.lab.close()


@pytest.mark.usefixtures("clean_mlflow_globals")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sigkill_between_intent_and_outcome_takes_effect_once(
    case: Case, crashes: dict[str, Crash]
) -> None:
    lab = crashes[case.id].lab
    plan = plan_for(case.action)
    key = plan.idempotency_key(INCIDENT.id)
    code, output = crashes[case.id].child.wait()
    assert code == -signal.SIGKILL, output
    assert facts(lab, key) == case.killed

    station = lab.station()  # the restarted supervisor process
    assert kinds(station) == [*guard_kinds(case.action), "action_intent"]
    outcome = station.execute(plan)
    assert outcome.status is case.expected, outcome.detail

    pages = [] if station.backends.world is None else station.backends.world.pages
    assert facts(lab, key, pages) == ONCE[case.action]
    assert end_state(lab, station) == END_STATE[case.action]
    after_intent = kinds(station)[len(guard_kinds(case.action)) + 1 :]
    retried = [] if case.expected is OutcomeStatus.RECONCILED else ["action_intent"]
    assert after_intent == ["action_interrupted", "reconciliation", *retried, "action_outcome"]
    [reconciliation] = [
        r for r in station.audit.records(INCIDENT.id) if r.kind.value == "reconciliation"
    ]
    assert reconciliation.data["idempotency_key"] == key
    assert reconciliation.data["applied"] is (case.expected is OutcomeStatus.RECONCILED)

    # Once the outcome is on record, the plan is a duplicate: nothing more happens.
    again = station.execute(plan)
    assert again.status is OutcomeStatus.SKIPPED_DUPLICATE
    assert facts(lab, key, pages) == ONCE[case.action]
    assert verify(lab.audit_path()).ok
    assert cli_main(["audit", "verify", str(lab.audit_path())]) == 0
