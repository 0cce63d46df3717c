"""What happened to a scenario's models outside the supervisor's view of the run: actions
before minute 0 (seeded into the run's audit log) and which rows each retrain fitted."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from supervisor import SimClock
from supervisor.audit import AuditLog
from supervisor.domain import ActionOutcome, ActionType, AuditKind, PolicyDecision, Verdict
from tools.sim import SimWorld

from ._scenario import Scenario


def seed_history(sc: Scenario, world: SimWorld, state_dir: Path) -> None:
    """Write the scenario's past actions into the run's audit log before the supervisor opens
    it, as the supervisor's own records (a guard decision, then a succeeded outcome), dated
    before minute 0: the guard's rate limits count them as it counts its own actions."""
    if not sc.history:
        return
    envs = {m.name: m.environment for m in sc.world.models}
    with AuditLog(state_dir / "audit.jsonl", SimClock(world.start)) as log:
        for i, past in sorted(enumerate(sc.history), key=lambda p: p[1].at_minutes):
            at = world.start + timedelta(minutes=past.at_minutes)
            incident = f"history-{i}"
            key = f"{incident}/{past.action}/{past.model}"
            action = ActionType(past.action)
            common = {
                "idempotency_key": key,
                "action": action.value,
                "model": past.model,
                "environment": envs[past.model],
            }
            decision = PolicyDecision(
                verdict=Verdict.ALLOW,
                action=action,
                rule_ids=["scenario-history"],
                reasons=["scenario-history: an action taken before the evaluated run"],
                decided_at=at,
            )
            log.append(
                AuditKind.DECISION,
                incident_id=incident,
                actor="guard",
                data={"idempotency_key": key, "decision": decision, "evidence": []},
                ts=at,
            )
            outcome = ActionOutcome(
                idempotency_key=key,
                action=action,
                status="succeeded",
                detail="before the run",
                at=at,
            )
            log.append(
                AuditKind.ACTION_OUTCOME,
                incident_id=incident,
                actor="executor",
                data={**common, "outcome": outcome},
                ts=at,
            )


def retrained_on(world: SimWorld, model: str, intervals: list[tuple[float, float]]) -> bool:
    """Whether a retrain since the start fitted on rows of any interval (minutes after start).

    A retrain fits its window's rows whose labels had arrived, minus the windows its run
    excluded; registry versions and runs say which.
    """
    delay = next(m.label_delay_minutes for m in world.spec.models if m.name == model)
    retrained = {e.version for e in world.timeline(model, world.start) if e.kind == "retrained"}
    for v in world.versions(model):
        if v.version not in retrained or v.training_window is None:
            continue
        start = _minutes(world, v.training_window.start)
        end = min(_minutes(world, v.training_window.end), _minutes(world, v.created_at) - delay)
        key = v.tags.get("idempotency_key")
        run = world.find_run(model, key) if key else None
        excluded = [
            (_minutes(world, w.start), _minutes(world, w.end))
            for w in (run.excluded_windows if run else [])
        ]
        for lo, hi in intervals:
            a, b = max(lo, start), min(hi, end)
            if a < b and not _covered(a, b, excluded):
                return True
    return False


def _covered(a: float, b: float, windows: list[tuple[float, float]]) -> bool:
    """Whether ``[a, b)`` lies inside the union of ``windows``."""
    for lo, hi in sorted(windows):
        if lo > a:
            return False
        a = max(a, hi)
        if a >= b:
            return True
    return a >= b


def _minutes(world: SimWorld, when: datetime) -> float:
    return (when - world.start) / timedelta(minutes=1)
