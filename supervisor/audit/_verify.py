"""The rules of the hash chain, and verification of a whole log file.

Every line of the log is the canonical JSON of one :class:`AuditRecord`. ``hash`` is the sha256
of the canonical JSON of the record without ``hash``; ``prev_hash`` is the previous record's
``hash`` (64 zeros for the first). Editing a record breaks its hash; removing or reordering
records breaks ``seq`` and ``prev_hash``; removing whole records at the end keeps the chain
intact, which is why the writer also keeps a head file (count and last hash) next to the log.

Missing head file: ``verify`` still passes when the chain is intact (an old log, or one copied
without its head, is not evidence of tampering) but says in ``reason`` that removal of trailing
records cannot be detected. A head file that is present and disagrees with the log fails.

What the chain cannot do: it is not keyed, so someone who can rewrite the whole file and the
head file can forge a consistent chain. Anchoring the head hash elsewhere (a report, a ticket,
a second store) is what closes that gap.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from supervisor.domain import AuditRecord

GENESIS_HASH = "0" * 64


def canonical_json(obj: Any) -> str:
    """The one serialisation that is hashed and written: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(fields: dict[str, Any]) -> str:
    """sha256 (hex) over the canonical JSON of a record's fields, ``hash`` excluded."""
    body = {k: v for k, v in fields.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def head_path(log_path: Path) -> Path:
    """The sidecar head file of a log: ``<log>.head``."""
    return log_path.with_name(log_path.name + ".head")


class VerifyResult(BaseModel):
    """The outcome of verifying a log file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: bool = Field(description="True if the chain is intact and agrees with the head file.")
    records: int = Field(description="Records that verified, in order, before any failure.")
    first_bad_seq: int | None = Field(
        default=None,
        description="Position (the seq it should have) of the first bad record; None if ok, "
        "or if the problem is not tied to a record (missing log, unreadable head file).",
    )
    reason: str = Field(description="Why it failed, or 'chain intact' plus any warning.")


class ChainError(Exception):
    """A line breaks the chain; ``position`` is the seq the line should have had."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(reason)
        self.position = position
        self.reason = reason


@dataclass
class ChainState:
    """Where a reader of the chain is: records accepted so far and their hashes."""

    hashes: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.hashes)

    @property
    def last_hash(self) -> str:
        return self.hashes[-1] if self.hashes else GENESIS_HASH

    def accept(self, raw: bytes) -> AuditRecord:
        """Check one raw line (with its newline) against the chain; append it or raise."""
        pos = self.count
        line_no = pos + 1
        if not raw.endswith(b"\n"):
            raise ChainError(
                pos, f"line {line_no} has no trailing newline: the file was truncated mid-record"
            )
        try:
            obj = json.loads(raw)
        except ValueError:
            raise ChainError(
                pos, f"line {line_no} is not valid JSON: the file was truncated or corrupted"
            ) from None
        if not isinstance(obj, dict):
            raise ChainError(pos, f"line {line_no} is not a JSON object")
        try:
            record = AuditRecord.model_validate(obj)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ChainError(
                pos, f"line {line_no} is not an audit record: {where}: {first['msg']}"
            ) from None
        if record.seq != pos:
            raise ChainError(
                pos,
                f"line {line_no} should hold seq {pos} but holds seq {record.seq}: "
                + (
                    "records were removed or reordered"
                    if record.seq > pos
                    else "records were reordered or duplicated"
                ),
            )
        if record_hash(obj) != record.hash:
            raise ChainError(pos, f"record {pos} does not match its hash: it was edited")
        if record.prev_hash != self.last_hash:
            raise ChainError(
                pos,
                f"record {pos}: prev_hash does not match the hash of "
                + (f"record {pos - 1}" if pos else "the genesis (64 zeros)")
                + ": records before it were removed, replaced or reordered",
            )
        self.hashes.append(record.hash)
        return record


def read_head(log_path: Path) -> tuple[int, str] | None:
    """The (count, last_hash) stored in the head file, or None if there is no head file.

    Raises ``ValueError`` if the head file exists but cannot be read as a head.
    """
    path = head_path(log_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    obj = json.loads(text)
    count, last_hash = obj["count"], obj["last_hash"]
    if not isinstance(count, int) or count < 0 or not isinstance(last_hash, str):
        raise ValueError(f"malformed head file {str(path)!r}: {text!r}")
    return count, last_hash


def check_head(state: ChainState, head: tuple[int, str]) -> tuple[int, str] | str | None:
    """Compare an intact chain with its head file.

    Returns None if they agree, a warning string if the head merely lags behind the log (a writer
    stopped between appending and updating the head), or ``(position, reason)`` on mismatch.
    """
    count, last_hash = head
    if count > state.count:
        return (
            state.count,
            f"the head file records {count} records but the log holds {state.count}: "
            f"{count - state.count} trailing record(s) were removed",
        )
    expected = state.hashes[count - 1] if count else GENESIS_HASH
    if expected != last_hash:
        return (
            max(count - 1, 0),
            f"the head file's last hash differs from the hash of record {count - 1}: "
            "trailing records were replaced",
        )
    if count < state.count:
        return (
            f"warning: the head file lags the log by {state.count - count} record(s) "
            "(a writer stopped between appending and updating the head)"
        )
    return None


def verify(path: Path) -> VerifyResult:
    """Verify a log file: every record's hash, seq and prev_hash link, then the head file.

    Names the first bad record: an edited one (hash mismatch), the place where records were
    removed or reordered (seq or prev_hash mismatch), a last line cut off mid-record, or the
    first missing trailing record (fewer records than the head file counts).
    """
    state = ChainState()
    try:
        with path.open("rb") as f:
            for raw in f:
                state.accept(raw)
    except FileNotFoundError:
        return VerifyResult(ok=False, records=0, reason=f"no audit log at {str(path)!r}")
    except ChainError as exc:
        return VerifyResult(
            ok=False, records=state.count, first_bad_seq=exc.position, reason=exc.reason
        )
    try:
        head = read_head(path)
    except (ValueError, KeyError, TypeError) as exc:
        return VerifyResult(
            ok=False, records=state.count, reason=f"the head file is unreadable: {exc}"
        )
    if head is None:
        return VerifyResult(
            ok=True,
            records=state.count,
            reason="chain intact (warning: no head file "
            f"{str(head_path(path))!r}: removal of trailing records cannot be detected)",
        )
    outcome = check_head(state, head)
    if isinstance(outcome, tuple):
        position, reason = outcome
        return VerifyResult(ok=False, records=state.count, first_bad_seq=position, reason=reason)
    reason = "chain intact" if outcome is None else f"chain intact ({outcome})"
    return VerifyResult(ok=True, records=state.count, reason=reason)
