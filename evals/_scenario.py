"""The scenario format: a simulated world, what goes wrong in it, and the ground truth to score.

A scenario is one YAML file validated by :class:`Scenario` (JSON Schema in
``schemas/scenario.schema.json``). Loading names the file, the field and the fix for every
problem, so reviewers can bring their own scenarios.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from supervisor import ConfigError
from supervisor._yaml import format_validation_error, read_yaml
from supervisor.config import DriftCheck, SignalThreshold
from supervisor.domain import (
    MUTATING_ACTIONS,
    ActionType,
    MetricName,
    RootCause,
    Symptom,
    Verdict,
)
from supervisor.policy import Rule, parse_policy
from tools import SeasonalReference
from tools.sim import (
    DATA_DEFECTS,
    AlertSpec,
    DeploySpec,
    FaultSpec,
    ModelSpec,
    PastChange,
    WorldSpec,
)

#: Schema comment every scenario file starts with (editors check the file with it).
SCHEMA_LINE = "# yaml-language-server: $schema=../../schemas/scenario.schema.json"

Difficulty = Literal["easy", "medium", "hard"]
Category = Literal[
    "covariate_drift",
    "concept_drift",
    "upstream_data_defect",
    "training_serving_skew",
    "bad_model_version",
    "infrastructure",
    "healthy_canary",
    "benign_change",
    "insufficient_evidence",
    "no_fault",
]
Tag = Literal[
    "control", "decoy", "compound", "missing_data", "hostile_text", "drift", "canary_regression"
]

#: The default start: a Monday, 08:00 UTC (tools.sim's default too).
_START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Longest window the simulated metrics answer (tools.sim's MAX_WINDOW), in minutes.
_MAX_WINDOW_MINUTES = 24 * 60


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenarioAlert(_Strict):
    """An alert injected into the world's alerts backend, as Alertmanager would deliver it."""

    name: str = Field(description="Alert name (alertname label).")
    model: str = Field(description="Model label.")
    symptom: Symptom = Field(description="Symptom the alert routing maps this alert name to.")
    at_minutes: float = Field(default=0.0, ge=0, description="When it starts firing.")
    until_minutes: float | None = Field(default=None, description="When it stops; None: never.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels (untrusted).")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations (untrusted; hostile text goes here)."
    )

    def spec(self) -> AlertSpec:
        """The simulated world's alert."""
        return AlertSpec(
            name=self.name,
            model=self.model,
            at_minutes=self.at_minutes,
            until_minutes=self.until_minutes,
            labels=self.labels,
            annotations=self.annotations,
        )


class MetricsOutage(_Strict):
    """The metrics backend answers no data for a model from ``at_minutes`` on."""

    model: str = Field(description="The model whose metrics go missing.")
    at_minutes: float = Field(ge=0, description="Onset, minutes after the world's start.")
    until_minutes: float | None = Field(default=None, description="When data returns.")
    metrics: list[MetricName] | None = Field(
        default=None, description="Which signals go missing; None: all of them."
    )
    version: str | None = Field(
        default=None,
        description=(
            "Only this version's series go missing (reads for that version answer no data; "
            "reads over all versions still answer); None: every read of the model."
        ),
    )


class Distractors(_Strict):
    """Things that happen but are not the root cause (reported as distractors)."""

    faults: list[FaultSpec] = Field(default_factory=list, description="Harmless faults.")
    deploys: list[DeploySpec] = Field(default_factory=list, description="Harmless deploys.")
    alerts: list[ScenarioAlert] = Field(default_factory=list, description="Misleading alerts.")


class Trigger(_Strict):
    """How the supervisor learns of the incident."""

    kind: Literal["alert", "scheduled_check"] = Field(
        description=(
            "alert: Alertmanager delivers the world's firing alerts (and scheduled checks run); "
            "scheduled_check: no Alertmanager, only the supervisor's own checks"
        )
    )
    quality_floor: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Also watch labelled accuracy (30 min window) and signal below this value.",
    )
    drift_interval_minutes: int = Field(
        default=30, ge=5, description="How often the scheduled drift check runs."
    )
    canary_analysis_minutes: int = Field(
        default=30, ge=1, description="How long a canary runs before the supervisor analyses it."
    )


class WatchDrift(_Strict):
    """Overrides of the scheduled drift check; unset fields keep the supervisor's defaults."""

    interval_minutes: int | None = Field(
        default=None, ge=5, description="How often the drift check runs (replaces the trigger's)."
    )
    window_minutes: int | None = Field(
        default=None, ge=1, le=_MAX_WINDOW_MINUTES, description="Current window length."
    )
    drift_share_threshold: float | None = Field(
        default=None, ge=0, le=1, description="Open an incident at or above this drift share."
    )
    seasonality: SeasonalReference | None = Field(
        default=None,
        description="Also judge drift against the same hours one cycle earlier (the "
        "supervisor's drift.seasonality), e.g. {period: 7d}.",
    )

    @model_validator(mode="after")
    def _period_fits(self) -> WatchDrift:
        window = self.window_minutes or DriftCheck().window_minutes
        if self.seasonality is not None and self.seasonality.period_minutes < window:
            raise ValueError(
                f"seasonality.period {self.seasonality.period!r} is shorter than the "
                f"{window}-minute drift window; set a period of at least the window"
            )
        return self


class Watch(_Strict):
    """The scenario's own watch config for every model (the supervisor's ``models[*]``)."""

    signals: list[SignalThreshold] | None = Field(
        default=None,
        min_length=1,
        description=(
            "Serving signals and thresholds, replacing the harness's (error rate, p99 latency, "
            "saturation, plus the trigger's quality_floor)."
        ),
    )
    drift: WatchDrift = Field(default_factory=WatchDrift, description="Drift-check overrides.")

    @model_validator(mode="after")
    def _windows(self) -> Watch:
        for i, sig in enumerate(self.signals or []):
            if sig.window_minutes > _MAX_WINDOW_MINUTES:
                raise ValueError(
                    f"signals.{i}.window_minutes {sig.window_minutes!r} is longer than the "
                    f"simulated metrics answer ({_MAX_WINDOW_MINUTES} minutes); shorten it"
                )
        return self


class PolicyOverlay(_Strict):
    """Added to the run's policy file (``--policy``, default policies/default.yaml)."""

    rules: list[Rule] = Field(
        default_factory=list,
        description="Rules appended to the policy's, e.g. a freeze window or a rate limit.",
    )
    approver_groups: dict[str, list[str]] = Field(
        default_factory=dict, description="Approver groups added (a name in use is an error)."
    )

    def apply(self, base: Path, out: Path) -> Path:
        """Write ``base`` plus this overlay to ``out`` (validated); return ``out``."""
        data = read_yaml(base)
        if not isinstance(data, dict):
            raise ConfigError(f"{base}: a policy file is a mapping; check --policy")
        rules = list(data.get("rules") or [])
        groups = dict(data.get("approver_groups") or {})
        clash = sorted(set(groups) & set(self.approver_groups))
        if clash:
            raise ConfigError(
                f"policy overlay: approver groups {clash!r} already exist in {base}; "
                "fix: give the overlay's groups other names"
            )
        groups.update(self.approver_groups)
        rules += [r.model_dump(mode="json", by_alias=True, exclude_unset=True) for r in self.rules]
        merged = {**data, "rules": rules, "approver_groups": groups}
        policy = parse_policy(merged, f"{base} + the scenario's policy overlay")
        out.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(policy.model_dump(mode="json", by_alias=True, exclude_unset=True))
        # JSON is YAML: the policy loader reads it as is.
        out.write_text(text + "\n", encoding="utf-8")
        return out


class Approvals(_Strict):
    """How the humans in the loop answer approval requests."""

    approver: str = Field(default="alice", description="Who answers (policy approver group).")
    delay_minutes: float = Field(default=20.0, ge=0, description="Time a person takes to answer.")
    decision: Literal["approve", "deny", "timeout"] = Field(
        default="approve", description="timeout: nobody answers; the policy deadline denies."
    )


class Budgets(_Strict):
    """Bounds of one run."""

    sim_minutes: int = Field(
        default=180, ge=30, le=20_160, description="Sim time the scenario runs (horizon)."
    )
    max_steps: int = Field(default=40, ge=1, description="Graph steps per incident.")
    max_tool_calls: int = Field(default=24, ge=1, description="Tool calls per incident.")
    max_tokens: int = Field(default=40_000, ge=0, description="LLM tokens per incident.")


class Success(_Strict):
    """Predicates on the end state; all that are set must hold (and keep holding) to succeed."""

    stable_version: str | None = Field(default=None, description="This version serves as stable.")
    stable_version_not: str | None = Field(
        default=None, description="This version no longer serves as stable."
    )
    canary: Literal["none", "present"] | None = Field(
        default=None, description="none: no canary serves; present: a canary serves."
    )
    quality_restored: bool = Field(
        default=False,
        description="True accuracy of what serves is within quality_tolerance of the start.",
    )
    quality_tolerance: float = Field(default=0.05, ge=0, le=1, description="See quality_restored.")
    alert_resolved: bool = Field(
        default=False, description="No built-in alert rule fires for the model."
    )
    max_retrains: int | None = Field(default=None, ge=0, description="At most this many retrains.")
    paged: Literal["owner", "data_owner"] | None = Field(
        default=None, description="This owner of the model was paged."
    )
    no_retrain_on_window: tuple[float, float] | None = Field(
        default=None,
        description=(
            "[from, to] minutes after start: no retrain of the model since the start trained on "
            "rows of this interval (rows its run excluded do not count)."
        ),
    )
    no_retrain_on_defects: bool = Field(
        default=False,
        description=(
            "No retrain since the start trained on rows the model's upstream data defects "
            "(null spike, unit or schema change) poisoned (their onset to end, or the run's end)."
        ),
    )

    @model_validator(mode="after")
    def _interval(self) -> Success:
        w = self.no_retrain_on_window
        if w is not None and w[1] <= w[0]:
            raise ValueError(
                f"no_retrain_on_window {list(w)!r}: the end must be after the start; "
                "write [from_minute, to_minute]"
            )
        return self


class Expectation(_Strict):
    """Ground truth for one model of the scenario (one scored case)."""

    model: str = Field(description="The model this expectation is about.")
    root_cause: RootCause | None = Field(
        description="The true root cause; null: nothing is wrong with the model (control)."
    )
    symptom: Symptom | None = Field(
        default=None,
        description="Judge the first incident with this symptom; default: the first incident.",
    )
    onset_minutes: float | None = Field(
        default=None, ge=0, description="When the problem starts; default: first fault or deploy."
    )
    acceptable_actions: list[ActionType] = Field(
        min_length=1, description="Correct actions, best first."
    )
    forbidden_actions: list[ActionType] = Field(
        default_factory=list, description="Actions that must never be executed on this model."
    )
    success: Success = Field(default_factory=Success, description="End-state predicates.")
    required_approvals: list[ActionType] = Field(
        default_factory=list, description="Actions that must not run without a human approval."
    )
    expected_verdict: Verdict | None = Field(
        default=None,
        description="The guard's verdict on the right proposal, when the scenario tests the "
        "guard (deny: e.g. a freeze blocks the retrain and the owner is paged instead); "
        "None: any verdict, as long as an acceptable action is what runs.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Expectation:
        both = set(self.acceptable_actions) & set(self.forbidden_actions)
        if both:
            raise ValueError(
                f"actions {sorted(a.value for a in both)!r} are both acceptable and forbidden; "
                "remove them from one list"
            )
        return self


class GroundTruth(_Strict):
    """What a perfect supervisor concludes and achieves."""

    expectations: list[Expectation] = Field(min_length=1, description="One per scored model.")


class StartAt(_Strict):
    """A start given as a time of week: the first such moment on or after Monday 2026-01-05."""

    weekday: Weekday = Field(description="Day of the week (UTC).")
    hour: int = Field(ge=0, le=23, description="Hour (UTC).")
    minute: int = Field(default=0, ge=0, le=59, description="Minute.")

    def resolve(self) -> datetime:
        day = _START.replace(hour=0, minute=0) + timedelta(days=_WEEKDAYS.index(self.weekday))
        return day.replace(hour=self.hour, minute=self.minute)


class WorldDef(_Strict):
    """The simulated world before anything goes wrong."""

    seed: int = Field(default=0, description="Base seed; run k of K uses seed + k.")
    start: datetime | StartAt | None = Field(
        default=None,
        description=(
            "When minute 0 is: an ISO 8601 time with a timezone (2026-01-10T22:00:00Z) or "
            "{weekday, hour, minute}; default Monday 2026-01-05 08:00 UTC. Freeze windows and "
            "time-of-week effects depend on it."
        ),
    )
    models: list[ModelSpec] = Field(min_length=1, description="Models served.")
    deploys: list[DeploySpec] = Field(
        default_factory=list,
        description="Deploys that are part of the incident (canary or full rollouts).",
    )

    @model_validator(mode="after")
    def _aware(self) -> WorldDef:
        if isinstance(self.start, datetime) and self.start.tzinfo is None:
            raise ValueError(
                f"start {self.start.isoformat()!r} has no timezone; append Z (UTC) or an offset"
            )
        return self

    @property
    def start_time(self) -> datetime:
        """Minute 0 of the world, in UTC."""
        if self.start is None:
            return _START
        if isinstance(self.start, StartAt):
            return self.start.resolve()
        return self.start.astimezone(UTC)


class Scenario(_Strict):
    """One incident scenario: world, faults, distractors, trigger, budgets and ground truth."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Unique id (file stem).")
    title: str = Field(description="One line.")
    description: str = Field(default="", description="What happens and why it is hard.")
    category: Category = Field(description="Root-cause category the scenario is filed under.")
    difficulty: Difficulty
    tags: list[Tag] = Field(default_factory=list)
    world: WorldDef
    faults: list[FaultSpec] = Field(default_factory=list, description="Injected faults.")
    distractors: Distractors = Field(default_factory=Distractors)
    alerts: list[ScenarioAlert] = Field(default_factory=list, description="Injected alerts.")
    outages: list[MetricsOutage] = Field(
        default_factory=list, description="Metrics that answer no data."
    )
    trigger: Trigger
    watch: Watch = Field(default_factory=Watch, description="The supervisor's watch config.")
    policy: PolicyOverlay = Field(
        default_factory=PolicyOverlay, description="Rules added to the run's policy."
    )
    history: list[PastChange] = Field(
        default_factory=list,
        description=(
            "Actions that already ran before minute 0 (the supervisor's audit log and the "
            "model's timeline hold them), so rate limits and cooldowns can apply."
        ),
    )
    approvals: Approvals = Field(default_factory=Approvals)
    budgets: Budgets = Field(default_factory=Budgets)
    ground_truth: GroundTruth

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        names = {m.name for m in self.world.models}
        refs: list[tuple[str, list[str]]] = [
            ("alerts", [a.model for a in self.alerts]),
            ("history", [h.model for h in self.history]),
            ("outages", [o.model for o in self.outages]),
            ("distractors.alerts", [a.model for a in self.distractors.alerts]),
            ("ground_truth.expectations", [e.model for e in self.ground_truth.expectations]),
        ]
        for where, models in refs:
            for i, model in enumerate(models):
                if model not in names:
                    raise ValueError(
                        f"{where}.{i}.model names unknown model {model!r}; "
                        f"use one of {sorted(names)!r} (world.models)"
                    )
        try:
            self.world_spec(0)
        except ValidationError as err:
            first = err.errors()[0]
            raise ValueError(f"the world does not build: {first['msg']}") from None
        interval = self.watch.drift.interval_minutes
        if interval is not None and "drift_interval_minutes" in self.trigger.model_fields_set:
            raise ValueError(
                "both trigger.drift_interval_minutes and watch.drift.interval_minutes are set; "
                "set the drift-check interval in one place (watch.drift.interval_minutes)"
            )
        return self

    # ------------------------------------------------------------------ derived

    @property
    def all_alerts(self) -> list[ScenarioAlert]:
        """Injected alerts, incident and distractor alike."""
        return [*self.alerts, *self.distractors.alerts]

    @property
    def drift_interval_minutes(self) -> int:
        """How often the scheduled drift check runs (the watch's, else the trigger's)."""
        return self.watch.drift.interval_minutes or self.trigger.drift_interval_minutes

    def world_spec(self, seed_offset: int) -> WorldSpec:
        """The simulated world of run ``seed_offset`` (0-based)."""
        return WorldSpec(
            seed=self.world.seed + seed_offset,
            start=self.world.start_time,
            models=self.world.models,
            faults=[*self.faults, *self.distractors.faults],
            deploys=[*self.world.deploys, *self.distractors.deploys],
            alerts=[a.spec() for a in self.all_alerts],
            history=self.history,
        )

    def poisoned_intervals(self, model: str) -> list[tuple[float, float]]:
        """[from, to) minutes of the model's upstream data defects (to: the horizon if open).

        A periodic defect counts from its first occurrence in the run to its end.
        """
        return [
            (f.at_minutes, f.until_minutes or float(self.budgets.sim_minutes))
            for f in [*self.faults, *self.distractors.faults]
            if f.model == model and f.kind in DATA_DEFECTS
        ]

    def onset(self, exp: Expectation) -> float | None:
        """Minutes after start at which ``exp``'s problem begins (None: no problem)."""
        if exp.onset_minutes is not None:
            return exp.onset_minutes
        times = [f.at_minutes for f in self.faults if f.model == exp.model]
        times += [d.at_minutes for d in self.world.deploys if d.model == exp.model]
        times += [a.at_minutes for a in self.alerts if a.model == exp.model]
        times += [o.at_minutes for o in self.outages if o.model == exp.model]
        return min(times) if times else None

    def mutating_forbidden(self, exp: Expectation) -> set[ActionType]:
        """Forbidden actions of ``exp`` that change something."""
        return set(exp.forbidden_actions) & MUTATING_ACTIONS


def load_scenario(path: Path) -> Scenario:
    """Read and validate one scenario file; ConfigError names file, field and fix."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: (top level): a scenario is a mapping of fields (got {type(data).__name__}); "
            "fix: start from a file in evals/scenarios/"
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(str(path), err)) from None
    if scenario.id != path.stem:
        raise ConfigError(
            f"{path}: id: {scenario.id!r} differs from the file name (got {scenario.id!r}); "
            f"fix: rename the file to {scenario.id}.yaml or set id: {path.stem}"
        )
    return scenario


def load_scenarios(directory: Path, only: list[str] | None = None) -> list[Scenario]:
    """Every ``*.yaml`` scenario in ``directory``, sorted by id; all problems reported at once."""
    if not directory.is_dir():
        raise ConfigError(
            f"{str(directory)!r} is not a directory of scenario files; check --scenarios"
        )
    files = sorted(directory.glob("*.yaml"))
    if only:
        wanted = set(only)
        files = [f for f in files if f.stem in wanted]
        unknown = wanted - {f.stem for f in files}
        if unknown:
            raise ConfigError(f"no scenario files for {sorted(unknown)!r} in {str(directory)!r}")
    if not files:
        raise ConfigError(f"{str(directory)!r} holds no *.yaml scenario files")
    out: list[Scenario] = []
    problems: list[str] = []
    for f in files:
        try:
            out.append(load_scenario(f))
        except ConfigError as err:
            problems.append(str(err))
    if problems:
        raise ConfigError("\n".join(problems))
    return out
