"""The backend ports: small typed protocols every adapter (real or simulated) implements.

Read ports answer questions and never change anything. Write ports are used only by the
executor, after the guard has decided; tools never see them.

Conventions shared by every adapter:

* a read that finds nothing returns ``None`` (or an empty list where a list is natural);
  the tool layer turns that into a ``no_data`` result, never a zero;
* a backend that fails raises :class:`supervisor.BackendError` with a message naming the
  backend, the request and what to check.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from supervisor._errors import BackendError
from supervisor.domain import MetricName, TimeWindow


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- metrics


class MetricReading(_Strict):
    """One aggregated value of a serving signal over a window."""

    model: str
    metric: MetricName
    version: str | None = Field(description="None means all versions together.")
    value: float
    window_start: datetime
    window_end: datetime
    samples: int = Field(ge=0, description="How many observations the value rests on.")


@runtime_checkable
class MetricsPort(Protocol):
    def read(
        self,
        model: str,
        metric: MetricName,
        *,
        version: str | None,
        window: timedelta,
        end: datetime | None = None,
    ) -> MetricReading | None:
        """Aggregate ``metric`` over ``[end - window, end)``; None when there is no data.

        ``end`` defaults to now. Accuracy needs labels, which arrive late: a window whose labels
        have not arrived yet has no data.
        """
        ...


# --------------------------------------------------------------------------- alerts


class AlertInfo(_Strict):
    """A firing alert as the alerts backend reports it. Labels are untrusted text."""

    name: str
    model: str | None
    state: Literal["firing", "pending", "resolved"]
    active_since: datetime
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    fingerprint: str = ""


@runtime_checkable
class AlertsPort(Protocol):
    def firing(self, model: str | None = None) -> list[AlertInfo]:
        """Alerts currently firing, optionally only those labelled with ``model``."""
        ...


# --------------------------------------------------------------------------- drift


class FeatureDrift(_Strict):
    """Drift of one feature between the reference and the current window."""

    feature: str
    method: str = Field(description="Statistical test Evidently chose, e.g. 'K-S p_value'.")
    threshold: float
    score: float
    drifted: bool


class FeatureQuality(_Strict):
    """Data-quality figures of one feature: what separates a broken pipeline from drift."""

    feature: str
    null_share_reference: float
    null_share_current: float
    dtype_reference: str | None
    dtype_current: str | None
    out_of_range_share: float = Field(
        description="Share of current values outside the reference [min, max]."
    )
    scale_ratio: float | None = Field(
        default=None, description="median |current| / median |reference|; ~1000 is a unit change."
    )


ImportanceSource = Literal["registry", "permutation", "uniform"]


class DriftReport(_Strict):
    """Evidently drift plus data-quality checks for one model's inputs."""

    model: str
    reference_rows: int
    current_rows: int
    window_start: datetime
    window_end: datetime
    drift_share: float = Field(description="Share of features that drifted, 0..1.")
    dataset_drift: bool
    features: list[FeatureDrift]
    quality: list[FeatureQuality]
    missing_columns: list[str] = Field(default_factory=list)
    new_columns: list[str] = Field(default_factory=list)
    prediction_drift: FeatureDrift | None = Field(
        default=None, description="Drift of the model's output score, when logged."
    )
    compute_seconds: float = Field(default=0.0, description="Wall time spent in Evidently.")
    importances: dict[str, float] = Field(
        default_factory=dict,
        description="Feature -> share of the model's reliance on it (sums to 1); empty: unknown.",
    )
    importance_source: ImportanceSource = Field(
        default="uniform",
        description="Where the importances come from: 'registry' (logged with the model), "
        "'permutation' (computed once on the reference data) or 'uniform' (none known: every "
        "feature weighs the same, and the weighted share equals the plain share).",
    )
    weighted_drift_share: float | None = Field(
        default=None,
        description="sum(importance of drifted features) / sum(importance of tested features).",
    )


@runtime_checkable
class DriftPort(Protocol):
    def report(
        self, model: str, *, window: timedelta, end: datetime | None = None
    ) -> DriftReport | None:
        """Compare the model's reference data with inputs in ``[end - window, end)``."""
        ...


class NoSeasonalHistory(BackendError):
    """The drift backend keeps no history of inputs, so no earlier cycle can be read."""


@runtime_checkable
class SeasonalDriftPort(Protocol):
    """A drift port that keeps a history of inputs, so it can compare with an earlier cycle."""

    def seasonal_report(
        self, model: str, *, window: timedelta, period: timedelta, end: datetime | None = None
    ) -> DriftReport | None:
        """Compare inputs in ``[end - window, end)`` with the same data source's inputs in
        ``[end - period - window, end - period)``: the same hours one cycle earlier.

        None when either window holds no rows.
        """
        ...


# --------------------------------------------------------------------------- registry


class ModelVersionInfo(_Strict):
    """One registered version of a model."""

    model: str
    version: str
    created_at: datetime
    aliases: list[str] = Field(default_factory=list, description="e.g. champion, challenger.")
    tags: dict[str, str] = Field(default_factory=dict, description="e.g. validation_status.")
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Offline validation metrics."
    )
    run_id: str | None = None
    training_window: TimeWindow | None = None


class ChangeEvent(_Strict):
    """One entry of a model's "what changed, when" timeline."""

    at: datetime
    kind: Literal[
        "registered",
        "deployed",
        "canary_started",
        "canary_weight",
        "promoted",
        "rolled_back",
        "aborted",
        "retrained",
        "alias_moved",
        "pipeline_change",
        "config_change",
    ]
    version: str | None = None
    detail: str = ""


@runtime_checkable
class RegistryReader(Protocol):
    def versions(self, model: str) -> list[ModelVersionInfo]:
        """All versions of ``model``, oldest first. Raises BackendError if it does not exist."""
        ...

    def timeline(self, model: str, since: datetime) -> list[ChangeEvent]:
        """What changed for ``model`` since ``since``, oldest first."""
        ...


@runtime_checkable
class RegistryWriter(Protocol):
    def set_alias(self, model: str, alias: str, version: str, *, expected: str | None) -> None:
        """Point ``alias`` at ``version`` if it still points at ``expected`` (None: unset).

        Raises ActionError when the precondition fails, so two actors cannot race.
        """
        ...

    def set_tag(self, model: str, version: str, key: str, value: str) -> None:
        """Set a version tag."""
        ...


# --------------------------------------------------------------------------- deploy


class DeploymentStatus(_Strict):
    """Which versions serve and how traffic is split."""

    model: str
    environment: str
    stable_version: str
    canary_version: str | None = None
    canary_weight: int = Field(default=0, ge=0, le=100, description="Percent of traffic to canary.")
    ready: bool = True
    resource_version: str = Field(default="0", description="Optimistic-concurrency token.")


@runtime_checkable
class DeployReader(Protocol):
    def status(self, model: str) -> DeploymentStatus | None:
        """Current serving status, or None if the model is not deployed."""
        ...


@runtime_checkable
class DeployWriter(Protocol):
    def set_canary_weight(
        self, model: str, weight: int, *, expected_version: str
    ) -> DeploymentStatus:
        """Send ``weight`` percent to the canary, if the canary is still ``expected_version``."""
        ...

    def promote_canary(self, model: str, *, expected_version: str) -> DeploymentStatus:
        """The canary ``expected_version`` becomes stable and takes all traffic."""
        ...

    def abort_canary(self, model: str, *, expected_version: str) -> DeploymentStatus:
        """Send all traffic back to stable and drop the canary ``expected_version``."""
        ...

    def serve_version(
        self, model: str, version: str, *, expected_version: str, canary_weight: int = 0
    ) -> DeploymentStatus:
        """Serve ``version``: as stable (rollback) or as a canary at ``canary_weight`` percent.

        ``expected_version`` is the stable version the caller saw (optimistic concurrency).
        """
        ...


# --------------------------------------------------------------------------- train


class RetrainResult(_Strict):
    """A retrain run and the version it registered."""

    run_id: str
    version: str
    idempotency_key: str
    training_window: TimeWindow
    excluded_windows: list[TimeWindow] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    validation_passed: bool
    details: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class TrainPort(Protocol):
    def retrain(
        self,
        model: str,
        *,
        window: TimeWindow,
        exclude: list[TimeWindow],
        idempotency_key: str,
        min_accuracy: float,
    ) -> RetrainResult:
        """Fit and register a new version on ``window`` minus ``exclude``; tag it with the key."""
        ...

    def find_run(self, model: str, idempotency_key: str) -> RetrainResult | None:
        """The retrain run started with ``idempotency_key``, if any (for reconciliation)."""
        ...
