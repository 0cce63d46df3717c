"""The CLI path of approvals: a sim run paused for approval in a state directory, answered by
``mlops-supervisor approve|deny ... --state DIR`` as a person would, in a later process."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from simworld import fault, make_rig

from supervisor.audit import AuditLog
from supervisor.cli import main
from supervisor.demo import load_world, save_world
from supervisor.domain import AuditKind

INC = "inc-0001-m"


@pytest.fixture(scope="module")
def paused_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A covariate-drift run whose retrain waits for approval, saved as the demo saves it."""

    rig = make_rig(tmp_path_factory.mktemp("run"), faults=[fault("covariate_drift")])
    try:
        inc = rig.first_incident()
        assert inc.id == INC and [p.action for p in rig.sup.pending_approvals()] == ["retrain"]
        rig.raw_config["state_dir"] = "."  # relative to config.yaml: the directory can move
        rig.answer_later()
        rig.save()
    finally:
        rig.close()
    return rig.state_dir


@pytest.fixture
def state(paused_run: Path, tmp_path: Path) -> Path:
    """A private copy of the paused run."""
    return Path(shutil.copytree(paused_run, tmp_path / "state"))


def status_of(state: Path, incident_id: str = INC) -> str:
    incidents = json.loads((state / "incidents.json").read_text())
    return next(str(i["status"]) for i in incidents if i["id"] == incident_id)


def world_writes(state: Path) -> dict[str, int]:
    world = load_world(state)
    assert world is not None
    return {k: v for k, v in world.action_counts().items() if v and k != "page"}


def audit_ok(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["audit", "verify", str(state / "audit.jsonl")]) == 0
    assert capsys.readouterr().out.startswith("OK: ")


def test_incidents_lists_the_run_and_its_pending_approval(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["incidents", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert f"{INC}  awaiting_approval" in out
    assert "production/m  data_drift" in out or "production/m  quality_drop" in out
    assert f"awaiting approval: {INC} retrain by one of alice, bob before " in out


def test_approve_completes_the_incident(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["approve", INC, "--by", "alice", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert f"{INC}: approved by alice; incident is now mitigated" in out
    assert "report: " in out
    assert status_of(state) == "mitigated"
    # the world was changed, and saved back for the next command
    assert world_writes(state) == {"retrain": 1, "canary_started": 1}
    assert (state / "reports" / f"{INC}.md").exists()
    assert main(["incidents", "--state", str(state)]) == 0
    assert "awaiting approval" not in capsys.readouterr().out
    audit_ok(state, capsys)


def test_deny_escalates_and_changes_nothing(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deny", INC, "--by", "bob", "--comment", "not now", "--state", str(state)]) == 0
    assert "by bob; incident is now escalated" in capsys.readouterr().out
    assert status_of(state) == "escalated"
    assert world_writes(state) == {}
    world = load_world(state)
    assert world is not None and [p["owner"] for p in world.pages] == ["team-m"]
    audit_ok(state, capsys)


def test_deny_says_denied(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deny", INC, "--by", "bob", "--state", str(state)]) == 0
    assert f"{INC}: denied by bob" in capsys.readouterr().out


def test_approve_by_a_non_approver_exits_2_and_changes_nothing(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["approve", INC, "--by", "mallory", "--state", str(state)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "'mallory' may not approve 'inc-0001-m'" in err and "alice" in err
    assert status_of(state) == "awaiting_approval"
    assert world_writes(state) == {}
    world = load_world(state)
    assert world is not None
    with AuditLog(state / "audit.jsonl", world.clock) as audit:
        [refused] = audit.find(AuditKind.APPROVAL, incident_id=INC)
    assert refused.actor == "mallory" and refused.data["refused"] is True
    audit_ok(state, capsys)
    # the incident still waits, and a real approver can answer it
    assert main(["approve", INC, "--by", "alice", "--state", str(state)]) == 0
    assert status_of(state) == "mitigated"
    audit_ok(state, capsys)


def test_an_approval_after_the_deadline_is_a_timeout(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = load_world(state)
    assert world is not None
    world.advance(timedelta(hours=2, minutes=1))  # past the 120-minute approval timeout
    save_world(world, state)
    assert main(["approve", INC, "--by", "alice", "--state", str(state)]) == 0
    assert "incident is now escalated" in capsys.readouterr().out
    assert world_writes(state) == {}
    audit_ok(state, capsys)


def test_answering_what_does_not_exist_exits_2(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["approve", "inc-9999-x", "--by", "alice", "--state", str(state)]) == 1
    assert "no incident 'inc-9999-x'" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["deny", INC, "--by", "bob", "--state", str(empty)]) == 1
    assert "holds no config.yaml" in capsys.readouterr().err
