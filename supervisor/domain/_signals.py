"""Signals (what the supervisor observes) and incidents (what it works on)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._vocab import Symptom


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def printable_unicode(text: str) -> str:
    """``text`` with every lone UTF-16 surrogate replaced by U+FFFD.

    JSON senders may escape a lone surrogate (``"\\udc80"``) that no UTF-8 file, hash, span or
    checkpoint can hold; untrusted text keeps everything else as sent.
    """
    return _LONE_SURROGATE.sub("\ufffd", text)


class SignalKind(StrEnum):
    """Where a signal came from."""

    ALERT = "alert"
    CHECK = "check"
    COMMAND = "command"


class Signal(_Strict):
    """One observation that something may be wrong with a model.

    Labels and annotations are untrusted text: they are carried as data and never interpreted.
    """

    id: str = Field(description="Unique id of this signal.")
    kind: SignalKind = Field(description="alert (Alertmanager), check (scheduled) or command.")
    source: str = Field(description="Who emitted it, e.g. 'alertmanager', 'scheduler', 'cli'.")
    model: str = Field(description="Name of the watched model the signal is about.")
    environment: str = Field(default="production", description="Environment of the model.")
    symptom: Symptom = Field(description="What the signal says is wrong.")
    status: Literal["firing", "resolved"] = Field(default="firing")
    version: str | None = Field(
        default=None, description="Model version, when the signal names one."
    )
    observed_at: datetime = Field(description="When the signal was observed (backend clock).")
    value: float | None = Field(default=None, description="The measured value, when there is one.")
    fingerprint: str | None = Field(default=None, description="Alertmanager alert fingerprint.")
    group_key: str | None = Field(default=None, description="Alertmanager notification groupKey.")
    labels: dict[str, str] = Field(default_factory=dict, description="Untrusted labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Untrusted annotations.")

    @field_validator(
        "id", "source", "model", "environment", "version", "fingerprint", "group_key", mode="after"
    )
    @classmethod
    def _clean_text(cls, value: str | None) -> str | None:
        return None if value is None else printable_unicode(value)

    @field_validator("labels", "annotations", mode="after")
    @classmethod
    def _clean_mapping(cls, value: dict[str, str]) -> dict[str, str]:
        return {printable_unicode(k): printable_unicode(v) for k, v in value.items()}

    @property
    def dedup_key(self) -> str:
        """Incidents are unique per (model, environment, symptom) while open."""
        return f"{self.environment}/{self.model}/{self.symptom.value}"


class IncidentStatus(StrEnum):
    """Where an incident is in the loop."""

    OPEN = "open"
    INVESTIGATING = "investigating"
    AWAITING_APPROVAL = "awaiting_approval"
    ACTING = "acting"
    VERIFYING = "verifying"
    MITIGATED = "mitigated"
    ESCALATED = "escalated"
    CLOSED = "closed"


class Incident(_Strict):
    """A deduplicated problem with one model; its id is the LangGraph thread id."""

    id: str = Field(description="Incident id, also the graph thread id.")
    model: str
    environment: str
    symptom: Symptom
    status: IncidentStatus = IncidentStatus.OPEN
    opened_at: datetime
    updated_at: datetime
    signal_ids: list[str] = Field(
        default_factory=list,
        description="The first signals folded into it (the audit log has all).",
    )
    signal_count: int = Field(default=1, ge=0, description="How many signals it received.")
    fingerprints: list[str] = Field(default_factory=list, description="Alert fingerprints seen.")
    group_keys: list[str] = Field(default_factory=list, description="Alertmanager groupKeys seen.")
    resolved_fingerprints: list[str] = Field(
        default_factory=list, description="Fingerprints whose alert has resolved (and not refired)."
    )
    resolved_at: datetime | None = Field(
        default=None, description="When the last of its firing alerts resolved."
    )
    ended_at: datetime | None = Field(
        default=None, description="When the incident reached mitigated, escalated or closed."
    )
    recheck_at: datetime | None = Field(
        default=None,
        description="When the investigation runs again because its decision waits for late "
        "labels; None when no re-check is scheduled.",
    )

    @property
    def dedup_key(self) -> str:
        return f"{self.environment}/{self.model}/{self.symptom.value}"
