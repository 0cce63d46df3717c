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

from supervisor.chatops._config import SlackConfig
from supervisor.domain import MetricName, Symptom
from supervisor.ha._config import HAConfig
from supervisor.llm import LLMConfig
from supervisor.telemetry import TelemetryConfig
from tools._drift import SeasonalReference
from tools.files._config import FileDriftConfig
from tools.kubernetes._config import KubernetesConfig
from tools.mlflow._config import MlflowConnection
from tools.prometheus._config import PrometheusConfig


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
    """Where the model's reference and current data live (both, or neither)."""

    reference: str | None = Field(
        default=None, description="Reference window: a file path, file:// URL or MLflow artifact."
    )
    current: str | None = Field(
        default=None, description="Directory of inference logs (Parquet or CSV), selected by time."
    )

    @model_validator(mode="after")
    def _both_or_neither(self) -> DataSpec:
        if (self.reference is None) != (self.current is None):
            missing = "current" if self.current is None else "reference"
            raise ValueError(
                f"data.{missing} is missing; give both reference and current, or neither"
            )
        return self


class DriftCheck(_Strict):
    """The scheduled drift check."""

    drift_share_threshold: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Open an incident at or above (Evidently's own dataset-drift default); "
        "lower it to hear about smaller shifts, at the cost of false alarms.",
    )
    window_minutes: int = Field(default=60, ge=1, description="Current window length.")
    interval_minutes: int = Field(default=15, ge=1, description="How often to check.")
    seasonality: SeasonalReference | None = Field(
        default=None,
        description="Also compare each window with the same hours one cycle earlier (e.g. "
        "{period: 7d, reference_window: same_hours}); drift that recurs every cycle while "
        "labelled quality holds is then diagnosed benign_change. Off when absent.",
    )

    @model_validator(mode="after")
    def _period_fits(self) -> DriftCheck:
        if self.seasonality is not None and self.seasonality.period_minutes < self.window_minutes:
            raise ValueError(
                f"seasonality.period {self.seasonality.period!r} is shorter than window_minutes "
                f"{self.window_minutes!r}, so last cycle's window would overlap the current one; "
                "set a period of at least the window (e.g. '24h' or '7d')"
            )
        return self


class QualityWatch(_Strict):
    """The scheduled quality watch over labelled accuracy (labels may arrive late)."""

    label_delay_minutes: float | None = Field(
        default=None,
        ge=0,
        description="How long after a prediction its label arrives; None: measured from the "
        "data (the latest window that has labelled rows).",
    )
    window_minutes: int = Field(
        default=20, ge=5, description="Length of the labelled window quality is judged on."
    )
    max_drop: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Open a quality_drop incident when labelled accuracy fell at least this "
        "much below the same version's labelled accuracy 6 h earlier (the playbooks' "
        "accuracy-dropped bar); labels may be late, the latest labelled window counts.",
    )
    alpha: float = Field(
        default=0.001,
        gt=0,
        lt=1,
        description="The fall must also be significant: one-sided two-proportion z-test p-value "
        "below this. The watch runs on every check pass (hundreds a day per model), so a "
        "per-test 0.05 would raise several false alarms a day; 0.001 keeps them rare.",
    )
    enabled: bool = Field(default=True, description="Run the quality-trend watch.")
    recheck_margin_minutes: float = Field(
        default=15.0,
        ge=0,
        description="A retrain that waits for late labels re-checks this long after the labels "
        "of the incident's first rows arrive: a quarter hour of labelled post-onset rows "
        "(~450 rows at the simulated rate; the retrain window's labelled span, "
        "MIN_LABELLED_HOURS) so the new model learns the drifted world, not the old one.",
    )
    max_label_wait_minutes: float = Field(
        default=240.0,
        gt=0,
        description="Longest a decision waits for late labels after the incident opened; past "
        "it the supervisor decides on what it has and pages the owner instead of retraining. "
        "Four hours: same-day labels (minutes to an hour or two late) are waited for, while a "
        "model hurting users is never left unattended for a whole shift; days-late labels are "
        "not waited for at all (the label-free proxies decide, and the owner is paged).",
    )


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
            # Concept drift moves no input: only labelled accuracy shows it. Labels arrive
            # late, so the window must be longer than the label delay.
            SignalThreshold(metric=MetricName.ACCURACY, op="<", threshold=0.7, window_minutes=60),
        ],
        description="Serving signals and thresholds.",
    )
    drift: DriftCheck = Field(default_factory=DriftCheck)
    quality: QualityWatch = Field(
        default_factory=QualityWatch, description="Quality-trend watch on late labels."
    )
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


class IntakeConfig(_Strict):
    """How alerts map onto watched models and symptoms."""

    model_label: str = Field(default="model", description="Label naming the model.")
    version_label: str = Field(default="version", description="Label naming the model version.")
    environment_label: str = Field(
        default="environment", description="Label naming the environment."
    )
    default_environment: str = Field(default="production")
    symptom_label: str = Field(
        default="symptom", description="Label that names a symptom directly."
    )
    symptom_map: dict[str, Symptom] = Field(
        default_factory=lambda: {
            "HighErrorRate": Symptom.HIGH_ERROR_RATE,
            "ModelHighErrorRate": Symptom.HIGH_ERROR_RATE,
            "HighLatency": Symptom.HIGH_LATENCY,
            "ModelHighLatency": Symptom.HIGH_LATENCY,
            "Saturation": Symptom.SATURATION,
            "ModelSaturated": Symptom.SATURATION,
            "DataDrift": Symptom.DATA_DRIFT,
            "ModelDataDrift": Symptom.DATA_DRIFT,
            "QualityDrop": Symptom.QUALITY_DROP,
            "ModelAccuracyDrop": Symptom.QUALITY_DROP,
            "DataQuality": Symptom.DATA_QUALITY,
            "CanaryAnalysis": Symptom.CANARY_ANALYSIS,
            "ModelNoData": Symptom.NO_DATA,
        },
        description="alertname -> symptom.",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Larger bodies get 413.")
    token_env: str | None = Field(
        default=None,
        min_length=1,
        description="Environment variable holding a bearer token that POST /alerts requires "
        "(Alertmanager: the receiver's http_config.authorization); unset: the webhook is open "
        "to whoever reaches the service. The service does not start while the variable is "
        "empty.",
    )


class ServiceConfig(_Strict):
    """The HTTP service (``mlops-supervisor serve``)."""

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port to listen on (0: any free).")
    workers: int = Field(default=4, ge=1, le=64, description="Threads running incident graphs.")
    intake: IntakeConfig = Field(default_factory=IntakeConfig, description="Alertmanager intake.")
    check_interval_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Seconds between scheduled check passes (serving signals, drift, canary "
        "analysis) and approval expiry; 0 turns the scheduler off.",
    )
    approval_token_env: str = Field(
        default="MLOPS_SUPERVISOR_APPROVAL_TOKEN",
        min_length=1,
        description="Environment variable holding the bearer token of the approval API; the "
        "API answers 503 while it is unset or empty.",
    )
    shutdown_grace_seconds: float = Field(
        default=20.0,
        ge=0,
        description="On shutdown, how long running incidents may take to finish; the rest stop "
        "at their last checkpoint and resume on the next start.",
    )


class MlflowBackendConfig(_Strict):
    """The real registry and retrain ports: an MLflow tracking server or local store."""

    connection: MlflowConnection = Field(description="Tracking/registry URI and retry settings.")
    entry_points: dict[str, str] = Field(
        default_factory=dict,
        description="Per model: the training entry point as 'package.module:function'; models "
        "without one cannot be retrained (the retrain action fails with that message).",
    )
    runner: Literal["local", "in_process"] = Field(
        default="local", description="local: a subprocess per retrain; in_process: same process."
    )
    compare_to_champion: bool = Field(
        default=True, description="A retrained version must also not be worse than the champion."
    )
    champion_tolerance: float = Field(default=0.0, ge=0, le=1)


class BackendsConfig(_Strict):
    """Which adapter answers each port. A port with no real adapter configured is served by the
    simulated world (seeded), so a partial setup still runs end to end."""

    sim_seed: int = Field(
        default=7, description="Seed of the simulated world behind unconfigured ports."
    )
    prometheus: PrometheusConfig | None = Field(
        default=None, description="Real metrics and alerts from Prometheus."
    )
    drift_files: FileDriftConfig | None = Field(
        default=None,
        description="Real drift from Evidently on files: used for every model whose `data` "
        "names a reference and a current directory.",
    )
    mlflow: MlflowBackendConfig | None = Field(
        default=None, description="Real registry and retraining through MLflow."
    )
    kubernetes: KubernetesConfig | None = Field(
        default=None, description="Real deploy port: KServe InferenceServices or Deployments."
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
    llm: LLMConfig = Field(
        default_factory=LLMConfig, description="LLM endpoint for the llm and hybrid reasoners."
    )
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    slack: SlackConfig | None = Field(default=None, description="Slack chat-ops; off when absent.")
    backends: BackendsConfig = Field(default_factory=BackendsConfig)
    ha: HAConfig = Field(
        default_factory=HAConfig, description="Several replicas: Postgres checkpoints, a leader."
    )

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
