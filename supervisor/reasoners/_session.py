"""An investigation session: the bounded, recorded way a reasoner calls tools."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from supervisor.config import Limits
from supervisor.domain import Incident, ToolResult
from tools._toolkit import ToolContext, ToolRegistry


class BudgetExceeded(Exception):
    """A per-incident bound was hit; the investigation ends as insufficient_evidence."""

    def __init__(self, bound: str, limit: float) -> None:
        super().__init__(f"investigation bound {bound!r} reached (limit {limit})")
        self.bound = bound
        self.limit = limit


def _call_key(tool: str, args: dict[str, Any]) -> str:
    return tool + json.dumps(args, sort_keys=True, default=str)


class InvestigationSession:
    """Calls read-only tools for one incident, within its limits, recording every result.

    Identical calls are answered from the session's cache: they count once and are recorded once.
    """

    def __init__(
        self,
        incident: Incident,
        registry: ToolRegistry,
        tool_ctx: ToolContext,
        limits: Limits,
        *,
        on_result: Callable[[ToolResult], None] = lambda r: None,
        span: Callable[[str], AbstractContextManager[object]] = lambda name: nullcontext(),
        monotonic: Callable[[], float] = time.monotonic,
        prefix: str = "t",
    ) -> None:
        self.incident = incident
        self.registry = registry
        self.tool_ctx = tool_ctx
        self.limits = limits
        self.results: list[ToolResult] = []
        self._cache: dict[str, ToolResult] = {}
        self._on_result = on_result
        self._span = span
        self._prefix = prefix
        self._monotonic = monotonic
        self._started = monotonic()

    @property
    def tool_calls(self) -> int:
        return len(self.results)

    def call(self, tool: str, args: dict[str, Any] | None = None) -> ToolResult:
        """Call ``tool`` for the incident's model (``model`` is filled in) within the bounds."""
        full = {"model": self.incident.model, **(args or {})}
        key = _call_key(tool, full)
        if key in self._cache:
            return self._cache[key]
        if self.tool_calls >= self.limits.max_tool_calls:
            raise BudgetExceeded("max_tool_calls", self.limits.max_tool_calls)
        if self._monotonic() - self._started > self.limits.max_wall_seconds:
            raise BudgetExceeded("max_wall_seconds", self.limits.max_wall_seconds)
        call_id = f"{self.incident.id}:{self._prefix}{self.tool_calls + 1}"
        with self._span(tool):
            result = self.registry.call(self.tool_ctx, tool, full, call_id=call_id)
            self._cache[key] = result
            self.results.append(result)
            self._on_result(result)
        return result
