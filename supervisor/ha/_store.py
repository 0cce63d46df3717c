"""State that replicas share in Postgres: the incident index, the pause switch and approval
answers taken by a replica that does not lead.

With ``ha.postgres_dsn_env`` set, nothing a replica decides lives only in its own state
directory: every replica takes webhooks, Slack clicks and API calls, and every replica reads
the same incidents. The audit trail is shared too (:class:`supervisor.audit.PostgresAuditLog`).

Deduplication must see every replica's signals, so deciding what a signal becomes is
exclusive across replicas: :meth:`PostgresIncidents.exclusive` holds a Postgres advisory lock
while the caller refreshes its view, decides, audits and writes the changed incidents. Writes
happen only under that lock, so rows commit in ``version`` order and a reader that asks for
``version > last seen`` never misses one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from supervisor._shared import DocumentUpdate
from supervisor.domain import Incident

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

#: pg_advisory_lock key of incident decisions (any 64-bit constant; "mlopsinc" in ASCII).
INCIDENTS_LOCK = 0x6D6C6F7073696E63

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mlops_supervisor_incidents (
    id text PRIMARY KEY,
    version bigint NOT NULL,
    body jsonb NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS mlops_supervisor_incident_version;
CREATE TABLE IF NOT EXISTS mlops_supervisor_documents (
    name text PRIMARY KEY,
    body jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS mlops_supervisor_answers (
    incident_id text PRIMARY KEY,
    body jsonb NOT NULL
);
"""


def setup_shared_state(pool: ConnectionPool[Any]) -> None:
    """Create the shared tables if they do not exist (every replica may call it at start)."""
    with pool.connection() as conn, conn.transaction():
        # Serialise concurrent first starts: CREATE ... IF NOT EXISTS races on the catalog.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (INCIDENTS_LOCK + 1,))
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)


class PostgresIncidents:
    """The incident index as rows of ``mlops_supervisor_incidents`` (JSON bodies).

    A decision (:meth:`exclusive`) is one transaction on one connection: the replicas' lock
    (``pg_advisory_xact_lock``), the refresh and the writes, committed as the lock is released.
    """

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool
        self._seen = 0  # highest version this process has read (or written itself)
        self._seen_lock = threading.Lock()
        self._held = threading.local()  # the connection of this thread's exclusive block

    def load(self) -> list[Incident]:
        """Every incident, in the order they were opened."""
        return self.changes()

    def changes(self) -> list[Incident]:
        """Incidents written (by any replica) since the last call; all of them the first time."""
        with self._seen_lock:
            seen = self._seen
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT version, body FROM mlops_supervisor_incidents WHERE version > %s "
                "ORDER BY version",
                (seen,),
            ).fetchall()
        if not rows:
            return []
        with self._seen_lock:
            self._seen = max(self._seen, int(rows[-1]["version"]))
        return [Incident.model_validate(r["body"]) for r in rows]

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the replicas' incident lock until the block ends; refreshes and writes inside
        run on the lock's connection and transaction, committed at the end."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (INCIDENTS_LOCK,))
            self._held.conn = conn
            try:
                yield
            finally:
                self._held.conn = None

    def put(self, incidents: list[Incident]) -> None:
        """Write changed incidents; inside :meth:`exclusive` (after its refresh), so this
        process has seen every version before the ones written here."""
        if not incidents:
            return
        from psycopg.types.json import Jsonb

        held = getattr(self._held, "conn", None)
        with (
            self._connection() as conn,
            contextlib.nullcontext() if held is not None else conn.transaction(),
        ):
            written = 0
            for inc in incidents:
                row = conn.execute(
                    "INSERT INTO mlops_supervisor_incidents (id, version, body) "
                    "VALUES (%s, nextval('mlops_supervisor_incident_version'), %s) "
                    "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, "
                    "body = EXCLUDED.body RETURNING version",
                    (inc.id, Jsonb(inc.model_dump(mode="json"))),
                ).fetchone()
                written = max(written, int(row["version"])) if row is not None else written
        if held is not None:
            # Under the lock nobody else writes: the next refresh need not read these back.
            with self._seen_lock:
                self._seen = max(self._seen, written)

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        held = getattr(self._held, "conn", None)
        if held is not None:
            yield held
            return
        with self._pool.connection() as conn:
            yield conn


class PostgresDocument:
    """One named JSON document (e.g. the pause switch), read fresh on every call."""

    def __init__(self, pool: ConnectionPool[Any], name: str) -> None:
        self._pool = pool
        self.name = name

    def describe(self) -> str:
        return f"postgres document {self.name!r}"

    def read(self) -> Any | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT body FROM mlops_supervisor_documents WHERE name = %s", (self.name,)
            ).fetchone()
        return None if row is None else row["body"]

    @contextmanager
    def update(self) -> Iterator[DocumentUpdate]:
        """Read-modify-write under a row lock: other replicas wait until the block ends.

        Set ``.value`` on the yielded object to write; leave it alone to change nothing."""
        from psycopg.types.json import Jsonb

        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO mlops_supervisor_documents (name, body) VALUES (%s, 'null') "
                "ON CONFLICT (name) DO NOTHING",
                (self.name,),
            )
            row = conn.execute(
                "SELECT body FROM mlops_supervisor_documents WHERE name = %s FOR UPDATE",
                (self.name,),
            ).fetchone()
            change = DocumentUpdate(None if row is None else row["body"])
            yield change
            if change.written:
                conn.execute(
                    "UPDATE mlops_supervisor_documents SET body = %s WHERE name = %s",
                    (Jsonb(change.value), self.name),
                )


class QueuedAnswer(BaseModel):
    """An approval answer a replica took while another led; the leader applies it."""

    model_config = ConfigDict(extra="forbid")

    incident_id: str
    decision: Literal["approved", "denied"]
    by: str
    comment: str = ""
    at: datetime


class PostgresAnswers:
    """Answers waiting for the leader, at most one per incident."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def put(self, answer: QueuedAnswer) -> bool:
        """Queue ``answer``; False if one is already waiting for that incident."""
        from psycopg.types.json import Jsonb

        with self._pool.connection() as conn:
            cur = conn.execute(
                "INSERT INTO mlops_supervisor_answers (incident_id, body) VALUES (%s, %s) "
                "ON CONFLICT (incident_id) DO NOTHING",
                (answer.incident_id, Jsonb(answer.model_dump(mode="json"))),
            )
            return bool(cur.rowcount == 1)

    def waiting(self) -> list[QueuedAnswer]:
        """Queued answers, oldest first (not removed: :meth:`done` removes one once applied)."""
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT body FROM mlops_supervisor_answers").fetchall()
        found = [QueuedAnswer.model_validate(r["body"]) for r in rows]
        return sorted(found, key=lambda a: a.at)

    def pending_for(self, incident_id: str) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM mlops_supervisor_answers WHERE incident_id = %s", (incident_id,)
            ).fetchone()
        return row is not None

    def done(self, incident_id: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "DELETE FROM mlops_supervisor_answers WHERE incident_id = %s", (incident_id,)
            )
