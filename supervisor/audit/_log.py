"""The append-only, hash-chained JSONL audit log the supervisor writes every step to."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from supervisor._clock import Clock
from supervisor._errors import AuditIntegrityError
from supervisor.domain import AuditKind, AuditRecord

# The private module, not the package: supervisor.telemetry imports this package in turn.
from ._index import RecordIndex
from ._seal import draft
from ._verify import (
    ChainError,
    ChainState,
    check_head,
    head_path,
    read_head,
)

_instances = itertools.count()  # names each log object's temporary head file


class AuditLog:
    """An append-only JSONL file of :class:`AuditRecord`, each chained to the one before.

    Safe for concurrent writers: threads of one process share a lock, processes serialise on
    ``fcntl.flock`` of the file, and every writer first reads what others appended so its next
    record continues the real chain. Each record is one ``write``; :meth:`append` returns only
    once an ``fsync`` that began after that write has finished, and the head file
    ``<path>.head`` (count and last hash) has been replaced atomically to cover it.

    Durability is a group commit: the first writer to need an ``fsync`` becomes the leader and
    syncs, outside the locks, everything written so far (``fsync`` covers the file, whoever wrote
    it); writers that finish their ``write`` meanwhile wait on a condition and are covered by the
    next leader's single ``fsync``. Under concurrent load one ``fsync`` and one head update serve
    many records; a lone writer pays one of each per record, as before. (``fsync`` here is
    ``fdatasync``: it flushes the data and the file size, everything a reader needs, and skips
    only the timestamps.) If an ``fsync`` fails, what reached the disk is unknown, so the log
    refuses every later append (fail-stop).

    Opening checks the existing file (parse, seq, hash, prev_hash, head file) and raises
    :class:`AuditIntegrityError` if appending would extend a broken chain; move the file aside
    (keep it as evidence) and start a new one.

    Queries read from an in-memory index built on open and extended on every append (or when
    another writer's records are noticed), so they cost no re-read of the file.
    """

    def __init__(self, path: Path, clock: Clock) -> None:
        self._path = path
        self._head_path = head_path(path)
        self._head_tmp = self._head_path.with_name(
            f"{self._head_path.name}.{os.getpid()}-{next(_instances)}.tmp"
        )
        self._clock = clock
        self._lock = threading.Lock()
        # Group commit (see the class docstring): writers wait on this for a covering sync.
        self._synced = threading.Condition(self._lock)
        self._syncing = False
        self._durable = 0  # records covered by the last finished fsync and head update
        self._on_disk = 0  # records covered by a finished fsync (head updated or not)
        self._failed: AuditIntegrityError | None = None
        self._deferred = threading.local()  # depth and last position inside deferred_sync()
        self._chain = ChainState()
        self._offset = 0
        self._indexed = RecordIndex()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            with self._locked(fcntl.LOCK_SH):
                self._check_head()
        except BaseException:
            self.close()
            raise

    @property
    def path(self) -> Path:
        """The log file."""
        return self._path

    # --- writing -------------------------------------------------------------------------

    def append(
        self,
        kind: AuditKind,
        *,
        incident_id: str | None,
        actor: str,
        data: dict[str, Any],
        ts: datetime | None = None,
    ) -> AuditRecord:
        """Redact ``data``, chain a new record to the last one, write it durably and return it.

        ``ts`` defaults to the clock's now. ``trace_id``/``span_id`` are those of the active
        OpenTelemetry span (zeros outside any span). Values that are not JSON (datetimes,
        enums, pydantic models) are converted first; NaN and infinities become strings.
        """
        pending = draft(
            kind, incident_id=incident_id, actor=actor, data=data, ts=ts, clock=self._clock
        )
        with self._locked(fcntl.LOCK_EX):
            if self._failed is not None:
                raise self._failed
            record, line = pending.seal(self._chain.count, self._chain.last_hash)
            self._write(line)
            self._offset += len(line)
            self._chain.hashes.append(record.hash)
            self._index(record)
            position = self._chain.count
        if getattr(self._deferred, "depth", 0):
            self._deferred.position = max(self._deferred.position, position)
        else:
            self._make_durable(position)
        return record

    @contextmanager
    def deferred_sync(self) -> Iterator[None]:
        """Appends of this thread inside the block return once written; leaving the block
        returns once they are all durable (and covered by the head file).

        For callers that append while holding a lock of their own: wait for the disk after
        releasing it, so that other threads' records join the same group commit. Nested blocks
        wait at the outermost exit. Leaving by an exception waits too.
        """
        state = self._deferred
        if not getattr(state, "depth", 0):
            state.depth, state.position = 0, 0
        state.depth += 1
        try:
            yield
        finally:
            state.depth -= 1
            if state.depth == 0 and state.position:
                position, state.position = state.position, 0
                self._make_durable(position)

    def sync(self) -> None:
        """Make every record appended so far durable now, also inside :meth:`deferred_sync`
        (before writing state that must not get ahead of the log).

        The data only: the head file is brought up to date, as always, by the append or the
        :meth:`deferred_sync` block that wrote the records, before it returns. So a block that
        syncs midway (the incident index does before each write of its file) pays one
        ``fsync`` there, not also a head update (two more ``fsync`` and a rename, each a
        hand-over of the GIL); the block's end covers the head once for all its records.
        """
        with self._synced:
            if self._failed is not None:
                raise self._failed
            position = self._chain.count
            if self._on_disk >= position:
                return
            fd = self._require_fd()
        try:
            os.fdatasync(fd)
        except OSError as exc:
            raise self._fail(exc) from exc
        with self._synced:
            self._on_disk = max(self._on_disk, position)

    def _write(self, line: bytes) -> None:
        fd = self._require_fd()
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to {str(self._path)!r}: {written} of {len(line)}")
        except OSError:
            # Leave no partial line behind: it would break the chain for every later reader.
            os.ftruncate(fd, self._offset)
            raise

    def _make_durable(self, position: int) -> None:
        """Return once the first ``position`` records are on disk and in the head file.

        One leader at a time syncs (outside the locks, so writers keep appending meanwhile);
        the others wait for a sync that covers them, or lead the next one.
        """
        with self._synced:
            while True:
                if self._durable >= position:
                    return
                if self._failed is not None:
                    raise self._failed
                if not self._syncing:
                    break
                self._synced.wait()
            fd = self._require_fd()
            self._syncing = True
            target, last_hash = self._chain.count, self._chain.last_hash
        try:
            try:
                os.fdatasync(fd)
                tmp = self._write_head_tmp(target, last_hash)
            except OSError as exc:
                raise self._fail(exc) from exc
            installed = False
            try:
                with self._locked(fcntl.LOCK_EX):
                    installed = self._install_head(tmp, target)
                    self._durable = max(self._durable, target)
                    self._on_disk = max(self._on_disk, target)
            finally:
                if not installed:
                    tmp.unlink(missing_ok=True)
        finally:
            with self._synced:
                self._syncing = False
                self._synced.notify_all()

    def _fail(self, exc: OSError) -> AuditIntegrityError:
        """Stop the log after a failed ``fsync``: what reached the disk is unknown."""
        self._failed = AuditIntegrityError(
            f"fsync of audit log {str(self._path)!r} or its head failed ({exc}): "
            f"records after {self._durable} may not be on disk, so the log refuses "
            "further appends. "
            "Restart, then run `mlops-supervisor audit verify` on it."
        )
        return self._failed

    def _write_head_tmp(self, count: int, last_hash: str) -> Path:
        """The new head in a temporary file, on disk; installed by :meth:`_install_head`.

        The name is this writer's own (one leader at a time per log object, the pid tells
        processes apart), so no other writer touches it.
        """
        body = json.dumps({"count": count, "last_hash": last_hash}).encode("utf-8")
        fd = os.open(self._head_tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, body)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        return self._head_tmp

    def _install_head(self, tmp: Path, count: int) -> bool:
        """Replace the head file with ``tmp`` unless another writer's head already covers as much;
        whether it did.

        Called under the file lock, so the head only ever moves forward, whichever process
        syncs last.
        """
        try:
            current = read_head(self._path)
        except (ValueError, KeyError, TypeError):
            current = None  # unreadable: ours is good, replace it
        if current is not None and current[0] >= count:
            return False
        os.replace(tmp, self._head_path)
        return True

    # --- reading -------------------------------------------------------------------------

    def records(self, incident_id: str | None = None) -> list[AuditRecord]:
        """All records in order, or only those of ``incident_id``. Copies: mutate freely."""
        with self._locked(fcntl.LOCK_SH):
            return self._indexed.select(incident_id)

    def find(
        self,
        kind: AuditKind,
        *,
        incident_id: str | None = None,
        where: dict[str, Any] | None = None,
    ) -> list[AuditRecord]:
        """Records of ``kind`` in order, optionally of one incident, whose ``data`` has every
        top-level key of ``where`` with an equal value (compared after JSON conversion, so
        enums match their values)."""
        with self._locked(fcntl.LOCK_SH):
            return self._indexed.find(kind, incident_id, where)

    def __len__(self) -> int:
        with self._locked(fcntl.LOCK_SH):
            return self._chain.count

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the file once no sync is running. Further appends or queries raise."""
        with self._synced:
            while self._syncing:
                self._synced.wait()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------

    def _require_fd(self) -> int:
        if self._fd is None:
            raise AuditIntegrityError(f"audit log {str(self._path)!r} is closed")
        return self._fd

    @contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        """Hold the thread lock and a file lock, and catch up with other writers first."""
        with self._lock:
            fd = self._require_fd()
            fcntl.flock(fd, mode)
            try:
                self._catch_up(fd)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _catch_up(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size == self._offset:
            return
        if size < self._offset:
            raise AuditIntegrityError(
                f"audit log {str(self._path)!r} shrank from {self._offset} to {size} bytes "
                "while open: records were removed. Run `mlops-supervisor audit verify` on it."
            )
        chunk = os.pread(fd, size - self._offset, self._offset)
        start = 0
        try:
            while start < len(chunk):
                end = chunk.find(b"\n", start)
                end = len(chunk) if end < 0 else end + 1
                record = self._chain.accept(chunk[start:end])
                self._index(record)
                start = end
        except ChainError as exc:
            raise AuditIntegrityError(
                f"audit log {str(self._path)!r} is broken at record {exc.position}: {exc.reason}. "
                "Appending would extend a broken chain. If only the last line is torn (a crash "
                f"mid-write), `mlops-supervisor audit repair {self._path}` cuts it and keeps "
                "every complete record, so in-flight actions are reconciled on the next start; "
                "otherwise move the file aside (keep it as evidence) and start a new log."
            ) from None
        finally:
            self._offset += start

    def _check_head(self) -> None:
        try:
            head = read_head(self._path)
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditIntegrityError(
                f"head file {str(self._head_path)!r} is unreadable ({exc}); "
                "run `mlops-supervisor audit verify` on the log"
            ) from None
        if head is None:
            return
        outcome = check_head(self._chain, head)
        if isinstance(outcome, tuple):
            raise AuditIntegrityError(
                f"audit log {str(self._path)!r} disagrees with its head file at record "
                f"{outcome[0]}: {outcome[1]}. Move both aside (keep them as evidence) and "
                "start a new log."
            )

    def _index(self, record: AuditRecord) -> None:
        self._indexed.add(record)
