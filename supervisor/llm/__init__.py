"""The LLM boundary: an OpenAI-compatible chat client with one retry policy, record and replay,
prompts that quote untrusted text as data, the validated answer model, token budget and cost.

Nothing here imports ``openai`` until a live client is built, and nothing here decides: the LLM
reasoner (:mod:`supervisor.reasoners`) turns answers into findings and the guard decides.
"""

from ._answer import ALLOWED_PARAMETERS, AnswerEvidence, AnswerRuledOut, LLMAnswer
from ._budget import DailyTokenBudget, token_cost
from ._build import build_chat_client
from ._client import (
    ChatClient,
    LLMUnavailable,
    OpenAIChatClient,
    is_retryable,
    retry_after_seconds,
    retry_policy,
)
from ._config import LLMConfig, ModelPrice
from ._prompts import data_block, suspicious_fragments, system_prompt
from ._replay import RecordingClient, ReplayClient, ReplayMiss
from ._trace import CallOutcome, traced_call
from ._types import ChatRequest, ChatResponse, LLMUsage, ToolCallRequest

__all__ = [
    "ALLOWED_PARAMETERS",
    "AnswerEvidence",
    "AnswerRuledOut",
    "CallOutcome",
    "ChatClient",
    "ChatRequest",
    "ChatResponse",
    "DailyTokenBudget",
    "LLMAnswer",
    "LLMConfig",
    "LLMUnavailable",
    "LLMUsage",
    "ModelPrice",
    "OpenAIChatClient",
    "RecordingClient",
    "ReplayClient",
    "ReplayMiss",
    "ToolCallRequest",
    "build_chat_client",
    "data_block",
    "is_retryable",
    "retry_after_seconds",
    "retry_policy",
    "suspicious_fragments",
    "system_prompt",
    "token_cost",
    "traced_call",
]
