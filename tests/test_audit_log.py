"""The hash-chained audit log: chaining, tamper detection, resumption, concurrency, trace ids,
redaction before hashing."""

from __future__ import annotations

import errno
import itertools
import json
import multiprocessing
import os
import threading
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import supervisor.audit
from supervisor import AuditIntegrityError, SimClock
from supervisor.audit import GENESIS_HASH, AuditLog, verify
from supervisor.domain import AuditKind

FAKE_SECRET = "hunter2-" + "s3cr3t"  # built at runtime so no scanner mistakes it for a real one


def test_public_exports() -> None:
    assert set(supervisor.audit.__all__) == {
        "GENESIS_HASH",
        "REDACTED",
        "AuditLog",
        "AuditTrail",
        "PostgresAuditLog",
        "RepairResult",
        "VerifyResult",
        "export_postgres",
        "is_secret_key",
        "redact",
        "redact_text",
        "render_timeline",
        "repair",
        "summarize",
        "verify",
        "verify_postgres",
    }


def _write(path: Path, n: int = 5) -> AuditLog:
    log = AuditLog(path, SimClock())
    for i in range(n):
        log.append(
            AuditKind.TOOL_CALL,
            incident_id="inc-a" if i % 2 == 0 else "inc-b",
            actor="investigate",
            data={"tool": "error_rate", "i": i},
        )
    return log


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    _write(path).close()
    return path


def test_append_chains_records_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with _write(path, 3) as log:
        records = log.records()
    assert [r.seq for r in records] == [0, 1, 2]
    assert records[0].prev_hash == GENESIS_HASH
    assert records[1].prev_hash == records[0].hash
    assert records[2].prev_hash == records[1].hash
    assert len({r.hash for r in records}) == 3
    assert records[0].ts == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    head = json.loads((tmp_path / "audit.jsonl.head").read_text())
    assert head == {"count": 3, "last_hash": records[2].hash}
    result = verify(path)
    assert (result.ok, result.records, result.first_bad_seq) == (True, 3, None)
    assert result.reason == "chain intact"


def test_lines_are_canonical_json(log_path: Path) -> None:
    first = _lines(log_path)[0].decode()
    obj = json.loads(first)
    assert first == json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n"


def test_edited_record_is_named(log_path: Path) -> None:
    lines = _lines(log_path)
    lines[2] = lines[2].replace(b'"i":2', b'"i":7')
    log_path.write_bytes(b"".join(lines))
    result = verify(log_path)
    assert not result.ok
    assert result.first_bad_seq == 2
    assert result.records == 2
    assert "edited" in result.reason


def test_edited_record_with_recomputed_hash_breaks_the_next_link(log_path: Path) -> None:
    from supervisor.audit._verify import canonical_json, record_hash

    lines = _lines(log_path)
    obj = json.loads(lines[2])
    obj["actor"] = "someone-else"
    obj["hash"] = record_hash(obj)
    lines[2] = (canonical_json(obj) + "\n").encode()
    log_path.write_bytes(b"".join(lines))
    result = verify(log_path)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "prev_hash" in result.reason


def test_deleted_record_is_named(log_path: Path) -> None:
    lines = _lines(log_path)
    del lines[2]
    log_path.write_bytes(b"".join(lines))
    result = verify(log_path)
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "seq 3" in result.reason and "removed" in result.reason


def test_swapped_records_are_named(log_path: Path) -> None:
    lines = _lines(log_path)
    lines[1], lines[3] = lines[3], lines[1]
    log_path.write_bytes(b"".join(lines))
    result = verify(log_path)
    assert (result.ok, result.first_bad_seq) == (False, 1)
    assert "reordered" in result.reason


def test_truncated_mid_line_is_named(log_path: Path) -> None:
    data = log_path.read_bytes()
    log_path.write_bytes(data[: len(data) - 40])
    result = verify(log_path)
    assert (result.ok, result.first_bad_seq, result.records) == (False, 4, 4)
    assert "truncated" in result.reason


def test_missing_final_newline_counts_as_truncation(log_path: Path) -> None:
    log_path.write_bytes(log_path.read_bytes()[:-1])
    result = verify(log_path)
    assert (result.ok, result.first_bad_seq) == (False, 4)


def test_dropped_last_record_is_caught_by_the_head_file(log_path: Path) -> None:
    lines = _lines(log_path)
    log_path.write_bytes(b"".join(lines[:-1]))
    result = verify(log_path)
    assert (result.ok, result.first_bad_seq, result.records) == (False, 4, 4)
    assert "head file records 5" in result.reason


def test_replaced_last_record_is_caught_by_the_head_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3).close()
    head = (tmp_path / "audit.jsonl.head").read_bytes()
    path.write_bytes(b"".join(_lines(path)[:-1]))
    (tmp_path / "audit.jsonl.head").unlink()
    with AuditLog(path, SimClock()) as log:  # a forged third record, chained correctly
        log.append(AuditKind.REPORT, incident_id=None, actor="forger", data={})
    (tmp_path / "audit.jsonl.head").write_bytes(head)
    result = verify(path)
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_missing_head_file_passes_with_a_warning(log_path: Path) -> None:
    log_path.with_name("audit.jsonl.head").unlink()
    result = verify(log_path)
    assert (result.ok, result.records) == (True, 5)
    assert "warning: no head file" in result.reason


def test_missing_log_fails(tmp_path: Path) -> None:
    result = verify(tmp_path / "nope.jsonl")
    assert (result.ok, result.first_bad_seq) == (False, None)
    assert "no audit log" in result.reason


def test_chain_resumes_after_reopening(log_path: Path) -> None:
    with AuditLog(log_path, SimClock()) as log:
        before = log.records()
        record = log.append(AuditKind.REPORT, incident_id="inc-a", actor="report", data={})
    assert record.seq == 5
    assert record.prev_hash == before[-1].hash
    assert verify(log_path).ok
    with AuditLog(log_path, SimClock()) as log:
        assert len(log) == 6
        assert log.records()[-1] == record


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda b: b[:-30], id="truncated-mid-line"),
        pytest.param(lambda b: b"".join(b.splitlines(keepends=True)[:-1]), id="dropped-last"),
        pytest.param(lambda b: b.replace(b'"i":1', b'"i":9'), id="edited"),
    ],
)
def test_opening_a_broken_log_refuses_to_extend_it(log_path: Path, tamper: object) -> None:
    assert callable(tamper)
    log_path.write_bytes(tamper(log_path.read_bytes()))
    with pytest.raises(AuditIntegrityError, match="audit log"):
        AuditLog(log_path, SimClock())


def test_queries_filter_by_incident_kind_and_data(log_path: Path) -> None:
    with AuditLog(log_path, SimClock()) as log:
        log.append(
            AuditKind.DECISION,
            incident_id="inc-b",
            actor="guard",
            data={"verdict": "allow", "action": "rollback"},
        )
        log.append(
            AuditKind.DECISION,
            incident_id="inc-a",
            actor="guard",
            data={"verdict": "deny", "action": "retrain"},
        )
        assert [r.seq for r in log.records("inc-a")] == [0, 2, 4, 6]
        assert [r.seq for r in log.find(AuditKind.DECISION)] == [5, 6]
        assert [r.seq for r in log.find(AuditKind.DECISION, incident_id="inc-b")] == [5]
        assert [r.seq for r in log.find(AuditKind.DECISION, where={"verdict": "deny"})] == [6]
        assert log.find(AuditKind.DECISION, where={"verdict": "deny", "action": "x"}) == []
        assert log.find(AuditKind.DECISION, where={"missing": None}) == []
        # returned records are copies: mutating one does not change the log's index
        log.records()[0].data["i"] = 99
        assert log.records()[0].data["i"] == 0


def test_where_matches_enum_values(tmp_path: Path) -> None:
    class Color(StrEnum):
        RED = "red"

    with AuditLog(tmp_path / "a.jsonl", SimClock()) as log:
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={"c": Color.RED})
        assert len(log.find(AuditKind.SIGNAL, where={"c": Color.RED})) == 1


def test_a_second_writer_sees_the_first_writers_records(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, SimClock()) as a, AuditLog(path, SimClock()) as b:
        a.append(AuditKind.SIGNAL, incident_id="i", actor="a", data={})
        second = b.append(AuditKind.SIGNAL, incident_id="i", actor="b", data={})
        assert second.seq == 1
        assert [r.actor for r in a.records()] == ["a", "b"]
    assert verify(path).ok


def test_concurrent_threads_keep_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, SimClock())
    n_threads, per_thread = 8, 40
    barrier = threading.Barrier(n_threads)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            log.append(AuditKind.TOOL_CALL, incident_id=None, actor=f"t{t}", data={"i": i})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    log.close()
    result = verify(path)
    assert (result.ok, result.records) == (True, n_threads * per_thread)
    assert result.reason == "chain intact"  # the head covers every record
    with AuditLog(path, SimClock()) as reopened:
        seen = {(r.actor, r.data["i"]) for r in reopened.records()}
    assert seen == {(f"t{t}", i) for t in range(n_threads) for i in range(per_thread)}


def _process_writer(path: str, name: str, count: int, start: object) -> None:
    assert hasattr(start, "wait")
    start.wait()
    with AuditLog(Path(path), SimClock()) as log:
        for i in range(count):
            log.append(AuditKind.SIGNAL, incident_id=None, actor=name, data={"i": i})


def test_concurrent_processes_keep_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    per_process = 60
    procs = [
        ctx.Process(target=_process_writer, args=(str(path), f"p{n}", per_process, start))
        for n in range(2)
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    result = verify(path)
    assert (result.ok, result.records) == (True, 2 * per_process)
    assert result.reason == "chain intact"  # heads of both processes only moved forward
    with AuditLog(path, SimClock()) as log:
        seen = {(r.actor, r.data["i"]) for r in log.records()}
    assert seen == {(f"p{n}", i) for n in range(2) for i in range(per_process)}


def test_records_carry_the_active_span_ids(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with AuditLog(tmp_path / "a.jsonl", SimClock()) as log:
        outside = log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={})
        with tracer.start_as_current_span("guard") as span:
            inside = log.append(AuditKind.DECISION, incident_id=None, actor="guard", data={})
    ctx = span.get_span_context()
    assert (inside.trace_id, inside.span_id) == (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
    assert (outside.trace_id, outside.span_id) == ("0" * 32, "0" * 16)
    assert [s.name for s in exporter.get_finished_spans()] == ["guard"]
    provider.shutdown()


def test_secrets_are_redacted_before_hashing_and_writing(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with AuditLog(path, SimClock()) as log:
        record = log.append(
            AuditKind.TOOL_CALL,
            incident_id="inc",
            actor="investigate",
            data={
                "password": FAKE_SECRET,
                "url": f"https://mlflow.local/api?token={FAKE_SECRET}",
                "nested": [{"headers": {"Authorization": f"Bearer {FAKE_SECRET}"}}],
            },
        )
    assert FAKE_SECRET.encode() not in path.read_bytes()
    assert record.data["password"] == "[REDACTED]"
    assert record.data["url"] == "https://mlflow.local/api?token=[REDACTED]"
    assert verify(path).ok  # the hash covers the redacted form


def test_non_json_data_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with AuditLog(path, SimClock()) as log:
        record = log.append(
            AuditKind.VERIFICATION,
            incident_id=None,
            actor="verify",
            data={"at": at, "kind": AuditKind.SIGNAL, "value": float("nan"), "t": (1, 2)},
            ts=at,
        )
    assert record.data == {
        "at": "2026-01-01T00:00:00Z",
        "kind": "signal",
        "value": "NaN",
        "t": [1, 2],
    }
    assert record.ts == at
    assert verify(path).ok


def test_naive_timestamps_are_rejected(tmp_path: Path) -> None:
    with (
        AuditLog(tmp_path / "a.jsonl", SimClock()) as log,
        pytest.raises(ValueError, match="aware"),
    ):
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={}, ts=datetime(2026, 1, 1))
    assert verify(tmp_path / "a.jsonl").records == 0


def test_closed_log_refuses_appends(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl", SimClock())
    log.close()
    with pytest.raises(AuditIntegrityError, match="closed"):
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={})


def test_group_commit_syncs_every_record_before_append_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, SimClock())
    log_inode = path.stat().st_ino
    real_fsync = os.fdatasync
    synced_sizes: list[int] = []  # log size at the start of each fsync of the log
    lock = threading.Lock()

    def slow_fsync(fd: int) -> None:
        st = os.fstat(fd)
        if st.st_ino == log_inode:
            with lock:
                synced_sizes.append(st.st_size)
            time.sleep(0.005)  # a slow disk: writers pile up behind the leader
        real_fsync(fd)

    monkeypatch.setattr(os, "fdatasync", slow_fsync)
    n_threads, per_thread = 8, 25
    barrier = threading.Barrier(n_threads)
    covered: list[tuple[int, int]] = []  # (seq, bytes synced when its append returned)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            rec = log.append(AuditKind.SIGNAL, incident_id=None, actor=f"t{t}", data={"i": i})
            with lock:
                covered.append((rec.seq, max(synced_sizes)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    log.close()
    ends = list(itertools.accumulate(len(line) for line in _lines(path)))
    assert all(ends[seq] <= synced for seq, synced in covered), "returned before its fsync"
    total = n_threads * per_thread
    assert len(covered) == total
    assert len(synced_sizes) < total / 2, f"{len(synced_sizes)} fsyncs for {total} records"
    assert verify(path).reason == "chain intact"  # the head covers every record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.jsonl", "audit.jsonl.head"]


def test_a_failed_fsync_stops_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, SimClock())
    log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={})

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing_fsync)
    with pytest.raises(AuditIntegrityError, match=r"fsync .* failed"):
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={})
    monkeypatch.undo()
    # What reached the disk is unknown after a failed fsync: no later append may pretend.
    with pytest.raises(AuditIntegrityError, match="refuses further appends"):
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={})
    log.close()
    result = verify(path)  # the unsynced record is there, but the head never claimed it
    assert (result.ok, result.records) == (True, 2)
    assert "lags the log by 1 record" in result.reason


def test_sync_inside_a_deferred_block_flushes_the_data_and_the_block_end_the_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, SimClock())
    log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={"i": 0})
    real_fsync = os.fdatasync
    synced: list[str] = []  # which file each fsync flushed, with the log's size then

    def tracking_fsync(fd: int) -> None:
        st = os.fstat(fd)
        synced.append(f"log:{st.st_size}" if st.st_ino == path.stat().st_ino else "head")
        real_fsync(fd)

    monkeypatch.setattr(os, "fdatasync", tracking_fsync)

    def head_count() -> int:
        return int(json.loads(path.with_name("audit.jsonl.head").read_text())["count"])

    with log.deferred_sync():
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={"i": 1})
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={"i": 2})
        log.sync()  # what the incident index does before it writes its file
        assert synced == [f"log:{path.stat().st_size}"]  # every record so far is on disk
        assert head_count() == 1  # the head follows at the end of the block
        log.sync()  # nothing new: no second fsync
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={"i": 3})
    assert synced[1:] == [f"log:{path.stat().st_size}", "head"]
    assert head_count() == 4
    log.close()
    assert verify(path).reason == "chain intact"


def test_a_failed_sync_stops_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, SimClock())

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    # Leaving the block raises too: its records can never be covered.
    with pytest.raises(AuditIntegrityError, match="refuses"), log.deferred_sync():
        log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={})
        monkeypatch.setattr(os, "fdatasync", failing_fsync)
        with pytest.raises(AuditIntegrityError, match=r"fsync .* failed"):
            log.sync()
        monkeypatch.undo()
        with pytest.raises(AuditIntegrityError, match="refuses further appends"):
            log.append(AuditKind.SIGNAL, incident_id=None, actor="x", data={})
    log.close()
    result = verify(path)  # the record is there, but no head ever claimed it
    assert (result.ok, result.records) == (True, 1)
