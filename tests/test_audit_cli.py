"""The ``audit verify`` and ``audit show`` commands."""

from __future__ import annotations

import argparse
import io
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
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, SimClock()) as log:
        log.append(
            AuditKind.SIGNAL,
            incident_id="inc-1",
            actor="alertmanager",
            data={"alertname": "HighErrorRate", "model": "churn"},
        )
        log.append(
            AuditKind.DECISION,
            incident_id="inc-1",
            actor="guard",
            data={"verdict": "require_approval", "action": "rollback", "rule_ids": ["r1", "r2"]},
        )
        log.append(
            AuditKind.SIGNAL,
            incident_id="inc-2",
            actor="scheduler",
            data={"kind": "drift_check", "model": "fraud"},
        )
        log.append(
            AuditKind.APPROVAL,
            incident_id="inc-1",
            actor="slack",
            data={"decision": "approved", "by": "alice", "comment": "token=abc ok"},
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
    out = io.StringIO()
    assert verify_command(log_path, out) == 1
    assert out.getvalue().startswith("FAILED: record 1: record 1 does not match its hash")
    assert "(1 records verified before it)" in out.getvalue()


def test_verify_missing_file(tmp_path: Path) -> None:
    out = io.StringIO()
    assert verify_command(tmp_path / "none.jsonl", out) == 1
    assert "no audit log" in out.getvalue()


def test_show_renders_a_timeline(log_path: Path) -> None:
    out = io.StringIO()
    assert show_command(log_path, None, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["SEQ", "TIME", "(UTC)", "INCIDENT", "KIND", "ACTOR", "SUMMARY"]
    assert len(lines) == 5
    assert lines[2].split()[1:] == [
        "2026-01-05",
        "08:00:00",
        "inc-1",
        "decision",
        "guard",
        "verdict=require_approval",
        "action=rollback",
        "rule_ids=r1,r2",
    ]
    assert "token=[REDACTED]" in lines[4]


def test_show_filters_by_incident(log_path: Path) -> None:
    out = io.StringIO()
    assert show_command(log_path, "inc-2", out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "inc-2" in lines[1] and "kind=drift_check model=fraud" in lines[1]
    out = io.StringIO()
    assert show_command(log_path, "inc-404", out) == 0
    assert out.getvalue() == "(no records for incident 'inc-404')\n"


def test_show_stops_at_a_broken_record(log_path: Path) -> None:
    data = log_path.read_bytes()
    log_path.write_bytes(data[:-20])
    out = io.StringIO()
    assert show_command(log_path, None, out) == 1
    assert out.getvalue().splitlines()[-1].startswith("FAILED: stopped at record 3")


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
