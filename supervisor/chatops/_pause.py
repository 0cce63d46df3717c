"""The pause switch: global and per model. While paused the supervisor still investigates and
reports; it never acts. Every change and every suppressed action is audited.

The switch lives in a small JSON file in the state directory, or in Postgres when replicas
share their state (``shared``), and is re-read on every question: a pause set by the CLI in
another process, or through another replica, holds for the running service at once.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from supervisor._clock import Clock
from supervisor._errors import SupervisorError
from supervisor._recorder import Recorder
from supervisor._shared import FileDocument, SharedDocument
from supervisor.domain import AuditKind

PAUSE_FILE = "pause.json"
ACTOR = "pause-switch"


class PauseEntry(BaseModel):
    """Who paused, and when."""

    model_config = ConfigDict(extra="forbid")

    by: str = Field(description="Identity that paused.")
    at: datetime = Field(description="When (supervisor clock).")
    reason: str = Field(default="", description="Free text given with the pause.")


class PauseState(BaseModel):
    """The whole switch: a global pause and per-model pauses."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    global_: PauseEntry | None = Field(
        default=None, alias="global", description="The pause of everything, if any."
    )
    models: dict[str, PauseEntry] = Field(default_factory=dict, description="Model -> pause.")


class PauseSwitch:
    """Global and per-model pause, persisted in ``path`` (or ``shared``) and audited through
    ``recorder``."""

    def __init__(
        self,
        path: Path,
        recorder: Recorder,
        clock: Clock,
        *,
        known_models: list[str] | None = None,
        shared: SharedDocument | None = None,
    ) -> None:
        self.path = path
        self._doc: SharedDocument = shared or FileDocument(path)
        self.recorder = recorder
        self.clock = clock
        self.known_models = known_models
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ questions

    def state(self) -> PauseState:
        """The switch as the file (or the shared document) holds it now."""
        raw = self._doc.read()
        return PauseState() if raw is None else PauseState.model_validate(raw)

    def paused_by(self, model: str) -> PauseEntry | None:
        """The pause that holds ``model`` (the global one first), or None if it may act."""
        st = self.state()
        return st.global_ or st.models.get(model)

    def is_paused(self, model: str) -> bool:
        """True while a global pause or a pause of ``model`` holds."""
        return self.paused_by(model) is not None

    # ------------------------------------------------------------------ changes

    def pause(self, model: str | None, by: str, reason: str = "") -> bool:
        """Pause ``model`` (None: everything). False if it was already paused (nothing changes,
        nothing is recorded)."""
        return self._set(model, by, PauseEntry(by=by, at=self.clock.now(), reason=reason))

    def resume(self, model: str | None, by: str, reason: str = "") -> bool:
        """Lift the pause of ``model`` (None: the global one). False if there was none.

        Resuming a model does not lift a global pause, and resuming globally does not lift
        per-model pauses: each is lifted where it was set."""
        return self._set(model, by, None, reason)

    def record_suppressed(
        self, incident_id: str, model: str, action: str, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Audit that ``action`` was not run for ``incident_id`` because of a pause; returns
        the record's data (for the outcome's detail)."""
        entry = self.paused_by(model)
        data: dict[str, Any] = {
            "pause": {
                "event": "suppressed",
                "model": model,
                "action": action,
                "scope": "global" if self.state().global_ is not None else "model",
                "paused_by": entry.by if entry else None,
                "paused_at": entry.at.isoformat() if entry else None,
            }
        }
        if idempotency_key is not None:
            data["idempotency_key"] = idempotency_key
        self.recorder.record(
            AuditKind.INCIDENT_UPDATED, incident_id=incident_id, actor=ACTOR, data=data
        )
        return data

    def record_refused(self, verb: str, model: str | None, by: str, *, via: str) -> None:
        """Audit a pause or resume that ``by`` was not allowed to make (nothing changes)."""
        self._record("refused", model, by, requested=verb, via=via)

    def _set(self, model: str | None, by: str, entry: PauseEntry | None, reason: str = "") -> bool:
        if model is not None and self.known_models is not None and model not in self.known_models:
            raise SupervisorError(
                f"no watched model {model!r}; pause one of {sorted(self.known_models)} "
                "or everything (no model)"
            )
        with self._lock, self._doc.update() as doc:
            st = PauseState() if doc.value is None else PauseState.model_validate(doc.value)
            current = st.global_ if model is None else st.models.get(model)
            if (entry is None) == (current is None):
                return False
            if model is None:
                st.global_ = entry
            elif entry is None:
                del st.models[model]
            else:
                st.models[model] = entry
            doc.value = st.model_dump(mode="json", by_alias=True)
            self._record(
                "paused" if entry is not None else "resumed",
                model,
                by,
                reason=entry.reason if entry is not None else reason,
            )
            return True

    def _record(self, event: str, model: str | None, by: str, **extra: str) -> None:
        """Audit one change of the switch (or a refused one): who, what, which scope."""
        scope = "global" if model is None else "model"
        self.recorder.record(
            AuditKind.INCIDENT_UPDATED,
            incident_id=None,
            actor=by,
            data={"pause": {"event": event, "scope": scope, "model": model, "by": by, **extra}},
        )
