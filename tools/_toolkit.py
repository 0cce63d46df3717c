"""Typed tools: plain functions whose JSON schema is generated from signature and docstring.

A tool takes a :class:`ToolContext` first (never shown to a reasoner), then keyword arguments
with type hints, and returns a pydantic model, or ``None`` when there is no data. It may raise
:class:`supervisor.BackendError`. :meth:`ToolRegistry.call` turns all three outcomes into a
:class:`supervisor.domain.ToolResult` with status ``ok``, ``no_data`` or ``error``: errors a
reasoner can correct (bad arguments, a backend that did not answer) go back to it as data.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from supervisor._clock import Clock
from supervisor._errors import BackendError, SupervisorError
from supervisor.domain import ToolResult, ToolStatus

from ._backends import ReadBackends
from ._drift import SeasonalReference

ToolFn = Callable[..., BaseModel | None]

log = logging.getLogger("mlops_supervisor.tools")


@dataclass(frozen=True)
class ToolContext:
    """What a tool may use: read-only backends, the clock, and per-model drift settings."""

    backends: ReadBackends
    clock: Clock
    seasonality: Mapping[str, SeasonalReference] = field(default_factory=dict)
    """Model -> its seasonal drift reference (the watch config's ``drift.seasonality``)."""


@dataclass(frozen=True)
class Tool:
    """One registered tool."""

    name: str
    description: str
    fn: ToolFn
    args_model: type[BaseModel]

    def openai_schema(self) -> dict[str, Any]:
        """The tool in OpenAI Chat Completions ``tools`` format."""
        params = self.args_model.model_json_schema()
        params.pop("title", None)
        for prop in params.get("properties", {}).values():
            prop.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary and its ``Args:`` descriptions."""
    summary_lines: list[str] = []
    args: dict[str, str] = {}
    section = "summary"
    current: str | None = None
    for raw in inspect.cleandoc(doc).splitlines():
        line = raw.rstrip()
        if re.fullmatch(r"(Args|Arguments|Parameters):", line.strip()):
            section = "args"
            continue
        if re.fullmatch(r"(Returns|Raises|Yields|Examples?|Notes?):", line.strip()):
            section = "other"
            continue
        if section == "summary":
            summary_lines.append(line)
        elif section == "args":
            m = re.match(r"\s+(\w+)(?:\s*\([^)]*\))?:\s*(.*)", raw)
            if m and raw.startswith("    ") and not raw.startswith("        "):
                current = m.group(1)
                args[current] = m.group(2).strip()
            elif current and line.strip():
                args[current] += " " + line.strip()
    return " ".join(s for s in (ln.strip() for ln in summary_lines) if s), args


def make_tool(fn: ToolFn) -> Tool:
    """Build a :class:`Tool` from a typed, documented function."""
    if not fn.__doc__:
        raise SupervisorError(f"tool {fn.__name__!r} has no docstring; document it and its Args")
    description, arg_docs = _parse_docstring(fn.__doc__)
    hints = get_type_hints(fn)
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if not params or hints.get(params[0].name) is not ToolContext:
        raise SupervisorError(f"tool {fn.__name__!r} must take a ToolContext first")
    fields: dict[str, Any] = {}
    from pydantic import Field

    for p in params[1:]:
        if p.name not in arg_docs:
            raise SupervisorError(f"tool {fn.__name__!r}: argument {p.name!r} is not documented")
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (hints[p.name], Field(default, description=arg_docs[p.name]))
    args_model = create_model(
        f"{fn.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields
    )
    return Tool(name=fn.__name__, description=description, fn=fn, args_model=args_model)


@dataclass
class ToolRegistry:
    """The tools a reasoner may call. Every tool here is read-only."""

    tools: dict[str, Tool] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def of(cls, *fns: ToolFn) -> ToolRegistry:
        reg = cls()
        for fn in fns:
            tool = make_tool(fn)
            if tool.name in reg.tools:
                raise SupervisorError(f"tool {tool.name!r} is registered twice")
            reg.tools[tool.name] = tool
        return reg

    def names(self) -> list[str]:
        return sorted(self.tools)

    def openai_schemas(self) -> list[dict[str, Any]]:
        return [self.tools[n].openai_schema() for n in self.names()]

    def call(
        self, ctx: ToolContext, name: str, args: dict[str, Any], *, call_id: str
    ) -> ToolResult:
        """Run one tool; every outcome (including bad arguments) becomes a ToolResult."""

        def result(
            status: ToolStatus, message: str = "", data: dict[str, Any] | None = None
        ) -> ToolResult:
            return ToolResult(
                call_id=call_id,
                tool=name,
                args=args,
                status=status,
                observed_at=ctx.clock.now(),
                message=message,
                data=data or {},
            )

        tool = self.tools.get(name)
        if tool is None:
            return result(
                ToolStatus.ERROR, f"unknown tool {name!r}; available tools: {self.names()}"
            )
        try:
            parsed = tool.args_model.model_validate(args)
        except ValidationError as err:
            errors = err.errors(include_url=False)
            return result(ToolStatus.ERROR, f"invalid arguments for {name!r}: {errors}")
        try:
            out = tool.fn(ctx, **dict(parsed))
        except BackendError as err:
            log.warning("tool %s(%s) failed: %s", name, args, err)
            return result(ToolStatus.ERROR, str(err))
        if out is None:
            log.info("tool %s(%s): no data", name, args)
            return result(ToolStatus.NO_DATA, "the backend has no data for this request")
        return result(ToolStatus.OK, data=out.model_dump(mode="json"))
