"""The checkpointed state of one incident's graph thread (JSON-able dicts only)."""

from __future__ import annotations

from typing import Any, TypedDict


class IncidentState(TypedDict, total=False):
    """What the graph carries between nodes; pydantic models are stored as their JSON dumps."""

    incident: dict[str, Any]
    signal: dict[str, Any]
    status: str
    finding: dict[str, Any]
    tool_results: list[dict[str, Any]]
    plan: dict[str, Any]
    decision: dict[str, Any]
    approval: dict[str, Any]
    outcome: dict[str, Any]
    verify_due: str
    verification: dict[str, Any]
    escalation: dict[str, Any]
    report_path: str
    #: When a decision waiting for late labels is re-checked (ISO); "" when none waits.
    recheck_due: str
    #: How many label re-checks this incident has had.
    rechecks: int
