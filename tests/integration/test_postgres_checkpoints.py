"""Graph checkpoints in Postgres shared by replicas (issue 7, requirement 5).

A real Postgres from the Debian package (tests/pg_server.py). The sim world stands for the
cluster and outlives each "replica"; replicas share the Postgres database (checkpoints, audit
trail, incidents) and keep no checkpoints of their own. (The world's pickle is in the state
directory; see tests/integration/test_replicas.py for replicas with separate directories.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # run as a script (the child replica): the helpers must import
    sys.path.insert(0, str(TESTS))

import pytest  # noqa: E402
from pg_server import pg_dsn_fixture, postgres_server_fixture  # noqa: E402, F401 (fixtures)
from simworld import AfterWrite, config_dict, deploy, fault, world_spec  # noqa: E402

from supervisor.audit import verify_postgres  # noqa: E402
from supervisor.config import config_from_dict  # noqa: E402
from supervisor.demo import load_world, save_world, sim_backends  # noqa: E402
from supervisor.domain import AuditKind, IncidentStatus  # noqa: E402
from supervisor.runtime import Supervisor  # noqa: E402
from supervisor.telemetry import TelemetryConfig, setup_tracing  # noqa: E402
from tools import WriteBackends  # noqa: E402
from tools.sim import SimWorld, build_world  # noqa: E402

DSN_ENV = "MLOPS_SUPERVISOR_TEST_PG_DSN"
ENDED = {IncidentStatus.MITIGATED, IncidentStatus.ESCALATED, IncidentStatus.CLOSED}


def replica(world: SimWorld, state_dir: Path, write: WriteBackends | None = None) -> Supervisor:
    """One replica over the shared world and state dir, checkpointing to $DSN_ENV."""
    raw = config_dict(state_dir, ha={"postgres_dsn_env": DSN_ENV})
    read, sim_write = sim_backends(world)
    return Supervisor(
        config_from_dict(raw, source="test config"),
        read=read,
        write=write or sim_write,
        clock=world.clock,
        tracing=setup_tracing(TelemetryConfig()),
        state_dir=state_dir,
    )


def tick_until_incident(sup: Supervisor, world: SimWorld) -> str:
    for _ in range(36):
        world.advance(timedelta(minutes=5))
        sup.tick()
        if sup.incidents.all():
            return sup.incidents.all()[0].id
    raise AssertionError("no incident within 3 hours")


def test_a_second_replica_takes_the_approval_and_finishes_the_incident(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    world = build_world(world_spec(faults=[fault("covariate_drift")]))
    state_dir = tmp_path / "state"

    first = replica(world, state_dir)
    inc_id = tick_until_incident(first, world)
    assert first.incidents.get(inc_id).status is IncidentStatus.AWAITING_APPROVAL  # type: ignore[union-attr]
    [pending] = first.pending_approvals()
    assert pending.action == "retrain"
    first.close()  # the replica goes away; its checkpoints stay in Postgres
    assert not (state_dir / "checkpoints.sqlite").exists()

    second = replica(world, state_dir)
    try:
        snap = second.graph.get_state({"configurable": {"thread_id": inc_id}})
        assert snap.next == ("await_approval",)
        assert [p.incident_id for p in second.pending_approvals()] == [inc_id]
        # Time passes before alice answers: the drifted rows' labels arrive, and the retrain
        # window (labelled rows only) fits the drifted world.
        world.advance(timedelta(minutes=30))
        second.approve(inc_id, "alice", "go")
        assert second.incidents.get(inc_id).status in ENDED  # type: ignore[union-attr]
        assert world.action_counts()["retrain"] == 1
        [outcome] = second.audit.find(AuditKind.ACTION_OUTCOME, incident_id=inc_id)
        assert outcome.data["outcome"]["status"] == "succeeded"
        assert second.graph.get_state({"configurable": {"thread_id": inc_id}}).next == ()
    finally:
        second.close()
    assert verify_postgres(pg_dsn).ok
    assert not (state_dir / "audit.jsonl").exists()  # the trail is in Postgres


# ------------------------------------------------------------------ SIGKILL mid-incident


def test_a_replica_killed_mid_action_is_resumed_from_postgres_by_another(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    save_world(build_world(world_spec(deploys=[deploy("bad")])), state_dir)
    (state_dir / "job.json").write_text(json.dumps({"dsn_env": DSN_ENV}), encoding="utf-8")

    child = subprocess.run(
        [sys.executable, __file__, str(state_dir)],
        env={**os.environ, DSN_ENV: pg_dsn},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    world = load_world(state_dir)  # as the dead replica left it, the write applied
    assert world is not None
    assert world.action_counts()["abort_canary"] == 1
    assert not (state_dir / "checkpoints.sqlite").exists()

    survivor = replica(world, state_dir)
    try:
        [inc] = survivor.incidents.all()
        assert survivor.audit.find(AuditKind.ACTION_INTENT, incident_id=inc.id)
        assert survivor.audit.find(AuditKind.ACTION_OUTCOME, incident_id=inc.id) == []
        snap = survivor.graph.get_state({"configurable": {"thread_id": inc.id}})
        assert snap.next == ("act",)

        assert survivor.resume_unfinished() == [inc.id]
        assert world.action_counts()["abort_canary"] == 1  # not repeated
        [outcome] = survivor.audit.find(AuditKind.ACTION_OUTCOME, incident_id=inc.id)
        assert outcome.data["outcome"]["status"] == "reconciled"
        kinds = [r.kind.value for r in survivor.audit.records(inc.id)]
        assert kinds.index("action_intent") < kinds.index("action_interrupted")
        assert kinds.index("action_interrupted") < kinds.index("reconciliation")
        assert survivor.incidents.get(inc.id).status is IncidentStatus.MITIGATED  # type: ignore[union-attr]
        assert survivor.resume_unfinished() == []
    finally:
        survivor.close()
    assert verify_postgres(pg_dsn).ok
    assert not (state_dir / "audit.jsonl").exists()  # the trail is in Postgres


def _kill_saving(world: SimWorld, state_dir: Path) -> None:
    """The write reached the world: save it as the cluster would keep it, then die hard."""
    save_world(world, state_dir)
    os.kill(os.getpid(), signal.SIGKILL)


def _child(state_dir: Path) -> None:
    world = load_world(state_dir)
    assert world is not None
    _read, write = sim_backends(world)
    dying = WriteBackends(
        registry=write.registry,
        deploy=AfterWrite(write.deploy, lambda _name: _kill_saving(world, state_dir)),  # type: ignore[arg-type]
        train=write.train,
        notifier=write.notifier,
    )
    sup = replica(world, state_dir, dying)
    tick_until_incident(sup, world)
    raise SystemExit("the replica was never killed: no deploy write happened")


if __name__ == "__main__":
    _child(Path(sys.argv[1]))
