"""The main job end to end: `mlops-supervisor demo` on its embedded default."""

from __future__ import annotations

import contextlib
import io
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from supervisor.audit import verify
from supervisor.cli import main
from supervisor.domain import AuditKind, AuditRecord

SNAPSHOT = Path(__file__).parent / "snapshots" / "demo_steps.txt"
#: Registered-model tags of the MLflow adapter's alias-move log.
MOVE_LOG = "mlops_supervisor.alias_move."


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["demo", "--out", str(out), "--quiet"]) == 0
    (out / "printed.txt").write_text(printed.getvalue(), encoding="utf-8")
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
    assert "upstream data defect" in text and "unit change" in text and "covariate drift" in text
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
        key = str(r.data.get("idempotency_key"))
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


# --------------------------------------------------------------------------- MLflow


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_mlflow_shows_what_the_supervisor_did(demo: Path) -> None:
    """Read the demo's store as a user would (MlflowClient on the sqlite file, no server)."""
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{demo / 'mlflow' / 'mlflow.db'}"
    assert f"mlflow ui --backend-store-uri {uri}" in (demo.parent / "printed.txt").read_text()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def versions(model: str) -> dict[str, dict[str, str]]:
        found = client.search_model_versions(f"name='{model}'")
        return {str(mv.version): dict(mv.tags) for mv in found}

    def aliases(model: str) -> dict[str, str]:
        return {k: str(v) for k, v in client.get_registered_model(model).aliases.items()}

    def moves(model: str) -> list[tuple[str, str | None, str, str]]:
        tags = client.get_registered_model(model).tags
        logged = [json.loads(v) for k, v in tags.items() if k.startswith(MOVE_LOG)]
        return [
            (m["alias"], m["from"], m["to"], f"{datetime.fromisoformat(m['at']):%m-%d %H:%M}")
            for m in sorted(logged, key=lambda m: m["at"])
        ]

    # (a) churn: the retrained version 3 was validated for real, canaried and promoted.
    churn = versions("churn")
    assert sorted(churn, key=int) == ["1", "2", "3"]
    assert {v["validation_status"] for v in churn.values()} == {"passed"}
    assert aliases("churn")["champion"] == "3"
    v3 = churn["3"]
    (retrain,) = [r for r in _records(demo) if r.kind is AuditKind.ACTION_INTENT
                  and r.data["action"] == "retrain"]  # fmt: skip
    assert v3["trigger"] == "retrain"
    assert v3["idempotency_key"] == retrain.data["idempotency_key"]
    # sim time: after the re-check that waited for the labels of the drifted rows
    assert v3["mlops_supervisor.created_at"] == "2026-01-05T09:35:00+00:00"
    assert "accuracy" in v3["mlops_supervisor.validation_detail"]
    assert set(v3) >= {"mlops_supervisor.deploy.canary_started", "mlops_supervisor.deploy.promoted"}
    run_id = client.get_model_version("churn", "3").run_id
    assert run_id is not None
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    # mlflow.models.evaluate ran on the holdout; the accuracy the version was validated on
    assert run.data.metrics["accuracy_score"] == run.data.metrics["accuracy"] >= 0.71
    assert run.data.params["training_window_start"] == "2026-01-05T09:05:00+00:00"
    assert moves("churn") == [
        ("champion", None, "2", "12-29 09:00"),
        ("challenger", None, "3", "01-05 09:35"),
        ("champion", "2", "3", "01-05 10:05"),
    ]
    # The champion is a real scikit-learn model; it scores the rows it was trained on.
    model = mlflow.sklearn.load_model(client.get_model_version_download_uri("churn", "3"))
    import pandas as pd

    (data,) = (demo / "data").glob("churn-*.parquet")
    rows = pd.read_parquet(data)
    features = [c for c in rows.columns if c not in ("label", "t", "holdout")]
    hold = rows[rows.holdout]
    accuracy = (model.predict(hold[features].fillna(0.0)) == hold["label"]).mean()
    assert accuracy == pytest.approx(run.data.metrics["accuracy"])

    # (b) fraud: the aborted canary is registered with its tags; the champion never moved.
    fraud = versions("fraud")
    assert sorted(fraud, key=int) == ["1", "2", "3"]
    assert "mlops_supervisor.deploy.canary_aborted" in fraud["3"]
    assert aliases("fraud") == {"champion": "2", "challenger": "3"}
    assert [m for m in moves("fraud") if m[0] == "champion"] == [
        ("champion", None, "2", "12-29 09:00")
    ]

    # (c) pricing: no retrain, nothing moved.
    assert sorted(versions("pricing"), key=int) == ["1", "2"]
    assert moves("pricing") == [("champion", None, "2", "12-29 09:00")]
