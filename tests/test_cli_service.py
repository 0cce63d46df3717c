"""``mlops-supervisor incidents|approve|deny --service URL``: the CLI as a client of a running
service. The service (a sim-world supervisor paused for a retrain approval) is served by a real
uvicorn on loopback; the CLI talks to it over HTTP with the approval API's bearer token."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from servicekit import TOKEN, close_service, wait_for
from simworld import Rig, fault, make_rig

from supervisor.cli import main
from supervisor.domain import AuditKind, IncidentStatus
from supervisor.service import ServiceRuntime, create_app

TOKEN_ENV = "MLOPS_SUPERVISOR_APPROVAL_TOKEN"


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` on a real uvicorn at a free loopback port; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, what="uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@dataclass
class Remote:
    rig: Rig
    runtime: ServiceRuntime
    url: str
    incident: str


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Remote]:
    """A served covariate-drift incident waiting for alice or bob to approve a retrain."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    rig = make_rig(
        tmp_path,
        faults=[fault("covariate_drift")],
        config={"service": {"check_interval_seconds": 0}},
    )
    runtime = ServiceRuntime(rig.sup, workers=2)
    try:
        inc = rig.first_incident(bound=timedelta(hours=3))
        assert inc.status is IncidentStatus.AWAITING_APPROVAL
        rig.answer_later()
        with serving(create_app(runtime, approval_token=TOKEN)) as url:
            yield Remote(rig, runtime, url, inc.id)
    finally:
        close_service(runtime)
        rig.tracing.shutdown()


def test_the_cli_lists_and_approves_through_a_running_service(
    remote: Remote, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["incidents", "--service", remote.url]) == 0
    out = capsys.readouterr().out
    assert f"{remote.incident}  awaiting_approval" in out
    assert f"awaiting approval: {remote.incident} retrain by one of alice, bob before " in out

    argv = ["approve", remote.incident, "--by", "alice", "--comment", "fresh data is in"]
    assert main([*argv, "--service", remote.url]) == 0
    assert "approved by alice; the service applies it" in capsys.readouterr().out
    remote.runtime.drain(timeout=60)
    [approval] = remote.rig.records(AuditKind.APPROVAL, remote.incident)
    assert approval.actor == "alice"
    assert approval.data["approval"]["comment"] == "fresh data is in"
    assert remote.rig.world.action_counts()["retrain"] == 1
    assert remote.rig.incident(remote.incident).status is IncidentStatus.MITIGATED
    assert main(["incidents", "--service", remote.url]) == 0
    assert f"{remote.incident}  mitigated" in capsys.readouterr().out
    assert remote.rig.verified()


def test_the_cli_says_what_the_service_refused_and_nothing_changes(
    remote: Remote, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*argv: str) -> str:
        assert main(list(argv)) == 1
        return capsys.readouterr().err

    inc, url = remote.incident, remote.url
    err = refused("approve", inc, "--by", "mallory", "--service", url)
    assert "answered 403" in err and "'mallory' may not answer" in err
    assert "answered 404" in refused("deny", "inc-9999-x", "--by", "bob", "--service", url)
    monkeypatch.setenv("OTHER_TOKEN", "not-the-token")
    err = refused("approve", inc, "--by", "alice", "--service", url, "--token-env", "OTHER_TOKEN")
    assert "answered 401" in err and "bearer token" in err
    monkeypatch.delenv(TOKEN_ENV)
    assert f"set ${TOKEN_ENV}" in refused("approve", inc, "--by", "alice", "--service", url)
    assert "is not a URL" in refused("incidents", "--service", "localhost:8080")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    err = refused("incidents", "--service", f"http://127.0.0.1:{port}")
    assert "cannot reach the service" in err
    # only the refused answer is recorded; the incident still waits
    [record] = remote.rig.records(AuditKind.APPROVAL, inc)
    assert record.actor == "mallory" and record.data["refused"] is True
    assert remote.rig.incident(inc).status is IncidentStatus.AWAITING_APPROVAL
    assert remote.rig.world_writes() == {}


def test_the_cli_needs_a_state_dir_or_a_service(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["approve", "inc-0001-m", "--by", "alice"])
    assert exit_.value.code == 2
    assert "one of the arguments --state --service is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["incidents", "--state", "x", "--service", "http://127.0.0.1:1"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_cli_pauses_and_resumes_through_a_running_service(
    remote: Remote, capsys: pytest.CaptureFixture[str]
) -> None:
    pause = remote.rig.sup.pause
    assert main(["pause", "m", "--by", "bob", "--service", remote.url]) == 0
    assert "m: paused by bob" in capsys.readouterr().out
    assert pause.is_paused("m") and pause.paused_by("m") is not None
    assert main(["pause", "m", "--by", "bob", "--service", remote.url]) == 0
    assert "m: already paused" in capsys.readouterr().out
    assert main(["pause", "--by", "mallory", "--service", remote.url]) == 1
    assert "answered 403" in capsys.readouterr().err
    assert main(["resume", "m", "--by", "alice", "--service", remote.url]) == 0
    assert "m: resumed by alice" in capsys.readouterr().out
    assert not pause.is_paused("m")
    events = [
        (r.actor, r.data["pause"]["event"])
        for r in remote.rig.records(AuditKind.INCIDENT_UPDATED, None)
        if "pause" in r.data
    ]
    assert ("bob", "paused") in events and ("alice", "resumed") in events
