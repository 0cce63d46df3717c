"""What crosses the LLM boundary: one chat request, one response, and the usage of an incident."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatRequest(_Strict):
    """One Chat Completions request, in the wire format's own terms."""

    model: str
    messages: list[dict[str, Any]] = Field(description="Chat messages, OpenAI format.")
    tools: list[dict[str, Any]] = Field(default_factory=list, description="Function tools.")
    temperature: float = 0.0
    max_tokens: int = Field(ge=1, description="Completion token cap for this call.")
    json_mode: bool = Field(
        default=False, description="Ask for a JSON object (response_format) instead of tools."
    )

    def canonical(self) -> str:
        """A stable text of the request: the key of record and replay, and the prompt hash."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)

    def key(self) -> str:
        """sha256 of :meth:`canonical`."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()


class ToolCallRequest(_Strict):
    """A tool call the model asked for; ``arguments`` is the model's raw JSON text."""

    id: str
    name: str
    arguments: str


class ChatResponse(_Strict):
    """The parts of a completion the reasoner uses, plus the raw body for record and replay."""

    content: str | None = None
    tool_calls: list[ToolCallRequest] = Field(default_factory=list)
    finish_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = Field(default=None, description="Model that answered, if reported.")
    id: str | None = Field(default=None, description="Response id, if reported.")

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ChatResponse:
        """Read an OpenAI Chat Completions response body (a dict, as JSON decodes it)."""
        choices = body.get("choices") or [{}]
        choice = choices[0] or {}
        message = choice.get("message") or {}
        usage = body.get("usage") or {}
        calls = [
            ToolCallRequest(
                id=str(tc.get("id") or f"call_{i}"),
                name=str((tc.get("function") or {}).get("name") or ""),
                arguments=str((tc.get("function") or {}).get("arguments") or ""),
            )
            for i, tc in enumerate(message.get("tool_calls") or [])
        ]
        return cls(
            content=message.get("content"),
            tool_calls=calls,
            finish_reason=choice.get("finish_reason"),
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            model=body.get("model"),
            id=body.get("id"),
        )

    def assistant_message(self) -> dict[str, Any]:
        """The response as the assistant message to append to the conversation."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [
                {
                    "id": tc.id,
                    "type": "function",
                    "function": {"name": tc.name, "arguments": tc.arguments},
                }
                for tc in self.tool_calls
            ]
        return msg

    def text(self) -> str:
        """A stable text of what the model said, for the response hash."""
        return json.dumps(
            {"content": self.content, "tool_calls": [t.model_dump() for t in self.tool_calls]},
            sort_keys=True,
            ensure_ascii=False,
        )


class LLMUsage(_Strict):
    """What the LLM cost one incident; the eval report shows it next to the rules reasoner."""

    llm_calls: int = 0
    tool_calls: int = Field(default=0, description="Tool calls the LLM made through the session.")
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = Field(default=None, description="None: the model has no price.")
    latency_seconds: float = Field(default=0.0, description="Wall time spent waiting on the LLM.")
    reasks: int = Field(default=0, description="Corrective re-asks after invalid answers.")
    stopped_by: str | None = Field(
        default=None, description="The bound or failure that ended the investigation, if any."
    )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
