"""What a simulated world is made of: models, faults, deploys and injected alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

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

#: Parameters each fault kind accepts, with their defaults (``None``: derived from the model).
FAULT_PARAMS: dict[str, dict[str, Any]] = {
    "covariate_drift": {"magnitude": 2.5, "features": None, "ramp_minutes": 0.0},
    "concept_drift": {"magnitude": 1.0},
    "null_spike": {"feature": 0, "null_share": 0.9, "announced": False},
    "unit_change": {"feature": 0, "factor": 1000.0, "announced": False},
    "schema_change": {"feature": 0, "mode": "rename", "new_name": None, "announced": False},
    "saturation": {"level": 0.97, "latency_factor": 4.0, "error_rate": 0.06},
    "seasonal_shift": {"magnitude": 2.0, "features": None},
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
        return self

    def param(self, key: str) -> Any:
        """The parameter's value, or its default."""
        return self.params.get(key, FAULT_PARAMS[self.kind][key])


class DeploySpec(_Strict):
    """A new version of a model, rolled out as a canary at a given time."""

    model: str = Field(description="The model that gets the new version.")
    at_minutes: float = Field(ge=0, description="When the canary starts, minutes after start.")
    quality: Literal["good", "bad", "skewed"] = Field(
        description=(
            "good: healthy; bad: a worse model that also errs more and is slower; skewed: "
            "validates fine offline, but its serving preprocessing differs from training"
        )
    )
    canary_weight: int = Field(default=20, ge=1, le=100, description="Percent of traffic to it.")


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


class WorldSpec(_Strict):
    """Everything a simulated world is built from; the same spec and seed give the same world."""

    seed: int = Field(description="Seeds every random draw in the world.")
    start: datetime = Field(default=_START, description="Sim time at which the world starts.")
    models: list[ModelSpec] = Field(min_length=1, description="Models served.")
    faults: list[FaultSpec] = Field(default_factory=list, description="Faults injected.")
    deploys: list[DeploySpec] = Field(default_factory=list, description="Scheduled canaries.")
    alerts: list[AlertSpec] = Field(default_factory=list, description="Extra injected alerts.")

    @model_validator(mode="after")
    def _known_models(self) -> WorldSpec:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique: {names!r}")
        items: list[FaultSpec | DeploySpec] = [*self.faults, *self.deploys]
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
