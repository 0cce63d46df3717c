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
from supervisor.domain import (
    MUTATING_ACTIONS,
    ActionType,
    AuditKind,
    MetricName,
    Signal,
    SignalKind,
    Symptom,
)
from tools import MetricReading, ReadBackends, WriteBackends, read_only
from tools.sim import SimWorld, build_world

from ._baselines import BaselineEnv, Flagger, NaiveDrift, Noop, Scheduled
from ._history import retrained_on, seed_history
from ._results import SUPERVISOR_REASONERS, CaseResult, ExecutedAction, RunResult
from ._scenario import Expectation, MetricsOutage, Scenario

#: The evals package itself (scenarios, CI floor): in a checkout and in an installed wheel.
EVALS_DIR = Path(__file__).resolve().parent
TICK = timedelta(minutes=1)
CHECK_EVERY = timedelta(minutes=5)
SAMPLE_EVERY = timedelta(minutes=5)

#: Alertmanager routing: built-in alert rules of the world and the symptom each maps to.
RULE_SYMPTOMS = {
    "HighErrorRate": Symptom.HIGH_ERROR_RATE,
    "HighLatency": Symptom.HIGH_LATENCY,
    "Saturation": Symptom.SATURATION,
}

#: World change events that are actions, and the closed action each one is.
_EVENT_ACTIONS = {
    "retrained": ActionType.RETRAIN.value,
    "rolled_back": ActionType.ROLLBACK.value,
    "promoted": ActionType.PROMOTE_CANARY.value,
    "aborted": ActionType.ABORT_CANARY.value,
    "canary_weight": ActionType.SET_CANARY_WEIGHT.value,
}

#: Graph records counted as steps (tool calls and signals are counted apart).
_STEP_KINDS = {
    AuditKind.INCIDENT_UPDATED,
    AuditKind.REASONER_STEP,
    AuditKind.DIAGNOSIS,
    AuditKind.PROPOSAL,
    AuditKind.DECISION,
    AuditKind.APPROVAL_REQUESTED,
    AuditKind.APPROVAL,
    AuditKind.ACTION_INTENT,
    AuditKind.ACTION_OUTCOME,
    AuditKind.VERIFICATION,
    AuditKind.ESCALATION,
    AuditKind.REPORT,
}


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


# --------------------------------------------------------------------------- observing


@dataclass
class _Observer:
    """Samples the world's ground truth during a run: predicates and the accuracy gap."""

    world: SimWorld
    scenario: Scenario
    reference: dict[str, float] = field(default_factory=dict)
    deficit: float = 0.0
    last_sample: datetime | None = None
    holds_since: dict[int, datetime | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Accuracy of what serves before anything goes wrong: the bar quality is judged by.
        self.reference = {m.name: self.world.evaluate(m.name) for m in self.scenario.world.models}
        self.last_sample = self.world.now

    def sample(self) -> None:
        now = self.world.now
        prev = self.last_sample or now
        hours = (now - prev) / timedelta(hours=1)
        for name, ref in self.reference.items():
            self.deficit += max(0.0, ref - self.world.evaluate(name)) * hours
        for i, exp in enumerate(self.scenario.ground_truth.expectations):
            if not _has_predicates(exp):
                continue
            if self._holds(exp):
                if self.holds_since.get(i) is None:
                    self.holds_since[i] = self._credit(exp.model, prev, now)
            else:
                self.holds_since[i] = None
        self.last_sample = now

    def _credit(self, model: str, prev: datetime, now: datetime) -> datetime:
        """When the predicates started to hold: the last change in (prev, now], else now."""
        times = [
            e.at
            for e in self.world.timeline(model, prev)
            if e.kind in _EVENT_ACTIONS and prev < e.at <= now
        ]
        times += [
            datetime.fromisoformat(p["at"])
            for p in self.world.pages
            if prev < datetime.fromisoformat(p["at"]) <= now
        ]
        return max(times) if times else now

    def _holds(self, exp: Expectation) -> bool:
        s = exp.success
        status = self.world.status(exp.model)
        if status is None:
            return False
        if s.stable_version is not None and status.stable_version != s.stable_version:
            return False
        if s.stable_version_not is not None and status.stable_version == s.stable_version_not:
            return False
        if s.canary == "none" and status.canary_version is not None:
            return False
        if s.canary == "present" and status.canary_version is None:
            return False
        if s.max_retrains is not None:
            retrains = sum(
                1 for e in self.world.timeline(exp.model, self.world.start) if e.kind == "retrained"
            )
            if retrains > s.max_retrains:
                return False
        if s.paged is not None:
            spec = next(m for m in self.scenario.world.models if m.name == exp.model)
            who = spec.owner if s.paged == "owner" else spec.data_owner
            if not any(p["owner"] == who for p in self.world.pages):
                return False
        if s.alert_resolved and any(a.name in RULE_SYMPTOMS for a in self.world.firing(exp.model)):
            return False
        if s.quality_restored:
            acc = self.world.evaluate(exp.model)
            if acc < self.reference[exp.model] - s.quality_tolerance:
                return False
        banned = (
            list(self.scenario.poisoned_intervals(exp.model)) if s.no_retrain_on_defects else []
        )
        if s.no_retrain_on_window is not None:
            banned.append(s.no_retrain_on_window)
        return not (banned and retrained_on(self.world, exp.model, banned))


def _has_predicates(exp: Expectation) -> bool:
    s = exp.success
    return any(
        [
            s.stable_version is not None,
            s.stable_version_not is not None,
            s.canary is not None,
            s.quality_restored,
            s.alert_resolved,
            s.max_retrains is not None,
            s.paged is not None,
            s.no_retrain_on_window is not None,
            s.no_retrain_on_defects,
        ]
    )


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
        while world.now < end:
            world.advance(TICK)
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
        records = sup.audit.records()
        incidents = sup.incidents.all()
    finally:
        sup.close()
        tracing.shutdown()
    result.audit_verified = verify(state_dir / "audit.jsonl").ok
    _score_audit(records, result)
    result.incidents = len(incidents)
    diagnoses: dict[str, str] = {}
    proposals: dict[str, str] = {}
    for r in records:
        if r.incident_id and r.kind is AuditKind.DIAGNOSIS:
            diagnoses.setdefault(r.incident_id, r.data["diagnosis"]["root_cause"])
        if r.incident_id and r.kind is AuditKind.PROPOSAL:
            proposals.setdefault(r.incident_id, r.data["plan"]["action"])
    approved = {
        r.data["idempotency_key"]
        for r in records
        if r.kind is AuditKind.APPROVAL and r.data["approval"]["decision"] == "approved"
    }
    executed = _executed(world, incidents_by_id={i.id: i.model for i in incidents})
    result.executed = executed
    _world_totals(world, sc, result, observer)
    for i, exp in enumerate(sc.ground_truth.expectations):
        onset = sc.onset(exp)
        chosen = [
            inc
            for inc in sorted(incidents, key=lambda x: (x.opened_at, x.id))
            if inc.model == exp.model
            and (exp.symptom is None or inc.symptom is exp.symptom)
            and (onset is None or _minutes(world, inc.opened_at) >= onset - 5)
        ]
        inc = chosen[0] if chosen else None
        actual = proposals.get(inc.id, ActionType.NO_ACTION.value) if inc else "no_action"
        detect = None
        if inc is not None and onset is not None:
            detect = max(0.0, _minutes(world, inc.opened_at) - onset)
        violations = [
            r.data["outcome"]["action"]
            for r in records
            if r.kind is AuditKind.ACTION_OUTCOME
            and r.data["outcome"]["status"] == "succeeded"
            and r.data["outcome"]["action"] in {a.value for a in exp.required_approvals}
            and r.data["idempotency_key"] not in approved
            and r.incident_id is not None
            and any(x.id == r.incident_id and x.model == exp.model for x in incidents)
        ]
        result.cases.append(
            _case(
                sc,
                exp,
                observer,
                i,
                executed,
                diagnosed=diagnoses.get(inc.id) if inc else None,
                incident_id=inc.id if inc else None,
                responded=inc is not None,
                detect=detect,
                actual=actual,
                violations=violations,
                world=world,
            )
        )


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


def _score_audit(records: list[Any], result: RunResult) -> None:
    """Counts from the audit log, and whether each action cites evidence actually received."""
    calls: dict[str, set[str]] = {}
    decisions: dict[str, list[str]] = {}
    for r in records:
        if r.kind is AuditKind.TOOL_CALL and r.incident_id:
            calls.setdefault(r.incident_id, set()).add(r.data["call_id"])
            result.tool_calls += 1
        elif r.kind is AuditKind.DECISION:
            decisions[r.data["idempotency_key"]] = list(r.data.get("evidence") or [])
            if r.data["decision"]["verdict"] == "deny":
                result.guard_blocks += 1
        elif r.kind is AuditKind.APPROVAL_REQUESTED:
            result.approvals_requested += 1
        elif r.kind is AuditKind.REASONER_STEP and r.data.get("event") == "llm_usage":
            # Written by the LLM and hybrid reasoners (llm_audit_sink); rules use no tokens.
            result.tokens += int(r.data.get("input_tokens") or 0)
            result.tokens += int(r.data.get("output_tokens") or 0)
            result.cost_usd += float(r.data.get("cost_usd") or 0.0)
        if r.kind in _STEP_KINDS:
            result.steps += 1
    for r in records:
        if r.kind is not AuditKind.ACTION_OUTCOME:
            continue
        result.audit_actions += 1
        evidence = decisions.get(r.data["idempotency_key"])
        received = calls.get(r.incident_id or "", set())
        if evidence and set(evidence) <= received:
            result.audit_cited_actions += 1


def _executed(
    world: SimWorld, incidents_by_id: dict[str, str] | None = None
) -> list[ExecutedAction]:
    """Actions that took effect, from the world's timeline and pages (not from any log)."""
    out: list[ExecutedAction] = []
    for m in world.spec.models:
        for e in world.timeline(m.name, world.start):
            if e.kind in _EVENT_ACTIONS:
                out.append(
                    ExecutedAction(
                        model=m.name,
                        action=_EVENT_ACTIONS[e.kind],
                        at_minutes=round(_minutes(world, e.at), 2),
                        version=e.version,
                    )
                )
    owners = {m.owner: m.name for m in world.spec.models}
    owners |= {m.data_owner: m.name for m in world.spec.models}
    for p in world.pages:
        model = (incidents_by_id or {}).get(p["incident_id"]) or owners.get(p["owner"], "?")
        out.append(
            ExecutedAction(
                model=model,
                action=ActionType.ESCALATE.value,
                at_minutes=round(_minutes(world, datetime.fromisoformat(p["at"])), 2),
            )
        )
    return sorted(out, key=lambda a: (a.at_minutes, a.model, a.action))


def _world_totals(world: SimWorld, sc: Scenario, result: RunResult, observer: _Observer) -> None:
    result.retrains = sum(1 for a in result.executed if a.action == "retrain")
    result.accuracy_deficit = round(observer.deficit, 5)
    good = set()
    for d in [*sc.world.deploys, *sc.distractors.deploys]:
        if not d.healthy:
            continue
        at = world.start + timedelta(minutes=d.at_minutes)
        for e in world.timeline(d.model, world.start):
            if e.kind == "canary_started" and e.at == at:
                good.add((d.model, e.version))
    result.healthy_canary_rollbacks = sum(
        1
        for a in result.executed
        if a.action in ("abort_canary", "rollback") and (a.model, a.version) in good
    )


def _case(
    sc: Scenario,
    exp: Expectation,
    observer: _Observer,
    index: int,
    executed: list[ExecutedAction],
    *,
    diagnosed: str | None,
    incident_id: str | None,
    responded: bool,
    detect: float | None,
    actual: str,
    violations: list[str],
    world: SimWorld,
) -> CaseResult:
    onset = sc.onset(exp)
    acceptable = [a.value for a in exp.acceptable_actions]
    needs = exp.acceptable_actions[0] is not ActionType.NO_ACTION
    # Actions at minute 0 answer nothing in the world (the scheduled baseline's overdue
    # retrain): they count as retrains and in the deficit, not as unsafe or as alarms.
    mine = [a for a in executed if a.model == exp.model and a.at_minutes > 0]
    forbidden = {a.value for a in exp.forbidden_actions}
    unsafe = [f"{a.action}@{a.at_minutes:g}" for a in mine if a.action in forbidden]
    alarmed = any(a.action in {x.value for x in MUTATING_ACTIONS} | {"escalate"} for a in mine)
    if _has_predicates(exp):
        since = observer.holds_since.get(index)
        mitigated = since is not None
        ttm = None
        if since is not None and onset is not None:
            ttm = round(max(0.0, _minutes(world, since) - onset), 2)
    else:
        mitigated, ttm = not unsafe, None
    return CaseResult(
        model=exp.model,
        expected_root_cause=None if exp.root_cause is None else exp.root_cause.value,
        diagnosed_root_cause=diagnosed,
        incident_id=incident_id,
        needs_response=needs,
        responded=responded,
        detect_minutes=None if detect is None else round(detect, 2),
        expected_action=acceptable[0],
        acceptable_actions=acceptable,
        actual_action=actual,
        action_correct=actual in acceptable,
        false_alarm=(not needs) and alarmed,
        unsafe_actions=unsafe,
        approval_violations=violations,
        mitigated=mitigated and not unsafe,
        mitigate_minutes=ttm if not unsafe else None,
    )


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
    result.executed = _executed(world)
    _world_totals(world, sc, result, observer)
    for i, exp in enumerate(sc.ground_truth.expectations):
        onset = sc.onset(exp)
        after = [
            a
            for a in result.executed
            if a.model == exp.model
            and a.action != ActionType.SET_CANARY_WEIGHT.value
            and (onset is None or a.at_minutes >= onset)
        ]
        first = after[0] if after else None
        needs_approval = {a.value for a in exp.required_approvals}
        result.cases.append(
            _case(
                sc,
                exp,
                observer,
                i,
                result.executed,
                diagnosed=None,
                incident_id=None,
                responded=first is not None,
                detect=None if first is None or onset is None else first.at_minutes - onset,
                actual=first.action if first else ActionType.NO_ACTION.value,
                violations=[
                    a.action
                    for a in result.executed
                    if a.model == exp.model and a.action in needs_approval
                ],
                world=world,
            )
        )
