"""Baselines: simple controllers that act on the same world through the same ports.

Each reads through the read ports and writes through the write ports the executor uses; none
diagnoses, pages or asks for approval. Their decision logic is a pure function so tests can
check it without a world.

* ``noop``: never acts (the cost of doing nothing).
* ``flagger``: Flagger's canary analysis with its documented typical settings.
* ``naive-drift``: retrain and deploy whenever the drift share reaches 0.5.
* ``scheduled``: retrain and deploy every 7 sim days after the serving version's training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from supervisor import ActionError, BackendError, Clock
from supervisor.domain import MetricName, TimeWindow
from tools import ReadBackends, WriteBackends

BASELINES = ("noop", "flagger", "naive-drift", "scheduled")


@dataclass
class BaselineEnv:
    """What a baseline controller may use: the same ports the supervisor gets."""

    read: ReadBackends
    write: WriteBackends
    clock: Clock
    models: list[str]
    errors: list[str] = field(default_factory=list)
    """Write failures (the world refused a precondition), kept for the run's record."""


class Baseline(Protocol):
    name: str
    interval: timedelta

    def step(self, env: BaselineEnv) -> None:
        """Look at the world once and act."""
        ...


# --------------------------------------------------------------------------- noop


class Noop:
    """Never acts."""

    name = "noop"
    interval = timedelta(minutes=5)

    def step(self, env: BaselineEnv) -> None:
        return None


# --------------------------------------------------------------------------- flagger


@dataclass(frozen=True)
class FlaggerSettings:
    """Flagger's typical canary analysis (docs: "Canary analysis", request-success-rate and
    request-duration builtin metrics): every 60 s, rollback after 5 failed checks, 10% steps up
    to 50%, success rate >= 99%, p99 <= 500 ms; a metric with no data fails the check."""

    interval: timedelta = timedelta(seconds=60)
    threshold: int = 5
    step_weight: int = 10
    max_weight: int = 50
    min_success_rate: float = 0.99
    max_latency_p99_ms: float = 500.0


@dataclass
class CanaryRun:
    """Flagger's analysis state of one canary."""

    version: str
    weight: int = 0
    failed_checks: int = 0


FlaggerMove = Literal["step", "hold", "promote", "rollback"]


def flagger_decide(
    run: CanaryRun,
    success_rate: float | None,
    latency_p99_ms: float | None,
    settings: FlaggerSettings = FlaggerSettings(),
) -> tuple[FlaggerMove, CanaryRun]:
    """One analysis: the move and the updated state.

    A check passes when both metrics have data and are within their thresholds. Failed checks
    accumulate over the analysis; at ``threshold`` the canary is rolled back. A passing check
    advances the weight by ``step_weight``; once at ``max_weight``, the next pass promotes.
    """
    passed = (
        success_rate is not None
        and latency_p99_ms is not None
        and success_rate >= settings.min_success_rate
        and latency_p99_ms <= settings.max_latency_p99_ms
    )
    if not passed:
        failed = run.failed_checks + 1
        state = CanaryRun(run.version, run.weight, failed)
        return ("rollback" if failed >= settings.threshold else "hold"), state
    if run.weight >= settings.max_weight:
        return "promote", run
    weight = min(run.weight + settings.step_weight, settings.max_weight)
    return "step", CanaryRun(run.version, weight, run.failed_checks)


class Flagger:
    """Progressive delivery of every canary the world starts, as Flagger would run it."""

    name = "flagger"

    def __init__(self, settings: FlaggerSettings = FlaggerSettings()) -> None:
        self.settings = settings
        self.interval = settings.interval
        self.runs: dict[str, CanaryRun] = {}

    def step(self, env: BaselineEnv) -> None:
        window = timedelta(minutes=1)
        for model in env.models:
            status = env.read.deploy.status(model)
            if status is None or status.canary_version is None:
                self.runs.pop(model, None)
                continue
            canary = status.canary_version
            run = self.runs.get(model)
            if run is None or run.version != canary:
                run = CanaryRun(canary)
            err = env.read.metrics.read(model, MetricName.ERROR_RATE, version=canary, window=window)
            p99 = env.read.metrics.read(
                model, MetricName.LATENCY_P99, version=canary, window=window
            )
            move, run = flagger_decide(
                run,
                None if err is None else 1.0 - err.value,
                None if p99 is None else p99.value,
                self.settings,
            )
            self.runs[model] = run
            try:
                if move == "rollback":
                    env.write.deploy.abort_canary(model, expected_version=canary)
                    self.runs.pop(model, None)
                elif move == "promote":
                    env.write.deploy.promote_canary(model, expected_version=canary)
                    _move_champion(env, model, canary)
                    self.runs.pop(model, None)
                elif move == "step":
                    env.write.deploy.set_canary_weight(model, run.weight, expected_version=canary)
            except (ActionError, BackendError) as err_:
                env.errors.append(f"flagger {move} {model}: {err_}")


# --------------------------------------------------------------------------- naive drift


def naive_should_retrain(drift_share: float | None, threshold: float = 0.5) -> bool:
    """Retrain whenever the drift share reaches ``threshold``; no data: do nothing."""
    return drift_share is not None and drift_share >= threshold


class NaiveDrift:
    """Checks drift like the supervisor's schedule; retrains and deploys on any big drift."""

    name = "naive-drift"

    def __init__(
        self,
        interval: timedelta = timedelta(minutes=30),
        window: timedelta = timedelta(minutes=60),
        threshold: float = 0.5,
    ) -> None:
        self.interval = interval
        self.window = window
        self.threshold = threshold

    def step(self, env: BaselineEnv) -> None:
        for model in env.models:
            try:
                report = env.read.drift.report(model, window=self.window)
            except BackendError as err:
                env.errors.append(f"naive-drift read {model}: {err}")
                continue
            share = None if report is None else report.drift_share
            if naive_should_retrain(share, self.threshold):
                _retrain_and_deploy(env, model, self.name, self.window)


# --------------------------------------------------------------------------- scheduled


def scheduled_due(last_trained: datetime | None, now: datetime, period: timedelta) -> bool:
    """Due once ``period`` has passed since the serving version's training ended."""
    return last_trained is None or now - last_trained >= period


class Scheduled:
    """Retrains every ``period`` (7 sim days) after the serving version's training window.

    The first retrain fires at the first period boundary after the serving version was
    trained, which in the simulated worlds (versions trained 7 days apart) is the start of
    the run; the next one lies beyond any horizon shorter than 7 days.
    """

    name = "scheduled"

    def __init__(
        self,
        period: timedelta = timedelta(days=7),
        interval: timedelta = timedelta(minutes=60),
        window: timedelta = timedelta(minutes=60),
    ) -> None:
        self.period = period
        self.interval = interval
        self.window = window

    def step(self, env: BaselineEnv) -> None:
        now = env.clock.now()
        for model in env.models:
            status = env.read.deploy.status(model)
            if status is None:
                continue
            trained = None
            for v in env.read.registry.versions(model):
                if v.version == status.stable_version:
                    trained = v.training_window.end if v.training_window else v.created_at
            if scheduled_due(trained, now, self.period):
                _retrain_and_deploy(env, model, self.name, self.window)


# --------------------------------------------------------------------------- shared


def _retrain_and_deploy(env: BaselineEnv, model: str, who: str, window: timedelta) -> None:
    now = env.clock.now()
    try:
        result = env.write.train.retrain(
            model,
            window=TimeWindow(start=now - window, end=now),
            exclude=[],
            idempotency_key=f"{who}-{model}-{now:%Y%m%d%H%M}",
            min_accuracy=0.0,
        )
        status = env.read.deploy.status(model)
        if status is None:
            return
        env.write.deploy.serve_version(
            model, result.version, expected_version=status.stable_version, canary_weight=0
        )
        _move_champion(env, model, result.version)
    except (ActionError, BackendError) as err:
        env.errors.append(f"{who} retrain {model}: {err}")


def _move_champion(env: BaselineEnv, model: str, version: str) -> None:
    current = None
    for v in env.read.registry.versions(model):
        if "champion" in v.aliases:
            current = v.version
    env.write.registry.set_alias(model, "champion", version, expected=current)


def make_baseline(name: str) -> Baseline:
    """A fresh controller by name (one per run: they keep state)."""
    if name == "noop":
        return Noop()
    if name == "flagger":
        return Flagger()
    if name == "naive-drift":
        return NaiveDrift()
    if name == "scheduled":
        return Scheduled()
    raise ValueError(f"unknown baseline {name!r}; choose from {list(BASELINES)!r}")
