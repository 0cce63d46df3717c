"""The ``audit verify`` and ``audit show`` commands."""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor import SimClock
from supervisor.audit import AuditLog
from supervisor.cli._audit_cmd import add_audit_parser, show_command, verify_command
from supervisor.domain import AuditKind


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """Four records in the shapes the writers use: the fields under ``data.<noun>``."""
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, SimClock()) as log:
        log.append(
            AuditKind.SIGNAL,
            incident_id="inc-1",
            actor="alertmanager",
            data={
                "disposition": "opened",
                "signal": {
                    "source": "alertmanager",
                    "kind": "alert",
                    "status": "firing",
                    "model": "churn",
                    "environment": "production",
                    "symptom": "high_error_rate",
                },
            },
        )
        log.append(
            AuditKind.DECISION,
            incident_id="inc-1",
            actor="guard",
            data={
                "idempotency_key": "k1",
                "decision": {
                    "verdict": "require_approval",
                    "action": "rollback",
                    "rule_ids": ["r1", "r2"],
                    "approvers": ["alice"],
                    "dry_run": False,
                },
            },
        )
        log.append(
            AuditKind.DIAGNOSIS,
            incident_id="inc-2",
            actor="rules",
            data={
                "diagnosis": {
                    "root_cause": "covariate_drift",
                    "confidence": 0.85,
                    "reasoner": "rules",
                    "playbook": "covariate-drift",
                    "evidence": [{"finding": "x"}],
                    "ruled_out": [],
                }
            },
        )
        log.append(
            AuditKind.APPROVAL,
            incident_id="inc-1",
            actor="slack",
            data={
                "idempotency_key": "k1",
                "approval": {"decision": "approved", "by": "alice", "comment": "token=abc ok"},
            },
        )
    return path


def test_verify_ok(log_path: Path) -> None:
    out = io.StringIO()
    assert verify_command(log_path, out) == 0
    assert out.getvalue() == "OK: 4 records, chain intact\n"


def test_verify_names_the_first_bad_record(log_path: Path) -> None:
    lines = log_path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"rollback"', b'"retrain"')
    log_path.write_bytes(b"".join(lines))
    out, err = io.StringIO(), io.StringIO()
    assert verify_command(log_path, out, err) == 1
    assert out.getvalue() == ""
    (said,) = err.getvalue().splitlines()  # once, on stderr
    assert said.startswith(f"FAILED: {log_path}: record 1 does not match its hash")
    assert said.count("record 1") == 1 and "(1 records verified before it)" in said


def test_verify_missing_file(tmp_path: Path) -> None:
    err = io.StringIO()
    assert verify_command(tmp_path / "none.jsonl", io.StringIO(), err) == 1
    assert "no audit log" in err.getvalue()


def test_show_renders_a_timeline(log_path: Path) -> None:
    out = io.StringIO()
    assert show_command(log_path, None, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["SEQ", "TIME", "(UTC)", "INCIDENT", "KIND", "ACTOR", "SUMMARY"]
    assert len(lines) == 5
    assert lines[2].split()[1:6] == ["2026-01-05", "08:00:00", "inc-1", "decision", "guard"]
    # The fields under data.*: the verdict, the root cause and who approved.
    assert lines[1].endswith("alertmanager alert firing: production/churn high error rate; opened")
    assert lines[2].endswith("REQUIRE APPROVAL rollback by r1, r2; approvers alice")
    assert lines[3].endswith(
        "covariate drift, confidence 0.85 (rules, playbook covariate-drift); "
        "1 evidence, 0 ruled out"
    )
    assert lines[4].endswith('approved by alice: "token=[REDACTED] ok"')
    assert "idempotency_key" not in out.getvalue()


def test_show_filters_by_incident(log_path: Path) -> None:
    out = io.StringIO()
    assert show_command(log_path, "inc-2", out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "inc-2" in lines[1] and "covariate drift" in lines[1]


def test_show_an_unknown_incident_is_not_found(log_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert show_command(log_path, "inc-404", out, err=err) == 1
    assert out.getvalue() == ""
    assert err.getvalue() == "error: no audit records for incident 'inc-404'\n"


def test_show_filters_by_kind_and_time(log_path: Path) -> None:
    from datetime import UTC, datetime

    out = io.StringIO()
    assert show_command(log_path, None, out, kinds=["decision", "approval"]) == 0
    assert [line.split()[4] for line in out.getvalue().splitlines()[1:]] == [
        "decision",
        "approval",
    ]
    out = io.StringIO()
    assert show_command(log_path, "inc-2", out, kinds=["decision"]) == 0  # known, none match
    assert out.getvalue() == "(no records)\n"
    out = io.StringIO()
    after_all = datetime(2027, 1, 1, tzinfo=UTC)
    assert show_command(log_path, None, out, since=after_all) == 0
    assert out.getvalue() == "(no records)\n"


def test_show_json_prints_the_records_as_stored(log_path: Path) -> None:
    out = io.StringIO()
    assert show_command(log_path, "inc-1", out, as_json=True) == 0
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    stored = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert records == [r for r in stored if r["incident_id"] == "inc-1"]
    assert records[-1]["data"]["approval"]["comment"] == "token=[REDACTED] ok"


def test_show_stops_at_a_broken_record_and_says_so_once_on_stderr(log_path: Path) -> None:
    lines = log_path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"require_approval", b"allow")
    log_path.write_bytes(b"".join(lines))
    out, err = io.StringIO(), io.StringIO()
    assert show_command(log_path, None, out, err=err) == 1
    assert len(out.getvalue().splitlines()) == 2  # the header and the record before the break
    assert "error:" not in out.getvalue() and "FAILED" not in out.getvalue()
    (message,) = err.getvalue().splitlines()
    assert message.startswith("error: the audit log is broken: record 1 does not match its hash")
    assert message.count("record 1") == 1


def test_show_a_torn_log_exits_1(log_path: Path) -> None:
    data = log_path.read_bytes()
    log_path.write_bytes(data[:-20])
    err = io.StringIO()
    assert show_command(log_path, None, io.StringIO(), err=err) == 1
    assert "records from 3 on are not shown" in err.getvalue()


def test_show_a_missing_log_exits_1(tmp_path: Path) -> None:
    err = io.StringIO()
    assert show_command(tmp_path / "none.jsonl", None, io.StringIO(), err=err) == 1
    assert "no audit log" in err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["--kind", "nope"],
        ["--since", "yesterday"],
        ["--incident"],
    ],
)
def test_show_usage_errors_exit_2(log_path: Path, argv: list[str]) -> None:
    from supervisor.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["audit", "show", str(log_path), *argv])
    assert exit_.value.code == 2


def test_since_takes_a_time_or_a_duration() -> None:
    from datetime import UTC, datetime, timedelta

    from supervisor.cli._audit_cmd import _since

    assert _since("2026-01-05T09:00Z") == datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert _since("2026-01-05") == datetime(2026, 1, 5, tzinfo=UTC)
    before = datetime.now(UTC)
    since = _since("2h")
    assert before - timedelta(hours=2) <= since <= datetime.now(UTC) - timedelta(hours=2)


def test_parser_dispatches_to_the_handlers(
    log_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="mlops-supervisor")
    add_audit_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["audit", "verify", str(log_path)])
    assert args.handler is args.func
    assert args.handler(args) == 0
    assert capsys.readouterr().out == "OK: 4 records, chain intact\n"
    args = parser.parse_args(["audit", "show", str(log_path), "--incident", "inc-2"])
    assert args.handler(args) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["audit"])  # a subcommand is required


def test_module_import_is_light() -> None:
    # Measured against whatever supervisor.cli itself imports: this module must add nothing heavy.
    code = (
        "import sys, supervisor.cli\n"
        "before = set(sys.modules)\n"
        "import supervisor.cli._audit_cmd\n"
        "heavy = ('pydantic', 'opentelemetry', 'supervisor.audit', 'supervisor.telemetry')\n"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith(heavy)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_repair_cuts_a_torn_last_line_and_the_log_opens_again(log_path: Path) -> None:
    """M4: a torn last line stopped the service, and its advice (start a new log) stranded the
    in-flight action; repair keeps every complete record instead."""
    from supervisor import AuditIntegrityError
    from supervisor.cli._audit_cmd import repair_command

    whole = log_path.read_bytes()
    torn = b'{"actor":"executor","data":{"outcome":'  # a crash mid-write
    log_path.write_bytes(whole + torn)
    with pytest.raises(AuditIntegrityError, match="audit repair"):
        AuditLog(log_path, SimClock())
    out = io.StringIO()
    assert repair_command(log_path, out) == 0
    assert "REPAIRED" in out.getvalue() and "4 complete records kept" in out.getvalue()
    assert log_path.read_bytes() == whole
    (evidence,) = log_path.parent.glob("audit.jsonl.torn-*")
    assert evidence.read_bytes() == torn
    assert verify_command(log_path, io.StringIO()) == 0
    with AuditLog(log_path, SimClock()) as log:  # the service starts and appends again
        log.append(AuditKind.SIGNAL, incident_id="inc-3", actor="t", data={})
        assert len(log) == 5
    assert repair_command(log_path, io.StringIO()) == 0  # intact: nothing to do


def test_repair_refuses_an_edited_record(log_path: Path) -> None:
    from supervisor.cli._audit_cmd import repair_command

    lines = log_path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"require_approval", b"allow")
    log_path.write_bytes(b"".join(lines))
    before = log_path.read_bytes()
    assert repair_command(log_path, io.StringIO()) == 1
    assert log_path.read_bytes() == before  # evidence untouched


#: One record of every kind, in the shape its writer uses (see the recorder calls in
#: incidents/_manager, graph/_nodes, executor/_executor, runtime/_supervisor, chatops/_pause).
EVERY_KIND: list[tuple[AuditKind, dict[str, object], str]] = [
    (
        AuditKind.INCIDENT_OPENED,
        {"incident": {"model": "m", "environment": "prod", "symptom": "data_drift"}},
        "opened: prod/m data drift",
    ),
    (AuditKind.INCIDENT_UPDATED, {"status": "investigating", "reason": "triaged"}, "now "),
    (
        AuditKind.INCIDENT_UPDATED,
        {"pause": {"event": "paused", "scope": "model", "model": "m", "by": "bob"}},
        "paused (model m) by bob",
    ),
    (
        AuditKind.TOOL_CALL,
        {"tool": "get_metric", "args": {"metric": "saturation"}, "status": "no_data"},
        "get_metric(metric=saturation) -> no data",
    ),
    (
        AuditKind.REASONER_STEP,
        {"candidate": "infrastructure", "playbook": "infrastructure", "tool_calls": 3},
        "candidate infrastructure (playbook infrastructure) after 3 tool call(s)",
    ),
    (
        AuditKind.PROPOSAL,
        {
            "idempotency_key": "k",
            "plan": {
                "action": "rollback",
                "target": {"model": "m", "environment": "prod", "version": None},
                "parameters": {"to_version": "2", "message": "long"},
            },
        },
        "rollback on prod/m, with to_version=2",
    ),
    (
        AuditKind.APPROVAL_REQUESTED,
        {"approvers": ["alice"], "groups": ["oncall"], "deadline": "2026-01-05T10:50:00+00:00"},
        "waiting for one of alice (oncall) before 2026-01-05 10:50 UTC",
    ),
    (
        AuditKind.APPROVAL,
        {"refused": True, "decision": "approved", "reason": "mallory is not an approver"},
        "approved refused: mallory is not an approver",
    ),
    (
        AuditKind.ACTION_INTENT,
        {"idempotency_key": "k", "action": "rollback", "target": {"model": "m"}, "attempt": 1},
        "about to rollback on ",
    ),
    (
        AuditKind.ACTION_INTERRUPTED,
        {"idempotency_key": "k", "action": "rollback", "target": {}, "detail": "no outcome"},
        "interrupted: rollback",
    ),
    (
        AuditKind.RECONCILIATION,
        {"idempotency_key": "k", "action": "rollback", "target": {}, "applied": True},
        "reconciled: rollback",
    ),
    (
        AuditKind.ACTION_OUTCOME,
        {"outcome": {"action": "rollback", "status": "failed", "detail": "409 conflict"}},
        "rollback failed: 409 conflict",
    ),
    (
        AuditKind.VERIFICATION,
        {"passed": False, "checks": [{"check": "target serves", "passed": False}]},
        "FAILED: target serves FAILED",
    ),
    (AuditKind.ESCALATION, {"owner": "ml-oncall", "reason": "no playbook"}, "paged ml-oncall"),
    (AuditKind.REPORT, {"path": "r.md", "status": "escalated"}, "report r.md (escalated)"),
]


@pytest.mark.parametrize(("kind", "data", "expected"), EVERY_KIND, ids=lambda v: str(v)[:30])
def test_every_kind_reads_as_text(
    tmp_path: Path, kind: AuditKind, data: dict[str, object], expected: str
) -> None:
    from supervisor.audit import summarize

    with AuditLog(tmp_path / "audit.jsonl", SimClock()) as log:
        record = log.append(kind, incident_id="inc-1", actor="t", data=data)
    text = summarize(record)
    assert expected in text
    assert not re.search(r"\bNone\b|\bTrue\b|\bFalse\b|\{'|\['|idempotency_key|\{\"", text), text
