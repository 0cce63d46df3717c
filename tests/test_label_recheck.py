"""Late labels: a retrain decided before the drifted rows have labels waits for them.

Covariate drift starts at minute 30 on a model whose labels arrive 30 minutes late. The
supervisor's checks open an incident while the labelled rows still predate the drift: a retrain
then would fit the old world. Instead the diagnosis says when the labels arrive, a re-check is
scheduled (in the incident index, so a restart keeps it) and audited, nothing is proposed, and
at the due time the incident is investigated again and the retrain fits post-onset rows. Past
the maximum wait it pages the owner instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from simworld import MODEL, Rig, fault, make_rig

from supervisor.audit import summarize
from supervisor.domain import AuditKind, Incident

LAG = 30.0  # minutes: the world's label delay
ONSET = 30  # minutes after the world's start: when the drift begins
MARGIN = 15.0  # the config default: a quarter hour of labelled post-onset rows


def _rig(tmp_path: Path, **quality: Any) -> Rig:
    config = (
        {"models": [{"name": MODEL, "owner": "team-m", "quality": quality}]} if quality else None
    )
    rig = make_rig(
        tmp_path,
        faults=[fault("covariate_drift", at=ONSET)],
        model={"label_delay_minutes": LAG},
        config=config,
    )
    rig.sup.defer_verification()  # as the service and the evals run it: no sleeping worker
    return rig


def _scheduled(rig: Rig, incident_id: str) -> dict[str, Any]:
    records = rig.records(AuditKind.RECHECK_SCHEDULED, incident_id)
    assert len(records) == 1, [r.data for r in records]
    return dict(records[0].data)


def _opened_waiting(rig: Rig) -> Incident:
    inc = rig.first_incident()
    assert rig.diagnosis(inc.id)["root_cause"] in ("covariate_drift", "concept_drift")
    return inc


def test_recheck_due_from_measured_lag_and_nothing_is_proposed(tmp_path: Path) -> None:
    rig = _rig(tmp_path)
    try:
        inc = _opened_waiting(rig)
        data = _scheduled(rig, inc.id)
        assert data["label_delay_source"] == "measured"
        assert data["label_lag_minutes"] == LAG
        rows_after = datetime.fromisoformat(data["rows_after"])
        due = rows_after + timedelta(minutes=LAG + MARGIN)
        assert datetime.fromisoformat(data["recheck_at"]) == due
        # The rows counted from are drifted rows, seen no earlier than the onset.
        assert rows_after >= rig.world.start + timedelta(minutes=ONSET)
        assert inc.recheck_at == due
        assert inc.status.value == "investigating"
        # Nothing irreversible yet: no proposal, no guard decision, no retrain.
        assert rig.records(AuditKind.PROPOSAL, inc.id) == []
        assert rig.records(AuditKind.DECISION, inc.id) == []
        assert rig.world.action_counts().get("retrain", 0) == 0
        summary = rig.diagnosis(inc.id)["summary"]
        assert f"arrive around {(rows_after + timedelta(minutes=LAG)):%Y-%m-%d %H:%M} UTC" in (
            summary
        )
        assert f"re-checking at {due:%Y-%m-%d %H:%M} UTC" in summary
    finally:
        rig.close()


def test_recheck_due_from_declared_delay(tmp_path: Path) -> None:
    # The owner declares a longer delay than the data shows (labels are reviewed in batches):
    # the declared one decides the due time.
    rig = _rig(tmp_path, label_delay_minutes=40)
    try:
        inc = _opened_waiting(rig)
        data = _scheduled(rig, inc.id)
        assert data["label_delay_source"] == "declared"
        assert data["label_lag_minutes"] == 40
        rows_after = datetime.fromisoformat(data["rows_after"])
        assert inc.recheck_at == rows_after + timedelta(minutes=40 + MARGIN)
    finally:
        rig.close()


def test_recheck_survives_a_restart_and_retrains_on_post_onset_labelled_rows(
    tmp_path: Path,
) -> None:
    rig = _rig(tmp_path)
    inc = _opened_waiting(rig)
    due = inc.recheck_at
    assert due is not None
    rig = rig.reopen()  # a new process: only the state directory remains
    try:
        rig.sup.defer_verification()
        assert rig.incident(inc.id).recheck_at == due
        # Before the due time a tick does not run it.
        while rig.world.now + timedelta(minutes=5) < due:
            rig.world.advance(timedelta(minutes=5))
            rig.sup.tick()
        assert rig.records(AuditKind.RECHECK_DUE, inc.id) == []
        rig.tick_until(lambda r: bool(r.records(AuditKind.RECHECK_DUE, inc.id)))
        fired = rig.records(AuditKind.RECHECK_DUE, inc.id)[0]
        assert fired.ts >= due
        assert rig.incident(inc.id).recheck_at is None
        assert rig.plan(inc.id)["action"] == "retrain"
        assert [p.action for p in rig.sup.pending_approvals()] == ["retrain"]
        retrained_at = rig.world.now
        rig.sup.approve(inc.id, "alice")
        assert rig.world.action_counts()["retrain"] == 1
        new = [v for v in rig.world.versions(MODEL) if v.created_at >= rig.world.start]
        assert len(new) == 1
        window = new[-1].training_window
        assert window is not None
        labelled_end = retrained_at - timedelta(minutes=LAG)
        onset = rig.world.start + timedelta(minutes=ONSET)
        # Every labelled row the retrain fitted is a post-onset row, and there are some.
        assert window.start >= onset
        assert labelled_end - window.start >= timedelta(minutes=MARGIN)
        assert rig.verified()
    finally:
        rig.close()


def test_labels_past_the_maximum_wait_page_the_owner_instead(tmp_path: Path) -> None:
    # Labels of the drifted rows come after the longest the owner lets a decision wait.
    rig = _rig(tmp_path, max_label_wait_minutes=20)
    try:
        inc = rig.first_incident()
        assert rig.records(AuditKind.RECHECK_SCHEDULED, inc.id) == []
        assert rig.incident(inc.id).recheck_at is None
        assert rig.plan(inc.id)["action"] == "escalate"
        assert rig.world.action_counts().get("retrain", 0) == 0
        assert [p["incident_id"] for p in rig.world.pages] == [inc.id]
        assert "no retrain" in rig.diagnosis(inc.id)["summary"]
    finally:
        rig.close()


def test_audit_show_says_when_and_why_in_plain_words(tmp_path: Path) -> None:
    rig = _rig(tmp_path)
    try:
        inc = _opened_waiting(rig)
        rig.tick_until(lambda r: bool(r.records(AuditKind.RECHECK_DUE, inc.id)))
        scheduled = summarize(rig.records(AuditKind.RECHECK_SCHEDULED, inc.id)[0])
        fired = summarize(rig.records(AuditKind.RECHECK_DUE, inc.id)[0])
    finally:
        rig.close()
    assert scheduled.startswith("re-check scheduled for 2026-01-05 ")
    assert "Labels for rows after 2026-01-05 " in scheduled
    assert "30 min late, measured" in scheduled
    assert fired.startswith("re-check due (scheduled for 2026-01-05 ")
    assert "investigating again on fresh evidence, re-check 1" in fired
    for text in (scheduled, fired):
        assert "{" not in text and "None" not in text and "datetime" not in text
