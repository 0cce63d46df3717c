"""A throwaway Postgres server for the benchmarks that need one.

``initdb`` and ``pg_ctl`` from the Debian package (``/usr/lib/postgresql/<version>/bin``, the
newest installed) on a temporary directory, listening on loopback only, with the server's
durable defaults (``fsync=on``, ``synchronous_commit=on``): every commit waits for its WAL
flush, as in production. Under root the server runs as the ``postgres`` user (initdb refuses
root). The directory is removed when the block ends.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway server."""

    dsn: str  # database ``postgres``, user ``postgres``, trust authentication on loopback
    data_dir: Path

    def pid(self) -> int:
        """The postmaster's pid; every backend is its child."""
        return int((self.data_dir / "postmaster.pid").read_text().split()[0])


@contextmanager
def throwaway_server() -> Iterator[PostgresServer]:
    """Start a server on a temporary directory; stop it and remove the directory on exit.

    Exits the process with a message naming the package to install when no server binaries
    are found.
    """
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name.split(".")[0]),
    )
    if not found:
        sys.exit("no Postgres server binaries: apt-get install postgresql")
    bindir = Path(found[-1]).parent
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    base.chmod(0o755)
    data = base / "data"
    data.mkdir()
    if prefix:
        pwd.getpwnam("postgres")
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"),
             "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "-w", "start"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        yield PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", data)
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)
