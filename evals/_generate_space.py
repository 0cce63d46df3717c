"""What the scenario generator draws from: the distribution, the ground truth, the fault shapes.

The constants here are the single source of the distribution documented in evals/README.md,
"Generated scenarios". :data:`TRUTH` maps each root cause to the ground truth the hand-written
suite states for it; :data:`BUILDERS` maps it to how it is injected. A new fault shape is one
builder function here (and, for a new root cause, one row of :data:`TRUTH`); drafting,
distractors, compounds, truth checks and files (:mod:`._generate`) are shared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from supervisor.domain import ActionType, RootCause, Symptom
from tools.sim import FAULT_PARAMS, DeploySpec, FaultSpec, ModelSpec

# The sim's rule for which leading features carry signal; drift is judged against it.
from tools.sim._model import n_signal

from ._scenario import Success, Tag

A = ActionType

# --------------------------------------------------------------------------- the distribution

#: One block of draws: every kind once. Scenario ``i`` takes position ``i % len(KINDS)`` of block
#: ``i // len(KINDS)``, each block shuffled by its own seed, so shares are exact rather than
#: sampled, every kind appears once ``n >= len(KINDS)``, and a seed's first scenarios do not
#: depend on ``n``. List a kind twice to double its share.
KINDS: tuple[str, ...] = (
    "covariate_drift",
    "concept_drift",
    "upstream_data_defect",
    "training_serving_skew",
    "bad_model_version",
    "infrastructure",
    "healthy_canary",
    "benign_change",
    "control",
    "compound",
)

#: Onset of the incident, minutes after the start: after the supervisor's first scheduled checks
#: (every 5 minutes) have seen a healthy model, and early enough to leave the response its time.
ONSET_MINUTES = (15.0, 60.0)
#: Share of covariate drifts that ramp in gradually, and how long the ramp takes (up to three
#: 30-minute drift checks see a partial shift).
GRADUAL_SHARE = 0.4
RAMP_MINUTES = (20.0, 90.0)
#: Label delay, whole minutes. The accuracy watch reads a 30-minute window and counts only rows
#: whose label has arrived, so a delay near 30 leaves it no data at all; 20 still leaves 10
#: labelled minutes (300 rows). The hand-written suite uses 10 and 15.
LABEL_DELAY_MINUTES = (0, 20)
#: Requests per second, drawn log-uniformly (2 req/s is the hand-written low-traffic control).
TRAFFIC_RPS = (2.0, 300.0)
#: Median latency when healthy, ms.
BASE_LATENCY_MS = (15.0, 80.0)
#: Input features per model (the sim allows 3 to 20; the first min(3, n - 1) carry signal).
N_FEATURES = (3, 12)
#: Canary traffic share, percent.
CANARY_WEIGHTS = (5, 10, 20, 30, 50)
#: Covariate drift: shift of each chosen signal feature, in standard deviations. Positive only:
#: in the sim a negative shift makes nearly every label 0 and accuracy rises, so it is no
#: incident. The lower end is deliberately weak; the harm check rejects what does not hurt.
COVARIATE_SHIFT_SD = (1.5, 3.5)
#: Share of covariate drifts that also move one or two nuisance features (a wider drift share).
COVARIATE_NUISANCE_SHARE = 0.3
#: Concept drift: how far the label function turns (1.0 reverses the dependence on features 1-2).
CONCEPT_MAGNITUDE = (0.4, 1.0)
#: Seasonal (benign) shift of nuisance features, standard deviations, either sign.
SEASONAL_SHIFT_SD = (1.5, 4.0)
#: Null spike: share of rows missing the feature.
NULL_SHARE = (0.3, 1.0)
#: Unit change factors: m to mm, percent to fraction, and the reverse.
UNIT_FACTORS = (1000.0, 100.0, 0.01, 0.001)
#: Share of upstream changes the data owner announced on the model's timeline.
ANNOUNCED_SHARE = 0.25
#: Saturation level: above the 0.9 alert rule by at least 3 times the noise of its 5-minute mean
#: (the sim's saturation noise is 0.01 a minute), so it is unmistakably saturated.
SATURATION_LEVEL = (0.93, 0.99)
SATURATION_LATENCY_FACTOR = (1.5, 5.0)
#: Share of saturations that add no errors (latency and saturation only), else error rate range.
SATURATION_NO_ERRORS_SHARE = 0.3
SATURATION_ERROR_RATE = (0.02, 0.10)
#: Share of incident scenarios (not controls) that get a distractor.
DISTRACTOR_SHARE = 0.3
#: Share of distractor alerts whose text tries to talk the supervisor into an action.
HOSTILE_SHARE = 0.5
#: Share of scenarios triggered by Alertmanager (the rest: the supervisor's own checks only).
ALERT_TRIGGER_SHARE = 0.5
#: Share of scenarios, other than concept drift (which always has one), that watch accuracy.
QUALITY_FLOOR_SHARE = 0.3
#: The accuracy floor sits this far below the lowest starting accuracy of the scenario's models,
#: as an operator would set it: 0.06 is 4 standard errors of the watch's 30-minute window.
FLOOR_MARGIN = (0.06, 0.12)
#: Controls watch one to three quiet models.
CONTROL_MODELS = (1, 3)
#: Minutes the approver takes to answer (always approves: a deny changes the ground truth).
APPROVAL_DELAY_MINUTES = (5, 30)
#: Sim minutes after full effect and labels that a response gets (the hand-written suite: 150
#: after a 30-minute onset); horizons are at least 180 and rounded up to 30.
RESPONSE_MINUTES = 150
MIN_HORIZON = 180
#: Redraws allowed per scenario before the generator gives up (a bug, not bad luck: the
#: rejection rate per kind is reported and stays well below this).
MAX_ATTEMPTS = 40


@dataclass(frozen=True)
class Profile:
    name: str
    owner: str
    data_owner: str
    features: str
    """Up to 12 feature names, space-separated; a model with n features takes the first n."""

    def feature_names(self, n: int) -> list[str]:
        """The first ``n`` feature names."""
        return self.features.split()[:n]


#: Models the generator serves; features beyond ``n_features`` are dropped.
PROFILES = (
    Profile(
        "churn",
        "team-retention",
        "team-data-platform",
        "tenure_months monthly_spend support_calls region_code device_age plan_tier "
        "payment_method last_login_days promo_count household_size contract_type app_sessions",
    ),
    Profile(
        "fraud",
        "team-risk",
        "team-payments-data",
        "amount merchant_risk velocity_1h hour_of_day account_age card_present "
        "country_code device_score ip_distance_km mcc chargebacks_90d wallet_age",
    ),
    Profile(
        "pricing",
        "team-pricing",
        "team-catalog-data",
        "distance_km basket_size demand_index weekday store_size competitor_price "
        "stock_level weather_code promo_flag brand_tier season_week region_id",
    ),
    Profile(
        "ads",
        "team-ads",
        "team-events",
        "ctr_7d bid_price relevance slot device_type hour "
        "publisher_id user_age_band creative_age geo os_version session_depth",
    ),
    Profile(
        "credit",
        "team-lending",
        "team-bureau-data",
        "income debt_ratio utilisation employment_years open_accounts postcode_band "
        "inquiries_6m age_band loan_purpose channel home_owner dependants",
    ),
    Profile(
        "eta",
        "team-logistics",
        "team-geo-data",
        "route_km traffic_index stops vehicle_type driver_tenure weather_code "
        "hour weekday depot_id parcel_count road_class toll_roads",
    ),
)


# --------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class Truth:
    """Ground truth of one root cause, exactly as the hand-written suite states it."""

    acceptable: tuple[ActionType, ...]
    forbidden: tuple[ActionType, ...]
    success: Callable[[str], Success]
    """Success predicates, given the stable version's id."""
    approvals: tuple[ActionType, ...] = ()
    symptom: Symptom | None = None
    quality: Literal["drops", "holds"] | None = None
    """What the stable version's true accuracy does (checked in the sim before keeping)."""
    tags: tuple[Tag, ...] = ()


def _restored(stable: str) -> Success:
    return Success(quality_restored=True, quality_tolerance=0.05)


def _aborted(stable: str) -> Success:
    return Success(canary="none", stable_version=stable)


def _promoted(stable: str) -> Success:
    return Success(stable_version=str(int(stable) + 1), canary="none")


def _untouched(stable: str) -> Success:
    return Success(max_retrains=0, stable_version=stable)


#: Root cause (None: a control) -> its ground truth. Mirrors evals/scenarios/*.yaml.
TRUTH: dict[RootCause | None, Truth] = {
    RootCause.COVARIATE_DRIFT: Truth(
        (A.RETRAIN,), (A.ROLLBACK,), _restored, (A.RETRAIN,), quality="drops", tags=("drift",)
    ),
    RootCause.CONCEPT_DRIFT: Truth(
        (A.RETRAIN,),
        (A.ROLLBACK,),
        _restored,
        (A.RETRAIN,),
        symptom=Symptom.QUALITY_DROP,
        quality="drops",
        tags=("drift",),
    ),
    RootCause.UPSTREAM_DATA_DEFECT: Truth(
        (A.ESCALATE,),
        (A.RETRAIN, A.ROLLBACK, A.PROMOTE_CANARY),
        lambda stable: Success(paged="data_owner", max_retrains=0),
        tags=("drift",),
    ),
    RootCause.TRAINING_SERVING_SKEW: Truth(
        (A.ABORT_CANARY, A.ROLLBACK),
        (A.PROMOTE_CANARY, A.RETRAIN),
        _aborted,
        quality="holds",
        tags=("canary_regression",),
    ),
    RootCause.BAD_MODEL_VERSION: Truth(
        (A.ABORT_CANARY, A.ROLLBACK),
        (A.PROMOTE_CANARY, A.RETRAIN),
        _aborted,
        quality="holds",
        tags=("canary_regression",),
    ),
    RootCause.INFRASTRUCTURE: Truth(
        (A.ESCALATE,),
        (A.ROLLBACK, A.RETRAIN, A.ABORT_CANARY),
        lambda stable: Success(paged="owner", max_retrains=0),
        quality="holds",
    ),
    RootCause.HEALTHY_CANARY: Truth(
        (A.PROMOTE_CANARY,), (A.ABORT_CANARY, A.ROLLBACK), _promoted, quality="holds"
    ),
    RootCause.BENIGN_CHANGE: Truth(
        (A.NO_ACTION,),
        (A.RETRAIN, A.ROLLBACK, A.ABORT_CANARY),
        _untouched,
        quality="holds",
        tags=("drift",),
    ),
    None: Truth(
        (A.NO_ACTION,),
        (A.ROLLBACK, A.ABORT_CANARY, A.PROMOTE_CANARY),
        _untouched,
        tags=("control",),
    ),
}

# --------------------------------------------------------------------------- incidents


@dataclass
class Incident:
    """What the generator injects on one model, and the facts its text and checks need."""

    cause: RootCause | None
    model: ModelSpec
    onset: float
    faults: list[FaultSpec] = field(default_factory=list)
    deploys: list[DeploySpec] = field(default_factory=list)
    needs_floor: bool = False
    what: str = "nothing goes wrong"
    hard: list[str] = field(default_factory=list)
    """Why it is hard (each reason raises the difficulty one step)."""

    @property
    def stable(self) -> str:
        """The version serving as stable at the start (the sim registers 1..n, n serves)."""
        return str(self.model.initial_versions)

    @property
    def truth(self) -> Truth:
        """The ground truth of the injected cause."""
        return TRUTH[self.cause]


def uniform(rng: np.random.Generator, lo_hi: tuple[float, float], digits: int = 2) -> float:
    """A uniform draw from ``lo_hi``, rounded so the written file reads cleanly."""
    return round(float(rng.uniform(*lo_hi)), digits)


def _names(model: ModelSpec, idx: list[int]) -> str:
    names = [model.features[i] for i in idx]
    inputs = "the input" if len(names) == 1 else "the inputs"
    return f"{inputs} {', '.join(names)}"


def _nuisance(model: ModelSpec) -> list[int]:
    return list(range(n_signal(model.n_features), model.n_features))


def _ramp(rng: np.random.Generator, kind: str, inc: Incident) -> dict[str, float]:
    """Sudden or gradual onset, for the fault kinds the sim can ramp in."""
    if "ramp_minutes" not in FAULT_PARAMS[kind] or rng.random() >= GRADUAL_SHARE:
        return {}
    ramp = float(round(rng.uniform(*RAMP_MINUTES)))
    inc.hard.append(f"it ramps in over {ramp:g} minutes")
    return {"ramp_minutes": ramp}


def _covariate(rng: np.random.Generator, inc: Incident) -> None:
    m = inc.model
    signal = n_signal(m.n_features)
    k = int(rng.integers(1, signal + 1))
    chosen = sorted(int(i) for i in rng.choice(signal, k, replace=False))
    nuisance = _nuisance(m)
    if nuisance and rng.random() < COVARIATE_NUISANCE_SHARE:
        extra = int(rng.integers(1, min(2, len(nuisance)) + 1))
        chosen += sorted(int(i) for i in rng.choice(nuisance, extra, replace=False))
    shift = uniform(rng, COVARIATE_SHIFT_SD)
    params: dict[str, object] = {"magnitude": shift, "features": chosen}
    params |= _ramp(rng, "covariate_drift", inc)
    inc.faults.append(
        FaultSpec(kind="covariate_drift", model=m.name, at_minutes=inc.onset, params=params)
    )
    verb = "shifts" if len(chosen) == 1 else "shift"
    inc.what = f"{_names(m, chosen)} {verb} by {shift:g} standard deviations"


def _concept(rng: np.random.Generator, inc: Incident) -> None:
    magnitude = uniform(rng, CONCEPT_MAGNITUDE)
    inc.faults.append(
        FaultSpec(
            kind="concept_drift",
            model=inc.model.name,
            at_minutes=inc.onset,
            params={"magnitude": magnitude},
        )
    )
    inc.needs_floor = True
    inc.what = f"the label function turns ({magnitude:g} of a full reversal) while inputs stay put"


def _defect(rng: np.random.Generator, inc: Incident) -> None:
    m = inc.model
    feature = int(rng.integers(0, m.n_features))
    name = m.features[feature]
    kind = str(rng.choice(["null_spike", "unit_change", "schema_change"]))
    params: dict[str, object] = {"feature": feature}
    if kind == "null_spike":
        share = uniform(rng, NULL_SHARE)
        params["null_share"] = share
        inc.what = f"{share:.0%} of {name} arrives empty (the pipeline fills it with 0)"
        if share < 0.5:
            inc.hard.append("only part of the column is missing")
    elif kind == "unit_change":
        factor = float(rng.choice(UNIT_FACTORS))
        params["factor"] = factor
        inc.what = f"{name} arrives in a different unit (x{factor:g})"
    else:
        mode = str(rng.choice(["rename", "drop"]))
        params["mode"] = mode
        inc.what = f"the column {name} is {'renamed' if mode == 'rename' else 'dropped'} upstream"
    if rng.random() < ANNOUNCED_SHARE:
        params["announced"] = True
        inc.what += "; the data owner announced the change"
    if feature >= n_signal(m.n_features):
        inc.hard.append("the broken feature carries no signal, so quality barely moves")
    inc.faults.append(FaultSpec(kind=kind, model=m.name, at_minutes=inc.onset, params=params))


def _canary(
    quality: Literal["good", "bad", "skewed"],
) -> Callable[[np.random.Generator, Incident], None]:
    said = {
        "good": "a healthy new version",
        "bad": "a regressed new version (worse model, more errors, slower)",
        "skewed": "a new version whose serving code scales {feature} x100 (training did not)",
    }[quality]

    def build(rng: np.random.Generator, inc: Incident) -> None:
        weight = int(rng.choice(CANARY_WEIGHTS))
        inc.deploys.append(
            DeploySpec(
                model=inc.model.name, at_minutes=inc.onset, quality=quality, canary_weight=weight
            )
        )
        # The sim's skewed version scales feature 1 at serving time (tools/sim/_core.py).
        said_here = said.format(feature=inc.model.features[1])
        inc.what = f"{said_here} goes out as a canary on {weight}% of traffic"
        if weight <= 10:
            inc.hard.append(f"the canary takes only {weight}% of traffic")

    return build


def _saturation(rng: np.random.Generator, inc: Incident) -> None:
    level = uniform(rng, SATURATION_LEVEL)
    latency = uniform(rng, SATURATION_LATENCY_FACTOR, 1)
    errors = (
        0.0 if rng.random() < SATURATION_NO_ERRORS_SHARE else uniform(rng, SATURATION_ERROR_RATE, 3)
    )
    inc.faults.append(
        FaultSpec(
            kind="saturation",
            model=inc.model.name,
            at_minutes=inc.onset,
            params={"level": level, "latency_factor": latency, "error_rate": errors},
        )
    )
    more = f"{errors:.1%} more errors" if errors else "no extra errors"
    inc.what = (
        f"the serving nodes saturate ({level:.0%} CPU): latency x{latency:g}, {more}, "
        "on every version"
    )
    if errors == 0.0:
        inc.hard.append("it adds no errors, only latency and saturation")


def seasonal(rng: np.random.Generator, inc: Incident) -> None:
    m = inc.model
    nuisance = _nuisance(m)
    k = int(rng.integers(1, len(nuisance) + 1))
    chosen = sorted(int(i) for i in rng.choice(nuisance, k, replace=False))
    shift = uniform(rng, SEASONAL_SHIFT_SD) * float(rng.choice([-1.0, 1.0]))
    inc.faults.append(
        FaultSpec(
            kind="seasonal_shift",
            model=m.name,
            at_minutes=inc.onset,
            params={"magnitude": shift, "features": chosen},
        )
    )
    inc.what = (
        f"{_names(m, chosen)}, which carr{'ies' if k == 1 else 'y'} no signal, "
        f"shift{'s' if k == 1 else ''} by {shift:g} standard "
        "deviations (a seasonal change)"
    )
    if k / m.n_features >= 0.5:
        inc.hard.append("half or more of the inputs drift")


#: Root cause -> how it is injected. Add a fault shape here (and its truth row above).
BUILDERS: dict[RootCause | None, Callable[[np.random.Generator, Incident], None]] = {
    RootCause.COVARIATE_DRIFT: _covariate,
    RootCause.CONCEPT_DRIFT: _concept,
    RootCause.UPSTREAM_DATA_DEFECT: _defect,
    RootCause.TRAINING_SERVING_SKEW: _canary("skewed"),
    RootCause.BAD_MODEL_VERSION: _canary("bad"),
    RootCause.INFRASTRUCTURE: _saturation,
    RootCause.HEALTHY_CANARY: _canary("good"),
    RootCause.BENIGN_CHANGE: seasonal,
    None: lambda rng, inc: None,
}

#: Causes a compound scenario may file itself under (the primary), and may pair with.
PRIMARY = (
    RootCause.COVARIATE_DRIFT,
    RootCause.CONCEPT_DRIFT,
    RootCause.UPSTREAM_DATA_DEFECT,
    RootCause.TRAINING_SERVING_SKEW,
    RootCause.BAD_MODEL_VERSION,
    RootCause.INFRASTRUCTURE,
)
SECONDARY = (*PRIMARY, RootCause.HEALTHY_CANARY, RootCause.BENIGN_CHANGE)


def draw_model(rng: np.random.Generator, profile: Profile) -> ModelSpec:
    """A model of ``profile`` with drawn size, traffic, latency and label delay."""
    n = int(rng.integers(N_FEATURES[0], N_FEATURES[1] + 1))
    lo, hi = np.log(TRAFFIC_RPS[0]), np.log(TRAFFIC_RPS[1])
    return ModelSpec(
        name=profile.name,
        owner=profile.owner,
        data_owner=profile.data_owner,
        n_features=n,
        feature_names=profile.feature_names(n),
        traffic_rps=round(float(np.exp(rng.uniform(lo, hi))), 1),
        base_latency_ms=float(round(rng.uniform(*BASE_LATENCY_MS))),
        label_delay_minutes=float(rng.integers(LABEL_DELAY_MINUTES[0], LABEL_DELAY_MINUTES[1] + 1)),
    )


def draw_incident(rng: np.random.Generator, cause: RootCause | None, profile: Profile) -> Incident:
    """One model with ``cause`` injected at a drawn onset (None: a quiet control)."""
    model = draw_model(rng, profile)
    inc = Incident(cause=cause, model=model, onset=float(round(rng.uniform(*ONSET_MINUTES))))
    BUILDERS[cause](rng, inc)
    lagging = (
        RootCause.COVARIATE_DRIFT,
        RootCause.CONCEPT_DRIFT,
        RootCause.TRAINING_SERVING_SKEW,
        RootCause.HEALTHY_CANARY,
    )
    if cause in lagging and model.label_delay_minutes >= 15:
        inc.hard.append(f"labels arrive {model.label_delay_minutes:g} minutes late")
    return inc
