"""The audit trail in Postgres, shared by every replica.

The same records, canonical lines and hash chain as the JSONL file (:class:`AuditLog`): both
stores seal with :func:`supervisor.audit._seal.seal`, so an exported store verifies with
``audit verify FILE`` like a file the supervisor wrote. Two tables, created on first use:

* ``mlops_supervisor_audit_records``: one row per record: ``seq`` (primary key), ``ts``,
  ``kind``, ``incident_id`` and ``line``, the record's canonical JSON line without its newline.
  ``line`` is the evidence; the other columns are copies for SQL queries.
* ``mlops_supervisor_audit_head``: one row, ``count`` and ``last_hash``: the head file's twin.

An append locks the head row (``SELECT ... FOR UPDATE``), seals the record after the head,
inserts it and moves the head in one transaction, and returns after the commit: appends from
every replica serialise on that row, and a record and the head move together or not at all,
so unlike a file's head this one never lags. A head that lags the records is therefore
tampering (a row inserted behind the supervisor's back), not a warning.

Like the file, opening reads and checks the whole chain and the head, and refuses to extend a
broken chain; reads and appends first pick up what other replicas appended (checking it
against the chain) and check that the last record still matches the head.

Only this module imports psycopg, and only when a function runs: ``import supervisor.audit``
stays light.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from supervisor._clock import Clock
from supervisor._errors import AuditIntegrityError, ConfigError
from supervisor.domain import AuditKind, AuditRecord

# The private module, not the package: supervisor.telemetry imports this package in turn.
from ._index import RecordIndex
from ._redact import redact_text
from ._seal import draft
from ._verify import (
    GENESIS_HASH,
    ChainError,
    ChainState,
    VerifyResult,
    check_head,
    head_path,
    record_hash,
)

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg_pool import ConnectionPool

RECORDS_TABLE = "mlops_supervisor_audit_records"
HEAD_TABLE = "mlops_supervisor_audit_head"

#: pg_advisory_xact_lock key that serialises table creation ("mlopsaud" in ASCII).
_SETUP_LOCK = 0x6D6C6F7073617564
_SCAN_BATCH = 2000  # rows per round trip when reading the whole store
_CONNECT_TIMEOUT_S = 10
# A pooled connection can be dead (the server restarted, a failover): after a connection
# error the pool is checked and the operation tried once more on a fresh connection.
_ATTEMPTS = 2

_SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {RECORDS_TABLE} (
        seq bigint PRIMARY KEY CHECK (seq >= 0),
        ts timestamptz NOT NULL,
        kind text NOT NULL,
        incident_id text,
        line text NOT NULL
    )""",
    f"CREATE INDEX IF NOT EXISTS {RECORDS_TABLE}_incident_id ON {RECORDS_TABLE} (incident_id)",
    f"CREATE INDEX IF NOT EXISTS {RECORDS_TABLE}_kind ON {RECORDS_TABLE} (kind)",
    f"""CREATE TABLE IF NOT EXISTS {HEAD_TABLE} (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        count bigint NOT NULL CHECK (count >= 0),
        last_hash text NOT NULL
    )""",
)
# The genesis head, only for an empty store: a head row deleted from a store that has records
# stays missing, so that opening refuses rather than restarting the count at 0.
_GENESIS = (
    f"INSERT INTO {HEAD_TABLE} (id, count, last_hash) SELECT true, 0, %s "
    f"WHERE NOT EXISTS (SELECT 1 FROM {RECORDS_TABLE}) ON CONFLICT (id) DO NOTHING"
)
# The head, the record it points at, and up to %(batch)s records from seq %(start)s on: what other
# writers appended. One statement, so one snapshot; the anchor row makes a missing head show as
# NULLs. The shape keeps the planner's estimates small whatever the table statistics (the head
# is LIMIT 1, the new records a bounded range): an estimate of millions of rows would sort and
# JIT-compile on every call.
_FOLLOW = (
    "SELECT h.count, h.last_hash, last.line AS last_line, r.seq, r.line "
    "FROM (SELECT 1) AS anchor "
    f"LEFT JOIN (SELECT count, last_hash FROM {HEAD_TABLE} LIMIT 1) h ON true "
    f"LEFT JOIN {RECORDS_TABLE} last ON last.seq = h.count - 1 "
    f"LEFT JOIN {RECORDS_TABLE} r ON r.seq >= %(start)s AND r.seq < %(start)s + %(batch)s "
    "ORDER BY r.seq"
)
_FOLLOW_BATCH = 1000
_LOCK_HEAD = f"SELECT count FROM {HEAD_TABLE} FOR UPDATE"
_INSERT = (
    f"INSERT INTO {RECORDS_TABLE} (seq, ts, kind, incident_id, line) VALUES (%s, %s, %s, %s, %s)"
)
_MOVE_HEAD = f"UPDATE {HEAD_TABLE} SET count = %s, last_hash = %s"

_APPENDING = "cannot append to"
_T = TypeVar("_T")
_Problem = tuple[int | None, str]  # (first bad seq, or None if not tied to a record; reason)


class PostgresAuditLog:
    """The audit log as rows of ``mlops_supervisor_audit_records``; the interface of
    :class:`AuditLog`.

    ``pool`` is a ``psycopg_pool.ConnectionPool`` opened with ``autocommit=True``,
    ``prepare_threshold=0`` and ``row_factory=dict_row`` (as for the Postgres checkpoints); it
    stays the caller's: :meth:`close` does not close it. Creating the object creates the tables
    if needed, then reads and checks the whole chain and the head, and raises
    :class:`AuditIntegrityError` if appending would extend a broken chain.

    Every append is one committed transaction (durable as the server's ``synchronous_commit``
    makes it), so :meth:`deferred_sync` and :meth:`sync` have nothing to wait for. Threads of one
    process serialise on a lock; processes and replicas on the head row. A database error
    raises :class:`AuditIntegrityError` naming the server; nothing is half-written. After a
    connection error (a dead pooled connection, a failover) the operation is tried once more on
    a fresh connection. If the connection broke during the commit, the record may have been
    stored after all: the retry then finds it in the chain and returns it instead of appending
    it twice.

    Queries read an in-memory index of the chain (built on open, extended by appends and by
    what other replicas appended, fetched on each query), so they cost one round trip.
    """

    def __init__(self, pool: ConnectionPool[Any], clock: Clock) -> None:
        self._pool = pool
        self._clock = clock
        conninfo = pool.conninfo
        self._server = describe_dsn(conninfo) if isinstance(conninfo, str) else f"pool {pool.name}"
        self._lock = threading.Lock()
        self._closed = False
        self._chain = ChainState()
        self._indexed = RecordIndex()
        problem = self._with_retry("cannot open", self._open)
        if problem is not None:
            raise self._broken(problem)

    @property
    def where(self) -> str:
        """Where the records are: the server (no password) and the table."""
        return f"postgres {self._server}, table {RECORDS_TABLE}"

    # --- writing -------------------------------------------------------------------------

    def append(
        self,
        kind: AuditKind,
        *,
        incident_id: str | None,
        actor: str,
        data: dict[str, Any],
        ts: datetime | None = None,
    ) -> AuditRecord:
        """Redact ``data``, chain a new record to the last one (whichever replica wrote it),
        commit it and return it.

        ``ts`` defaults to the clock's now. ``trace_id``/``span_id`` are those of the active
        OpenTelemetry span (zeros outside any span). Values that are not JSON (datetimes,
        enums, pydantic models) are converted first; NaN and infinities become strings.
        """
        pending = draft(
            kind, incident_id=incident_id, actor=actor, data=data, ts=ts, clock=self._clock
        )
        sealed: list[AuditRecord] = []  # what each attempt sealed, in case its commit did land

        def attempt() -> AuditRecord:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute(_LOCK_HEAD)
                self._follow(conn)
                for earlier in sealed:
                    if self._stored(earlier):
                        return self._indexed[earlier.seq]
                record, line = pending.seal(self._chain.count, self._chain.last_hash)
                sealed.append(record)
                conn.execute(
                    _INSERT,
                    (record.seq, record.ts, kind.value, incident_id, line[:-1].decode("utf-8")),
                )
                conn.execute(_MOVE_HEAD, (record.seq + 1, record.hash))
            # Committed: only now is it part of this object's chain.
            self._chain.hashes.append(record.hash)
            self._index(record)
            return record

        with self._lock:
            self._require_open()
            return self._with_retry(_APPENDING, attempt)

    @contextmanager
    def deferred_sync(self) -> Iterator[None]:
        """For parity with :class:`AuditLog`: every append here is already committed when it
        returns, so there is nothing to defer."""
        yield

    def sync(self) -> None:
        """For parity with :class:`AuditLog`: every append is committed when it returns."""

    # --- reading -------------------------------------------------------------------------

    def records(self, incident_id: str | None = None) -> list[AuditRecord]:
        """All records in order (every replica's), or only those of ``incident_id``. Copies:
        mutate freely."""
        with self._lock:
            self._refresh()
            return self._indexed.select(incident_id)

    def find(
        self,
        kind: AuditKind,
        *,
        incident_id: str | None = None,
        where: dict[str, Any] | None = None,
    ) -> list[AuditRecord]:
        """Records of ``kind`` in order, optionally of one incident, whose ``data`` has every
        top-level key of ``where`` with an equal value (compared after JSON conversion, so
        enums match their values)."""
        with self._lock:
            self._refresh()
            return self._indexed.find(kind, incident_id, where)

    def __len__(self) -> int:
        with self._lock:
            self._refresh()
            return self._chain.count

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Further appends or queries raise. The pool stays open: it is the caller's."""
        with self._lock:
            self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------

    def _open(self) -> _Problem | None:
        # From scratch on every attempt: a retry reads the store again from seq 0.
        self._chain = ChainState()
        self._indexed = RecordIndex()
        with self._pool.connection() as conn:
            _setup(conn)
            with _snapshot(conn):
                return _scan_store(conn, self._chain, self._index)

    def _refresh(self) -> None:
        """Pick up other replicas' appends (the caller holds ``self._lock``)."""
        self._require_open()

        def attempt() -> None:
            with self._pool.connection() as conn:
                self._follow(conn)

        self._with_retry("cannot read", attempt)

    def _follow(self, conn: Connection[Any]) -> None:
        """Accept the records appended since this object last looked, then check the head and
        the record it points at; raise :class:`AuditIntegrityError` if the chain is broken."""
        while True:
            # Not prepared: a generic plan would not know how few rows the range holds.
            params = {"start": self._chain.count, "batch": _FOLLOW_BATCH}
            rows = conn.execute(_FOLLOW, params, prepare=False).fetchall()
            new = [row["line"] for row in rows if row["seq"] is not None]
            try:
                for line in new:
                    self._index(self._chain.accept(line.encode("utf-8") + b"\n"))
            except ChainError as exc:
                raise self._broken((exc.position, exc.reason)) from None
            if len(new) < _FOLLOW_BATCH:
                break
        first = rows[0]
        head = None if first["count"] is None else (int(first["count"]), str(first["last_hash"]))
        problem = _head_problem(self._chain, head) or _last_problem(head, first["last_line"])
        if problem is not None:
            raise self._broken(problem)

    def _stored(self, record: AuditRecord) -> bool:
        """Whether ``record`` (sealed by an attempt whose commit failed) is in the chain."""
        return record.seq < len(self._indexed) and self._indexed[record.seq].hash == record.hash

    def _with_retry(self, doing: str, operation: Callable[[], _T]) -> _T:
        import psycopg
        from psycopg_pool import PoolClosed, PoolTimeout

        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return operation()
            except (PoolTimeout, PoolClosed) as err:
                raise self._db_error(doing, err) from err
            except psycopg.OperationalError as err:
                if attempt == _ATTEMPTS:
                    raise self._db_error(doing, err) from err
                with contextlib.suppress(psycopg.Error):
                    self._pool.check()  # drop the dead connections before trying again
            except psycopg.Error as err:
                raise self._db_error(doing, err) from err
        raise AssertionError("unreachable")  # pragma: no cover

    def _db_error(self, doing: str, err: Exception) -> AuditIntegrityError:
        partial = (
            " Nothing was half-written (a record and the head move in one transaction)."
            if doing == _APPENDING
            else ""
        )
        return AuditIntegrityError(
            f"{doing} the audit store at {self._server!r}: {_one_line(err)}.{partial} Check "
            "that the Postgres server runs and that the DSN (host, port, user, database) is right."
        )

    def _broken(self, problem: _Problem) -> AuditIntegrityError:
        position, reason = problem
        at = f" at record {position}" if position is not None else ""
        return AuditIntegrityError(
            f"audit store {self.where!r} is broken{at}: {reason}. Appending would extend a "
            "broken chain: export it (`mlops-supervisor audit export`), rename both "
            f"{RECORDS_TABLE} and {HEAD_TABLE} (keep them as evidence) and restart; new, "
            "empty tables are created."
        )

    def _require_open(self) -> None:
        if self._closed:
            raise AuditIntegrityError(f"audit store {self.where!r} is closed")

    def _index(self, record: AuditRecord) -> None:
        self._indexed.add(record)


# --- verification, export, reading without a log object ---------------------------------


def verify_postgres(dsn: str) -> VerifyResult:
    """Verify the store at ``dsn`` as :func:`supervisor.audit.verify` verifies a file.

    Streams every line in ``seq`` order through the chain rules, then compares the head row,
    all in one read-only snapshot (appends may go on meanwhile). Names the first bad record.
    Raises :class:`ConfigError` when the server cannot be reached.
    """
    with _reading(dsn) as conn:
        if not _tables_exist(conn):
            return _no_store(dsn)
        state = ChainState()
        problem = _scan_store(conn, state)
    if problem is not None:
        position, reason = problem
        return VerifyResult(ok=False, records=state.count, first_bad_seq=position, reason=reason)
    return VerifyResult(ok=True, records=state.count, reason="chain intact")


def export_postgres(dsn: str, out: Path) -> int:
    """Write the store at ``dsn`` to ``out`` as a JSONL log with its ``.head`` file, the lines
    byte for byte as stored (broken ones too: an export is evidence); the number of records.

    ``audit verify`` and ``audit show`` then work on the file. One snapshot, so records and
    head agree even while replicas append. Without a head row no ``.head`` file is written
    (and a stale one is removed). Raises :class:`ConfigError` when the server cannot be reached
    or holds no audit store.
    """
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    head_file = head_path(out)
    head_tmp = head_file.with_name(f"{head_file.name}.{os.getpid()}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _reading(dsn) as conn:
            if not _tables_exist(conn):
                raise ConfigError(_no_store(dsn).reason)
            head = _read_head_row(conn)
            count = 0
            with tmp.open("wb") as f, contextlib.closing(_lines(conn)) as lines:
                for line in lines:
                    f.write(line)
                    count += 1
                f.flush()
                os.fsync(f.fileno())
        if head is not None:
            body = json.dumps({"count": head[0], "last_hash": head[1]})
            head_tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, out)
        if head is not None:
            os.replace(head_tmp, head_file)
        else:
            head_file.unlink(missing_ok=True)
    finally:
        tmp.unlink(missing_ok=True)
        head_tmp.unlink(missing_ok=True)
    return count


def read_postgres(dsn: str) -> tuple[list[AuditRecord], ChainError | None]:
    """The records of the store at ``dsn`` in order, up to the first that breaks the chain, and
    that break (None if none). Reading does not check the head: :func:`verify_postgres` does.

    Raises :class:`ConfigError` when the server cannot be reached or holds no audit store.
    """
    records: list[AuditRecord] = []
    state = ChainState()
    with _reading(dsn) as conn:
        if not _tables_exist(conn):
            raise ConfigError(_no_store(dsn).reason)
        try:
            with contextlib.closing(_lines(conn)) as lines:
                for line in lines:
                    records.append(state.accept(line))
        except ChainError as exc:
            return records, exc
    return records, None


def describe_dsn(dsn: str) -> str:
    """The DSN's connection parameters without the password, for messages."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        return "<unparsable DSN>"
    return " ".join(f"{k}={v}" for k, v in sorted(parts.items()) if k != "password")


# --- helpers ----------------------------------------------------------------------------


def _setup(conn: Connection[Any]) -> None:
    """Create the tables and the genesis head if missing; refuse a database that is not UTF-8."""
    with conn.transaction():
        # Replicas starting together: CREATE ... IF NOT EXISTS races on the catalog.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
        encoding = conn.execute("SHOW server_encoding").fetchall()[0]["server_encoding"]
        if encoding != "UTF8":
            raise AuditIntegrityError(
                f"the database at {describe_dsn(conn.info.dsn)!r} has encoding {encoding!r}; "
                "the audit store needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8')"
            )
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(_GENESIS, (GENESIS_HASH,))


@contextmanager
def _snapshot(conn: Connection[Any]) -> Iterator[None]:
    """One read-only transaction seeing one snapshot, so the head and the records agree."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


@contextmanager
def _reading(dsn: str) -> Iterator[Connection[Any]]:
    """A connection to ``dsn`` inside :func:`_snapshot`; database errors become ConfigError."""
    import psycopg
    from psycopg.rows import dict_row

    try:
        with (
            psycopg.connect(
                dsn,
                autocommit=True,
                prepare_threshold=0,
                row_factory=dict_row,
                connect_timeout=_CONNECT_TIMEOUT_S,
            ) as conn,
            _snapshot(conn),
        ):
            yield conn
    except psycopg.Error as err:
        raise ConfigError(
            f"audit store at {describe_dsn(dsn)!r}: {_one_line(err)}; check that the server "
            "runs and the DSN (host, port, user, database) is right"
        ) from err


def _tables_exist(conn: Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL AS records, to_regclass(%s) IS NOT NULL AS head",
        (RECORDS_TABLE, HEAD_TABLE),
    ).fetchall()[0]
    return bool(row["records"] and row["head"])


def _no_store(dsn: str) -> VerifyResult:
    return VerifyResult(
        ok=False,
        records=0,
        reason=f"no audit store at {describe_dsn(dsn)!r}: the tables {RECORDS_TABLE} and "
        f"{HEAD_TABLE} do not exist (is it the right database?)",
    )


def _read_head_row(conn: Connection[Any]) -> tuple[int, str] | None:
    row = conn.execute(f"SELECT count, last_hash FROM {HEAD_TABLE}").fetchone()
    return None if row is None else (int(row["count"]), str(row["last_hash"]))


def _lines(conn: Connection[Any]) -> Generator[bytes, None, None]:
    """Every stored line with its newline, in ``seq`` order, a batch per round trip.

    A server-side cursor: consume it inside the caller's transaction, under
    ``contextlib.closing`` so that the cursor closes there even when the reader stops early.
    """
    with conn.cursor(name="mlops_supervisor_audit_scan") as cur:
        cur.itersize = _SCAN_BATCH
        cur.execute(f"SELECT line FROM {RECORDS_TABLE} ORDER BY seq")
        for row in cur:
            yield row["line"].encode("utf-8") + b"\n"


def _scan_store(
    conn: Connection[Any],
    state: ChainState,
    index: Callable[[AuditRecord], None] | None = None,
) -> _Problem | None:
    """Feed every record through ``state``, then compare the head; inside :func:`_snapshot`."""
    head = _read_head_row(conn)
    try:
        with contextlib.closing(_lines(conn)) as lines:
            for line in lines:
                record = state.accept(line)
                if index is not None:
                    index(record)
    except ChainError as exc:
        return exc.position, exc.reason
    return _head_problem(state, head)


def _head_problem(state: ChainState, head: tuple[int, str] | None) -> _Problem | None:
    """Compare an intact chain with the head row. Stricter than a head file: the head moves in
    the same transaction as the records, so a head that lags is an error too."""
    if head is None:
        return None, f"the head row of {HEAD_TABLE} is missing: it was deleted"
    outcome = check_head(state, head)
    if isinstance(outcome, tuple):
        position, reason = outcome
        return position, reason.replace("the head file", "the head row")
    if isinstance(outcome, str):
        count = head[0]
        return count, (
            f"the head row records {count} records but the store holds {state.count}: records "
            f"from seq {count} on were inserted without moving the head, which the supervisor "
            "never does"
        )
    return None


def _last_problem(head: tuple[int, str] | None, last_line: str | None) -> _Problem | None:
    """Whether the record the head points at is there and is the one it hashed."""
    if head is None or head[0] == 0:
        return None
    count, last_hash = head
    position = count - 1
    if last_line is None:
        return position, f"record {position}, the last one, is missing: it was removed"
    try:
        obj = json.loads(last_line)
    except ValueError:
        obj = None
    if (
        not isinstance(obj, dict)
        or obj.get("seq") != position
        or obj.get("hash") != last_hash
        or record_hash(obj) != last_hash
    ):
        return position, f"record {position}, the last one, does not match the head: it was edited"
    return None


def _one_line(err: Exception) -> str:
    """A driver error as one line, with anything secret-shaped masked."""
    return redact_text(" ".join(str(err).split())).rstrip(".") or type(err).__name__
