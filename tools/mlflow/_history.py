"""The alias log and the "what changed, when" timeline derived from the registry.

MLflow keeps where an alias points now, not where it pointed before. Every alias move this
adapter makes is therefore also written as one registered-model tag::

    mlops_supervisor.alias_move.<alias>.<epoch ms, 13 digits>
        = {"alias": ..., "from": ..., "to": ..., "at": ..., "kind": ...}

One tag per move (never a read-modify-write of one log tag), so two writers cannot lose each
other's entries. A move made by someone else (the MLflow UI, another tool) has no entry: the
timeline derives it from the alias's current target and dates it at the registered model's
``last_updated_timestamp``, saying that the time is approximate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from tools._ports import ChangeEvent

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

LOG_PREFIX = "mlops_supervisor.alias_move."
#: Version tag holding the supervisor-clock time a version was registered (see created_at).
CREATED_AT_TAG = "mlops_supervisor.created_at"

MoveKind = Literal["promoted", "rolled_back", "alias_moved"]


@dataclass(frozen=True)
class AliasMove:
    """One alias move this adapter made."""

    alias: str
    previous: str | None
    version: str
    at: datetime
    kind: MoveKind

    def tag(self) -> tuple[str, str]:
        """The registered-model tag (key, value) recording this move."""
        millis = int(self.at.timestamp() * 1000)
        value = {
            "alias": self.alias,
            "from": self.previous,
            "to": self.version,
            "at": self.at.isoformat(),
            "kind": self.kind,
        }
        return f"{LOG_PREFIX}{self.alias}.{millis:013d}", json.dumps(value, sort_keys=True)


def move_kind(alias: str, previous: str | None, version: str) -> MoveKind:
    """``champion`` moving to a newer version is a promotion, to an older one a rollback."""
    if alias != "champion" or previous is None or not (previous.isdigit() and version.isdigit()):
        return "alias_moved"
    return "promoted" if int(version) > int(previous) else "rolled_back"


def read_log(tags: dict[str, str]) -> list[AliasMove]:
    """The alias moves recorded in a registered model's tags, oldest first."""
    moves: list[AliasMove] = []
    for key, raw in tags.items():
        if not key.startswith(LOG_PREFIX):
            continue
        try:
            data: dict[str, Any] = json.loads(raw)
            moves.append(
                AliasMove(
                    alias=str(data["alias"]),
                    previous=None if data.get("from") is None else str(data["from"]),
                    version=str(data["to"]),
                    at=datetime.fromisoformat(str(data["at"])),
                    kind=data.get("kind", "alias_moved"),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # a hand-edited tag is not history we can trust; skip it
    return sorted(moves, key=lambda m: m.at)


def from_millis(millis: int | None) -> datetime:
    """MLflow's epoch-millisecond timestamps as aware UTC datetimes."""
    return datetime.fromtimestamp((millis or 0) / 1000.0, tz=UTC)


def created_at(mv: ModelVersion) -> datetime:
    """When a version was registered: the supervisor-clock tag if present, else MLflow's time."""
    tagged = (mv.tags or {}).get(CREATED_AT_TAG)
    if tagged:
        try:
            return datetime.fromisoformat(tagged)
        except ValueError:
            pass
    return from_millis(mv.creation_timestamp)


def timeline(
    registered: RegisteredModel, versions: list[ModelVersion], since: datetime
) -> list[ChangeEvent]:
    """Registrations, retrains and alias moves of one model since ``since``, oldest first."""
    events: list[ChangeEvent] = []
    for mv in versions:
        at = created_at(mv)
        tags = mv.tags or {}
        if tags.get("trigger") == "retrain":
            detail = f"run {mv.run_id}"
            if "idempotency_key" in tags:
                detail += f" (key {tags['idempotency_key']})"
            events.append(
                ChangeEvent(at=at, kind="retrained", version=str(mv.version), detail=detail)
            )
        status = tags.get("validation_status")
        detail = f"run {mv.run_id}" + (f", validation {status}" if status else "")
        events.append(ChangeEvent(at=at, kind="registered", version=str(mv.version), detail=detail))
    moves = read_log(dict(registered.tags or {}))
    for move in moves:
        events.append(
            ChangeEvent(
                at=move.at,
                kind=move.kind,
                version=move.version,
                detail=f"{move.alias}: {move.previous} -> {move.version}",
            )
        )
    last_logged = {m.alias: m.version for m in moves}
    for alias, version in sorted((registered.aliases or {}).items()):
        if last_logged.get(alias) != str(version):
            events.append(
                ChangeEvent(
                    at=from_millis(registered.last_updated_timestamp),
                    kind="alias_moved",
                    version=str(version),
                    detail=f"{alias} -> {version}, moved outside the supervisor "
                    "(time approximate: the registered model's last update)",
                )
            )
    return sorted((e for e in events if e.at >= since), key=lambda e: e.at)
