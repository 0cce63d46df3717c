"""Running one system on one scenario and seed, and scoring it against the ground truth.

The supervisor runs exactly as in the demo: the world advances, the supervisor's scheduled
checks run (``sup.tick()``), Alertmanager delivers firing alerts as signals (alert-triggered
scenarios), and the scenario's approver answers approval requests after a delay. Baselines act
on an identical world through the same ports. What happened is read back from the world itself
(its change timeline and pages), so every system is scored by the same ground truth.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from supervisor._defaults import default_playbooks_dir, default_policy_file
from supervisor.domain import MetricName, Signal, SignalKind, Symptom
from tools import MetricReading, ReadBackends, WriteBackends, read_only
from tools.sim import SimWorld, build_world

from ._baselines import BaselineEnv, Flagger, NaiveDrift, Noop, Scheduled
from ._history import seed_history
from ._results import SUPERVISOR_REASONERS, RunResult
from ._scenario import MetricsOutage, Scenario
from ._scoring import (
    RULE_SYMPTOMS,
    Response,
    Trail,
    approved_actions,
    executed_actions,
    first_response,
    incident_trails,
    score_audit,
    score_case,
    world_totals,
)
from ._scoring import Observer as _Observer

#: The evals package itself (scenarios, CI floor): in a checkout and in an installed wheel.
EVALS_DIR = Path(__file__).resolve().parent
TICK = timedelta(minutes=1)
CHECK_EVERY = timedelta(minutes=5)
SAMPLE_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class RunSpec:
    """One unit of work: a system on a scenario with one seed, in its own directory."""

    scenario: Scenario
    system: str
    seed: int
    workdir: Path
    policy_file: Path = field(default_factory=default_policy_file)
    playbooks_dir: Path = field(default_factory=default_playbooks_dir)
    reasoner: str = "rules"
    llm: dict[str, Any] | None = None  # LLMConfig fields given on the command line
    record_dir: Path | None = None  # save LLM exchanges here (per scenario and seed)
    replay_dir: Path | None = None  # replay LLM exchanges from here, offline


# --------------------------------------------------------------------------- wiring


class _OutageMetrics:
    """The metrics port of the world, answering no data while an outage is on."""

    def __init__(self, world: SimWorld, outages: list[MetricsOutage]) -> None:
        self._world = world
        self._outages = outages

    def read(
        self,
        model: str,
        metric: MetricName,
        *,
        version: str | None,
        window: timedelta,
        end: datetime | None = None,
    ) -> MetricReading | None:
        minute = _minutes(self._world, self._world.now)
        for o in self._outages:
            until = math.inf if o.until_minutes is None else o.until_minutes
            on = o.model == model and o.at_minutes <= minute < until
            # A per-version outage drops that version's series only.
            on &= o.version is None or o.version == version
            if on and (o.metrics is None or MetricName(metric) in o.metrics):
                return None
        return self._world.read(model, metric, version=version, window=window, end=end)


def _backends(world: SimWorld, scenario: Scenario) -> tuple[ReadBackends, WriteBackends]:
    metrics = _OutageMetrics(world, scenario.outages) if scenario.outages else world
    read = read_only(metrics=metrics, alerts=world, drift=world, registry=world, deploy=world)
    write = WriteBackends(registry=world, deploy=world, train=world, notifier=world)
    return read, write


def _minutes(world: SimWorld, when: datetime) -> float:
    return (when - world.start) / timedelta(minutes=1)


def supervisor_config(scenario: Scenario, spec: RunSpec, state_dir: Path) -> dict[str, Any]:
    """The watch config the supervisor runs with in this scenario.

    A policy overlay is merged into a copy of the run's policy in ``state_dir``.
    """
    policy_file = spec.policy_file
    if scenario.policy.rules or scenario.policy.approver_groups:
        policy_file = scenario.policy.apply(spec.policy_file, state_dir / "policy.json")
    signals: list[dict[str, Any]] = [
        {"metric": "error_rate", "threshold": 0.05},
        {"metric": "latency_p99", "threshold": 500.0},
        {"metric": "saturation", "threshold": 0.9},
    ]
    watch = scenario.watch
    if watch.signals is not None:
        signals = [sig.model_dump(mode="json") for sig in watch.signals]
    elif scenario.trigger.quality_floor is not None:
        signals.append(
            {
                "metric": "accuracy",
                "op": "<",
                "threshold": scenario.trigger.quality_floor,
                "window_minutes": 30,
            }
        )
    b = scenario.budgets
    return {
        "models": [
            {
                "name": m.name,
                "environment": m.environment,
                "owner": m.owner,
                "data_owner": m.data_owner,
                "signals": signals,
                "drift": {
                    "interval_minutes": scenario.drift_interval_minutes,
                    **watch.drift.model_dump(exclude_none=True, exclude={"interval_minutes"}),
                },
            }
            for m in scenario.world.models
        ],
        "policy_file": str(policy_file),
        "playbooks_dir": str(spec.playbooks_dir),
        "reasoner": spec.reasoner,
        **({"llm": spec.llm} if spec.llm else {}),
        "state_dir": str(state_dir),
        "limits": {
            "max_steps": b.max_steps,
            "max_tool_calls": b.max_tool_calls,
            "max_tokens": b.max_tokens,
        },
        "timing": {
            "verify_settle_seconds": 600,
            "canary_analysis_minutes": scenario.trigger.canary_analysis_minutes,
        },
    }


# --------------------------------------------------------------------------- running


def run(spec: RunSpec) -> RunResult:
    """Run ``spec`` and score it; a crash is recorded on the result, never raised."""
    sc = spec.scenario
    result = RunResult(
        scenario=sc.id,
        category=sc.category,
        difficulty=sc.difficulty,
        tags=list(sc.tags),
        system=spec.system,
        seed=sc.world.seed + spec.seed,
    )
    started = time.perf_counter()
    try:
        if spec.system in SUPERVISOR_REASONERS:
            _run_supervisor(replace(spec, reasoner=SUPERVISOR_REASONERS[spec.system]), result)
        else:
            _run_baseline(spec, result)
    except Exception as err:  # a crashing system is a result to report, not a harness crash
        result.error = f"{type(err).__name__}: {err}"
    result.wall_seconds = round(time.perf_counter() - started, 3)
    return result


def _run_supervisor(spec: RunSpec, result: RunResult) -> None:
    from supervisor.audit import verify
    from supervisor.config import config_from_dict
    from supervisor.runtime import Supervisor
    from supervisor.telemetry import TelemetryConfig, setup_tracing

    sc = spec.scenario
    state_dir = spec.workdir
    if state_dir.exists():
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    config = config_from_dict(supervisor_config(sc, spec, state_dir), source=f"scenario {sc.id!r}")
    world = build_world(sc.world_spec(spec.seed))
    seed_history(sc, world, state_dir)
    read, write = _backends(world, sc)
    tracing = setup_tracing(TelemetryConfig())
    reasoner = None
    if config.reasoner != "rules":
        from supervisor.reasoners import build_reasoner, load_playbooks

        run_key = Path(sc.id) / f"seed{spec.seed}"
        reasoner = build_reasoner(
            config.reasoner,
            load_playbooks(config.playbooks_dir),
            config.llm,
            config.limits,
            record_dir=None if spec.record_dir is None else spec.record_dir / run_key,
            replay_dir=None if spec.replay_dir is None else spec.replay_dir / run_key,
            budget_path=state_dir / "llm_budget.json",
            now=world.clock.now,
            tracer=tracing.tracer,
        )
    sup = Supervisor(
        config,
        read=read,
        write=write,
        clock=world.clock,
        tracing=tracing,
        state_dir=state_dir,
        reasoner=reasoner,
    )
    observer = _Observer(world, sc)
    end = world.now + timedelta(minutes=sc.budgets.sim_minutes)
    next_check = world.now + CHECK_EVERY
    next_sample = world.now + SAMPLE_EVERY
    answer_at: dict[str, datetime] = {}
    alerts: dict[str, Signal] = {}
    symptoms = {a.name: a.symptom for a in sc.all_alerts} | RULE_SYMPTOMS
    try:
        # Verify waits out its settle time. Slept inside sup.tick() or sup.approve(), the wait
        # would move the world's shared clock past minutes this loop never sees: alerts that
        # start meanwhile would be delivered late and scheduled checks skipped. Deferred, the
        # incident stops at its checkpoint and is resumed on the minute it is due, as the
        # service does (ServiceRuntime.resume_due).
        sup.defer_verification()
        observer.page_model = lambda incident_id: _incident_model(sup, incident_id)
        while world.now < end:
            world.advance(TICK)
            for incident_id in sup.due_verifications():
                sup._run(incident_id, None)  # the service's resume; no public one exists
            if sc.trigger.kind == "alert":
                _deliver_alerts(sup, world, alerts, symptoms)
            if world.now >= next_check:
                sup.tick()
                next_check = world.now + CHECK_EVERY
            _answer_approvals(sup, world, sc, answer_at)
            if world.now >= next_sample:
                observer.sample()
                next_sample = world.now + SAMPLE_EVERY
        observer.sample()
        # History seeded before minute 0 (rate limits, cooldowns) is the scenario's, not a step
        # or an action of this run.
        records = [r for r in sup.audit.records() if r.ts >= world.start]
        incidents = sup.incidents.all()
    finally:
        sup.close()
        tracing.shutdown()
    result.audit_verified = verify(state_dir / "audit.jsonl").ok
    score_audit(records, result)
    result.incidents = len(incidents)
    trails = incident_trails(records)
    models = {i.id: i.model for i in incidents}
    observer.page_model = models.get
    result.executed = executed_actions(world, observer)
    world_totals(world, sc, result, observer)
    approved = approved_actions(records, world)
    paged = {p["incident_id"] for p in world.pages}
    for i, exp in enumerate(sc.ground_truth.expectations):
        onset = sc.onset(exp)
        chosen = [
            inc
            for inc in sorted(incidents, key=lambda x: (x.opened_at, x.id))
            if inc.model == exp.model
            and (exp.symptom is None or inc.symptom is exp.symptom)
            and (onset is None or _minutes(world, inc.opened_at) >= onset - 5)
        ]
        response = Response(False, None, "no_action", "no_action", guarded=True)
        if chosen:
            inc = chosen[0]
            trail = trails.get(inc.id)
            if trail is None:
                trail = Trail()
            detect = None
            if onset is not None:
                detect = max(0.0, _minutes(world, inc.opened_at) - onset)
            executed = trail.outcome or ("escalate" if inc.id in paged else "no_action")
            approval = trail.approval
            if trail.verdict == "require_approval" and approval is None:
                approval = "pending"  # the horizon came before the answer
            response = Response(
                True,
                detect,
                trail.proposal or "no_action",
                executed,
                guarded=True,
                verdict=trail.verdict,
                approval=approval,
                diagnosed=trail.diagnosis,
                incident_id=inc.id,
            )
        result.cases.append(score_case(sc, exp, i, observer, result.executed, response, approved))


def _incident_model(sup: Any, incident_id: str) -> str | None:
    incident = sup.incidents.get(incident_id)
    return None if incident is None else str(incident.model)


def _deliver_alerts(
    sup: Any, world: SimWorld, seen: dict[str, Signal], symptoms: dict[str, Symptom]
) -> None:
    """Alertmanager: a signal when an alert starts firing, a resolved one when it stops."""
    now = world.now
    firing = {a.fingerprint: a for a in world.firing() if a.model is not None}
    for fp, a in firing.items():
        if fp in seen or a.name not in symptoms or a.model is None:
            continue
        signal = Signal(
            id=f"am-{fp}-{now:%Y%m%d%H%M}",
            kind=SignalKind.ALERT,
            source="alertmanager",
            model=a.model,
            environment=a.labels.get("environment", "production"),
            symptom=symptoms[a.name],
            version=a.labels.get("version"),
            observed_at=now,
            fingerprint=fp,
            group_key=f'{{}}:{{alertname="{a.name}", model="{a.model}"}}',
            labels=a.labels,
            annotations=a.annotations,
        )
        seen[fp] = signal
        sup.handle(signal)
    for fp in [fp for fp in seen if fp not in firing]:
        gone = seen.pop(fp)
        sup.handle(
            gone.model_copy(
                update={"id": f"{gone.id}-resolved", "status": "resolved", "observed_at": now}
            )
        )


def _answer_approvals(
    sup: Any, world: SimWorld, sc: Scenario, answer_at: dict[str, datetime]
) -> None:
    """The scenario's approver answers each request once its delay has passed."""
    plan = sc.approvals
    for pending in sup.pending_approvals():
        due = answer_at.setdefault(
            pending.incident_id, world.now + timedelta(minutes=plan.delay_minutes)
        )
        if plan.decision == "timeout" or world.now < due:
            continue
        if plan.decision == "approve":
            sup.approve(pending.incident_id, plan.approver, "approved by the eval scenario")
        else:
            sup.deny(pending.incident_id, plan.approver, "denied by the eval scenario")


def _run_baseline(spec: RunSpec, result: RunResult) -> None:
    sc = spec.scenario
    world = build_world(sc.world_spec(spec.seed))
    read, write = _backends(world, sc)
    env = BaselineEnv(read, write, world.clock, [m.name for m in sc.world.models])
    interval = timedelta(minutes=sc.drift_interval_minutes)
    controller: Noop | Flagger | NaiveDrift | Scheduled
    if spec.system == "noop":
        controller = Noop()
    elif spec.system == "flagger":
        controller = Flagger()
    elif spec.system == "naive-drift":
        controller = NaiveDrift(interval=interval)
    elif spec.system == "scheduled":
        controller = Scheduled()
    else:
        raise ValueError(f"unknown system {spec.system!r}")
    observer = _Observer(world, sc)
    end = world.now + timedelta(minutes=sc.budgets.sim_minutes)
    next_step = world.now + controller.interval
    next_sample = world.now + SAMPLE_EVERY
    if isinstance(controller, Scheduled):
        controller.step(env)  # a schedule already due fires at once
    while world.now < end:
        world.advance(TICK)
        if world.now >= next_step:
            controller.step(env)
            next_step = world.now + controller.interval
        if world.now >= next_sample:
            observer.sample()
            next_sample = world.now + SAMPLE_EVERY
    observer.sample()
    result.notes.extend(env.errors)
    result.executed = executed_actions(world, observer)
    world_totals(world, sc, result, observer)
    for i, exp in enumerate(sc.ground_truth.expectations):
        response = first_response(result.executed, exp.model, sc.onset(exp))
        # Baselines never ask for approval, so nothing they run was approved.
        result.cases.append(score_case(sc, exp, i, observer, result.executed, response, set()))
