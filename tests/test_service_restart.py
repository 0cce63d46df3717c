"""Graceful shutdown and restart: an incident stopped mid-graph resumes in the next process
from its checkpoint, and no action runs twice.

The world (tests/simworld.py) stands for the cluster: it outlives the supervisor process, so
both "processes" here act on the same world and state directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from servicekit import TOKEN, close_service, make_service, open_supervisor, payload, wait_for
from simworld import deploy, make_rig

from supervisor.audit import verify
from supervisor.config import config_from_dict
from supervisor.demo import demo_config, sim_backends
from supervisor.domain import AuditKind, IncidentStatus
from supervisor.service import ServiceRuntime, signals_from_webhook
from supervisor.service._alertmanager import WebhookPayload


class WallLikeClock:
    """The world's clock as the service's wall clock behaves: time passes on its own (here:
    when the test advances the world) and a sleep would cost real time, so the service must
    not sleep out a settle time on a worker."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def now(self) -> datetime:
        return self.inner.now()  # type: ignore[no-any-return]

    def sleep(self, seconds: float) -> None:
        raise AssertionError(f"a worker slept {seconds} s; the settle time must be deferred")


def test_the_settle_time_holds_no_worker_and_the_verification_resumes_when_due(
    tmp_path: Path,
) -> None:
    rig = make_rig(
        tmp_path, deploys=[deploy("bad")], config={"service": {"check_interval_seconds": 0}}
    )
    rig.close()  # the rig's own supervisor is not used: the "processes" below are
    world, state_dir = rig.world, rig.state_dir
    config = config_from_dict(rig.raw_config, source="test config")
    clock = WallLikeClock(world.clock)

    # ---- process 1: opens the incident and aborts the canary; the verification waits
    read, write = sim_backends(world)
    sup1 = open_supervisor(config, read, write, clock, state_dir)
    run1 = ServiceRuntime(sup1, workers=1)
    for _ in range(36):
        world.advance(timedelta(minutes=5))
        if run1.run_checks():
            break
    run1.drain(timeout=60)  # the one worker is free again: nothing sleeps on it
    [inc] = sup1.incidents.all()
    assert [r.data["action"] for r in sup1.audit.find(AuditKind.ACTION_INTENT)] == ["abort_canary"]
    assert world.action_counts()["abort_canary"] == 1
    assert sup1.incidents.get(inc.id).status is IncidentStatus.VERIFYING  # type: ignore[union-attr]
    due = sup1.waiting_verification()[inc.id]
    assert due == world.now + timedelta(seconds=config.timing.verify_settle_seconds)
    assert run1.resume_due() == []  # not yet
    [scheduled] = [
        r for r in sup1.audit.find(AuditKind.INCIDENT_UPDATED) if "verification_due" in r.data
    ]
    assert scheduled.data["verification_due"] == due.isoformat()  # a reviewer sees the wait

    # ---- the process is told to stop during the settle time: nothing to wait for
    t0 = time.monotonic()
    assert run1.shutdown(grace=10) == []
    assert time.monotonic() - t0 < 5
    snap = sup1.graph.get_state({"configurable": {"thread_id": inc.id}})
    assert snap.next == ("verify",)
    assert sup1.audit.find(AuditKind.VERIFICATION) == []
    sup1.close()

    # ---- process 2 on the same state dir: still early, so it waits again; then it is due
    read, write = sim_backends(world)
    sup2 = open_supervisor(config, read, write, clock, state_dir)
    run2 = ServiceRuntime(sup2, workers=1)
    try:
        assert run2.start() == [inc.id]
        run2.drain(timeout=60)
        assert sup2.waiting_verification() == {inc.id: due}  # the due time survived
        assert sup2.audit.find(AuditKind.VERIFICATION) == []
        world.advance(timedelta(seconds=config.timing.verify_settle_seconds))
        wait_for(lambda: sup2.audit.find(AuditKind.VERIFICATION), what="the timer's resume")
        run2.drain(timeout=60)
        assert sup2.incidents.get(inc.id).status is IncidentStatus.MITIGATED  # type: ignore[union-attr]
        [verification] = sup2.audit.find(AuditKind.VERIFICATION, incident_id=inc.id)
        assert verification.data["passed"] is True
        assert len(sup2.audit.find(AuditKind.ACTION_INTENT, incident_id=inc.id)) == 1
        assert len(sup2.audit.find(AuditKind.ACTION_OUTCOME, incident_id=inc.id)) == 1
        assert world.action_counts()["abort_canary"] == 1
        assert sup2.waiting_verification() == {}
        assert run2.start() == []  # idempotent
    finally:
        close_service(run2)
    assert verify(state_dir / "audit.jsonl").ok


def test_incident_recorded_but_never_started_runs_on_the_next_start(tmp_path: Path) -> None:
    _app, run1, backends = make_service(tmp_path)
    run1.shutdown(grace=1)
    body = WebhookPayload.model_validate(payload())
    [sig], _ = signals_from_webhook(
        body, run1.supervisor.config.service.intake, backends.clock.now()
    )
    inc_id, is_new = run1.accept(sig)  # recorded as open, but the workers are closed
    assert is_new and inc_id is not None
    assert run1.supervisor.incidents.get(inc_id).status is IncidentStatus.OPEN  # type: ignore[union-attr]
    close_service(run1, backends)

    _app, run2, backends = make_service(tmp_path)
    try:
        assert run2.start() == [inc_id]
        run2.drain(timeout=60)
        inc = run2.supervisor.incidents.get(inc_id)
        assert inc is not None and inc.status is not IncidentStatus.OPEN
        assert run2.supervisor.audit.find(AuditKind.DECISION, incident_id=inc_id)
        assert len(run2.supervisor.incidents.all()) == 1
    finally:
        close_service(run2, backends)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """The real CLI on uvicorn: health, intake, approval auth, then SIGTERM ends it with 0."""
    state = tmp_path / "state"
    raw = demo_config(state)
    port = _free_port()
    raw["service"] = {"port": port, "check_interval_seconds": 1}
    raw["timing"]["verify_settle_seconds"] = 0
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    env = {**os.environ, "MLOPS_SUPERVISOR_APPROVAL_TOKEN": TOKEN}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "serve", "--config", str(cfg)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as client:

            def up() -> bool:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                try:
                    return client.get("/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(up, timeout=60, what="the service to answer")
            # Ready once the background warm-up (the Evidently import) has finished.
            wait_for(
                lambda: client.get("/readyz").status_code == 200,
                timeout=60,
                what="the service to be ready",
            )
            assert client.get("/readyz").json() == {"status": "ready", "checks": {"state": "ok"}}
            res = client.post("/alerts", json=payload()).json()
            assert len(res["opened"]) == 1
            inc_id = res["opened"][0]
            denied = client.post(f"/incidents/{inc_id}/approve", json={"by": "alice"})
            assert denied.status_code == 401
            wait_for(
                lambda: (
                    client.get(f"/incidents/{inc_id}").json()["incident"]["status"]
                    not in ("open", "investigating")
                ),
                timeout=60,
                what="the incident to finish",
            )
            assert "mlops_supervisor_guard_decisions_total" in client.get("/metrics").text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert "Application shutdown complete" in text and "stopped on SIGTERM" in text, text[-3000:]
    assert verify(state / "audit.jsonl").ok
