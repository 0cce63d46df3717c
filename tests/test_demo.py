"""The main job end to end: `mlops-supervisor demo` on its embedded default."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from supervisor.audit import verify
from supervisor.cli import main
from supervisor.domain import AuditKind, AuditRecord

SNAPSHOT = Path(__file__).parent / "snapshots" / "demo_steps.txt"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    return out / "state"


def _records(state: Path) -> list[AuditRecord]:
    lines = (state / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [AuditRecord.model_validate_json(line) for line in lines]


def _by_incident(state: Path, kind: AuditKind) -> dict[str, Any]:
    return {r.incident_id: r.data for r in _records(state) if r.kind is kind and r.incident_id}


def test_the_three_stories_end_as_designed(demo: Path) -> None:
    diagnoses = {
        k: v["diagnosis"]["root_cause"] for k, v in _by_incident(demo, AuditKind.DIAGNOSIS).items()
    }
    outcomes = {k: v["outcome"] for k, v in _by_incident(demo, AuditKind.ACTION_OUTCOME).items()}
    incidents = {i["id"]: i for i in json.loads((demo / "incidents.json").read_text())}
    by_model: dict[str, list[str]] = {}
    for inc_id, inc in incidents.items():
        by_model.setdefault(inc["model"], []).append(inc_id)

    # (a) churn: covariate drift -> retrain approved by the demo approver -> canary -> promoted.
    drift, canary = sorted(by_model["churn"])
    assert diagnoses[drift] == "covariate_drift"
    approval = _by_incident(demo, AuditKind.APPROVAL)[drift]["approval"]
    assert approval["decision"] == "approved" and approval["by"] == "alice"
    assert outcomes[drift]["action"] == "retrain" and outcomes[drift]["status"] == "succeeded"
    assert diagnoses[canary] == "healthy_canary"
    assert (
        outcomes[canary]["action"] == "promote_canary" and outcomes[canary]["status"] == "succeeded"
    )
    assert incidents[canary]["status"] == "mitigated"

    # (b) fraud: the regressing canary is aborted and the abort verified.
    (fraud,) = by_model["fraud"]
    assert diagnoses[fraud] == "bad_model_version"
    assert outcomes[fraud]["action"] in ("abort_canary", "rollback")
    assert _by_incident(demo, AuditKind.VERIFICATION)[fraud]["passed"] is True

    # (c) pricing: upstream defect -> no retrain, data owner paged.
    (pricing,) = by_model["pricing"]
    assert incidents[pricing]["status"] == "escalated"
    assert diagnoses[pricing] == "upstream_data_defect"
    assert outcomes[pricing]["action"] == "escalate"
    retrains = [
        r
        for r in _records(demo)
        if r.kind is AuditKind.ACTION_INTENT and r.data["action"] == "retrain"
    ]
    assert all(r.incident_id != pricing for r in retrains)
    assert outcomes[pricing]["state"]["paged"] == "catalog-data"


def test_outputs_are_written_and_the_log_verifies(demo: Path) -> None:
    assert verify(demo / "audit.jsonl").ok
    reports = sorted((demo / "reports").glob("*.md"))
    assert len(reports) == 4
    text = next((demo / "reports").glob("*-pricing.md")).read_text()
    assert "upstream_data_defect" in text and "unit change" in text and "covariate_drift" in text
    spans = [json.loads(line) for line in (demo / "traces.jsonl").read_text().splitlines()]
    names = {s["name"] for s in spans}
    assert {
        "node.triage",
        "node.guard",
        "node.act",
        "node.verify",
        "tool.get_drift_report",
    } <= names
    # Every audit record of an incident carries that incident's trace id.
    traces = {
        s["attributes"].get("incident.id"): s["trace_id"]
        for s in spans
        if s["name"] == "node.guard"
    }
    for r in _records(demo):
        if r.incident_id in traces and r.kind is AuditKind.DECISION:
            assert r.trace_id == traces[r.incident_id]


def test_every_action_follows_a_recorded_decision(demo: Path) -> None:
    """Invariant 1, read off the log: intent only after an allowing decision (or approval)."""
    decided: dict[str, str] = {}
    approved: set[str] = set()
    for r in _records(demo):
        key = r.data.get("idempotency_key")
        if r.kind is AuditKind.DECISION:
            decided[key] = r.data["decision"]["verdict"]
        elif (
            r.kind is AuditKind.APPROVAL
            and r.data.get("approval", {}).get("decision") == "approved"
        ):
            approved.add(key)
        elif r.kind is AuditKind.ACTION_INTENT:
            assert decided.get(key) == "allow" or key in approved, r


def _steps(state: Path) -> str:
    lines = []
    for r in _records(state):
        if r.kind is AuditKind.TOOL_CALL:
            lines.append(
                f"{r.incident_id} tool {r.data['tool']} {r.data['args']} -> {r.data['status']}"
            )
        elif r.kind is AuditKind.DIAGNOSIS:
            d = r.data["diagnosis"]
            lines.append(
                f"{r.incident_id} diagnosis {d['root_cause']} {d['confidence']} {d['playbook']}"
            )
        elif r.kind is AuditKind.DECISION:
            d = r.data["decision"]
            lines.append(f"{r.incident_id} guard {d['verdict']} {d['rule_ids']}")
        elif r.kind in (AuditKind.ACTION_OUTCOME, AuditKind.ESCALATION, AuditKind.REPORT):
            lines.append(
                f"{r.incident_id} {r.kind.value} "
                + json.dumps(
                    {k: v for k, v in r.data.items() if k in ("action", "owner", "status")},
                    sort_keys=True,
                )
            )
    return "\n".join(lines) + "\n"


def test_tool_call_sequence_matches_the_snapshot(demo: Path) -> None:
    """Review a diff of this snapshot like code: it is what the supervisor did, step by step."""
    got = _steps(demo)
    if os.environ.get("UPDATE_SNAPSHOTS") or not SNAPSHOT.exists():
        SNAPSHOT.write_text(got, encoding="utf-8")
    assert got == SNAPSHOT.read_text(encoding="utf-8")
