"""Graph checkpoints in Postgres (``langgraph-checkpoint-postgres``), shared by replicas."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor._errors import ConfigError
from supervisor.audit._postgres import describe_dsn

if TYPE_CHECKING:
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg_pool import ConnectionPool

    from ._config import HAConfig


@dataclass
class PostgresCheckpoints:
    """A :class:`PostgresSaver` over a small connection pool; :meth:`close` frees both."""

    saver: PostgresSaver
    pool: ConnectionPool[Any]

    def close(self) -> None:
        self.pool.close()


def postgres_checkpoints(dsn: str, *, max_connections: int = 16) -> PostgresCheckpoints:
    """Connect to ``dsn``, create the checkpoint tables if needed and return the saver.

    Raises :class:`ConfigError` naming the server (never the password) when it cannot connect.
    """
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool, PoolTimeout

    # PostgresSaver needs autocommit and dict rows; prepared statements off (None: psycopg never
    # prepares) so a pooler (pgbouncer in transaction mode) in front of the server works too.
    # A connection is checked before use, so one the server dropped is replaced, not failed.
    pool: ConnectionPool[Any] = ConnectionPool(
        dsn,
        min_size=1,
        max_size=max_connections,
        kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
        check=ConnectionPool.check_connection,
        open=False,
    )
    try:
        pool.open(wait=True, timeout=30)
        saver = PostgresSaver(pool)
        saver.setup()
    except (psycopg.Error, PoolTimeout) as err:
        pool.close()
        raise ConfigError(
            f"postgres checkpoints: cannot use {describe_dsn(dsn)!r}: {err}; check that the server "
            "runs and the DSN (host, port, user, database) is right"
        ) from err
    return PostgresCheckpoints(saver=saver, pool=pool)


def checkpoints_from_config(config: HAConfig) -> PostgresCheckpoints | None:
    """Postgres checkpoints when ``ha.postgres_dsn_env`` is set, else None (SQLite)."""
    if not config.postgres_dsn_env:
        return None
    dsn = os.environ.get(config.postgres_dsn_env, "")
    if not dsn:
        raise ConfigError(
            f"ha.postgres_dsn_env names {config.postgres_dsn_env!r} but that environment "
            "variable is empty; set it to the Postgres DSN (postgresql://user:pw@host/db)"
        )
    return postgres_checkpoints(dsn)
