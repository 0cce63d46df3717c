"""The incident index: what is written when, and the bound on signal ids. Deduplication itself
is covered end to end in test_graph_paths and test_service_alerts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from simworld import MODEL, config_dict

from supervisor import SimClock
from supervisor._recorder import Recorder
from supervisor.audit import AuditLog
from supervisor.config import config_from_dict
from supervisor.domain import AuditKind, IncidentStatus, Signal, SignalKind, Symptom
from supervisor.incidents import IncidentManager
from supervisor.incidents._manager import MAX_SIGNAL_IDS


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[IncidentManager]:
    clock = SimClock()
    with AuditLog(tmp_path / "audit.jsonl", clock) as audit:
        recorder = Recorder(audit, TracerProvider().get_tracer("test"))
        config = config_from_dict(config_dict(tmp_path), source="test config")
        yield IncidentManager(tmp_path / "incidents.json", recorder, clock, config)


def _signal(n: int, **kw: Any) -> Signal:
    fields: dict[str, Any] = {"fingerprint": "fp-1", "group_key": "gk-1", **kw}
    return Signal(
        id=f"sig-{n}",
        kind=SignalKind.ALERT,
        source="alertmanager",
        model=MODEL,
        symptom=Symptom.HIGH_ERROR_RATE,
        observed_at=SimClock().now(),
        **fields,
    )


def _index(manager: IncidentManager) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(manager.path.read_text(encoding="utf-8"))
    return data


def test_repeats_are_audited_but_do_not_rewrite_the_index(manager: IncidentManager) -> None:
    inc, is_new = manager.ingest(_signal(1))
    assert inc is not None and is_new
    written = manager.path.read_bytes()
    for n in range(2, 6):
        again, is_new = manager.ingest(_signal(n))
        assert again is not None and again.id == inc.id and not is_new
    assert manager.path.read_bytes() == written
    current = manager.get(inc.id)
    assert current is not None and current.signal_ids == [f"sig-{n}" for n in range(1, 6)]
    audited = manager.recorder.audit.find(AuditKind.SIGNAL, incident_id=inc.id)
    assert len(audited) == 5
    manager.flush()
    assert _index(manager)[0]["signal_ids"] == [f"sig-{n}" for n in range(1, 6)]


@pytest.mark.parametrize(
    "change",
    [{"fingerprint": "fp-2"}, {"group_key": "gk-2"}],
    ids=["new fingerprint", "new group key"],
)
def test_what_matching_reads_is_written_at_once(
    manager: IncidentManager, change: dict[str, Any]
) -> None:
    inc, _ = manager.ingest(_signal(1))
    assert inc is not None
    manager.ingest(_signal(2))  # a plain repeat, pending
    manager.ingest(_signal(3, **change))
    reloaded = IncidentManager(manager.path, manager.recorder, manager.clock, manager.config).get(
        inc.id
    )
    assert reloaded is not None
    assert reloaded.signal_ids == ["sig-1", "sig-2", "sig-3"]  # the pending repeat too
    assert reloaded.fingerprints == sorted({"fp-1", change.get("fingerprint", "fp-1")})
    assert reloaded.group_keys == sorted({"gk-1", change.get("group_key", "gk-1")})


def test_a_resolution_is_audited_at_once_and_indexed_with_the_next_write(
    manager: IncidentManager,
) -> None:
    """Nothing matches on ``resolved_at`` (the fingerprint that does is written already), so a
    resolution, frequent in an alert storm, does not rewrite the index on its own."""
    inc, _ = manager.ingest(_signal(1))
    assert inc is not None
    written = manager.path.read_bytes()
    folded, _ = manager.ingest(_signal(2, status="resolved"))
    assert folded is not None and folded.id == inc.id and folded.resolved_at is not None
    assert manager.path.read_bytes() == written
    [resolution] = [
        r
        for r in manager.recorder.audit.find(AuditKind.SIGNAL, incident_id=inc.id)
        if r.data["disposition"] == "resolved notification recorded"
    ]
    assert resolution.data["signal"]["id"] == "sig-2"
    manager.set_status(inc.id, IncidentStatus.INVESTIGATING)  # the next write carries it
    assert _index(manager)[0]["resolved_at"] is not None


def test_status_changes_are_written_at_once(manager: IncidentManager) -> None:
    inc, _ = manager.ingest(_signal(1))
    assert inc is not None
    manager.set_status(inc.id, IncidentStatus.INVESTIGATING)
    assert _index(manager)[0]["status"] == "investigating"


def test_signal_ids_are_bounded(manager: IncidentManager) -> None:
    for n in range(MAX_SIGNAL_IDS + 20):
        manager.ingest(_signal(n))
    (inc,) = manager.all()
    assert inc.signal_ids == [f"sig-{n}" for n in range(MAX_SIGNAL_IDS)]
    assert len(manager.recorder.audit.find(AuditKind.SIGNAL)) == MAX_SIGNAL_IDS + 20


def test_a_signal_the_audit_log_cannot_take_leaves_no_incident_behind(
    manager: IncidentManager,
) -> None:
    """H1: the incident used to be added before its audit record was written; a failed write
    left a phantom open incident that swallowed every later alert of that model and symptom."""
    # model_construct skips the boundary's text cleaning: a record no UTF-8 log can hold.
    unwritable = Signal.model_construct(
        **{**_signal(1).model_dump(), "annotations": {"s": "\udc80"}, "fingerprint": "fz1"}
    )
    with pytest.raises(UnicodeEncodeError):
        manager.ingest(unwritable)
    assert manager.all() == []
    assert not manager.path.exists()
    inc, is_new = manager.ingest(_signal(2, fingerprint="fz1"))
    assert inc is not None and is_new  # investigated, not folded into a phantom


def test_a_failed_fold_changes_nothing(manager: IncidentManager) -> None:
    inc, _ = manager.ingest(_signal(1))
    assert inc is not None
    unwritable = Signal.model_construct(
        **{**_signal(2).model_dump(), "annotations": {"s": "\udc80"}, "fingerprint": "fp-new"}
    )
    with pytest.raises(UnicodeEncodeError):
        manager.ingest(unwritable)
    after = manager.get(inc.id)
    assert after is not None and after.fingerprints == ["fp-1"] and after.signal_ids == ["sig-1"]


def test_lone_surrogates_in_untrusted_text_become_replacement_characters() -> None:
    sig = _signal(1, annotations={"summary": "bad \udc80 byte"}, labels={"k\ud800": "v"})
    assert sig.annotations == {"summary": "bad \ufffd byte"}
    assert sig.labels == {"k\ufffd": "v"}


def test_an_incident_is_resolved_when_its_last_alert_resolves_not_its_first(
    manager: IncidentManager,
) -> None:
    """L4: resolved_at was set when one of an incident's two alerts resolved."""
    inc, _ = manager.ingest(_signal(1, fingerprint="fp-a"))
    assert inc is not None
    manager.ingest(_signal(2, fingerprint="fp-b"))
    manager.ingest(_signal(3, fingerprint="fp-a", status="resolved"))
    now = manager.get(inc.id)
    assert now is not None and now.resolved_at is None and now.resolved_fingerprints == ["fp-a"]
    manager.ingest(_signal(4, fingerprint="fp-b", status="resolved"))
    now = manager.get(inc.id)
    assert now is not None and now.resolved_at is not None
    manager.ingest(_signal(5, fingerprint="fp-a"))  # fires again
    now = manager.get(inc.id)
    assert now is not None and now.resolved_at is None and now.resolved_fingerprints == ["fp-b"]


def test_a_batch_writes_the_index_once_at_its_end(manager: IncidentManager) -> None:
    """M2: each new fingerprint of one notification rewrote the whole index (and synced)."""
    inc, _ = manager.ingest(_signal(1, fingerprint="fp-0"))
    assert inc is not None
    with manager.batched():
        for n in range(1, 30):
            manager.ingest(_signal(n + 1, fingerprint=f"fp-{n}"))
        assert _index(manager)[0]["fingerprints"] == ["fp-0"]  # not yet written
    assert _index(manager)[0]["fingerprints"] == [f"fp-{n}" for n in range(30)]


def test_fingerprints_of_an_incident_are_bounded(manager: IncidentManager) -> None:
    from supervisor.incidents._manager import MAX_FINGERPRINTS

    with manager.batched():
        for n in range(MAX_FINGERPRINTS + 50):
            manager.ingest(_signal(n, fingerprint=f"fp-{n}"))
    (inc,) = manager.all()
    assert len(inc.fingerprints) == MAX_FINGERPRINTS
    assert inc.signal_count == MAX_FINGERPRINTS + 50  # every alert still counted and audited
    kinds = [r.kind for r in manager.recorder.audit.records()]
    assert kinds.count(AuditKind.SIGNAL) == MAX_FINGERPRINTS + 50
