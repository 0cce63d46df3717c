"""The LLM reasoner: an OpenAI-compatible model chooses read-only tool calls and names one root
cause, under the same bounds and the same validation as the rules reasoner.

Every tool call goes through the :class:`InvestigationSession` (bounded, cached, audited); the
model sees only the session's read-only tools, with ``model`` fixed to the incident's. Its final
answer is JSON validated into a :class:`Finding` (closed root causes and actions, evidence citing
only results it received). Invalid answers get ``llm.max_reasks`` corrective re-asks; a bound,
an endpoint failure or a persistently invalid answer ends as ``insufficient_evidence`` with an
escalation. The reasoner never decides: the guard reads the plan and diagnosis fields only.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import Tracer
from pydantic import ValidationError

from supervisor.domain import (
    Diagnosis,
    Evidence,
    Incident,
    RootCause,
    RuledOut,
    ToolResult,
)
from supervisor.llm import (
    ChatClient,
    ChatRequest,
    ChatResponse,
    DailyTokenBudget,
    LLMAnswer,
    LLMConfig,
    LLMUsage,
    ReplayMiss,
    suspicious_fragments,
    system_prompt,
    token_cost,
    traced_call,
)
from supervisor.llm._prompts import (
    EXPLAIN_PROMPT,
    correction_text,
    explain_message,
    incident_message,
    refusal_text,
    tool_result_text,
)

from ._base import Finding
from ._rules import insufficient
from ._session import BudgetExceeded, InvestigationSession

LLMCallback = Callable[[dict[str, Any]], None]

#: Incidents whose usage the reasoner keeps in memory (the audit log keeps all of them).
_KEPT_USAGE = 1000


def _tool_key(tool: str, args: dict[str, Any]) -> str:
    return tool + json.dumps(args, sort_keys=True, default=str)


def _scoped_schemas(session: InvestigationSession) -> list[dict[str, Any]]:
    """The session's tool schemas without ``model``: the session fixes it to the incident's."""
    out = []
    for schema in session.registry.openai_schemas():
        schema = json.loads(json.dumps(schema))
        params = schema["function"]["parameters"]
        params.get("properties", {}).pop("model", None)
        if "required" in params:
            params["required"] = [r for r in params["required"] if r != "model"]
        out.append(schema)
    return out


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def _json_object(content: str) -> Any:
    """The JSON object in ``content``: tolerant of a code fence or words around it."""
    m = _FENCE.match(content)
    text = m.group(1) if m else content.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            raise
        return json.loads(text[start : end + 1])


class LLMReasoner:
    """Investigates with an LLM through an OpenAI-compatible chat client.

    Args:
        client: The chat client (live, recording or replaying; see ``build_chat_client``).
        config: The ``llm`` section of the config (model, output bounds, re-asks, prices).
        budget: The daily token budget shared by all incidents; None: no daily cap.
        on_llm_call: Receives one dict per LLM event (call, refused tool call, rejected answer,
            untrusted instructions seen, bound hit) for the audit log; set it after construction
            when the recorder is built later.
        tracer: OpenTelemetry tracer for the ``chat {model}`` spans; default: the global one.
        monotonic: Seconds clock for wall-time bounds and latency.
        name: Reported as ``Diagnosis.reasoner``.
    """

    def __init__(
        self,
        client: ChatClient,
        config: LLMConfig,
        *,
        budget: DailyTokenBudget | None = None,
        on_llm_call: LLMCallback | None = None,
        tracer: Tracer | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        name: str = "llm",
    ) -> None:
        if config.model is None:
            from supervisor._errors import ConfigError

            raise ConfigError("the llm reasoner needs llm.model; set it or use reasoner: rules")
        self.client = client
        self.config = config
        self.budget = budget
        self.on_llm_call = on_llm_call
        self.tracer = tracer
        self.monotonic = monotonic
        self.name = name
        #: Usage per incident id, for the eval report and the incident report.
        self.usage: dict[str, LLMUsage] = {}

    def usage_for(self, incident_id: str) -> LLMUsage:
        """What the LLM cost ``incident_id`` (zero if it was never asked)."""
        return self.usage.get(incident_id, LLMUsage())

    def investigate(self, incident: Incident, session: InvestigationSession) -> Finding:
        """Investigate ``incident`` through ``session``; see the module docstring."""
        return self.investigate_with(incident, session)

    def investigate_with(
        self, incident: Incident, session: InvestigationSession, *, context: str | None = None
    ) -> Finding:
        """Investigate, with ``context`` (already-quoted text we wrote) after the incident."""
        run = _Investigation(self, incident, session, context)
        finding = run.run()
        # One record per investigation with its totals: the eval report and reviewers read
        # tokens, cost and latency per incident from the audit log alone.
        self.emit(incident.id, {"event": "llm_usage", **run.usage.model_dump(mode="json")})
        return finding

    def explain(self, incident: Incident, session: InvestigationSession, finding: Finding) -> str:
        """A human explanation of ``finding`` in one bounded call; "" when it cannot be had."""
        run = _Investigation(self, incident, session, None)
        if run.bound() is not None:
            return ""
        diagnosis = finding.diagnosis.model_dump(mode="json", exclude={"ruled_out"})
        messages = [
            {"role": "system", "content": EXPLAIN_PROMPT},
            {
                "role": "user",
                "content": explain_message(
                    {**diagnosis, "action": finding.action.value},
                    limit=self.config.max_tool_output_chars,
                ),
            },
        ]
        response = run.call(messages, tools=False)
        if response is None or not response.content:
            return ""
        return response.content.strip()[:1500]

    def emit(self, incident_id: str, record: dict[str, Any]) -> None:
        if self.on_llm_call is not None:
            self.on_llm_call({"incident_id": incident_id, "reasoner": self.name, **record})


class _Investigation:
    """One incident's conversation with the model, and its bounds."""

    def __init__(
        self,
        reasoner: LLMReasoner,
        incident: Incident,
        session: InvestigationSession,
        context: str | None,
    ) -> None:
        self.r = reasoner
        self.cfg = reasoner.config
        self.incident = incident
        self.session = session
        self.limits = session.limits
        self.context = context
        self.usage = reasoner.usage.setdefault(incident.id, LLMUsage())
        while len(reasoner.usage) > _KEPT_USAGE:  # a long-running service: keep the newest
            reasoner.usage.pop(next(iter(reasoner.usage)))
        self.started = reasoner.monotonic()
        self.steps = 0
        self.error = ""
        # Calls already answered, by tool and arguments (without the fixed model).
        self.seen: dict[str, str] = {}
        for r in session.results:
            args = {k: v for k, v in r.args.items() if k != "model"}
            self.seen.setdefault(_tool_key(r.tool, args), r.call_id)

    # ------------------------------------------------------------------ bounds

    def bound(self) -> str | None:
        """The bound that stops the next LLM call, if any."""
        lim, u = self.limits, self.usage
        if u.llm_calls >= lim.max_llm_calls:
            return f"max_llm_calls ({lim.max_llm_calls}) reached"
        if self.steps >= lim.max_steps:
            return f"max_steps ({lim.max_steps}) reached"
        if u.total_tokens >= lim.max_tokens:
            return f"max_tokens ({lim.max_tokens}) reached: {u.total_tokens} used"
        if self.r.monotonic() - self.started >= lim.max_wall_seconds:
            return f"max_wall_seconds ({lim.max_wall_seconds}) reached"
        if self.r.budget is not None and self.r.budget.exhausted():
            return f"daily token budget ({self.r.budget.limit}) exhausted"
        return None

    def stop(self, why: str) -> Finding:
        self.usage.stopped_by = why
        self.r.emit(self.incident.id, {"event": "investigation_stopped", "reason": why})
        finding = insufficient(f"LLM investigation stopped: {why}", [], self.session.results)
        return _relabel(finding, self.r.name)

    # ------------------------------------------------------------------ calls

    def call(self, messages: list[dict[str, Any]], *, tools: bool = True) -> ChatResponse | None:
        """One LLM call within the bounds; the response, or None when it failed."""
        remaining = self.limits.max_tokens - self.usage.total_tokens
        request = ChatRequest(
            model=self.cfg.model or "",
            messages=messages,
            tools=_scoped_schemas(self.session) if tools else [],
            temperature=self.cfg.temperature,
            max_tokens=max(1, min(self.cfg.max_output_tokens, remaining)),
        )
        wall_left = self.limits.max_wall_seconds - (self.r.monotonic() - self.started)
        self.steps += 1
        outcome = traced_call(
            self.r.client,
            request,
            config=self.cfg,
            tracer=self.r.tracer,
            incident_id=self.incident.id,
            step=self.steps,
            timeout=max(0.05, wall_left),
            monotonic=self.r.monotonic,
        )
        self.r.emit(self.incident.id, outcome.record)
        if isinstance(outcome.error, ReplayMiss):
            raise outcome.error  # a replay that does not match must fail the run, loudly
        self.usage.latency_seconds = round(self.usage.latency_seconds + outcome.latency_seconds, 4)
        response = outcome.response
        if response is None:
            self.error = f"the LLM endpoint failed: {outcome.error}"
            return None
        self.usage.llm_calls += 1
        self.usage.input_tokens += response.input_tokens
        self.usage.output_tokens += response.output_tokens
        self.usage.cost_usd = token_cost(
            self.cfg.price(), self.usage.input_tokens, self.usage.output_tokens
        )
        if self.r.budget is not None:
            self.r.budget.charge(response.input_tokens + response.output_tokens)
        return response

    # ------------------------------------------------------------------ the loop

    def run(self) -> Finding:
        limit = self.cfg.max_tool_output_chars
        self.audit_untrusted([(r.call_id, r) for r in self.session.results])
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt()},
            {
                "role": "user",
                "content": incident_message(
                    self.incident, self.session.results, limit=limit, context=self.context
                ),
            },
        ]
        while True:
            why = self.bound()
            if why is not None:
                return self.stop(why)
            response = self.call(messages)
            if response is None:
                return self.stop(self.error)
            if self.usage.total_tokens > self.limits.max_tokens:
                return self.stop(
                    f"max_tokens ({self.limits.max_tokens}) exceeded: "
                    f"{self.usage.total_tokens} used"
                )
            messages.append(response.assistant_message())
            if response.tool_calls:
                try:
                    for tc in response.tool_calls:
                        content = self.run_tool(tc.name, tc.arguments)
                        messages.append({"role": "tool", "tool_call_id": tc.id, "content": content})
                except BudgetExceeded as err:
                    return self.stop(str(err))
                continue
            finding, problems = self.parse(response.content, response.finish_reason)
            if finding is not None:
                return finding
            self.r.emit(self.incident.id, {"event": "answer_rejected", "problems": problems})
            if self.usage.reasks >= self.cfg.max_reasks:
                return self.stop(
                    f"no valid answer after {self.usage.reasks} corrective re-ask(s): "
                    + "; ".join(problems)[:500]
                )
            self.usage.reasks += 1
            messages.append({"role": "user", "content": correction_text(problems)})

    def refuse(self, tool: str, reason: str) -> str:
        self.r.emit(
            self.incident.id, {"event": "tool_call_refused", "tool": tool, "reason": reason}
        )
        return refusal_text(reason)

    def run_tool(self, tool: str, raw_args: str) -> str:
        """Run one requested tool call through the session, or say why it was refused."""
        self.steps += 1
        if tool not in self.session.registry.tools:
            return self.refuse(
                tool, f"unknown tool {tool!r}; available: {self.session.registry.names()}"
            )
        try:
            args = json.loads(raw_args or "{}")
        except json.JSONDecodeError as err:
            return self.refuse(tool, f"arguments are not valid JSON ({err.msg})")
        if not isinstance(args, dict):
            return self.refuse(tool, "arguments must be a JSON object")
        model = args.pop("model", self.incident.model)
        if model != self.incident.model:
            return self.refuse(
                tool, f"this investigation is about model {self.incident.model!r} only"
            )
        key = _tool_key(tool, args)
        if key in self.seen:
            return self.refuse(
                tool,
                f"identical call already answered as call_id {self.seen[key]}; use that result",
            )
        if self.steps > self.limits.max_steps:
            raise BudgetExceeded("max_steps", self.limits.max_steps)
        result = self.session.call(tool, args)
        self.seen[key] = result.call_id
        self.usage.tool_calls += 1
        self.audit_untrusted([(result.call_id, result)])
        text, truncated = tool_result_text(result, limit=self.cfg.max_tool_output_chars)
        if truncated:
            self.r.emit(
                self.incident.id,
                {"event": "tool_output_truncated", "call_id": result.call_id, "limit": len(text)},
            )
        return text

    def audit_untrusted(self, results: list[tuple[str, ToolResult]]) -> None:
        """Record instruction-like text in tool output: it changes nothing, but is on record."""
        for call_id, result in results:
            hits = suspicious_fragments({"message": result.message, "data": result.data})
            if hits:
                self.r.emit(
                    self.incident.id,
                    {
                        "event": "untrusted_instructions",
                        "call_id": call_id,
                        "tool": result.tool,
                        "fragments": hits,
                    },
                )

    # ------------------------------------------------------------------ the answer

    def parse(self, content: str | None, finish: str | None) -> tuple[Finding | None, list[str]]:
        """Validate the final answer into a Finding, or list what is wrong with it."""
        if not content or not content.strip():
            return None, ["the reply had neither a tool call nor a JSON answer"]
        try:
            raw = _json_object(content)
        except json.JSONDecodeError as err:
            cut = (
                " (the reply was cut off at the token limit; be brief)"
                if finish == "length"
                else ""
            )
            return None, [f"the reply is not a JSON object: {err.msg}{cut}"]
        try:
            answer = LLMAnswer.model_validate(raw)
        except ValidationError as err:
            return None, [
                f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
                for e in err.errors(include_url=False, include_input=False)
            ]
        received = {r.call_id: r for r in self.session.results}
        cited = [e.call_id for e in answer.evidence] + [
            c for ro in answer.ruled_out for c in ro.call_ids
        ]
        unknown = sorted({c for c in cited if c not in received})
        if unknown:
            return None, [f"cited call_ids never received: {unknown}; received: {sorted(received)}"]
        if answer.root_cause is not RootCause.INSUFFICIENT_EVIDENCE and not any(
            received[e.call_id].ok for e in answer.evidence if e.supports
        ):
            return None, [
                f"root_cause {answer.root_cause.value!r} rests on no tool result with status "
                "ok; no data or an error is not evidence"
            ]
        try:
            diagnosis = Diagnosis(
                root_cause=answer.root_cause,
                confidence=answer.confidence,
                summary=answer.summary,
                evidence=[
                    Evidence(
                        call_id=e.call_id,
                        tool=received[e.call_id].tool,
                        finding=e.finding,
                        supports=e.supports,
                    )
                    for e in answer.evidence
                ],
                ruled_out=[
                    RuledOut(root_cause=ro.root_cause, reason=ro.reason, call_ids=ro.call_ids)
                    for ro in answer.ruled_out
                ],
                reasoner=self.r.name,
            )
        except ValidationError as err:
            return None, [e["msg"] for e in err.errors(include_url=False, include_input=False)]
        return (
            Finding(
                diagnosis=diagnosis,
                action=answer.action,
                parameters=dict(answer.parameters),
                rationale=answer.rationale,
            ),
            [],
        )


def _relabel(finding: Finding, reasoner: str) -> Finding:
    diagnosis = finding.diagnosis.model_copy(update={"reasoner": reasoner})
    return finding.model_copy(update={"diagnosis": diagnosis})
