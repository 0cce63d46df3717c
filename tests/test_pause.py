"""The pause switch: while paused the supervisor investigates and reports, and never acts."""

from __future__ import annotations

from pathlib import Path

from simworld import deploy, fault, make_rig

from supervisor.cli import main
from supervisor.domain import AuditKind


def test_paused_model_is_investigated_and_reported_but_never_acted_on(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, faults=[fault("unit_change")])
    try:
        rig.sup.pause.pause(None, "alice", "change freeze")
        inc = rig.first_incident()
        assert rig.sup.state(inc.id)["report_path"], "investigated and reported"
        assert rig.diagnosis(inc.id)["root_cause"] == "upstream_data_defect"
        assert rig.world_writes() == {}
        events = [
            r.data["pause"]["event"]
            for r in rig.records(AuditKind.INCIDENT_UPDATED)
            if "pause" in r.data
        ]
        assert events[0] == "paused"
    finally:
        rig.close()


def test_suppressed_action_is_audited_and_resume_lets_the_next_one_act(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, deploys=[deploy("bad")])
    try:
        rig.sup.pause.pause("m", "alice")
        inc = rig.first_incident()
        outcome = rig.outcomes(inc.id)[-1]["outcome"]
        assert outcome["action"] == "abort_canary" and outcome["status"] == "suppressed"
        assert "paused by alice" in outcome["detail"]
        suppressed = [
            r.data["pause"]
            for r in rig.records(AuditKind.INCIDENT_UPDATED, inc.id)
            if r.data.get("pause", {}).get("event") == "suppressed"
        ]
        assert suppressed and suppressed[0]["action"] == "abort_canary"
        assert rig.world.status("m").canary_version is not None  # still serving: nothing acted
        assert rig.verified()
    finally:
        rig.close()


def test_cli_pause_and_resume_are_audited(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rig = make_rig(tmp_path)
    state = rig.state_dir
    rig.close()
    assert main(["pause", "m", "--by", "bob", "--state", str(state)]) == 0
    assert main(["pause", "m", "--by", "bob", "--state", str(state)]) == 0
    assert main(["resume", "m", "--by", "bob", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "m: paused by bob" in out and "m: already paused" in out and "m: resumed by bob" in out
    assert main(["audit", "verify", str(state / "audit.jsonl")]) == 0
