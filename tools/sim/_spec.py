"""What a simulated world is made of: models, faults, deploys and injected alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultKind = Literal[
    "covariate_drift",
    "concept_drift",
    "null_spike",
    "unit_change",
    "schema_change",
    "saturation",
    "seasonal_shift",
]

#: Fault kinds that break the data pipeline, not the world: retraining on them poisons a model.
DATA_DEFECTS: frozenset[str] = frozenset({"null_spike", "unit_change", "schema_change"})

#: Fault kinds whose effect can set in gradually (``ramp_minutes``): they move the rows' latent
#: truth, so a partial shift is meaningful; a pipeline defect or saturation is on or off.
GRADUAL_FAULTS: frozenset[str] = frozenset({"covariate_drift", "concept_drift", "seasonal_shift"})

#: Parameters each fault kind accepts, with their defaults (``None``: derived from the model).
FAULT_PARAMS: dict[str, dict[str, Any]] = {
    "covariate_drift": {"magnitude": 2.5, "features": None, "ramp_minutes": 0.0},
    "concept_drift": {"magnitude": 1.0, "ramp_minutes": 0.0},
    "null_spike": {"feature": 0, "null_share": 0.9, "announced": False},
    "unit_change": {"feature": 0, "factor": 1000.0, "announced": False},
    "schema_change": {"feature": 0, "mode": "rename", "new_name": None, "announced": False},
    "saturation": {"level": 0.97, "latency_factor": 4.0, "error_rate": 0.06},
    "seasonal_shift": {"magnitude": 2.0, "features": None, "ramp_minutes": 0.0},
}

_START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Strict):
    """One model served in production."""

    name: str = Field(description="Model name, as in the registry and metric labels.")
    environment: str = Field(default="production", description="Deployment environment.")
    owner: str = Field(description="Team or person paged about the model.")
    data_owner: str = Field(description="Team owning the upstream data pipeline.")
    n_features: int = Field(default=5, ge=3, le=20, description="Number of input features.")
    feature_names: list[str] | None = Field(
        default=None, description="Names of the features; default f0, f1, ..."
    )
    traffic_rps: float = Field(default=50.0, gt=0, description="Requests per second, all versions.")
    base_latency_ms: float = Field(default=40.0, gt=0, description="Median latency when healthy.")
    base_error_rate: float = Field(
        default=0.005, ge=0, le=1, description="Error rate when healthy."
    )
    label_delay_minutes: float = Field(
        default=10.0, ge=0, description="How long after a prediction its true label arrives."
    )
    logged_rows_per_minute: int = Field(
        default=30, ge=5, le=500, description="Prediction log sample: rows kept per minute."
    )
    initial_versions: int = Field(
        default=2, ge=1, le=5, description="Versions registered at start."
    )

    @model_validator(mode="after")
    def _names(self) -> ModelSpec:
        names = self.feature_names
        if names is not None and (len(names) != self.n_features or len(set(names)) != len(names)):
            raise ValueError(
                f"feature_names {names!r} must be {self.n_features} distinct names (n_features)"
            )
        return self

    @property
    def features(self) -> list[str]:
        """The feature column names."""
        return self.feature_names or [f"f{i}" for i in range(self.n_features)]


class FaultSpec(_Strict):
    """A fault injected into one model's world from ``at_minutes`` on."""

    kind: FaultKind = Field(description="What goes wrong; maps onto the root-cause taxonomy.")
    model: str = Field(description="The model it hits.")
    at_minutes: float = Field(ge=0, description="Onset, minutes after the world's start.")
    until_minutes: float | None = Field(
        default=None, description="When it ends (minutes after start); None: never."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Kind-specific parameters; see FAULT_PARAMS."
    )
    every_minutes: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Periodic fault: it recurs every this many minutes, before and after at_minutes "
            "(its first occurrence in the run), e.g. 10080 for every week."
        ),
    )
    duration_minutes: float | None = Field(
        default=None,
        gt=0,
        description="Periodic fault: how long each occurrence lasts, e.g. 2880 for a weekend.",
    )

    @model_validator(mode="after")
    def _check(self) -> FaultSpec:
        unknown = set(self.params) - set(FAULT_PARAMS[self.kind])
        if unknown:
            raise ValueError(
                f"unknown params {sorted(unknown)!r} for fault {self.kind!r}; "
                f"allowed: {sorted(FAULT_PARAMS[self.kind])!r}"
            )
        if self.until_minutes is not None and self.until_minutes <= self.at_minutes:
            raise ValueError(
                f"until_minutes {self.until_minutes!r} must be after at_minutes {self.at_minutes!r}"
            )
        if (self.every_minutes is None) != (self.duration_minutes is None):
            raise ValueError(
                "a periodic fault needs both every_minutes and duration_minutes; "
                "set both, or neither for a one-off fault"
            )
        if (
            self.every_minutes is not None
            and self.duration_minutes is not None
            and self.duration_minutes >= self.every_minutes
        ):
            raise ValueError(
                f"duration_minutes {self.duration_minutes!r} must be shorter than every_minutes "
                f"{self.every_minutes!r}; a fault that never stops is not periodic"
            )
        ramp = float(self.params.get("ramp_minutes", 0.0))
        if ramp < 0:
            raise ValueError(f"ramp_minutes {ramp!r} must be >= 0")
        return self

    @property
    def periodic(self) -> bool:
        """Whether the fault recurs (every_minutes and duration_minutes)."""
        return self.every_minutes is not None

    def level(self, minutes: np.ndarray) -> np.ndarray:
        """How strongly the fault acts at ``minutes`` (minutes since start): 0 off, 1 full.

        Off before ``at_minutes`` (a periodic fault: outside its occurrences) and from
        ``until_minutes`` on; a ``ramp_minutes`` onset rises linearly from each occurrence's
        start.
        """
        minutes = np.asarray(minutes, dtype=float)
        ramp = float(self.params.get("ramp_minutes", 0.0))
        level = np.ones(len(minutes)) if ramp <= 0 else np.clip(self._since(minutes) / ramp, 0, 1)
        out: np.ndarray = np.where(self.on(minutes), level, 0.0)
        return out

    def on(self, minutes: np.ndarray) -> np.ndarray:
        """Whether the fault is in effect at ``minutes`` (its ramp may still be at 0)."""
        minutes = np.asarray(minutes, dtype=float)
        end = np.inf if self.until_minutes is None else self.until_minutes
        since = self._since(minutes)
        if self.duration_minutes is not None:
            return np.asarray((since < self.duration_minutes) & (minutes < end))
        return np.asarray((since >= 0) & (minutes < end))

    def _since(self, minutes: np.ndarray) -> np.ndarray:
        """Minutes since the onset of the occurrence in effect (a periodic fault's latest)."""
        since = minutes - self.at_minutes
        if self.every_minutes is not None:
            return np.asarray(np.mod(since, self.every_minutes))
        return np.asarray(since)

    def param(self, key: str) -> Any:
        """The parameter's value, or its default."""
        return self.params.get(key, FAULT_PARAMS[self.kind][key])


class DeploySpec(_Strict):
    """A new version of a model, rolled out at a given time as a canary or in full."""

    model: str = Field(description="The model that gets the new version.")
    at_minutes: float = Field(ge=0, description="When the rollout starts, minutes after start.")
    quality: Literal["good", "bad", "skewed"] = Field(
        description=(
            "good: healthy; bad: a worse model that also errs more and is slower; skewed: "
            "validates fine offline, but its serving preprocessing differs from training"
        )
    )
    mode: Literal["canary", "full"] = Field(
        default="canary",
        description=(
            "canary: the version serves canary_weight percent beside stable; full: it replaces "
            "the stable version at once (100%) and becomes champion"
        ),
    )
    canary_weight: int = Field(
        default=20,
        ge=0,
        le=100,
        description="Percent of traffic to the canary (0: deployed but gets no traffic).",
    )
    error_rate_add: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Added to the version's error rate; default from quality (bad: 0.06, else 0).",
    )
    latency_factor: float | None = Field(
        default=None,
        gt=0,
        description="Multiplies the version's latency; default from quality (bad: 2.5, else 1).",
    )
    collapse: Literal[0, 1] | None = Field(
        default=None,
        description=(
            "The version predicts this one class for every row (a constant score), "
            "e.g. a broken output layer; no error or latency change by itself"
        ),
    )

    @property
    def healthy(self) -> bool:
        """A good version with no override that makes it err more, slower or collapse."""
        return (
            self.quality == "good"
            and not self.error_rate_add
            and (self.latency_factor is None or self.latency_factor <= 1.0)
            and self.collapse is None
        )

    @model_validator(mode="after")
    def _mode(self) -> DeploySpec:
        if self.mode == "full" and "canary_weight" in self.model_fields_set:
            raise ValueError(
                "canary_weight applies to mode 'canary' only; a full rollout serves 100%: "
                "remove canary_weight or set mode: canary"
            )
        return self


class AlertSpec(_Strict):
    """An extra alert injected as is, e.g. with hostile annotation text for injection tests."""

    name: str = Field(description="Alert name.")
    model: str | None = Field(default=None, description="Model label, if any.")
    at_minutes: float = Field(default=0.0, ge=0, description="When it starts firing.")
    until_minutes: float | None = Field(default=None, description="When it stops; None: never.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels (untrusted).")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations, passed through verbatim (untrusted)."
    )


PastAction = Literal["retrain", "rollback", "promote_canary", "abort_canary", "set_canary_weight"]

#: How far back history may reach: the registry's initial versions are a week apart, and
#: a rate limit or cooldown longer than a week is not something a run needs to exercise.
MAX_HISTORY_MINUTES = 7 * 24 * 60.0


class PastChange(_Strict):
    """A change made to a model before the world's start (e.g. by an earlier supervisor run).

    It is on the model's change timeline; a past ``retrain`` also registers its version (not
    served). The serving state at minute 0 is the world's initial one either way.
    """

    action: PastAction = Field(description="Which closed action ran.")
    model: str = Field(description="The model it ran on.")
    at_minutes: float = Field(
        lt=0,
        ge=-MAX_HISTORY_MINUTES,
        description="When, in minutes relative to the start (negative: before minute 0).",
    )


class WorldSpec(_Strict):
    """Everything a simulated world is built from; the same spec and seed give the same world."""

    seed: int = Field(description="Seeds every random draw in the world.")
    start: datetime = Field(default=_START, description="Sim time at which the world starts.")
    models: list[ModelSpec] = Field(min_length=1, description="Models served.")
    faults: list[FaultSpec] = Field(default_factory=list, description="Faults injected.")
    deploys: list[DeploySpec] = Field(default_factory=list, description="Scheduled canaries.")
    alerts: list[AlertSpec] = Field(default_factory=list, description="Extra injected alerts.")
    history: list[PastChange] = Field(
        default_factory=list, description="Changes that happened before the start (minute 0)."
    )

    @model_validator(mode="after")
    def _known_models(self) -> WorldSpec:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique: {names!r}")
        items: list[FaultSpec | DeploySpec | PastChange] = [
            *self.faults,
            *self.deploys,
            *self.history,
        ]
        for item in items:
            if item.model not in names:
                raise ValueError(
                    f"{type(item).__name__} names unknown model {item.model!r}; known: {names!r}"
                )
        if self.start.tzinfo is None:
            raise ValueError(f"start {self.start!r} must be timezone-aware (UTC)")
        return self


def demo_world_spec(seed: int = 7) -> WorldSpec:
    """Three models, one incident each at t+30 min: drift, a bad canary, an upstream unit change."""
    return WorldSpec(
        seed=seed,
        models=[
            ModelSpec(
                name="churn",
                owner="team-retention",
                data_owner="team-data-platform",
                feature_names=[
                    "tenure_months",
                    "monthly_spend",
                    "support_calls",
                    "region_code",
                    "device_age",
                ],
                traffic_rps=40.0,
                base_latency_ms=35.0,
            ),
            ModelSpec(
                name="fraud",
                owner="team-risk",
                data_owner="team-payments-data",
                feature_names=[
                    "amount",
                    "merchant_risk",
                    "velocity_1h",
                    "hour_of_day",
                    "account_age",
                ],
                traffic_rps=120.0,
                base_latency_ms=25.0,
                label_delay_minutes=15.0,
            ),
            ModelSpec(
                name="pricing",
                owner="team-pricing",
                data_owner="team-catalog-data",
                feature_names=[
                    "distance_km",
                    "basket_size",
                    "demand_index",
                    "weekday",
                    "store_size",
                ],
                traffic_rps=60.0,
                base_latency_ms=50.0,
            ),
        ],
        faults=[
            FaultSpec(kind="covariate_drift", model="churn", at_minutes=30),
            FaultSpec(kind="unit_change", model="pricing", at_minutes=30, params={"feature": 0}),
        ],
        deploys=[DeploySpec(model="fraud", at_minutes=30, quality="bad", canary_weight=20)],
    )
