"""Repairing a log whose last line was torn by a crash mid-write.

A record reaches the head file only after an ``fsync`` covered it, so a torn last line is a
record nobody was told was written: cutting it loses nothing that was acknowledged. Anything
else that breaks the chain (an edited, removed or reordered record) is tampering or corruption,
which this refuses to touch: that log stays as evidence.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from supervisor._errors import SupervisorError

from ._verify import ChainError, ChainState, head_path, read_head, verify


@dataclass(frozen=True)
class RepairResult:
    """What :func:`repair` did."""

    kept: int
    """Complete records kept (all of them)."""
    cut_bytes: int
    """Bytes of the torn tail that were cut (0: nothing to repair)."""
    evidence: Path | None
    """Where the cut bytes were saved."""


def repair(path: Path, *, now: datetime | None = None) -> RepairResult:
    """Cut a torn last line off the log at ``path``, keeping every complete record.

    The cut bytes are saved beside the log (``<log>.torn-<time>``), the head file is set to the
    kept records, and the log is verified again. Raises :class:`SupervisorError` naming the
    problem if the log is broken in any other way, or if the cut would drop a record the head
    file counts as written.
    """
    data = path.read_bytes()
    state = ChainState()
    offset = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        line_end = len(data) if end < 0 else end + 1
        try:
            state.accept(data[offset:line_end])
        except ChainError as exc:
            if line_end < len(data):
                raise SupervisorError(
                    f"audit log {str(path)!r} is broken at record {exc.position} "
                    f"({exc.reason}) with records after it: that is not a torn last line, so "
                    "it is not repaired. Keep the file as evidence and start a new log."
                ) from None
            break
        offset = line_end
    if offset == len(data):
        return RepairResult(kept=state.count, cut_bytes=0, evidence=None)
    head = read_head(path)
    if head is not None and head[0] > state.count:
        raise SupervisorError(
            f"the head file counts {head[0]} records but only {state.count} are complete: "
            "cutting the tail would drop an acknowledged record. Not repaired; keep the files "
            "as evidence and start a new log."
        )
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    evidence = path.with_name(f"{path.name}.torn-{stamp}")
    evidence.write_bytes(data[offset:])
    with path.open("r+b") as f:
        f.truncate(offset)
        f.flush()
        os.fsync(f.fileno())
    tmp = head_path(path).with_suffix(".repair.tmp")
    tmp.write_text(json.dumps({"count": state.count, "last_hash": state.last_hash}), "utf-8")
    os.replace(tmp, head_path(path))
    result = verify(path)
    if not result.ok:  # cannot happen for a prefix that was accepted; never claim success
        raise SupervisorError(f"audit log {str(path)!r} still fails verification: {result.reason}")
    return RepairResult(kept=state.count, cut_bytes=len(data) - offset, evidence=evidence)
