"""Several replicas: leader election on a Kubernetes Lease and shared state in Postgres.

Every replica serves reads and webhooks; only the leader runs incident graphs (and so acts).
With Postgres configured, replicas share graph checkpoints, the audit trail, the incident
index, the pause switch and approval answers waiting for the leader: a follower records a
webhook's signals and opens the incident, and the leader picks it up; the next leader resumes
an incident where the last one stopped, and the executor's idempotency keys keep it from
repeating an action.
"""

from ._config import HAConfig, LeaseConfig
from ._lease import LeaseElector
from ._postgres import PostgresCheckpoints, checkpoints_from_config, postgres_checkpoints
from ._store import (
    PostgresAnswers,
    PostgresDocument,
    PostgresIncidents,
    QueuedAnswer,
    setup_shared_state,
)

__all__ = [
    "HAConfig",
    "LeaseConfig",
    "LeaseElector",
    "PostgresAnswers",
    "PostgresCheckpoints",
    "PostgresDocument",
    "PostgresIncidents",
    "QueuedAnswer",
    "checkpoints_from_config",
    "postgres_checkpoints",
    "setup_shared_state",
]
