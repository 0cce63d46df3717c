"""The reasoner interface every reasoner (rules, LLM, hybrid) implements."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from supervisor.domain import ActionType, Diagnosis, Incident, JsonScalar

from ._session import InvestigationSession


class Finding(BaseModel):
    """A diagnosis plus the action the reasoner recommends for it (the guard still decides)."""

    model_config = ConfigDict(extra="forbid")

    diagnosis: Diagnosis
    action: ActionType
    parameters: dict[str, JsonScalar] = Field(default_factory=dict)
    rationale: str = ""


class Reasoner(Protocol):
    """Chooses read-only tool calls and names one root cause from the closed taxonomy."""

    name: str

    def investigate(self, incident: Incident, session: InvestigationSession) -> Finding:
        """Investigate ``incident`` through ``session`` (the only way to call tools)."""
        ...
