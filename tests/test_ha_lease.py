"""Leader election on a Kubernetes Lease, against the API emulator (issue 7, requirement 5).

Electors use the official client over HTTP; time is a SimClock, so lease expiry is a clock
advance, not a sleep. The last test runs incidents: the leader dies mid-action and the replica
that takes the Lease over finishes the incident without repeating the action.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kube_emulator import KubeEmulator
from leasekit import LEASE, NS, elector, emulator_fixture, lease  # noqa: F401
from simworld import AfterWrite, config_dict, deploy, exit_after, world_spec

import supervisor.ha
from supervisor import SimClock
from supervisor.audit import verify
from supervisor.config import config_from_dict
from supervisor.demo import sim_backends
from supervisor.domain import AuditKind, IncidentStatus
from supervisor.ha import LeaseElector
from supervisor.runtime import NotLeader, Supervisor
from supervisor.telemetry import TelemetryConfig, setup_tracing
from tools import WriteBackends
from tools.sim import build_world


def test_exports() -> None:
    for name in supervisor.ha.__all__:
        assert hasattr(supervisor.ha, name), name


def test_one_wins_and_the_other_takes_over_when_the_leader_stops_renewing(
    emulator: KubeEmulator, tmp_path: Path
) -> None:
    clock = SimClock()
    a, b = elector(emulator, tmp_path, "replica-a", clock), elector(emulator, tmp_path, "b", clock)
    assert a.try_acquire_or_renew() is True
    assert b.try_acquire_or_renew() is False
    spec = lease(emulator)["spec"]
    assert spec["holderIdentity"] == "replica-a" and spec["leaseTransitions"] == 0
    assert spec["leaseDurationSeconds"] == 15
    assert spec["renewTime"] == spec["acquireTime"] == "2026-01-05T08:00:00.000000Z"

    clock.advance(timedelta(seconds=5))
    assert a.try_acquire_or_renew() is True  # renewed
    assert b.try_acquire_or_renew() is False
    assert lease(emulator)["spec"]["renewTime"] == "2026-01-05T08:00:05.000000Z"
    assert lease(emulator)["spec"]["acquireTime"] == "2026-01-05T08:00:00.000000Z"

    # a dies: no more renewals. It stops counting itself leader at its renew deadline (10 s),
    # before b may take over (15 s after b last saw the record change).
    clock.advance(timedelta(seconds=10))
    assert a.is_leader() is False
    assert b.try_acquire_or_renew() is False  # 10 s since b saw the renewal: not expired
    clock.advance(timedelta(seconds=5))
    assert b.try_acquire_or_renew() is True
    spec = lease(emulator)["spec"]
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    assert spec["acquireTime"] == spec["renewTime"] == "2026-01-05T08:00:20.000000Z"

    # a comes back (a paused process): it sees a live leader and follows
    assert a.try_acquire_or_renew() is False
    assert a.observed_holder == "b"
    verbs = {(c.verb, c.status) for c in emulator.calls}
    assert verbs == {("get", 200), ("get", 404), ("create", 201), ("update", 200)}


def test_racing_writers_one_wins_by_resource_version(
    emulator: KubeEmulator, tmp_path: Path
) -> None:
    clock = SimClock()
    a, b = elector(emulator, tmp_path, "a", clock), elector(emulator, tmp_path, "b", clock)
    assert a.try_acquire_or_renew() is True
    assert b.try_acquire_or_renew() is False
    clock.advance(timedelta(seconds=16))  # a is dead; b sees the lease expired
    # c writes between b's read and b's write
    emulator.before_next_write(
        lambda: emulator.mutate(
            "coordination.k8s.io",
            "leases",
            NS,
            LEASE,
            lambda o: o["spec"].update(holderIdentity="c", renewTime="2026-01-05T08:00:16.000000Z"),
        )
    )
    assert b.try_acquire_or_renew() is False  # its update carried a stale resourceVersion
    conflicts = [x for x in emulator.calls if x.verb == "update" and x.status == 409]
    assert len(conflicts) == 1
    assert lease(emulator)["spec"]["holderIdentity"] == "c"
    assert b.try_acquire_or_renew() is False  # and it now follows c
    assert b.observed_holder == "c"


def test_two_creators_race_and_the_second_follows(emulator: KubeEmulator, tmp_path: Path) -> None:
    clock = SimClock()
    a, b = elector(emulator, tmp_path, "a", clock), elector(emulator, tmp_path, "b", clock)
    emulator.fail("get", "leases", 404, "not found", times=2)  # both see no lease
    assert a.try_acquire_or_renew() is True
    assert b.try_acquire_or_renew() is False
    assert [(x.verb, x.status) for x in emulator.calls if x.verb == "create"] == [
        ("create", 201),
        ("create", 409),
    ]


def test_release_hands_over_at_once_and_an_unreachable_api_ends_leadership(
    emulator: KubeEmulator, tmp_path: Path
) -> None:
    clock = SimClock()
    a, b = elector(emulator, tmp_path, "a", clock), elector(emulator, tmp_path, "b", clock)
    assert a.try_acquire_or_renew() is True
    a.release()
    assert a.is_leader() is False
    assert lease(emulator)["spec"]["holderIdentity"] is None
    assert b.try_acquire_or_renew() is True  # no waiting for the duration
    assert lease(emulator)["spec"]["leaseTransitions"] == 1

    emulator.fail("update", "leases", 503, times=10)
    clock.advance(timedelta(seconds=5))
    assert b.try_acquire_or_renew() is True  # renewal failed, still within the deadline
    clock.advance(timedelta(seconds=5))
    assert b.try_acquire_or_renew() is False  # 10 s without a renewal: steps down


def test_forbidden_is_explained(emulator: KubeEmulator, tmp_path: Path, caplog: Any) -> None:
    emulator.rbac_rules = []
    a = elector(emulator, tmp_path, "a", SimClock())
    assert a.try_acquire_or_renew() is False
    assert "leases.coordination.k8s.io" in caplog.text


# ------------------------------------------------------------------ the leader dies mid-incident


def test_the_new_leader_finishes_the_dead_leaders_incident_without_repeating_it(
    emulator: KubeEmulator, tmp_path: Path
) -> None:
    world = build_world(world_spec(deploys=[deploy("bad")]))
    clock = world.clock
    state_dir = tmp_path / "state"
    config = config_from_dict(config_dict(state_dir), source="test config")
    a = elector(emulator, tmp_path, "replica-a", clock)
    b = elector(emulator, tmp_path, "replica-b", clock)

    def replica(write: WriteBackends, gate: LeaseElector) -> Supervisor:
        read, _ = sim_backends(world)
        return Supervisor(
            config,
            read=read,
            write=write,
            clock=clock,
            tracing=setup_tracing(TelemetryConfig()),
            state_dir=state_dir,
            leader=gate,
        )

    _, write = sim_backends(world)
    dying = WriteBackends(
        registry=write.registry,
        deploy=AfterWrite(write.deploy, exit_after("leader died")),  # type: ignore[arg-type]
        train=write.train,
        notifier=write.notifier,
    )
    leader = replica(dying, a)
    with pytest.raises(SystemExit, match="leader died after abort_canary"):
        for _ in range(36):
            world.advance(timedelta(minutes=5))
            assert a.try_acquire_or_renew() is True
            assert b.try_acquire_or_renew() is False
            leader.tick()
    [inc] = leader.incidents.all()
    assert world.action_counts()["abort_canary"] == 1
    assert leader.audit.find(AuditKind.ACTION_INTENT, incident_id=inc.id)
    assert leader.audit.find(AuditKind.ACTION_OUTCOME, incident_id=inc.id) == []
    leader.close()  # the process is gone; it never releases the Lease

    _, write = sim_backends(world)
    follower = replica(write, b)
    try:
        # while the dead leader's Lease has not expired, b only follows: it runs no graph
        assert b.try_acquire_or_renew() is False
        assert follower.resume_unfinished() == []
        with pytest.raises(NotLeader, match="not the leader"):
            follower._run(inc.id, None)
        assert follower.audit.find(AuditKind.ACTION_INTERRUPTED) == []

        world.advance(timedelta(seconds=16))
        assert b.try_acquire_or_renew() is True
        assert lease(emulator)["spec"]["leaseTransitions"] == 1
        assert a.is_leader() is False  # were a still alive, it would no longer act
        assert follower.resume_unfinished() == [inc.id]

        assert world.action_counts()["abort_canary"] == 1  # the world saw one write
        [outcome] = follower.audit.find(AuditKind.ACTION_OUTCOME, incident_id=inc.id)
        assert outcome.data["outcome"]["status"] == "reconciled"
        [interrupted] = follower.audit.find(AuditKind.ACTION_INTERRUPTED, incident_id=inc.id)
        [recon] = follower.audit.find(AuditKind.RECONCILIATION, incident_id=inc.id)
        assert recon.data["applied"] is True
        assert interrupted.seq < recon.seq < follower.audit.find(AuditKind.ACTION_OUTCOME)[0].seq
        assert len(follower.audit.find(AuditKind.ACTION_INTENT, incident_id=inc.id)) == 1
        assert follower.incidents.get(inc.id).status is IncidentStatus.MITIGATED  # type: ignore[union-attr]
    finally:
        follower.close()
    assert verify(state_dir / "audit.jsonl").ok
