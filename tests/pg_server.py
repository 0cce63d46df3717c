"""A throwaway Postgres cluster from the Debian package, for the checkpoint tests.

``postgres_server`` (session scope) runs ``initdb`` and ``pg_ctl`` from
``/usr/lib/postgresql/<version>/bin`` on a temporary data directory, listening on a unix socket
in that directory and on a free loopback TCP port. Postgres refuses to run as root, so under root
the commands run as the ``postgres`` user (``runuser -u postgres --``), which the package
creates. The wait for readiness is bounded; the cluster is stopped and removed at the end.
When it cannot start, the test FAILS with the reason (install it with
``apt-get install postgresql`` or ``make system-deps``): a missing server is a broken setup,
not a reason to skip.

``pg_dsn`` (function scope) gives each test a fresh database on that server.

Import the fixtures in a test module with
``from pg_server import pg_dsn_fixture, postgres_server_fixture``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

READY_TIMEOUT_S = 30
INSTALL_HINT = "install it with `apt-get install postgresql` (or `make system-deps`)"


@dataclass(frozen=True)
class PostgresServer:
    """A running cluster: superuser ``postgres``, trust auth on loopback only."""

    port: int
    socket_dir: Path
    data_dir: Path

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


def _bin_dir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name.split(".")[0]),
    )
    if not found:
        pytest.fail(f"no Postgres server binaries under /usr/lib/postgresql/*/bin; {INSTALL_HINT}")
    return Path(found[-1]).parent


def _as_postgres() -> list[str]:
    """The prefix that runs a command as a user Postgres accepts."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(f"running as root but there is no 'postgres' user; {INSTALL_HINT}")
    return ["runuser", "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], what: str, timeout: float = 60) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.fail(f"postgres: {what} failed: {err}; {INSTALL_HINT}")
    if done.returncode != 0:
        pytest.fail(
            f"postgres: {what} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
            f" {done.stdout.strip()[-2000:]}"
        )


@pytest.fixture(scope="session", name="postgres_server")
def postgres_server_fixture() -> Iterator[PostgresServer]:
    bindir = _bin_dir()
    prefix = _as_postgres()
    # Not under pytest's tmp dirs: they are 0700 root, and the server runs as 'postgres'.
    base = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    base.chmod(0o755)
    data = base / "data"
    data.mkdir()
    if prefix:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    log = base / "server.log"
    try:
        _run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            "initdb",
        )  # fmt: skip
        options = (
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
             "-w", "-t", str(READY_TIMEOUT_S), "start"],
            f"pg_ctl start (log {log}: {_tail(log)})",
            timeout=READY_TIMEOUT_S + 10,
        )  # fmt: skip
        _wait_ready(PostgresServer(port, base, data), log)
        yield PostgresServer(port=port, socket_dir=base, data_dir=data)
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(server: PostgresServer, log: Path) -> None:
    import psycopg

    try:
        with psycopg.connect(server.dsn(), connect_timeout=READY_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        pytest.fail(f"postgres on port {server.port} does not answer: {err}; log: {_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-1500:]
    except OSError:
        return "(no log)"


@pytest.fixture(name="pg_dsn")
def pg_dsn_fixture(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database for one test; dropped afterwards."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.dsn(name)
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
