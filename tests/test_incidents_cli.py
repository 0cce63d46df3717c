"""``incidents --state``: fast (no runtime import), aligned columns, ``--json``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor import SimClock
from supervisor.audit import AuditLog
from supervisor.cli import main
from supervisor.domain import AuditKind

ROOT = Path(__file__).resolve().parent.parent


def _incident(id_: str, model: str, status: str, symptom: str) -> dict[str, object]:
    return {
        "id": id_,
        "model": model,
        "environment": "production",
        "symptom": symptom,
        "status": status,
        "opened_at": "2026-01-05T08:50:00Z",
        "updated_at": "2026-01-05T08:50:00Z",
    }


@pytest.fixture
def state(tmp_path: Path) -> Path:
    rows = [
        _incident("inc-0001-fraud", "fraud", "mitigated", "canary_analysis"),
        _incident("inc-0002-churn", "churn", "awaiting_approval", "data_drift"),
    ]
    (tmp_path / "incidents.json").write_text(json.dumps(rows), encoding="utf-8")
    with AuditLog(tmp_path / "audit.jsonl", SimClock()) as log:
        log.append(
            AuditKind.DECISION,
            incident_id="inc-0002-churn",
            actor="guard",
            data={"decision": {"verdict": "require_approval", "action": "retrain"}},
        )
        log.append(
            AuditKind.APPROVAL_REQUESTED,
            incident_id="inc-0002-churn",
            actor="guard",
            data={"approvers": ["alice", "bob"], "deadline": "2026-01-05T10:50:00+00:00"},
        )
    return tmp_path


def test_incidents_prints_aligned_columns_and_the_pending_approval(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["incidents", "--state", str(state)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "ID              STATUS             MODEL             SYMPTOM          OPENED (UTC)",
        "inc-0001-fraud  mitigated          production/fraud  canary_analysis  2026-01-05 08:50",
        "inc-0002-churn  awaiting_approval  production/churn  data_drift       2026-01-05 08:50",
        "awaiting approval: inc-0002-churn retrain by one of alice, bob "
        "before 2026-01-05 10:50 UTC",
    ]


def test_incidents_json_is_one_array_with_the_pending_approval(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["incidents", "--state", str(state), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["inc-0001-fraud", "inc-0002-churn"]
    assert rows[0]["pending_approval"] is None
    assert rows[1]["pending_approval"] == {
        "action": "retrain",
        "approvers": ["alice", "bob"],
        "deadline": "2026-01-05T10:50:00+00:00",
    }


def test_incidents_of_a_directory_without_a_run_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["incidents", "--state", str(tmp_path)]) == 1
    assert "holds no incidents.json" in capsys.readouterr().err


def test_incidents_state_does_not_import_the_runtime(state: Path) -> None:
    # Listing took 10.5 s when it opened the whole runtime; it must not load it at all.
    code = (
        "import sys\n"
        "from supervisor.cli import main\n"
        f"assert main(['incidents', '--state', {str(state)!r}]) == 0\n"
        "heavy = ('langgraph', 'sklearn', 'evidently', 'pandas', 'supervisor.runtime', "
        "'supervisor.graph', 'opentelemetry')\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in heavy "
        "or m.startswith(heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.splitlines()[-1] == "LOADED []"
