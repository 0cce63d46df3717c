"""The executor: runs an allowed action exactly once.

Every action has an idempotency key (incident, action, target, intended state). The executor
records the intent before calling the backend and the outcome after it. Before acting it looks
the key up in the audit log: an outcome on record means the action already took effect and is
not repeated; an intent without an outcome means a crash in between, so it reads the backend's
real state and reconciles instead of repeating blindly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from supervisor._clock import Clock
from supervisor._errors import ActionError, BackendError, NotLeader, PolicyViolation
from supervisor._recorder import Recorder
from supervisor.domain import (
    MUTATING_ACTIONS,
    ActionOutcome,
    ActionPlan,
    ActionType,
    AuditKind,
    Diagnosis,
    Incident,
    OutcomeStatus,
    TimeWindow,
    Verdict,
)
from tools import ReadBackends, WriteBackends

ACTOR = "executor"


class PauseGate(Protocol):
    """The pause switch as the executor sees it (supervisor.chatops.PauseSwitch)."""

    def is_paused(self, model: str) -> bool: ...

    def record_suppressed(
        self, incident_id: str, model: str, action: str, idempotency_key: str | None = None
    ) -> dict[str, Any]: ...


class Executor:
    """Runs guarded actions through the write backends, idempotently."""

    def __init__(
        self,
        read: ReadBackends,
        write: WriteBackends,
        recorder: Recorder,
        clock: Clock,
        pause: PauseGate | None = None,
        leading: Callable[[], bool] | None = None,
    ) -> None:
        self.read = read
        self.leading = leading
        self.write = write
        self.recorder = recorder
        self.clock = clock
        self.pause = pause

    # ------------------------------------------------------------------ entry point

    def execute(self, incident: Incident, plan: ActionPlan, diagnosis: Diagnosis) -> ActionOutcome:
        """Run ``plan`` for ``incident`` once; a repeat returns the outcome on record."""
        key = plan.idempotency_key(incident.id)
        audit = self.recorder.audit
        self._require_permission(incident.id, key)
        done = audit.find(
            AuditKind.ACTION_OUTCOME, incident_id=incident.id, where={"idempotency_key": key}
        )
        if done:
            prior = ActionOutcome.model_validate(done[-1].data["outcome"])
            return prior.model_copy(
                update={
                    "status": OutcomeStatus.SKIPPED_DUPLICATE,
                    "detail": f"already {prior.status.value}: {prior.detail}",
                }
            )
        decision = audit.find(
            AuditKind.DECISION, incident_id=incident.id, where={"idempotency_key": key}
        )[-1]
        intents = audit.find(
            AuditKind.ACTION_INTENT, incident_id=incident.id, where={"idempotency_key": key}
        )
        base = {
            "idempotency_key": key,
            "action": plan.action.value,
            "target": plan.target.model_dump(),
        }
        if self._paused(incident, plan):
            return self._suppress(incident, plan, key)
        if decision.data["decision"].get("dry_run"):
            return self._finish(
                incident, plan, key, OutcomeStatus.DRY_RUN, "dry run: recorded, not executed", {}
            )
        if intents:
            self.recorder.record(
                AuditKind.ACTION_INTERRUPTED,
                incident_id=incident.id,
                actor=ACTOR,
                data={
                    **base,
                    "detail": "an intent has no outcome: the executor stopped between them",
                },
            )
            applied, state = self._already_applied(incident, plan, key)
            self.recorder.record(
                AuditKind.RECONCILIATION,
                incident_id=incident.id,
                actor=ACTOR,
                data={
                    **base,
                    "applied": applied,
                    "observed_state": state,
                    "detail": "backend already in the intended state"
                    if applied
                    else "not applied: executing now",
                },
            )
            if applied:
                return self._finish(
                    incident,
                    plan,
                    key,
                    OutcomeStatus.RECONCILED,
                    "took effect before the interruption",
                    state,
                )
        if self.leading is not None and not self.leading():
            # Leadership can end while a graph runs (a lost Lease renewal): the check right
            # before the first write keeps a deposed leader from acting. The graph stops at
            # its checkpoint; the new leader resumes it and acts once.
            raise NotLeader(
                f"leadership lost before {plan.action.value} for {incident.id!r}: not acting; "
                "the leader resumes this incident from its checkpoint"
            )
        self.recorder.record(
            AuditKind.ACTION_INTENT,
            incident_id=incident.id,
            actor=ACTOR,
            data={**base, "parameters": plan.parameters, "attempt": len(intents) + 1},
        )
        with self.recorder.span(
            f"action.{plan.action.value}",
            incident_id=incident.id,
            attributes={"action.key": key, "action.target": plan.target.model},
        ):
            try:
                state = self._apply(incident, plan, key, diagnosis)
            except (ActionError, BackendError) as err:
                return self._finish(incident, plan, key, OutcomeStatus.FAILED, str(err), {})
        return self._finish(
            incident, plan, key, OutcomeStatus.SUCCEEDED, plan.expected_effect, state
        )

    # ------------------------------------------------------------------ pause switch

    def _paused(self, incident: Incident, plan: ActionPlan) -> bool:
        """A pause holds back every action that changes something (pages still go out)."""
        return (
            self.pause is not None
            and plan.action in MUTATING_ACTIONS
            and self.pause.is_paused(incident.model)
        )

    def _suppress(self, incident: Incident, plan: ActionPlan, key: str) -> ActionOutcome:
        assert self.pause is not None
        info = self.pause.record_suppressed(incident.id, incident.model, plan.action.value, key)
        detail = f"paused by {info['pause']['paused_by']}: recorded, not executed; resume to act"
        return self._finish(incident, plan, key, OutcomeStatus.SUPPRESSED, detail, {})

    # ------------------------------------------------------------------ guard check

    def _require_permission(self, incident_id: str, key: str) -> None:
        """Invariant 1: no action without an allowing decision (or approval) on record first."""
        audit = self.recorder.audit
        decisions = audit.find(
            AuditKind.DECISION, incident_id=incident_id, where={"idempotency_key": key}
        )
        if not decisions:
            raise PolicyViolation(
                f"no guard decision on record for action {key!r}; run the guard first"
            )
        verdict = Verdict(decisions[-1].data["decision"]["verdict"])
        if verdict is Verdict.ALLOW:
            return
        if verdict is Verdict.REQUIRE_APPROVAL:
            approvals = audit.find(
                AuditKind.APPROVAL, incident_id=incident_id, where={"idempotency_key": key}
            )
            if approvals and approvals[-1].data["approval"]["decision"] == "approved":
                return
            raise PolicyViolation(f"action {key!r} requires an approval and none is on record")
        raise PolicyViolation(
            f"action {key!r} was denied by the guard ({decisions[-1].data['decision']['rule_ids']})"
        )

    # ------------------------------------------------------------------ backend calls

    def _apply(
        self, incident: Incident, plan: ActionPlan, key: str, diagnosis: Diagnosis
    ) -> dict[str, Any]:
        model = plan.target.model
        deploy, registry = self.write.deploy, self.write.registry
        if plan.action is ActionType.NO_ACTION:
            return {}
        if plan.action is ActionType.ESCALATE:
            owner = str(plan.parameters.get("owner", "unknown-owner"))
            page_id = self.write.notifier.page(
                owner,
                incident.id,
                str(plan.parameters.get("message", plan.rationale)),
                at=self.clock.now(),
            )
            return {"paged": owner, "page_id": page_id}
        status = self.read.deploy.status(model)
        if status is None:
            raise ActionError(
                f"the deploy backend finds no deployment of {model!r} "
                f"({plan.target.environment}); check models[].deployment (kind, namespace, "
                "name) in the watch config and that the object exists"
            )
        version = plan.target.version
        # Each step checks the real state first, so a re-run after a crash finishes the job
        # instead of repeating (or failing on) the part already done.
        after = status
        if plan.action is ActionType.ABORT_CANARY:
            if status.canary_version is not None:
                _same_canary(model, status.canary_version, version)
                after = deploy.abort_canary(model, expected_version=status.canary_version)
        elif plan.action is ActionType.SET_CANARY_WEIGHT:
            weight = int(plan.parameters.get("weight") or 0)
            if status.canary_version is None:
                raise ActionError(
                    f"{model!r} has no canary to set a weight on; re-run the canary analysis"
                )
            _same_canary(model, status.canary_version, version)
            if status.canary_weight != weight:
                after = deploy.set_canary_weight(
                    model, weight, expected_version=status.canary_version
                )
        elif plan.action in (ActionType.PROMOTE_CANARY, ActionType.ROLLBACK):
            if version is None:
                raise ActionError(f"{plan.action.value} of {model!r} names no target version")
            # Registry first, so a registry that is down or disagrees stops us before the
            # deployment changes (never a half-done promote or rollback).
            champion = self._champion_precondition(plan, model, version)
            if status.stable_version != version or status.canary_version is not None:
                if plan.action is ActionType.PROMOTE_CANARY:
                    if status.canary_version != version:
                        raise ActionError(
                            f"canary of {model!r} is {status.canary_version!r}, not {version!r}: "
                            "it changed under us; re-run the canary analysis"
                        )
                    after = deploy.promote_canary(model, expected_version=version)
                else:
                    after = deploy.serve_version(
                        model, version, expected_version=status.stable_version
                    )
            if champion != version:
                try:
                    registry.set_alias(model, "champion", version, expected=champion)
                except (ActionError, BackendError) as err:
                    raise ActionError(
                        f"{err}. The deployment already serves {after.stable_version!r} "
                        f"(canary {after.canary_version!r}) while the registry's champion is "
                        f"still {champion!r}: move the alias by hand or re-run the incident"
                    ) from err
        elif plan.action is ActionType.RETRAIN:
            return self._retrain(incident, plan, key, diagnosis)
        else:  # pragma: no cover - the enum is closed
            raise ActionError(f"unknown action {plan.action!r}")
        return after.model_dump(mode="json")

    def _champion_precondition(self, plan: ActionPlan, model: str, version: str) -> str | None:
        """The champion now, checked against what the plan saw and that the target exists."""
        versions = self.read.registry.versions(model)
        if not any(v.version == version for v in versions):
            raise ActionError(
                f"version {version!r} of {model!r} is not in the registry; register it (or fix "
                "the model name in the watch config) before promoting or rolling back to it"
            )
        champion = next((v.version for v in versions if "champion" in v.aliases), None)
        planned = plan.parameters.get("expected_champion", champion)
        if champion not in (planned, version):
            raise ActionError(
                f"the champion of {model!r} moved from {planned!r} to {champion!r} after the plan "
                "was made; someone else acted: re-run the incident to plan again"
            )
        return champion

    def _retrain(
        self, incident: Incident, plan: ActionPlan, key: str, diagnosis: Diagnosis
    ) -> dict[str, Any]:
        model = plan.target.model
        now = self.clock.now()
        hours = float(plan.parameters.get("window_hours") or 2)
        window = TimeWindow(start=now - timedelta(hours=hours), end=now)
        result = self.write.train.find_run(model, key) or self.write.train.retrain(
            model,
            window=window,
            exclude=list(diagnosis.poisoned_windows),
            idempotency_key=key,
            min_accuracy=float(plan.parameters.get("min_accuracy") or 0.0),
        )
        state: dict[str, Any] = {"retrain": result.model_dump(mode="json")}
        if not result.validation_passed:
            raise ActionError(
                f"retrained version {result.version!r} of {model!r} failed validation "
                f"({result.metrics}); it is tagged so and will not be promoted"
            )
        weight = int(plan.parameters.get("canary_weight") or 10)
        status = self.read.deploy.status(model)
        if status is not None and status.canary_version != result.version:
            after = self.write.deploy.serve_version(
                model, result.version, expected_version=status.stable_version, canary_weight=weight
            )
            state["deployment"] = after.model_dump(mode="json")
        return state

    def _already_applied(
        self, incident: Incident, plan: ActionPlan, key: str
    ) -> tuple[bool, dict[str, Any]]:
        """Read the backend's real state: did the interrupted action take effect?"""
        model = plan.target.model
        status = self.read.deploy.status(model)
        state = {} if status is None else status.model_dump(mode="json")
        v = plan.target.version
        if plan.action is ActionType.ABORT_CANARY:
            return (status is not None and status.canary_version is None), state
        if plan.action in (ActionType.PROMOTE_CANARY, ActionType.ROLLBACK):
            served = (
                status is not None and status.stable_version == v and status.canary_version is None
            )
            champion = _alias(self.read, model, "champion")
            return served and champion == v, {**state, "champion": champion}
        if plan.action is ActionType.SET_CANARY_WEIGHT:
            return (
                status is not None and status.canary_weight == plan.parameters.get("weight")
            ), state
        if plan.action is ActionType.RETRAIN:
            run = self.write.train.find_run(model, key)
            if run is None:
                return False, state
            deployed = status is not None and status.canary_version == run.version
            # A run that failed validation did not take effect: _apply reports it as failed.
            return deployed and run.validation_passed, {
                **state,
                "retrain": run.model_dump(mode="json"),
            }
        # escalate pages idempotently and no_action changes nothing: safe to run again.
        return False, state

    def _finish(
        self,
        incident: Incident,
        plan: ActionPlan,
        key: str,
        status: OutcomeStatus,
        detail: str,
        state: dict[str, Any],
    ) -> ActionOutcome:
        outcome = ActionOutcome(
            idempotency_key=key,
            action=plan.action,
            status=status,
            detail=detail,
            state=state,
            at=self.clock.now(),
        )
        self.recorder.record(
            AuditKind.ACTION_OUTCOME,
            incident_id=incident.id,
            actor=ACTOR,
            data={
                "idempotency_key": key,
                "action": plan.action.value,
                "model": plan.target.model,
                "environment": plan.target.environment,
                "outcome": outcome.model_dump(mode="json"),
            },
        )
        return outcome


def _same_canary(model: str, serving: str, planned: str | None) -> None:
    """The canary the plan was made for must still be the one serving: never act on a newer one."""
    if planned is not None and serving != planned:
        raise ActionError(
            f"canary of {model!r} is now {serving!r}, not {planned!r} as planned: "
            "it changed under us; re-run the canary analysis"
        )


def _alias(read: ReadBackends, model: str, alias: str) -> str | None:
    return next((v.version for v in read.registry.versions(model) if alias in v.aliases), None)
