"""A second revert inside the window is denied by the guard and escalated (issue 12, req. 8).

Two bad canaries of the same model, 90 minutes apart: the first is aborted; the second abort
would be the second revert within 6 hours, so the default policy's revert-rate-limit denies
it and the graph escalates to the owner instead of acting.
"""

from __future__ import annotations

from pathlib import Path

from simworld import MODEL, deploy, make_rig

from supervisor.domain import AuditKind


def test_second_revert_in_window_is_denied_and_escalated(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, deploys=[deploy("bad", at=30), deploy("bad", at=120)])
    try:
        first = rig.first_incident()
        assert rig.plan(first.id)["action"] == "abort_canary"
        assert rig.decision(first.id)["verdict"] == "allow"
        assert rig.world_writes().get("abort_canary") == 1

        def second_decided(r: object) -> bool:
            return len(rig.records(AuditKind.DECISION)) >= 2

        rig.tick_until(second_decided)
        second = next(i for i in rig.incidents() if i.id != first.id)
        assert rig.plan(second.id)["action"] == "abort_canary"
        decision = rig.decision(second.id)
        assert decision["verdict"] == "deny"
        assert decision["rule_ids"][0] == "revert-rate-limit"
        assert any("1 rollback or abort_canary in the last 6h" in r for r in decision["reasons"])
        assert rig.records(AuditKind.ESCALATION, second.id), "the graph escalated the deny"
        # The world saw only the first revert; the second canary still serves.
        assert rig.world_writes().get("abort_canary") == 1
        status = rig.world.status(MODEL)
        assert status is not None and status.canary_version is not None
        assert rig.world.pages, "the owner was paged"
    finally:
        rig.close()
