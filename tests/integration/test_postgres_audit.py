"""The audit trail in Postgres (PostgresAuditLog), shared by replicas.

A real Postgres from the Debian package (tests/pg_server.py), a fresh database per test. Two
"replicas" are two log objects on two connection pools. Faults are made at the network
boundary: backends terminated by the server, and a loopback TCP proxy that can lose the answer
to a COMMIT or refuse connections.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from opentelemetry import trace
from pg_server import pg_dsn_fixture, postgres_server_fixture  # noqa: F401 (fixtures)
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from supervisor import AuditIntegrityError, SimClock
from supervisor.audit import AuditLog, PostgresAuditLog, export_postgres, verify, verify_postgres
from supervisor.audit._postgres import HEAD_TABLE, RECORDS_TABLE
from supervisor.cli import main
from supervisor.domain import AuditKind

DSN_ENV = "MLOPS_SUPERVISOR_TEST_AUDIT_DSN"
FAKE_SECRET = "hunter2-" + "s3cr3t"  # built at runtime so no scanner mistakes it for a real one
GUARD_SPAN = trace.NonRecordingSpan(
    trace.SpanContext(trace_id=0x5EED << 64 | 1, span_id=0xA11CE, is_remote=False)
)


# ------------------------------------------------------------------------------- helpers


@pytest.fixture
def pools() -> Iterator[Callable[..., ConnectionPool[Any]]]:
    """Pools built as the service builds them (supervisor/ha/_postgres.py); closed at the end."""
    made: list[ConnectionPool[Any]] = []

    def make(dsn: str, timeout: float = 5) -> ConnectionPool[Any]:
        pool: ConnectionPool[Any] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=4,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            open=False,
            timeout=timeout,  # how long a caller waits for a connection
        )
        pool.open(wait=True, timeout=30)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.close()


def sql(dsn: str, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Run one statement as the database owner (the tamperer, or the reviewer)."""
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def stored_lines(dsn: str) -> list[str]:
    return [r["line"] for r in sql(dsn, f"SELECT line FROM {RECORDS_TABLE} ORDER BY seq")]


def play(log: AuditLog | PostgresAuditLog, clock: SimClock) -> None:
    """One sequence of appends touching every conversion the file log makes."""
    log.append(
        AuditKind.SIGNAL,
        incident_id="inc-1",
        actor="alertmanager",
        data={"alertname": "HighErrorRate", "model": "churn", "note": "café ☕"},
    )
    clock.advance(timedelta(seconds=3))
    with trace.use_span(GUARD_SPAN):
        log.append(
            AuditKind.DECISION,
            incident_id="inc-1",
            actor="guard",
            data={"verdict": "require_approval", "action": "rollback", "rule_ids": ["r1"]},
        )
    log.append(
        AuditKind.TOOL_CALL,
        incident_id="inc-2",
        actor="investigate",
        data={
            "tool": "error_rate",
            "api_key": FAKE_SECRET,
            "url": f"https://mlflow.local/api?token={FAKE_SECRET}",
            "value": float("nan"),
            "kind": AuditKind.SIGNAL,
            "at": datetime(2026, 1, 1, tzinfo=UTC),
        },
    )
    clock.advance(timedelta(minutes=1))
    log.append(AuditKind.SIGNAL, incident_id=None, actor="scheduler", data={"kind": "tick"})
    log.append(
        AuditKind.APPROVAL,
        incident_id="inc-1",
        actor="slack",
        data={"decision": "approved", "by": "alice"},
        ts=datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
    )


def fill(log: PostgresAuditLog, n: int) -> None:
    for i in range(n):
        log.append(
            AuditKind.DECISION,
            incident_id=f"inc-{i % 3}",
            actor="guard",
            data={"i": i, "action": "rollback"},
        )


def dumps(records: list[Any]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in records]


# ------------------------------------------------------------------- parity with the file


def test_the_same_appends_give_the_same_lines_records_and_queries_as_the_file_log(
    tmp_path: Path, pg_dsn: str, pools: Callable[..., ConnectionPool[Any]]
) -> None:
    path = tmp_path / "audit.jsonl"
    file_clock, pg_clock = SimClock(), SimClock()
    with AuditLog(path, file_clock) as flog, PostgresAuditLog(pools(pg_dsn), pg_clock) as plog:
        play(flog, file_clock)
        play(plog, pg_clock)
        assert [line + "\n" for line in stored_lines(pg_dsn)] == path.read_text().splitlines(
            keepends=True
        )
        assert len(plog) == len(flog) == 5
        assert dumps(plog.records()) == dumps(flog.records())
        assert dumps(plog.records("inc-1")) == dumps(flog.records("inc-1"))
        assert [r.seq for r in plog.records("inc-1")] == [0, 1, 4]
        queries: list[tuple[AuditKind, dict[str, Any]]] = [
            (AuditKind.SIGNAL, {}),
            (AuditKind.SIGNAL, {"kind": "tick"}),
            (AuditKind.TOOL_CALL, {"kind": AuditKind.SIGNAL}),  # an enum matches its value
            (AuditKind.DECISION, {"incident_id": "inc-1"}),
            (AuditKind.DECISION, {"action": "retrain"}),
        ]
        for kind, where in queries:
            incident = where.pop("incident_id", None)
            expected = flog.find(kind, incident_id=incident, where=where)
            assert dumps(plog.find(kind, incident_id=incident, where=where)) == dumps(expected)
        assert len(plog.find(AuditKind.SIGNAL)) == 2
        assert plog.find(AuditKind.DECISION, where={"action": "retrain"}) == []

        tool_call = plog.records("inc-2")[0]
        assert tool_call.data["api_key"] == "[REDACTED]"
        assert FAKE_SECRET not in "".join(stored_lines(pg_dsn))
        decision = plog.records("inc-1")[1]
        assert (decision.trace_id, decision.span_id) == (
            f"{0x5EED << 64 | 1:032x}",
            f"{0xA11CE:016x}",
        )
        assert sql(pg_dsn, f"SELECT count, last_hash FROM {HEAD_TABLE}") == [
            {"count": 5, "last_hash": flog.records()[-1].hash}
        ]
        columns = sql(
            pg_dsn, f"SELECT seq, ts, kind, incident_id FROM {RECORDS_TABLE} ORDER BY seq"
        )
        assert [(c["seq"], c["ts"], c["kind"], c["incident_id"]) for c in columns] == [
            (r.seq, r.ts, r.kind.value, r.incident_id) for r in flog.records()
        ]
    assert verify_postgres(pg_dsn).model_dump() == {
        "ok": True,
        "records": 5,
        "first_bad_seq": None,
        "reason": "chain intact",
    }


def test_reopening_continues_the_chain(
    pg_dsn: str, pools: Callable[..., ConnectionPool[Any]]
) -> None:
    pool = pools(pg_dsn)
    with PostgresAuditLog(pool, SimClock()) as first:
        fill(first, 3)
        before = dumps(first.records())
    with PostgresAuditLog(pool, SimClock()) as again:
        assert dumps(again.records()) == before
        record = again.append(AuditKind.REPORT, incident_id="inc-0", actor="report", data={})
    assert (record.seq, record.prev_hash) == (3, before[-1]["hash"])
    assert verify_postgres(pg_dsn).records == 4


def test_a_closed_log_refuses_and_where_names_the_store(
    pg_dsn: str, pools: Callable[..., ConnectionPool[Any]]
) -> None:
    log = PostgresAuditLog(pools(pg_dsn), SimClock())
    assert log.where.startswith("postgres ") and RECORDS_TABLE in log.where
    assert "dbname=t_" in log.where
    with log.deferred_sync():  # nothing to defer: each append is committed when it returns
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={})
        assert len(stored_lines(pg_dsn)) == 1
    log.sync()
    with pytest.raises(ValueError, match="aware"):
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={}, ts=datetime(2026, 1, 1))
    log.close()
    with pytest.raises(AuditIntegrityError, match="closed"):
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={})
    with pytest.raises(AuditIntegrityError, match="closed"):
        log.records()
    assert len(stored_lines(pg_dsn)) == 1


# --------------------------------------------------------------------------- replicas


def test_two_replicas_appending_from_many_threads_keep_one_chain(
    pg_dsn: str, pools: Callable[..., ConnectionPool[Any]]
) -> None:
    threads_per_replica, per_thread = 4, 20
    logs: list[PostgresAuditLog] = []
    lock = threading.Lock()

    def start() -> None:  # both replicas start at once: table creation must not race
        log = PostgresAuditLog(pools(pg_dsn), SimClock())
        with lock:
            logs.append(log)

    starters = [threading.Thread(target=start) for _ in range(2)]
    for t in starters:
        t.start()
    for t in starters:
        t.join()
    assert len(logs) == 2
    returned: list[Any] = []
    errors: list[BaseException] = []

    def writer(replica: int, thread: int) -> None:
        try:
            for i in range(per_thread):
                record = logs[replica].append(
                    AuditKind.TOOL_CALL,
                    incident_id=f"inc-{replica}",
                    actor=f"r{replica}t{thread}",
                    data={"i": i},
                )
                with lock:
                    returned.append(record)
        except BaseException as err:
            errors.append(err)

    writers = [
        threading.Thread(target=writer, args=(r, t))
        for r in range(2)
        for t in range(threads_per_replica)
    ]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    assert errors == []
    total = 2 * threads_per_replica * per_thread
    result = verify_postgres(pg_dsn)
    assert (result.ok, result.records, result.reason) == (True, total, "chain intact")
    a, b = (log.records() for log in logs)
    assert [r.seq for r in a] == list(range(total))
    assert dumps(a) == dumps(b)  # each replica sees the other's records
    assert len(logs[0]) == len(logs[1]) == total
    assert {r.hash for r in returned} == {r.hash for r in a}  # none lost, none twice
    assert {(r.actor, r.data["i"]) for r in a} == {
        (f"r{r}t{t}", i)
        for r in range(2)
        for t in range(threads_per_replica)
        for i in range(per_thread)
    }
    assert len(logs[1].find(AuditKind.TOOL_CALL, incident_id="inc-0")) == total // 2
    for log in logs:
        log.close()


# --------------------------------------------------------------------------- tampering

TAMPERS: dict[str, tuple[str, int, str]] = {
    # name: (statement, first bad seq, words of the reason)
    "edited row": (
        f"UPDATE {RECORDS_TABLE} SET line = replace(line, 'rollback', 'retrain') WHERE seq = 3",
        3,
        "does not match its hash",
    ),
    "deleted last row": (f"DELETE FROM {RECORDS_TABLE} WHERE seq = 7", 7, "were removed"),
    "deleted middle row": (
        f"DELETE FROM {RECORDS_TABLE} WHERE seq = 4",
        4,
        "removed or reordered",
    ),
    "row copied to the end": (
        f"INSERT INTO {RECORDS_TABLE} (seq, ts, kind, incident_id, line) "
        f"SELECT 8, ts, kind, incident_id, replace(line, '\"seq\":7', '\"seq\":8') "
        f"FROM {RECORDS_TABLE} WHERE seq = 7",
        8,
        "does not match its hash",
    ),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampering_is_named_by_verify_and_opening_refuses(
    tamper: str, pg_dsn: str, pools: Callable[..., ConnectionPool[Any]]
) -> None:
    statement, bad_seq, words = TAMPERS[tamper]
    pool = pools(pg_dsn)
    with PostgresAuditLog(pool, SimClock()) as log:
        fill(log, 8)
    assert verify_postgres(pg_dsn).ok
    sql(pg_dsn, statement)
    result = verify_postgres(pg_dsn)
    assert (result.ok, result.first_bad_seq) == (False, bad_seq), result
    assert words in result.reason
    with pytest.raises(AuditIntegrityError, match=rf"broken at record {bad_seq}: .*{words}"):
        PostgresAuditLog(pool, SimClock())
    assert verify_postgres(pg_dsn).first_bad_seq == bad_seq  # opening changed nothing


def test_a_row_with_a_valid_link_inserted_behind_the_head_is_caught_by_the_head(
    pg_dsn: str, pools: Callable[..., ConnectionPool[Any]]
) -> None:
    pool = pools(pg_dsn)
    with PostgresAuditLog(pool, SimClock()) as log:
        fill(log, 3)
        head_hash = log.records()[2].hash
        # A correctly chained record, then the head put back: a writer that skipped the head.
        log.append(AuditKind.SIGNAL, incident_id=None, actor="forger", data={})
    sql(pg_dsn, f"UPDATE {HEAD_TABLE} SET count = 3, last_hash = %s", (head_hash,))
    result = verify_postgres(pg_dsn)
    assert (result.ok, result.records, result.first_bad_seq) == (False, 4, 3)
    assert "without moving the head" in result.reason
    with pytest.raises(AuditIntegrityError, match="without moving the head"):
        PostgresAuditLog(pool, SimClock())


def test_a_missing_head_row_fails_and_is_not_recreated(
    pg_dsn: str, pools: Callable[..., ConnectionPool[Any]]
) -> None:
    pool = pools(pg_dsn)
    with PostgresAuditLog(pool, SimClock()) as log:
        fill(log, 2)
    sql(pg_dsn, f"DELETE FROM {HEAD_TABLE}")
    with pytest.raises(AuditIntegrityError, match=r"head row .* is missing"):
        PostgresAuditLog(pool, SimClock())
    assert sql(pg_dsn, f"SELECT count(*) AS n FROM {HEAD_TABLE}") == [{"n": 0}]
    result = verify_postgres(pg_dsn)
    assert (result.ok, result.records, result.first_bad_seq) == (False, 2, None)


@pytest.mark.parametrize(
    "statement",
    [
        f"DELETE FROM {RECORDS_TABLE} WHERE seq = 4",
        f"UPDATE {RECORDS_TABLE} SET line = replace(line, 'rollback', 'retrain') WHERE seq = 4",
    ],
)
def test_an_open_log_refuses_to_extend_a_tail_tampered_behind_it(
    statement: str, pg_dsn: str, pools: Callable[..., ConnectionPool[Any]]
) -> None:
    log = PostgresAuditLog(pools(pg_dsn), SimClock())
    fill(log, 5)
    sql(pg_dsn, statement)
    with pytest.raises(AuditIntegrityError, match="broken at record 4: record 4, the last one"):
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={})
    with pytest.raises(AuditIntegrityError, match="broken at record 4"):
        log.records()
    assert sql(pg_dsn, f"SELECT max(seq) AS m FROM {RECORDS_TABLE}")[0]["m"] < 5
    assert sql(pg_dsn, f"SELECT count FROM {HEAD_TABLE}") == [{"count": 5}]  # nothing appended
    log.close()


# ----------------------------------------------------------------------- network faults


class Proxy:
    """A loopback TCP proxy in front of the server that can lose the server's answer to the
    next COMMIT (the commit happens, the client never hears of it) or refuse connections."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.lose_next_commit_answer = threading.Event()
        self.refuse = threading.Event()
        self.answers_lost = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refuse.is_set():
                client.close()
                continue
            server = socket.create_connection(self._target)
            self._sockets += [client, server]
            committing = threading.Event()
            threading.Thread(
                target=self._up, args=(client, server, committing), daemon=True
            ).start()
            threading.Thread(
                target=self._down, args=(server, client, committing), daemon=True
            ).start()

    def _up(
        self, client: socket.socket, server: socket.socket, committing: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if b"COMMIT" in data and self.lose_next_commit_answer.is_set():
                    self.lose_next_commit_answer.clear()
                    committing.set()
                server.sendall(data)

    def _down(
        self, server: socket.socket, client: socket.socket, committing: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                if committing.is_set():  # the server committed and answered: drop the answer
                    self.answers_lost += 1
                    break
                client.sendall(data)
        for s in (client, server):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def dsn(self, dsn: str, **extra: str) -> str:
        return make_conninfo(dsn, host="127.0.0.1", port=str(self.port), **extra)

    def close(self) -> None:
        self._listener.close()
        for s in self._sockets:
            s.close()


@pytest.fixture
def proxy(pg_dsn: str) -> Iterator[Proxy]:
    port = int(psycopg.conninfo.conninfo_to_dict(pg_dsn)["port"])  # type: ignore[arg-type]
    p = Proxy(port)
    yield p
    p.close()


def terminate_backends(dsn: str) -> int:
    rows = sql(
        dsn,
        "SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    return len(rows)


def test_an_append_on_a_dead_pooled_connection_is_retried_on_a_fresh_one(
    pg_dsn: str, pools: Callable[..., ConnectionPool[Any]]
) -> None:
    log = PostgresAuditLog(pools(pg_dsn), SimClock())
    fill(log, 2)
    assert terminate_backends(pg_dsn) >= 1  # what a server restart or failover does
    record = log.append(AuditKind.SIGNAL, incident_id=None, actor="after-restart", data={})
    assert record.seq == 2
    assert terminate_backends(pg_dsn) >= 1
    assert len(log) == 3  # reads are retried too
    assert verify_postgres(pg_dsn).records == 3
    log.close()


def test_a_commit_whose_answer_is_lost_is_found_and_not_appended_twice(
    pg_dsn: str, proxy: Proxy, pools: Callable[..., ConnectionPool[Any]]
) -> None:
    log = PostgresAuditLog(pools(proxy.dsn(pg_dsn)), SimClock())
    fill(log, 2)
    proxy.lose_next_commit_answer.set()
    record = log.append(AuditKind.ACTION_INTENT, incident_id="inc-1", actor="act", data={})
    assert proxy.answers_lost == 1
    assert record.seq == 2
    lines = stored_lines(pg_dsn)
    assert len(lines) == 3
    assert json.loads(lines[2])["hash"] == record.hash
    assert len(log) == 3
    assert verify_postgres(pg_dsn).ok
    log.close()


def test_an_unreachable_server_fails_the_append_naming_it_without_the_password(
    pg_dsn: str, proxy: Proxy, pools: Callable[..., ConnectionPool[Any]]
) -> None:
    sql(pg_dsn, f"ALTER ROLE postgres PASSWORD '{FAKE_SECRET}'")  # trust auth ignores it
    log = PostgresAuditLog(pools(proxy.dsn(pg_dsn, password=FAKE_SECRET), timeout=1), SimClock())
    fill(log, 1)
    proxy.refuse.set()
    terminate_backends(pg_dsn)
    with pytest.raises(AuditIntegrityError) as caught:
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={})
    message = str(caught.value)
    assert f"port={proxy.port}" in message and "host=127.0.0.1" in message
    assert FAKE_SECRET not in message and "password" not in message
    assert "Nothing was half-written" in message and "\n" not in message
    with pytest.raises(AuditIntegrityError, match="cannot read the audit store at") as caught:
        log.records()
    assert "half-written" not in str(caught.value)
    log.close()
    assert len(stored_lines(pg_dsn)) == 1
    assert verify_postgres(pg_dsn).ok


# ------------------------------------------------------------------------- export, CLI


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_export_verifies_as_a_file_and_the_cli_reads_the_store(
    tmp_path: Path,
    pg_dsn: str,
    pools: Callable[..., ConnectionPool[Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = SimClock()
    with PostgresAuditLog(pools(pg_dsn), clock) as log:
        play(log, clock)
        last_hash = log.records()[-1].hash
    out = tmp_path / "export" / "audit.jsonl"
    assert export_postgres(pg_dsn, out) == 5
    assert out.read_text() == "".join(line + "\n" for line in stored_lines(pg_dsn))
    assert json.loads((tmp_path / "export" / "audit.jsonl.head").read_text()) == {
        "count": 5,
        "last_hash": last_hash,
    }
    assert verify(out).model_dump() == verify_postgres(pg_dsn).model_dump()
    assert sorted(p.name for p in out.parent.iterdir()) == ["audit.jsonl", "audit.jsonl.head"]

    monkeypatch.setenv(DSN_ENV, pg_dsn)
    assert run_cli(["audit", "verify", "--postgres-env", DSN_ENV], capsys) == (
        0,
        "OK: 5 records, chain intact\n",
        "",
    )
    for extra in ([], ["--incident", "inc-1"]):
        code, from_store, _ = run_cli(["audit", "show", "--postgres-env", DSN_ENV, *extra], capsys)
        assert code == 0
        assert run_cli(["audit", "show", str(out), *extra], capsys) == (0, from_store, "")
    assert len(from_store.splitlines()) == 4 and "REQUIRE APPROVAL rollback" in from_store

    again = tmp_path / "again.jsonl"
    code, said, _ = run_cli(
        ["audit", "export", "--postgres-env", DSN_ENV, "--out", str(again)], capsys
    )
    assert code == 0 and said.startswith(f"exported 5 records to {str(again)!r}")
    assert again.read_bytes() == out.read_bytes()
    assert run_cli(["audit", "verify", str(again)], capsys)[:2] == (
        0,
        "OK: 5 records, chain intact\n",
    )


def test_a_tampered_store_exports_as_evidence_that_fails_the_same_way(
    tmp_path: Path,
    pg_dsn: str,
    pools: Callable[..., ConnectionPool[Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with PostgresAuditLog(pools(pg_dsn), SimClock()) as log:
        fill(log, 6)
    sql(pg_dsn, TAMPERS["edited row"][0])
    out = tmp_path / "audit.jsonl"
    assert export_postgres(pg_dsn, out) == 6
    assert verify(out).first_bad_seq == verify_postgres(pg_dsn).first_bad_seq == 3
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    code, _, said = run_cli(["audit", "verify", "--postgres-env", DSN_ENV], capsys)
    assert code == 1 and said.startswith("FAILED: ")
    assert ": record 3 does not match its hash" in said
    code, shown, said = run_cli(["audit", "show", "--postgres-env", DSN_ENV], capsys)
    assert code == 1
    assert len(shown.splitlines()) == 4  # header, records 0-2; the failure goes to stderr
    assert said.startswith("error: the audit log is broken: record 3 does not match its hash")


def test_cli_errors_are_one_line_naming_the_fix(
    tmp_path: Path,
    pg_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(DSN_ENV, raising=False)
    for argv in (
        ["audit", "verify", "--postgres-env", DSN_ENV],
        ["audit", "show", "--postgres-env", DSN_ENV],
        ["audit", "export", "--postgres-env", DSN_ENV, "--out", str(tmp_path / "x.jsonl")],
    ):
        code, out, err = run_cli(argv, capsys)
        assert (code, out) == (1, "")  # a runtime (config) error, not a usage error
        assert err.count("\n") == 1 and f"{DSN_ENV!r} is not set" in err, err

    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    monkeypatch.setenv(DSN_ENV, f"postgresql://postgres:{FAKE_SECRET}@127.0.0.1:{closed_port}/db")
    code, out, err = run_cli(["audit", "verify", "--postgres-env", DSN_ENV], capsys)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and f"port={closed_port}" in err and "check that the server" in err
    assert FAKE_SECRET not in err

    monkeypatch.setenv(DSN_ENV, pg_dsn)  # a database without an audit store
    code, out, err = run_cli(["audit", "verify", "--postgres-env", DSN_ENV], capsys)
    assert code == 1 and out == "" and "no audit store" in err  # FAILED goes to stderr
    code, out, err = run_cli(["audit", "show", "--postgres-env", DSN_ENV], capsys)
    assert code == 1 and err.count("\n") == 1 and "no audit store" in err
    assert not (tmp_path / "x.jsonl").exists()

    for argv in (
        ["audit", "verify"],
        ["audit", "verify", "a.jsonl", "--postgres-env", DSN_ENV],
        ["audit", "export", "--out", "x.jsonl"],
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    assert "one of the arguments" in capsys.readouterr().err
