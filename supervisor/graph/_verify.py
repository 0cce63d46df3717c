"""Verify: after a settle time, re-read the signals and check the action's postconditions."""

from __future__ import annotations

from typing import Any

from supervisor.domain import ActionOutcome, ActionPlan, ActionType, MetricName, ToolResult
from supervisor.reasoners import InvestigationSession
from supervisor.text import plain


def verify_action(
    plan: ActionPlan, outcome: ActionOutcome, session: InvestigationSession, error_threshold: float
) -> dict[str, Any]:
    """Postconditions per action type; ``passed`` is False when the symptom remains."""
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, result: ToolResult | None, detail: str) -> None:
        checks.append(
            {
                "check": name,
                "passed": ok,
                "call_id": None if result is None else result.call_id,
                "detail": detail,
            }
        )

    status = session.call("get_deployment_status")
    dep = status.data if status.ok else {}
    v = plan.target.version
    if plan.action is ActionType.ABORT_CANARY:
        check(
            "canary removed",
            status.ok and dep.get("canary_version") is None,
            status,
            f"canary version is {plain(dep.get('canary_version'))}",
        )
    elif plan.action in (ActionType.ROLLBACK, ActionType.PROMOTE_CANARY):
        check(
            "target serves",
            status.ok and dep.get("stable_version") == v,
            status,
            f"stable version is {plain(dep.get('stable_version'))}, wanted {plain(v)}",
        )
    elif plan.action is ActionType.SET_CANARY_WEIGHT:
        w = plan.parameters.get("weight")
        check(
            "weight set",
            status.ok and dep.get("canary_weight") == w,
            status,
            f"canary weight is {plain(dep.get('canary_weight'))}, wanted {plain(w)}",
        )
    elif plan.action is ActionType.RETRAIN:
        new = (outcome.state.get("retrain") or {}).get("version")
        check(
            "new version canaried",
            status.ok and new is not None and dep.get("canary_version") == new,
            status,
            f"canary version is {plain(dep.get('canary_version'))}, retrained version {plain(new)}",
        )
    if plan.action in (ActionType.ABORT_CANARY, ActionType.ROLLBACK, ActionType.PROMOTE_CANARY):
        err = session.call(
            "get_metric", {"metric": MetricName.ERROR_RATE.value, "window_minutes": 5}
        )
        value = err.data.get("value") if err.ok else None
        check(
            "error rate back under threshold",
            value is not None and value < error_threshold,
            err,
            f"error rate {plain(value)} (threshold {plain(error_threshold)}); "
            "no data counts as failed",
        )
    return {"passed": all(c["passed"] for c in checks), "checks": checks}
