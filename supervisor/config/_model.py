"""The watch config: which models the supervisor watches and how it runs.

Loaded from YAML, with environment overrides (``MLOPS_SUPERVISOR_<FIELD>``, nested fields
joined by ``__``, e.g. ``MLOPS_SUPERVISOR_LIMITS__MAX_TOOL_CALLS=12``). Any invalid field is
rejected at start with its path and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from supervisor.domain import MetricName
from supervisor.telemetry import TelemetryConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignalThreshold(_Strict):
    """One serving signal watched for a model, and when it counts as a symptom."""

    metric: MetricName = Field(description="Which signal.")
    op: Literal[">", "<"] = Field(default=">", description="Symptom when value op threshold.")
    threshold: float = Field(description="The threshold.")
    window_minutes: int = Field(default=5, ge=1, description="Aggregation window.")


class DeploymentSpec(_Strict):
    """How the model is deployed."""

    kind: Literal["sim", "kserve", "deployment"] = Field(
        default="sim", description="sim (simulated world), kserve (InferenceService) or deployment."
    )
    namespace: str = Field(default="default", description="Kubernetes namespace.")
    name: str | None = Field(
        default=None, description="Kubernetes object name; defaults to the model."
    )


class DataSpec(_Strict):
    """Where the model's reference and current data live."""

    reference: str | None = Field(
        default=None, description="Reference window: a file path, file:// URL or MLflow artifact."
    )
    current: str | None = Field(
        default=None, description="Directory of inference logs (Parquet or CSV), selected by time."
    )


class DriftCheck(_Strict):
    """The scheduled drift check."""

    drift_share_threshold: float = Field(
        default=0.3, ge=0, le=1, description="Open an incident at or above."
    )
    window_minutes: int = Field(default=60, ge=1, description="Current window length.")
    interval_minutes: int = Field(default=30, ge=1, description="How often to check.")


class WatchedModel(_Strict):
    """One model the supervisor watches."""

    name: str = Field(min_length=1, description="Model name, as in the registry and metrics.")
    environment: str = Field(default="production", description="Environment it serves in.")
    owner: str = Field(description="Team or person paged for the model.")
    data_owner: str | None = Field(default=None, description="Paged for upstream data defects.")
    deployment: DeploymentSpec = Field(default_factory=DeploymentSpec)
    signals: list[SignalThreshold] = Field(
        default_factory=lambda: [
            SignalThreshold(metric=MetricName.ERROR_RATE, threshold=0.05),
            SignalThreshold(metric=MetricName.LATENCY_P99, threshold=500.0),
            SignalThreshold(metric=MetricName.SATURATION, threshold=0.9),
        ],
        description="Serving signals and thresholds.",
    )
    drift: DriftCheck = Field(default_factory=DriftCheck)
    min_accuracy: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="Floor for retrain validation; a retrained version must also beat live "
        "accuracy.",
    )
    data: DataSpec = Field(default_factory=DataSpec)


class Limits(_Strict):
    """Bounds per incident (invariant 6). Hitting one ends as insufficient_evidence."""

    max_tool_calls: int = Field(default=24, ge=1)
    max_steps: int = Field(default=40, ge=1)
    max_llm_calls: int = Field(default=8, ge=0)
    max_tokens: int = Field(default=40_000, ge=0)
    max_wall_seconds: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=3, ge=0)


class Timing(_Strict):
    """Settle and approval times, in seconds of the injected clock."""

    verify_settle_seconds: float = Field(default=600.0, ge=0, description="Wait before verify.")
    canary_analysis_minutes: int = Field(
        default=20, ge=1, description="Canary runs this long before analysis."
    )


class SupervisorConfig(BaseSettings):
    """Top-level config file."""

    model_config = SettingsConfigDict(
        extra="forbid", env_prefix="MLOPS_SUPERVISOR_", env_nested_delimiter="__"
    )

    models: list[WatchedModel] = Field(min_length=1, description="Watched models.")
    policy_file: Path = Field(default=Path("policies/default.yaml"), description="Policy YAML.")
    playbooks_dir: Path = Field(
        default=Path("playbooks"), description="Directory of playbook YAML."
    )
    state_dir: Path = Field(
        default=Path(".mlops-supervisor"), description="Audit log, checkpoints, reports."
    )
    reasoner: Literal["rules", "llm", "hybrid"] = Field(default="rules")
    limits: Limits = Field(default_factory=Limits)
    timing: Timing = Field(default_factory=Timing)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)

    @model_validator(mode="after")
    def _unique_models(self) -> SupervisorConfig:
        seen: set[tuple[str, str]] = set()
        for m in self.models:
            key = (m.name, m.environment)
            if key in seen:
                raise ValueError(
                    f"model {m.name!r} in environment {m.environment!r} is listed twice; "
                    "keep one entry per (name, environment)"
                )
            seen.add(key)
        return self

    def model_for(self, name: str, environment: str | None = None) -> WatchedModel | None:
        """The watched model called ``name`` (in ``environment`` when given)."""
        for m in self.models:
            if m.name == name and (environment is None or m.environment == environment):
                return m
        return None
