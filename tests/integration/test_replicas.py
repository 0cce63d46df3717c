"""Two replicas sharing only Postgres (issue 7, requirement 5).

Each replica has its own, empty state directory, as two pods would; everything they decide is
in one Postgres database (a real server from the Debian package, tests/pg_server.py). The sim
world stands for the cluster both replicas watch. Leadership is a flag here (the Lease itself
is tested against the API emulator in tests/test_ha_lease.py, and with Postgres at the end of
this module); the service runs for real: FastAPI app, runtime, workers and the pickup thread.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_slack import FakeSlack, start_fake_slack
from fastapi.testclient import TestClient
from leasekit import elector, emulator_fixture, lease  # noqa: F401
from pg_server import pg_dsn_fixture, postgres_server_fixture  # noqa: F401 (fixtures)
from servicekit import TOKEN, auth, payload, wait_for
from simworld import MODEL, AfterWrite, config_dict, deploy, exit_after, fault, world_spec
from slackkit import BOT_TOKEN, CHANNEL, NOW, SECRET, USERS, block_actions, sign

from supervisor.audit import verify_postgres
from supervisor.chatops import ChatOps, SlackConfig, mount_slack
from supervisor.cli import main
from supervisor.config import config_from_dict
from supervisor.demo import sim_backends
from supervisor.domain import AuditKind, IncidentStatus
from supervisor.ha import PostgresDocument, postgres_checkpoints, setup_shared_state
from supervisor.llm import DailyTokenBudget
from supervisor.runtime import Supervisor
from supervisor.service import ServiceRuntime, create_app, readiness_probes, run_probes
from supervisor.telemetry import TelemetryConfig, setup_tracing
from tools import WriteBackends
from tools.sim import SimWorld, build_world

DSN_ENV = "MLOPS_SUPERVISOR_TEST_PG_DSN"
DRIFT = {
    "model": MODEL,
    "fingerprint": "fp-drift-1",
    "alertname": "ModelDataDrift",
    "group_key": '{}:{alertname="ModelDataDrift"}',
}


class Gate:
    """Leadership as a flag the test sets (supervisor.runtime.LeaderGate)."""

    def __init__(self, leading: bool) -> None:
        self.leading = leading

    def is_leader(self) -> bool:
        return self.leading


class Replica:
    """One replica: its own state dir, the shared world and database, a running service."""

    def __init__(
        self,
        world: SimWorld,
        state_dir: Path,
        gate: Any,
        write: WriteBackends | None = None,
        slack: FakeSlack | None = None,
    ) -> None:
        raw = config_dict(
            state_dir,
            ha={"postgres_dsn_env": DSN_ENV, "pickup_interval_seconds": 0.05},
            service={"check_interval_seconds": 0},
        )
        read, sim_write = sim_backends(world)
        self.tracing = setup_tracing(TelemetryConfig())
        self.sup = Supervisor(
            config_from_dict(raw, source="test config"),
            read=read,
            write=write or sim_write,
            clock=world.clock,
            tracing=self.tracing,
            state_dir=state_dir,
            leader=gate,
        )
        self.gate = gate
        self.state_dir = state_dir
        self.runtime = ServiceRuntime(self.sup, workers=2, stopping=threading.Event())
        app = create_app(self.runtime, approval_token=TOKEN)
        self.chatops: ChatOps | None = None
        if slack is not None:  # as `serve` mounts it (supervisor/service/_serve.py)
            config = SlackConfig(channel=CHANNEL, api_base_url=slack.api_url, users=USERS)
            env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET}
            self.chatops = ChatOps(
                self.sup, config, env=env, now=lambda: NOW, on_answered=self.runtime.observe
            )
            mount_slack(app, self.chatops)
            self.runtime.listeners.append(self.chatops.notifier.incident_changed)
        self.client = TestClient(app)
        self.client.__enter__()  # lifespan: recovery, scheduler, pickup

    def incident(self, incident_id: str) -> dict[str, Any]:
        res = self.client.get(f"/incidents/{incident_id}")
        assert res.status_code == 200, res.text
        return res.json()  # type: ignore[no-any-return]

    def status(self, incident_id: str) -> str:
        return str(self.incident(incident_id)["incident"]["status"])

    def slack(self, body: str) -> Any:
        assert self.chatops is not None
        res = self.client.post("/slack/events", content=body, headers=sign(body, NOW))
        self.chatops.drain(timeout=30)
        return res

    def close(self) -> None:
        if self.chatops is not None:
            self.chatops.close()
        self.client.__exit__(None, None, None)
        self.sup.close()
        self.tracing.shutdown()


@pytest.fixture(name="drifting")
def drifting_fixture(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> SimWorld:
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    world = build_world(world_spec(faults=[fault("covariate_drift", at=30)]))
    world.advance(timedelta(hours=2))  # the drift is plain in the data by now
    return world


@pytest.fixture(name="pair")
def pair_fixture(drifting: SimWorld, tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    leader = Replica(drifting, tmp_path / "a", Gate(True))
    follower = Replica(drifting, tmp_path / "b", Gate(False))
    try:
        yield leader, follower
    finally:
        follower.close()
        leader.close()


def test_a_follower_takes_the_webhook_and_the_leader_runs_the_incident(
    pair: tuple[Replica, Replica], drifting: SimWorld, pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    leader, follower = pair
    res = follower.client.post("/alerts", json=payload(**DRIFT))
    assert res.status_code == 200, res.text
    [inc_id] = res.json()["opened"]
    # the follower recorded it and runs nothing; the leader's pickup starts it
    wait_for(
        lambda: follower.status(inc_id) == IncidentStatus.AWAITING_APPROVAL.value,
        what="the leader to run the incident up to its approval",
    )
    assert follower.runtime._pool.active() == []
    detail = follower.incident(inc_id)  # a follower serves reads of the shared state
    assert detail["diagnosis"]["root_cause"] == "covariate_drift"
    assert detail["pending_approval"]["action"] == "retrain"
    # one diagnosis per investigation: the first, and one per label re-check (the retrain
    # waits for the drifted rows' labels), none twice from the two replicas
    rechecks = follower.sup.audit.find(AuditKind.RECHECK_DUE, incident_id=inc_id)
    diagnoses = follower.sup.audit.find(AuditKind.DIAGNOSIS, incident_id=inc_id)
    assert len(diagnoses) == 1 + len(rechecks)

    # the same alert through the other replica is folded into the same incident
    again = leader.client.post("/alerts", json=payload(**DRIFT)).json()
    assert again["incidents"] == [inc_id] and again["opened"] == []
    assert len(leader.client.get("/incidents").json()["incidents"]) == 1
    assert follower.incident(inc_id)["incident"]["signal_count"] == 2

    # the approval is taken by the follower and applied by the leader, once
    res = follower.client.post(
        f"/incidents/{inc_id}/approve", json={"by": "alice", "comment": "go"}, headers=auth()
    )
    assert res.status_code == 202, res.text
    wait_for(
        lambda: follower.status(inc_id) == IncidentStatus.MITIGATED.value,
        what="the leader to apply the queued approval",
    )
    assert drifting.action_counts()["retrain"] == 1
    approvals = follower.sup.audit.find(AuditKind.APPROVAL, incident_id=inc_id)
    assert [a.data.get("queued_for_leader", False) for a in approvals] == [True, False]
    assert approvals[1].data["approval"]["by"] == "alice"
    assert follower.sup.queued_answers() == []

    # nothing of it lives in either replica's own state directory
    for replica in pair:
        assert not (replica.state_dir / "audit.jsonl").exists()
        assert not (replica.state_dir / "incidents.json").exists()
        assert not (replica.state_dir / "checkpoints.sqlite").exists()
    assert verify_postgres(pg_dsn).ok
    # no replica tried to run what it must not (a follower's run would fail as NotLeader)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_pause_through_one_replica_holds_the_leader(
    pair: tuple[Replica, Replica], drifting: SimWorld
) -> None:
    leader, follower = pair
    res = follower.client.post("/pause", json={"by": "alice", "reason": "freeze"}, headers=auth())
    assert res.status_code == 200 and res.json()["changed"] is True
    assert leader.client.get("/pause").json()["global"]["by"] == "alice"

    [inc_id] = follower.client.post("/alerts", json=payload(**DRIFT)).json()["opened"]
    wait_for(lambda: follower.status(inc_id) == "awaiting_approval", what="the approval")
    follower.client.post(f"/incidents/{inc_id}/approve", json={"by": "bob"}, headers=auth())
    wait_for(
        lambda: follower.sup.audit.find(AuditKind.ACTION_OUTCOME, incident_id=inc_id),
        what="the leader to reach the action",
    )
    [outcome] = follower.sup.audit.find(AuditKind.ACTION_OUTCOME, incident_id=inc_id)
    assert outcome.data["outcome"]["status"] == "suppressed"
    assert drifting.action_counts().get("retrain", 0) == 0


def test_dedup_holds_when_both_replicas_take_a_storm_at_once(
    pair: tuple[Replica, Replica],
) -> None:
    leader, follower = pair
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def send(replica: Replica, n: int) -> None:
        for i in range(n):
            body = payload(**{**DRIFT, "fingerprint": f"fp-{i % 3}"})
            res = replica.client.post("/alerts", json=body)
            assert res.status_code == 200, res.text
            with lock:
                answers.append(res.json())

    threads = [
        threading.Thread(target=send, args=(r, 15)) for r in (leader, follower, leader, follower)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    opened = [i for a in answers for i in a["opened"]]
    assert len(answers) == 60 and len(opened) == 1
    assert {i for a in answers for i in a["incidents"]} == set(opened)
    signals = follower.sup.audit.find(AuditKind.SIGNAL, incident_id=opened[0])
    assert len(signals) == 60
    assert follower.incident(opened[0])["incident"]["signal_count"] == 60


def test_approvals_on_a_follower_are_checked_before_they_are_queued(
    pair: tuple[Replica, Replica], drifting: SimWorld
) -> None:
    leader, follower = pair
    [inc_id] = follower.client.post("/alerts", json=payload(**DRIFT)).json()["opened"]
    wait_for(lambda: follower.status(inc_id) == "awaiting_approval", what="the approval")
    res = follower.client.post(
        f"/incidents/{inc_id}/approve", json={"by": "mallory"}, headers=auth()
    )
    assert res.status_code == 403
    assert follower.sup.queued_answers() == []
    assert leader.status(inc_id) == "awaiting_approval"

    leader.gate.leading = False  # nobody leads for a while: the answer waits in Postgres
    res = follower.client.post(f"/incidents/{inc_id}/approve", json={"by": "alice"}, headers=auth())
    assert res.status_code == 202
    follower.runtime.drain(timeout=30)
    [queued] = follower.sup.queued_answers()
    assert (queued.decision, queued.by) == ("approved", "alice")
    again = follower.client.post(f"/incidents/{inc_id}/deny", json={"by": "bob"}, headers=auth())
    assert again.status_code == 409 and "already waiting" in again.text
    leader.gate.leading = True
    wait_for(lambda: leader.status(inc_id) == "mitigated", what="the new leader to apply it")
    assert drifting.action_counts()["retrain"] == 1


def test_a_slack_click_on_a_follower_is_applied_by_the_leader_and_one_message_follows_it(
    drifting: SimWorld, tmp_path: Path
) -> None:
    fake, server = start_fake_slack()
    leader = Replica(drifting, tmp_path / "a", Gate(True), slack=fake)
    follower = Replica(drifting, tmp_path / "b", Gate(False), slack=fake)
    try:
        [inc_id] = follower.client.post("/alerts", json=payload(**DRIFT)).json()["opened"]
        wait_for(lambda: fake.of("chat.postMessage"), what="the leader to post the incident")
        [posted] = fake.of("chat.postMessage")
        assert inc_id in str(posted.args) and follower.status(inc_id) == "awaiting_approval"

        res = follower.slack(block_actions("mlops_approve", "U0ALICE", fake, value=inc_id))
        assert res.status_code == 200
        wait_for(lambda: follower.status(inc_id) == "mitigated", what="the leader to apply it")

        def last_update() -> str:
            updates = fake.of("chat.update")
            return json.dumps(updates[-1].args["blocks"]) if updates else ""

        # The leader updates the message once it has applied the answer (after the run).
        wait_for(lambda: "*Outcome*" in last_update(), what="the message update")
        assert len(fake.of("chat.postMessage")) == 1  # one message, whichever replica speaks
        update = fake.of("chat.update")[-1]
        assert leader.chatops is not None and follower.chatops is not None
        shared = follower.chatops.notifier.message_of(inc_id)  # the map lives in Postgres
        assert shared == leader.chatops.notifier.message_of(inc_id)
        assert shared is not None and update.args["ts"] == shared["ts"]
        assert "Approved by *alice*" in json.dumps(update.args["blocks"])
        assert drifting.action_counts()["retrain"] == 1
        [told] = fake.of("chat.postEphemeral")  # the clicker hears it is queued at once
        assert told.args["user"] == "U0ALICE" and "leader replica applies it" in told.args["text"]
    finally:
        follower.close()
        leader.close()
        server.shutdown()
        server.server_close()


def test_the_cli_pause_with_the_services_config_reaches_every_replica(
    pair: tuple[Replica, Replica], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leader, follower = pair
    config = tmp_path / "config.yaml"
    raw = config_dict(tmp_path / "cli-state", ha={"postgres_dsn_env": DSN_ENV})
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert main(["pause", MODEL, "--by", "bob", "--config", str(config)]) == 0
    assert "m: paused by bob" in capsys.readouterr().out
    for replica in pair:
        assert replica.client.get("/pause").json()["models"][MODEL]["by"] == "bob"
    assert main(["resume", MODEL, "--by", "bob", "--config", str(config)]) == 0
    assert leader.client.get("/pause").json()["models"] == {}
    events = [
        r.data["pause"]["event"]
        for r in follower.sup.audit.find(AuditKind.INCIDENT_UPDATED)
        if "pause" in r.data
    ]
    assert events == ["paused", "resumed"]  # in the shared trail
    assert not (tmp_path / "cli-state" / "audit.jsonl").exists()
    assert main(["pause", "nope", "--by", "bob", "--config", str(config)]) == 1


def test_readiness_asks_postgres_not_the_state_files(pair: tuple[Replica, Replica]) -> None:
    leader, _ = pair
    config, state = leader.sup.config, leader.state_dir
    probes = readiness_probes(config, state, None, postgres=leader.sup.ping_shared)  # type: ignore[arg-type]
    assert run_probes(probes) == (True, {"state": "ok", "postgres": "ok"})

    def down() -> None:
        raise OSError("connection refused")

    ok, checks = run_probes(readiness_probes(config, state, None, postgres=down))  # type: ignore[arg-type]
    assert not ok and checks["postgres"] == "OSError: connection refused"


# ------------------------------------------------------------------ the Lease, with Postgres


def test_the_leader_dies_mid_action_and_the_next_lease_holder_finishes_it_once(
    emulator: Any, tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replica a takes the Lease, runs a bad canary's incident and dies right after its
    write reached the cluster. Replica b, with its own empty state directory, follows until
    a's Lease expires, then leads: its pickup resumes the incident from the Postgres
    checkpoint and reconciles the action instead of repeating it."""
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    world = build_world(world_spec(deploys=[deploy("bad")]))
    a = elector(emulator, tmp_path, "replica-a", world.clock)
    b = elector(emulator, tmp_path, "replica-b", world.clock)
    raw = config_dict(tmp_path / "a", ha={"postgres_dsn_env": DSN_ENV})
    read, write = sim_backends(world)
    dying = WriteBackends(
        registry=write.registry,
        deploy=AfterWrite(write.deploy, exit_after("leader died")),  # type: ignore[arg-type]
        train=write.train,
        notifier=write.notifier,
    )
    tracing = setup_tracing(TelemetryConfig())
    first = Supervisor(
        config_from_dict(raw, source="test config"),
        read=read,
        write=dying,
        clock=world.clock,
        tracing=tracing,
        state_dir=tmp_path / "a",
        leader=a,
    )
    with pytest.raises(SystemExit, match="leader died after abort_canary"):
        for _ in range(36):
            world.advance(timedelta(minutes=5))
            assert a.try_acquire_or_renew() is True
            assert b.try_acquire_or_renew() is False
            first.tick()
    [inc] = first.incidents.all()
    first.close()  # the process is gone; it never releases the Lease
    assert world.action_counts()["abort_canary"] == 1

    follower = Replica(world, tmp_path / "b", b)
    try:
        # b serves the dead leader's incident from Postgres, and runs nothing while it follows
        assert follower.status(inc.id) == IncidentStatus.INVESTIGATING.value
        assert follower.runtime.pickup() == []
        assert follower.sup.audit.find(AuditKind.ACTION_INTERRUPTED) == []

        world.advance(timedelta(seconds=16))
        assert b.try_acquire_or_renew() is True
        assert lease(emulator)["spec"]["holderIdentity"] == "replica-b"
        wait_for(
            lambda: follower.status(inc.id) == IncidentStatus.MITIGATED.value,
            what="the new leader to finish the incident",
        )
        assert world.action_counts()["abort_canary"] == 1  # the world saw one write
        audit = follower.sup.audit
        [outcome] = audit.find(AuditKind.ACTION_OUTCOME, incident_id=inc.id)
        assert outcome.data["outcome"]["status"] == "reconciled"
        assert len(audit.find(AuditKind.ACTION_INTENT, incident_id=inc.id)) == 1
        assert not (tmp_path / "b" / "audit.jsonl").exists()
    finally:
        follower.close()
        tracing.shutdown()
    assert verify_postgres(pg_dsn).ok


def test_replicas_spend_one_daily_llm_budget(pg_dsn: str) -> None:
    """The next leader after a failover must not start a fresh budget."""
    shared = postgres_checkpoints(pg_dsn)
    try:
        setup_shared_state(shared.pool)
        day = [datetime(2026, 1, 5, 9, tzinfo=UTC)]
        a, b = (
            DailyTokenBudget(1000, lambda: day[0], shared=PostgresDocument(shared.pool, "llm"))
            for _ in range(2)
        )
        a.charge(600)
        assert b.used == 600 and b.remaining() == 400
        b.charge(500)
        assert a.exhausted() and a.used == 1100
        day[0] += timedelta(days=1)
        assert a.used == 0 and not b.exhausted()
        b.charge(10)
        assert a.used == 10
    finally:
        shared.close()
