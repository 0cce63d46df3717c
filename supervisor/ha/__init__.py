"""Several replicas: leader election on a Kubernetes Lease and graph checkpoints in Postgres.

Every replica serves reads and webhooks; only the leader runs incident graphs (and so acts).
Checkpoints shared in Postgres let the next leader resume an incident where the last one
stopped; the executor's idempotency keys keep it from repeating an action.
"""

from ._config import HAConfig, LeaseConfig
from ._lease import LeaseElector
from ._postgres import PostgresCheckpoints, checkpoints_from_config, postgres_checkpoints

__all__ = [
    "HAConfig",
    "LeaseConfig",
    "LeaseElector",
    "PostgresCheckpoints",
    "checkpoints_from_config",
    "postgres_checkpoints",
]
