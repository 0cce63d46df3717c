"""LLM settings: endpoint, model, timeouts, output bounds, daily budget, prices and audit detail.

Per-incident bounds (steps, LLM calls, tokens, wall time, retries) live in
:class:`supervisor.config.Limits`, next to the tool-call bound, so every reasoner shares them.
With the defaults no model is configured and only the rules reasoner can run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelPrice(_Strict):
    """What one model costs, in US dollars per million tokens."""

    input_per_million: float = Field(ge=0, description="USD per 1M prompt tokens.")
    output_per_million: float = Field(ge=0, description="USD per 1M completion tokens.")


class LLMConfig(_Strict):
    """An OpenAI-compatible Chat Completions endpoint and how the LLM reasoner may use it."""

    model: str | None = Field(
        default=None, description="Model name sent to the endpoint; None: no LLM is configured."
    )
    base_url: str | None = Field(
        default=None,
        description="Endpoint base URL, e.g. http://vllm:8000/v1; None: the openai package's "
        "default (OPENAI_BASE_URL, else api.openai.com).",
    )
    api_key_env: str | None = Field(
        default="OPENAI_API_KEY",
        description="Environment variable holding the API key (never the key itself); None for "
        "endpoints that need no key.",
    )
    system: str = Field(
        default="openai",
        description="gen_ai.system / provider reported on spans (openai, vllm, ollama, ...).",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="Read timeout per request.")
    connect_timeout_seconds: float = Field(default=5.0, gt=0, description="Connect timeout.")
    max_retry_wait_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Longest wait between retries, also when the server's Retry-After asks more.",
    )
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature.")
    max_output_tokens: int = Field(
        default=1024, ge=16, description="Completion tokens per call (also capped per incident)."
    )
    max_reasks: int = Field(
        default=2,
        ge=0,
        le=5,
        description="Corrective re-asks after an invalid final answer before giving up.",
    )
    max_tool_output_chars: int = Field(
        default=4000, ge=200, description="Tool results are cut to this many characters, noted."
    )
    daily_token_budget: int | None = Field(
        default=2_000_000, ge=0, description="Tokens per UTC day across incidents; None: no cap."
    )
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Price per model name, for the cost of each incident."
    )
    hybrid_min_confidence: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Hybrid: a rules diagnosis at or above this confidence is kept as is.",
    )
    hybrid_explain: bool = Field(
        default=False,
        description="Hybrid: ask the LLM to write the human explanation of a rules diagnosis.",
    )
    audit_text: Literal["hash", "full"] = Field(
        default="hash",
        description="Audit each prompt and response as a sha256 (hash) or as redacted text too "
        "(full).",
    )

    @property
    def configured(self) -> bool:
        """Whether a model is set, so the llm and hybrid reasoners can run."""
        return self.model is not None

    def price(self) -> ModelPrice | None:
        """The configured model's price, if the price table has it."""
        return None if self.model is None else self.prices.get(self.model)
