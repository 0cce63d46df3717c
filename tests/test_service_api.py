"""The service's incident and approval API, the scheduled checks and /readyz.

Incidents come from a small sim world (tests/simworld.py) whose clock the test moves; the
service's workers and scheduler run on real threads over it.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servicekit import TOKEN, auth, close_service, make_service, payload, wait_for
from simworld import Rig, deploy, fault, make_rig

from supervisor.config import config_from_dict
from supervisor.demo import demo_config
from supervisor.domain import AuditKind, IncidentStatus
from supervisor.service import ServiceRuntime, create_app, readiness_probes
from supervisor.service._health import WarmUp
from supervisor.service._scheduler import Scheduler

NO_SCHEDULER = {"service": {"check_interval_seconds": 0}}


class Served:
    """A rig (sim world + supervisor) behind a service runtime and app."""

    def __init__(self, rig: Rig, *, token: str = TOKEN) -> None:
        self.rig = rig
        self.runtime = ServiceRuntime(rig.sup, workers=2)
        self.client = TestClient(create_app(self.runtime, approval_token=token))

    def open_by_checks(self, bound: timedelta = timedelta(hours=3)) -> str:
        """Move the world and run scheduler passes until the checks open an incident."""
        end = self.rig.world.now + bound
        while self.rig.world.now < end:
            self.rig.world.advance(timedelta(minutes=5))
            self.runtime.run_checks()
            self.runtime.drain(timeout=60)
            if self.rig.incidents():
                return self.rig.incidents()[0].id
        raise AssertionError("the checks opened no incident")

    def close(self) -> None:
        close_service(self.runtime)
        self.rig.tracing.shutdown()


@pytest.fixture
def awaiting(tmp_path: Path) -> Iterator[tuple[Served, str]]:
    """A covariate-drift incident, opened by the service's checks, paused for a retrain."""
    served = Served(make_rig(tmp_path, faults=[fault("covariate_drift")], config=NO_SCHEDULER))
    try:
        inc_id = served.open_by_checks()
        assert served.rig.incident(inc_id).status is IncidentStatus.AWAITING_APPROVAL
        served.rig.answer_later()
        yield served, inc_id
    finally:
        served.close()


# ------------------------------------------------------------------ approvals


def test_approval_needs_the_bearer_token(awaiting: tuple[Served, str]) -> None:
    served, inc_id = awaiting
    url, body = f"/incidents/{inc_id}/approve", {"by": "alice"}
    for headers in (
        {},
        auth("wrong-token"),
        {"Authorization": TOKEN},
        {"Authorization": "Basic x"},
    ):
        res = served.client.post(url, json=body, headers=headers)
        assert res.status_code == 401, headers
        assert res.headers["www-authenticate"] == "Bearer"
    assert served.rig.incident(inc_id).status is IncidentStatus.AWAITING_APPROVAL
    assert served.rig.records(AuditKind.APPROVAL, inc_id) == []


def test_a_non_approver_is_refused_403_and_audited(awaiting: tuple[Served, str]) -> None:
    served, inc_id = awaiting
    for verb in ("approve", "deny"):
        res = served.client.post(
            f"/incidents/{inc_id}/{verb}", json={"by": "mallory"}, headers=auth()
        )
        assert res.status_code == 403 and "mallory" in res.json()["detail"]
    refusals = served.rig.records(AuditKind.APPROVAL, inc_id)
    assert [(r.actor, r.data["refused"], r.data["decision"]) for r in refusals] == [
        ("mallory", True, "approved"),
        ("mallory", True, "denied"),
    ]
    assert served.rig.world_writes() == {}
    assert served.rig.incident(inc_id).status is IncidentStatus.AWAITING_APPROVAL


def test_an_approver_approves_over_http_and_the_retrain_runs(awaiting: tuple[Served, str]) -> None:
    served, inc_id = awaiting
    detail = served.client.get(f"/incidents/{inc_id}").json()
    assert detail["pending_approval"]["action"] == "retrain"
    assert detail["pending_approval"]["approvers"] == ["alice", "bob"]
    res = served.client.post(
        f"/incidents/{inc_id}/approve", json={"by": "alice", "comment": "ok"}, headers=auth()
    )
    assert res.status_code == 202 and res.json()["queued"] is True
    served.runtime.drain(timeout=60)
    [approval] = served.rig.records(AuditKind.APPROVAL, inc_id)
    assert approval.actor == "alice" and approval.data["approval"]["decision"] == "approved"
    assert served.rig.world.action_counts()["retrain"] == 1
    assert served.rig.incident(inc_id).status is IncidentStatus.MITIGATED
    # answering again: nothing is pending any more
    again = served.client.post(f"/incidents/{inc_id}/approve", json={"by": "bob"}, headers=auth())
    assert again.status_code == 409
    assert again.json()["detail"] == (
        f"incident {inc_id!r} is mitigated, so there is nothing to approve or deny"
    )
    assert served.rig.world.action_counts()["retrain"] == 1
    assert served.rig.verified()


def test_an_approver_denies_and_nothing_runs(awaiting: tuple[Served, str]) -> None:
    served, inc_id = awaiting
    res = served.client.post(f"/incidents/{inc_id}/deny", json={"by": "bob"}, headers=auth())
    assert res.status_code == 202
    served.runtime.drain(timeout=60)
    assert served.rig.world_writes() == {}
    assert served.rig.incident(inc_id).status is IncidentStatus.ESCALATED
    assert served.client.get(f"/incidents/{inc_id}").json()["escalations"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/incidents/inc-9999-nope/approve", {"by": "alice"}, 404),
        ("/incidents/{id}/approve", {}, 422),
        ("/incidents/{id}/approve", {"by": "alice", "role": "admin"}, 422),
        ("/incidents/{id}/approve", {"by": ""}, 422),
    ],
)
def test_bad_approval_requests_change_nothing(
    awaiting: tuple[Served, str], path: str, body: dict[str, Any], status: int
) -> None:
    served, inc_id = awaiting
    before = len(served.rig.sup.audit)
    res = served.client.post(path.format(id=inc_id), json=body, headers=auth())
    assert res.status_code == status, res.json()
    assert len(served.rig.sup.audit) == before
    assert served.rig.incident(inc_id).status is IncidentStatus.AWAITING_APPROVAL


def test_without_a_configured_token_the_approval_api_is_off(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, faults=[fault("covariate_drift")], config=NO_SCHEDULER)
    served = Served(rig, token="")
    try:
        inc_id = served.open_by_checks()
        res = served.client.post(
            f"/incidents/{inc_id}/approve", json={"by": "alice"}, headers=auth()
        )
        assert res.status_code == 503 and "MLOPS_SUPERVISOR_APPROVAL_TOKEN" in res.json()["detail"]
    finally:
        served.close()


# ------------------------------------------------------------------ incident views


def test_incident_views_show_diagnosis_evidence_decisions_and_actions(tmp_path: Path) -> None:
    served = Served(make_rig(tmp_path, deploys=[deploy("bad")], config=NO_SCHEDULER))
    try:
        inc_id = served.open_by_checks()
        listed = served.client.get("/incidents").json()["incidents"]
        assert [(i["id"], i["status"]) for i in listed] == [(inc_id, "mitigated")]
        assert served.client.get("/incidents", params={"status": "escalated"}).json() == {
            "incidents": []
        }
        assert served.client.get("/incidents", params={"status": "bogus"}).status_code == 422
        detail = served.client.get(f"/incidents/{inc_id}").json()
        assert detail["incident"]["id"] == inc_id
        assert detail["diagnosis"]["root_cause"] == "bad_model_version"
        assert detail["evidence"] and all(
            e["result"]["tool"] == e["tool"] for e in detail["evidence"]
        )
        assert [d["decision"]["verdict"] for d in detail["decisions"]] == ["allow"]
        [outcome] = detail["actions"]["outcomes"]
        assert outcome["outcome"]["action"] == "abort_canary"
        assert outcome["outcome"]["status"] == "succeeded"
        assert detail["verification"][0]["passed"] is True
        assert detail["report"] is not None and detail["pending_approval"] is None
        assert served.client.get("/incidents/inc-0000-none").status_code == 404
    finally:
        served.close()


# ------------------------------------------------------------------ scheduled checks


def test_the_scheduler_opens_one_incident_and_keeps_checking(tmp_path: Path) -> None:
    rig = make_rig(
        tmp_path, deploys=[deploy("bad")], config={"service": {"check_interval_seconds": 0.05}}
    )
    rig.world.advance(timedelta(minutes=60))  # the bad canary is live and visible
    served = Served(rig)
    try:
        with served.client:  # lifespan: recover, then the scheduler
            wait_for(lambda: len(rig.incidents()) == 1, what="an incident from the checks")
            served.runtime.drain(timeout=60)
            passes = served.runtime._scheduler.passes
            wait_for(lambda: served.runtime._scheduler.passes >= passes + 3, what="more passes")
        assert len(rig.incidents()) == 1  # later passes fold into it / skip the busy model
        assert rig.world.action_counts()["abort_canary"] == 1
        assert served.runtime._scheduler.failures == 0
    finally:
        served.close()


def test_a_failing_pass_is_logged_and_the_next_runs(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    stopping = threading.Event()

    def run_pass() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("backend down")
        if len(calls) == 3:
            stopping.set()

    scheduler = Scheduler(0.01, run_pass, stopping)
    scheduler.start()
    scheduler.stop(timeout=10)
    assert len(calls) == 3 and scheduler.failures == 1
    assert "scheduled check pass failed" in caplog.text


def test_scheduler_off_at_interval_zero(tmp_path: Path) -> None:
    calls: list[int] = []
    scheduler = Scheduler(0, lambda: calls.append(1), threading.Event())
    scheduler.start()
    scheduler.stop(timeout=1)
    assert calls == [] and not scheduler.enabled


# ------------------------------------------------------------------ readiness


class _Prom(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/-/ready" else 404)
        self.end_headers()
        self.wfile.write(b"Prometheus Server is Ready.\n")

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def prometheus() -> Iterator[tuple[str, type[_Prom]]]:
    handler = type("Prom", (_Prom,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_readyz_probes_prometheus_files_and_state(
    tmp_path: Path, prometheus: tuple[str, type[_Prom]]
) -> None:
    url, handler = prometheus
    ref = tmp_path / "ref.parquet"
    ref.write_bytes(b"")
    (tmp_path / "logs").mkdir()
    raw = demo_config(tmp_path / "state")
    raw["backends"] = {"prometheus": {"url": url, "timeout_s": 2}}
    raw["models"][0]["data"] = {"reference": f"file://{ref}", "current": str(tmp_path / "logs")}
    config = config_from_dict(raw, source="test")
    _app, runtime, backends = make_service(tmp_path / "state")
    probes = readiness_probes(config, runtime.supervisor.state_dir, backends.read)
    assert [p.name for p in probes] == ["state", "prometheus", "drift_files"]
    client = TestClient(create_app(runtime, probes=probes, approval_token=TOKEN))
    try:
        ok = client.get("/readyz")
        assert ok.status_code == 200, ok.json()
        assert ok.json()["checks"] == {"state": "ok", "prometheus": "ok", "drift_files": "ok"}

        handler.status = 503  # Prometheus still replaying its WAL
        ref.unlink()
        bad = client.get("/readyz")
        assert bad.status_code == 503
        checks = bad.json()["checks"]
        assert checks["state"] == "ok"
        assert "503" in checks["prometheus"]
        assert "churn.data.reference" in checks["drift_files"]

        runtime.shutdown(grace=1)
        assert client.get("/readyz").json()["status"] == "stopping"
        assert client.get("/healthz").status_code == 200
    finally:
        close_service(runtime, backends)


def test_readyz_fails_when_state_is_missing(tmp_path: Path) -> None:
    raw = demo_config(tmp_path / "nowhere")
    config = config_from_dict(raw, source="test")
    [probe] = readiness_probes(config, tmp_path / "nowhere", read=None)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="nowhere"):
        probe.check()


def test_alerts_after_shutdown_are_refused_for_alertmanager_to_retry(tmp_path: Path) -> None:
    app, runtime, backends = make_service(tmp_path)
    client = TestClient(app)
    try:
        runtime.shutdown(grace=1)
        before = len(runtime.supervisor.audit)
        assert client.post("/alerts", json=payload()).status_code == 503
        assert len(runtime.supervisor.audit) == before
    finally:
        close_service(runtime, backends)


# ------------------------------------------------------------------ pause switch


def test_pause_api_holds_back_actions_and_is_audited(tmp_path: Path) -> None:
    served = Served(make_rig(tmp_path, config=NO_SCHEDULER))
    try:
        c = served.client
        assert c.post("/pause", json={"by": "alice"}).status_code == 401
        refused = c.post("/pause", json={"by": "mallory"}, headers=auth())
        assert refused.status_code == 403
        assert not served.rig.sup.pause.is_paused("m")
        assert (
            c.post("/pause", json={"by": "alice", "model": "nope"}, headers=auth()).status_code
            == 404
        )
        ok = c.post(
            "/pause", json={"by": "alice", "model": "m", "reason": "deploy"}, headers=auth()
        )
        assert ok.status_code == 200 and ok.json()["changed"] is True
        assert served.rig.sup.pause.is_paused("m")
        assert c.get("/pause").json()["models"]["m"]["by"] == "alice"
        assert c.post("/resume", json={"by": "bob", "model": "m"}, headers=auth()).json()["changed"]
        assert not served.rig.sup.pause.is_paused("m")
        events = [
            r.data["pause"]
            for r in served.rig.records(AuditKind.INCIDENT_UPDATED)
            if "pause" in r.data
        ]
        assert [e["event"] for e in events] == ["refused", "paused", "resumed"]
        assert served.rig.verified()
    finally:
        served.close()


def test_readyz_answers_warming_up_until_the_warm_up_finished(tmp_path: Path) -> None:
    gate = threading.Event()
    ran: list[str] = []
    warm_up = WarmUp(
        [
            ("import a heavy library", gate.wait),
            ("a step that fails", lambda: 1 / 0),  # logged; warm-up still finishes
            ("after the failure", lambda: ran.append("after")),
        ]
    )
    _app, runtime, backends = make_service(tmp_path)
    probes = readiness_probes(runtime.supervisor.config, tmp_path, backends.read)
    client = TestClient(create_app(runtime, probes=probes, warm_up=warm_up))
    try:
        res = client.get("/readyz")
        assert res.status_code == 503
        assert res.json() == {
            "status": "warming up",
            "checks": {"state": "ok", "warm_up": "running: import a heavy library"},
        }
        warm_up.start()
        gate.set()
        assert warm_up.wait(10)
        assert ran == ["after"]
        res = client.get("/readyz")
        assert res.status_code == 200
        assert res.json() == {"status": "ready", "checks": {"state": "ok"}}
    finally:
        close_service(runtime, backends)
