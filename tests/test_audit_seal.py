"""seal() writes exactly the canonical line that verification re-hashes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from supervisor.audit._seal import seal
from supervisor.audit._verify import GENESIS_HASH, ChainState, canonical_json, record_hash
from supervisor.domain import AuditKind


@pytest.mark.parametrize(
    "ts",
    [
        datetime(2026, 11, 26, 4, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 26, 4, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_the_line_is_the_canonical_json_of_the_record_and_its_hash_checks(ts: datetime) -> None:
    data = {"z": [1, 2.5, None, True], "a": {"é": "naïve ✓", "k": "line\nbreak"}, "m": {}}
    record, line = seal(
        seq=0,
        ts=ts,
        kind=AuditKind.SIGNAL,
        incident_id="inc-0001-m",
        actor="alertmanager",
        trace_id="0" * 32,
        span_id="0" * 16,
        data=data,
        prev_hash=GENESIS_HASH,
    )
    assert line == (canonical_json(record.model_dump(mode="json")) + "\n").encode()
    assert record_hash(json.loads(line)) == record.hash
    assert record.ts == ts and record.ts.tzinfo is UTC
    second, line2 = seal(
        seq=1,
        ts=ts,
        kind=AuditKind.INCIDENT_OPENED,
        incident_id=None,
        actor="x",
        trace_id="1" * 32,
        span_id="1" * 16,
        data={},
        prev_hash=record.hash,
    )
    chain = ChainState()
    assert chain.accept(line) == record
    assert chain.accept(line2) == second
