"""Tool results, evidence, diagnoses and action plans: what a reasoner produces."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._vocab import ActionType, RootCause

JsonScalar = str | int | float | bool | None
"""A scalar that survives a JSON round trip."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolStatus(StrEnum):
    """Every tool result carries one. ``no_data`` is never a silent "healthy"."""

    OK = "ok"
    NO_DATA = "no_data"
    ERROR = "error"


class ToolResult(_Strict):
    """The typed outcome of one read-only tool call."""

    call_id: str = Field(description="Unique id of the call; evidence cites it.")
    tool: str = Field(description="Name of the tool called.")
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments it was called with.")
    status: ToolStatus
    data: dict[str, Any] = Field(default_factory=dict, description="The answer, when status is ok.")
    message: str = Field(default="", description="Why there is no data, or what failed.")
    observed_at: datetime | None = Field(default=None, description="Backend time of the answer.")

    @property
    def ok(self) -> bool:
        return self.status is ToolStatus.OK


class Evidence(_Strict):
    """One finding, resting on one tool result the reasoner actually received."""

    call_id: str = Field(description="The ToolResult.call_id this finding rests on.")
    tool: str = Field(description="The tool that produced it.")
    finding: str = Field(description="What the result shows, in one sentence.")
    supports: bool = Field(default=True, description="True if it supports the diagnosis.")


class RuledOut(_Strict):
    """An alternative root cause the reasoner considered and rejected."""

    root_cause: RootCause
    reason: str = Field(description="Why it was rejected, citing the evidence.")
    call_ids: list[str] = Field(default_factory=list, description="Tool results behind the reason.")


class TimeWindow(_Strict):
    """A half-open interval of backend time [start, end)."""

    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.end <= self.start:
            raise ValueError(f"window end {self.end!r} must be after start {self.start!r}")
        return self


class Diagnosis(_Strict):
    """One root cause from the closed taxonomy, with the evidence behind it."""

    root_cause: RootCause
    confidence: float = Field(ge=0.0, le=1.0, description="How sure the reasoner is, 0..1.")
    summary: str = Field(description="One paragraph a human can read.")
    evidence: list[Evidence] = Field(default_factory=list)
    ruled_out: list[RuledOut] = Field(default_factory=list)
    playbook: str | None = Field(default=None, description="Id of the playbook that matched.")
    reasoner: str = Field(default="rules", description="Which reasoner produced it.")
    poisoned_windows: list[TimeWindow] = Field(
        default_factory=list, description="Data windows that must not be trained on."
    )

    @model_validator(mode="after")
    def _evidence_required(self) -> Diagnosis:
        if self.root_cause is not RootCause.INSUFFICIENT_EVIDENCE and not self.evidence:
            raise ValueError(
                f"diagnosis {self.root_cause.value!r} cites no evidence; "
                "cite at least one tool result or diagnose 'insufficient_evidence'"
            )
        return self


class ActionTarget(_Strict):
    """What an action changes."""

    model: str
    environment: str
    version: str | None = Field(default=None, description="Version the action aims at, if any.")


class ActionPlan(_Strict):
    """One action from the closed set, proposed for one incident."""

    action: ActionType
    target: ActionTarget
    parameters: dict[str, JsonScalar] = Field(default_factory=dict)
    expected_effect: str = Field(description="What should be true once it worked.")
    undo: str = Field(description="How to undo it, in words a human can follow.")
    undo_action: ActionType | None = Field(default=None, description="The action that undoes it.")
    rationale: str = Field(default="", description="Why this action for this diagnosis.")

    def intended_state(self) -> str:
        """A canonical text of the end state the action aims at (part of its idempotency key)."""
        return json.dumps(
            {"version": self.target.version, "parameters": self.parameters}, sort_keys=True
        )

    def idempotency_key(self, incident_id: str) -> str:
        """Same incident, action, target and intended state: same key, whatever the run."""
        raw = "|".join(
            [
                incident_id,
                self.action.value,
                f"{self.target.environment}/{self.target.model}",
                self.intended_state(),
            ]
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:32]
