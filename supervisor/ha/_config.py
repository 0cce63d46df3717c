"""The ``ha:`` section of the config: several replicas, one leader."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tools.kubernetes._config import KubernetesConnection


class LeaseConfig(BaseModel):
    """Leader election on a Kubernetes ``coordination.k8s.io/v1`` Lease."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="mlops-supervisor", min_length=1, description="Lease name.")
    namespace: str = Field(default="default", min_length=1, description="Lease namespace.")
    duration_seconds: int = Field(
        default=15,
        ge=1,
        description="leaseDurationSeconds: how long a leader that stops renewing stays leader.",
    )
    renew_every_seconds: float = Field(
        default=5.0, gt=0, description="How often the elector tries to acquire or renew."
    )
    identity_env: str = Field(
        default="POD_NAME",
        description="Environment variable naming this replica (holderIdentity); the host name "
        "when it is unset.",
    )
    connection: KubernetesConnection = Field(
        default_factory=lambda: KubernetesConnection(mode="in_cluster"),
        description="How to reach the API server (in-cluster by default).",
    )


class HAConfig(BaseModel):
    """Several replicas: shared graph checkpoints and a leader that alone acts."""

    model_config = ConfigDict(extra="forbid")

    postgres_dsn_env: str | None = Field(
        default=None,
        description="Environment variable holding the Postgres DSN for graph checkpoints "
        "(the DSN carries a password, so it is never written in the config). Unset: SQLite "
        "in state_dir.",
    )
    pickup_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="With Postgres: how often the leader looks for incidents other replicas "
        "opened and approval answers they took.",
    )
    lease: LeaseConfig | None = Field(
        default=None, description="Leader election; absent: this replica always leads."
    )
