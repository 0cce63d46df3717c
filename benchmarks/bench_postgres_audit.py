"""What an audit append costs in Postgres (PostgresAuditLog), next to the JSONL file.

    python benchmarks/bench_postgres_audit.py [--appends 1000] [--dsn-env VAR]

Without ``--dsn-env`` it starts a throwaway server from the Debian package on loopback with
the server's durable defaults (``fsync=on``, ``synchronous_commit=on``; see
``_postgres_server.py``), so each append waits for its WAL flush as in production. With
``--dsn-env VAR`` it uses the server whose DSN is in ``$VAR`` (it creates and drops a scratch
database there).

Prints appends/s and mean latency for: one writer on one connection; two writers (two
replicas: two pools, one thread each) appending at once; the file log on the same disk, for
reference; and how long opening (reading and checking the whole chain) takes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _postgres_server import throwaway_server  # noqa: E402
from psycopg_pool import ConnectionPool  # noqa: E402

from supervisor import SimClock  # noqa: E402
from supervisor.audit import AuditLog, PostgresAuditLog, verify_postgres  # noqa: E402
from supervisor.domain import AuditKind  # noqa: E402

DATA = {"tool": "error_rate", "model": "churn", "window": "1h", "value": 0.0123, "status": "ok"}


@contextmanager
def scratch_database(server_dsn: str) -> Iterator[str]:
    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"bench_audit_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(server_dsn, dbname=name)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_pool(dsn: str) -> ConnectionPool[Any]:
    from psycopg.rows import dict_row

    pool: ConnectionPool[Any] = ConnectionPool(
        dsn,
        min_size=1,
        max_size=4,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        open=False,
    )
    pool.open(wait=True, timeout=30)
    return pool


def appends(log: AuditLog | PostgresAuditLog, n: int, actor: str) -> None:
    for i in range(n):
        log.append(AuditKind.TOOL_CALL, incident_id=f"inc-{i % 7}", actor=actor, data=DATA)


def report(label: str, count: int, seconds: float) -> None:
    print(
        f"{label:<44} {count / seconds:8.0f} appends/s   {seconds / count * 1e3:6.2f} ms each",
        flush=True,
    )


def run(dsn: str, n: int) -> None:
    pools = [make_pool(dsn), make_pool(dsn)]
    try:
        one = PostgresAuditLog(pools[0], SimClock())
        appends(one, 20, "warmup")
        t = time.perf_counter()
        appends(one, n, "solo")
        report("postgres, 1 writer", n, time.perf_counter() - t)

        two = PostgresAuditLog(pools[1], SimClock())
        writers = [
            threading.Thread(target=appends, args=(log, n, f"replica-{i}"))
            for i, log in enumerate((one, two))
        ]
        t = time.perf_counter()
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        report("postgres, 2 replicas at once (total)", 2 * n, time.perf_counter() - t)

        t = time.perf_counter()
        reopened = PostgresAuditLog(pools[0], SimClock())
        opened = time.perf_counter() - t
        print(f"{'postgres, open (read + check the chain)':<44} {len(reopened):8d} records"
              f"   {opened * 1e3:6.0f} ms")  # fmt: skip
        result = verify_postgres(dsn)
        assert result.ok and result.records == 3 * n + 20, result
    finally:
        for pool in pools:
            pool.close()

    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp, AuditLog(
        Path(tmp) / "audit.jsonl", SimClock()
    ) as log:  # fmt: skip
        t = time.perf_counter()
        appends(log, n, "file")
        report("file (fdatasync per append), 1 writer", n, time.perf_counter() - t)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=1000, help="appends per writer")
    parser.add_argument(
        "--dsn-env", metavar="VAR", default=None, help="use the server whose DSN is in $VAR"
    )
    args = parser.parse_args()
    if args.dsn_env:
        server = os.environ.get(args.dsn_env, "")
        if not server:
            sys.exit(f"{args.dsn_env} is not set")
        with scratch_database(server) as dsn:
            run(dsn, args.appends)
    else:
        with throwaway_server() as cluster, scratch_database(cluster.dsn) as dsn:
            run(dsn, args.appends)
    return 0


if __name__ == "__main__":
    sys.exit(main())
