"""Two real `mlops-supervisor serve` processes as two replicas (issue 7, requirement 5).

Each process has its own state directory; they share a real Postgres (tests/pg_server.py) and
elect a leader on a Lease served by the Kubernetes API emulator over HTTP. A webhook sent to the
follower is run by the leader; when the leader stops (SIGTERM releases the Lease), the other
process leads and runs the next incident itself. The trail in Postgres verifies.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from kube_emulator import KubeEmulator
from leasekit import LEASE, NS, emulator_fixture, kubeconfig, lease  # noqa: F401
from pg_server import pg_dsn_fixture, postgres_server_fixture  # noqa: F401 (fixtures)
from servicekit import TOKEN, payload, wait_for

from supervisor.audit import verify_postgres
from supervisor.demo import demo_config

DSN_ENV = "MLOPS_SUPERVISOR_TEST_PG_DSN"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    """One replica: a `serve` subprocess with its own state dir and log."""

    def __init__(self, name: str, tmp_path: Path, kube: Path, dsn: str) -> None:
        self.name = name
        self.port = _free_port()
        self.log_path = tmp_path / f"{name}.log"
        raw = demo_config(tmp_path / name)
        raw["service"] = {"port": self.port, "check_interval_seconds": 0}
        raw["timing"]["verify_settle_seconds"] = 1
        raw["ha"] = {
            "postgres_dsn_env": DSN_ENV,
            "pickup_interval_seconds": 0.2,
            "lease": {
                "name": LEASE,
                "namespace": NS,
                "duration_seconds": 3,
                "renew_every_seconds": 0.5,
                "identity_env": "POD_NAME",
                "connection": {"kubeconfig": str(kube)},
            },
        }
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
        env = {
            **os.environ,
            "MLOPS_SUPERVISOR_APPROVAL_TOKEN": TOKEN,
            "POD_NAME": name,
            DSN_ENV: dsn,
        }
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "serve", "--config", str(cfg)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        wait_for(self._up, timeout=90, what=f"{name} to answer")

    def _up(self) -> bool:
        assert self.proc.poll() is None, self.log()[-3000:]
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self, incident_id: str) -> str:
        return str(self.http.get(f"/incidents/{incident_id}").json()["incident"]["status"])

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.http.close()
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.http.close()
        self._log.close()


def _holder(emulator: KubeEmulator) -> Any:
    try:
        return lease(emulator)["spec"]["holderIdentity"]
    except Exception:  # not created yet
        return None


def test_two_serve_processes_share_the_work_and_hand_over_on_sigterm(
    emulator: KubeEmulator, tmp_path: Path, pg_dsn: str
) -> None:
    kube = kubeconfig(tmp_path, emulator.url)  # type: ignore[attr-defined]
    a = Serve("replica-a", tmp_path, kube, pg_dsn)
    b: Serve | None = None
    try:
        wait_for(lambda: _holder(emulator) == "replica-a", timeout=30, what="a to lead")
        b = Serve("replica-b", tmp_path, kube, pg_dsn)
        for replica in (a, b):  # ready: the state dir (reports) and Postgres answer
            wait_for(
                lambda r=replica: r.http.get("/readyz").status_code == 200,  # type: ignore[misc]
                timeout=60,
                what=f"{replica.name} to be ready",
            )
            checks = replica.http.get("/readyz").json()["checks"]
            assert checks["postgres"] == "ok" and checks["state"] == "ok", checks

        # the follower takes the webhook; only the leader can run it
        res = b.http.post("/alerts", json=payload())
        assert res.status_code == 200, res.text
        [first] = res.json()["opened"]
        wait_for(
            lambda: b.status(first) not in ("open", "investigating"),  # type: ignore[union-attr]
            timeout=90,
            what="the leader to run the follower's incident",
        )
        assert _holder(emulator) == "replica-a"
        # the leader serves it too, and both list the same incidents
        assert a.status(first) == b.status(first)
        assert a.http.get("/incidents").json() == b.http.get("/incidents").json()

        # the leader stops: it releases the Lease and b leads without waiting for expiry
        assert a.stop() == 0
        wait_for(lambda: _holder(emulator) == "replica-b", timeout=30, what="b to take over")
        res = b.http.post(
            "/alerts",
            json=payload(model="fraud", fingerprint="fp-fraud-1"),
        )
        [second] = res.json()["opened"]
        wait_for(
            lambda: b.status(second) not in ("open", "investigating"),  # type: ignore[union-attr]
            timeout=90,
            what="the new leader to run its own incident",
        )
        assert [i["id"] for i in b.http.get("/incidents").json()["incidents"]] == [first, second]
        assert b.stop() == 0
    finally:
        a.kill()
        if b is not None:
            b.kill()
    for replica in ("replica-a", "replica-b"):
        text = (tmp_path / f"{replica}.log").read_text(errors="replace")
        assert "Traceback" not in text and "NotLeader" not in text, text[-3000:]
        assert not (tmp_path / replica / "audit.jsonl").exists()
    assert "replica-b became leader" in (tmp_path / "replica-b.log").read_text()
    assert verify_postgres(pg_dsn).ok
