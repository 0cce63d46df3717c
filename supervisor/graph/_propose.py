"""Turning a reasoner's recommendation into a concrete action plan with target and undo."""

from __future__ import annotations

from collections.abc import Sequence

from supervisor.config import WatchedModel
from supervisor.domain import (
    ActionPlan,
    ActionTarget,
    ActionType,
    Incident,
    JsonScalar,
    RootCause,
    ToolResult,
)
from supervisor.reasoners import Finding
from tools import ReadBackends

_UNDO: dict[ActionType, tuple[str, ActionType | None]] = {
    ActionType.RETRAIN: (
        "abort the new version's canary; the stable version keeps serving",
        ActionType.ABORT_CANARY,
    ),
    ActionType.ROLLBACK: ("roll forward: serve the replaced version again", ActionType.ROLLBACK),
    ActionType.PROMOTE_CANARY: ("roll back to the previous champion", ActionType.ROLLBACK),
    ActionType.ABORT_CANARY: (
        "redeploy the version as a canary once it is fixed",
        ActionType.SET_CANARY_WEIGHT,
    ),
    ActionType.SET_CANARY_WEIGHT: (
        "set the canary weight back to its previous value",
        ActionType.SET_CANARY_WEIGHT,
    ),
    ActionType.ESCALATE: ("nothing to undo: a person was paged", None),
    ActionType.NO_ACTION: ("nothing to undo", None),
}


def plan_action(
    incident: Incident,
    finding: Finding,
    watched: WatchedModel,
    read: ReadBackends,
    results: Sequence[ToolResult] = (),
) -> ActionPlan:
    """Fill in the target version, parameters, expected effect and undo of the recommendation."""
    action = finding.action
    params: dict[str, JsonScalar] = dict(finding.parameters)
    version: str | None = None
    status = read.deploy.status(incident.model)
    effect = ""
    if action is ActionType.ABORT_CANARY:
        if status is not None and status.canary_version is not None:
            version = status.canary_version
            effect = (
                f"all traffic back on stable version {status.stable_version}; "
                f"canary {version} removed"
            )
        else:  # the bad version is fully deployed: roll it back instead
            action = ActionType.ROLLBACK
    if action is ActionType.ROLLBACK:
        version = _previous_validated(
            read, incident.model, None if status is None else status.stable_version
        )
        effect = f"version {version} serves all traffic again"
    elif action is ActionType.PROMOTE_CANARY:
        version = None if status is None else status.canary_version
        effect = f"canary version {version} becomes stable and champion"
    elif action is ActionType.SET_CANARY_WEIGHT:
        version = None if status is None else status.canary_version
        effect = f"canary {version} takes {params.get('weight')}% of traffic"
    elif action is ActionType.RETRAIN:
        params["window_hours"] = _labelled_window_hours(params.get("window_hours"), results)
        params.setdefault("min_accuracy", _retrain_bar(watched, results))
        params.setdefault("canary_weight", 10)
        effect = (
            f"a new version trained on the last {params.get('window_hours')} h, "
            "validated at accuracy >= "
            f"{params['min_accuracy']}, serving {params['canary_weight']}% of traffic as a canary"
        )
    elif action is ActionType.ESCALATE:
        who = params.pop("page", "owner")
        owner = watched.data_owner if who == "data_owner" and watched.data_owner else watched.owner
        params["owner"] = owner
        params["message"] = (
            f"{incident.model} ({incident.environment}): {finding.diagnosis.root_cause.value}: "
            f"{finding.diagnosis.summary}"
        )
        effect = f"{owner} is paged with the diagnosis"
        if finding.diagnosis.root_cause is RootCause.UPSTREAM_DATA_DEFECT:
            effect += "; no retrain on the poisoned window"
    elif action is ActionType.NO_ACTION:
        effect = "nothing changes; the finding is recorded"
    if action in (ActionType.PROMOTE_CANARY, ActionType.ROLLBACK):
        # The champion the plan was made against: the executor refuses if it moved since.
        params["expected_champion"] = next(
            (v.version for v in read.registry.versions(incident.model) if "champion" in v.aliases),
            None,
        )
    undo, undo_action = _UNDO[action]
    return ActionPlan(
        action=action,
        target=ActionTarget(
            model=incident.model, environment=incident.environment, version=version
        ),
        parameters=params,
        expected_effect=effect,
        undo=undo,
        undo_action=undo_action,
        rationale=finding.rationale,
    )


def _retrain_bar(watched: WatchedModel, results: Sequence[ToolResult]) -> float:
    """A retrained version must beat what serves now on live data, and the configured floor."""
    online = [r.data["online_accuracy"] for r in results if r.ok and r.tool == "get_model_quality"]
    bar = watched.min_accuracy if not online else max(watched.min_accuracy, online[-1] + 0.02)
    return round(min(bar, 0.99), 4)


def _previous_validated(read: ReadBackends, model: str, current: str | None) -> str | None:
    """The newest version older than ``current`` whose validation passed."""
    versions = read.registry.versions(model)
    older = []
    for v in versions:
        if v.version == current:
            break
        if v.tags.get("validation_status", "passed") == "passed":
            older.append(v.version)
    return older[-1] if older else None


#: Fewest hours of labelled rows a retrain window holds beyond the label lag: a quarter hour
#: (~450 rows at the simulated logging rate, well above the 100 rows a retrain needs); more
#: would reach back before a fresh drift began.
MIN_LABELLED_HOURS = 0.25


def _labelled_window_hours(asked: JsonScalar | None, results: Sequence[ToolResult]) -> float:
    """A retrain window that holds labelled rows: at least the label lag plus a labelled span.

    The window ends now and labels stop ``label_lag_minutes`` before now, so a window shorter
    than the lag has no labelled row at all (0.5 h with labels 45 min late has none).
    """
    hours = float(asked) if isinstance(asked, int | float) else MIN_LABELLED_HOURS
    lags = [
        float(r.data["label_lag_minutes"])
        for r in results
        if r.ok and r.tool == "get_model_quality" and "label_lag_minutes" in r.data
    ]
    if lags:
        hours = max(hours, max(lags) / 60.0 + MIN_LABELLED_HOURS)
    return round(hours, 2)
