"""The typed dependencies every graph node receives (LangGraph ``context_schema``).

Nothing reaches a node through a module global: backends, reasoner, guard, executor, recorder
and clock all come in here, so a test or the demo can wire a simulated world and a real
service can wire real adapters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from supervisor._clock import Clock
from supervisor._recorder import Recorder
from supervisor.config import SupervisorConfig, WatchedModel
from supervisor.executor import Executor
from supervisor.policy import ActionHistory, PolicyEngine
from supervisor.reasoners import Reasoner
from tools._toolkit import ToolContext, ToolRegistry


class VerifyPending(Exception):
    """Raised by the verify node when the settle time has not passed and waits are deferred:
    the graph stops at its last checkpoint (after act) and resumes at ``due``."""

    def __init__(self, incident_id: str, due: datetime) -> None:
        super().__init__(f"verification of {incident_id!r} is due at {due.isoformat()}")
        self.incident_id = incident_id
        self.due = due


class RecheckPending(Exception):
    """Raised by the await_labels node when a decision waits for late labels and waits are
    deferred: the graph stops at its last checkpoint (after diagnose) and the runtime resumes
    it at ``due`` (the incident index keeps ``due``, so a restart does too)."""

    def __init__(self, incident_id: str, due: datetime) -> None:
        super().__init__(f"re-check of {incident_id!r} is due at {due.isoformat()}")
        self.incident_id = incident_id
        self.due = due


@dataclass(frozen=True)
class SupervisorContext:
    """Run-scoped dependencies of the incident graph."""

    config: SupervisorConfig
    clock: Clock
    tools: ToolRegistry
    tool_ctx: ToolContext
    reasoner: Reasoner
    guard: PolicyEngine
    history: ActionHistory
    executor: Executor
    recorder: Recorder
    reports_dir: Path
    #: Verify waits out its settle time by raising :class:`VerifyPending` (the service: no
    #: worker sleeps; a timer resumes the incident) instead of sleeping on the clock.
    defer_waits: bool = False

    def watched(self, model: str, environment: str) -> WatchedModel:
        found = self.config.model_for(model, environment)
        if found is None:  # the incident manager only opens incidents for watched models
            raise KeyError(f"model {model!r} in {environment!r} is not in the watch config")
        return found
