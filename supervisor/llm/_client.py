"""The chat client: one OpenAI-compatible Chat Completions call, retried by policy.

Retry policy (data, in one place): connection errors, timeouts, 429 and 5xx are retried up to
``max_retries`` times with exponential backoff, waiting what the server's ``Retry-After`` asks
when it says (capped); other 4xx and validation errors are never retried. The openai package's
own retries are switched off so that this policy is the only one.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from supervisor._errors import ConfigError, SupervisorError

from ._config import LLMConfig
from ._types import ChatRequest, ChatResponse

if TYPE_CHECKING:
    import openai


class LLMUnavailable(SupervisorError):
    """The endpoint did not answer usefully (after retries, or with a non-retryable error)."""


class ChatClient(Protocol):
    """Sends one chat request and returns the model's response."""

    def complete(self, request: ChatRequest, *, timeout: float | None = None) -> ChatResponse:
        """Answer ``request``; ``timeout`` (seconds) caps this call. Raises LLMUnavailable."""
        ...


def retry_after_seconds(error: BaseException | None) -> float | None:
    """The wait a 429/503 response asks for (``retry-after-ms`` or ``Retry-After``), if any."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def is_retryable(error: BaseException) -> bool:
    """Connection errors, timeouts, 408, 409, 429 and 5xx; never other 4xx."""
    import openai

    if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in (408, 409, 429) or error.status_code >= 500
    return False


def retry_policy(
    max_retries: int, max_wait: float, sleep: Callable[[float], None] = time.sleep
) -> Retrying:
    """The one retry policy for LLM calls."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        hinted = retry_after_seconds(error)
        if hinted is not None:
            return min(max_wait, hinted)
        # Exponential backoff from 0.5 s with jitter, so clients that failed together spread out.
        backoff = 0.5 * 2.0 ** (state.attempt_number - 1) + random.uniform(0, 0.5)
        return min(max_wait, backoff)

    return Retrying(
        stop=stop_after_attempt(max_retries + 1),
        wait=wait,
        retry=retry_if_exception(is_retryable),
        sleep=sleep,
        reraise=True,
    )


def _describe(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    kind = type(error).__name__
    return f"{kind} (HTTP {status})" if status is not None else kind


class OpenAIChatClient:
    """Chat Completions through the ``openai`` package against any OpenAI-compatible endpoint."""

    def __init__(
        self,
        config: LLMConfig,
        *,
        max_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        import openai  # heavy: imported only when an LLM is really used

        if config.model is None:
            raise ConfigError("llm.model is not set; name the model to use, e.g. llm.model: gpt-4o")
        env = os.environ if environ is None else environ
        key = None
        if config.api_key_env is not None:
            key = env.get(config.api_key_env)
            if not key:
                raise ConfigError(
                    f"environment variable {config.api_key_env!r} (llm.api_key_env) is not set; "
                    "export the API key there, or set llm.api_key_env: null for an endpoint "
                    "without keys"
                )
        self.config = config
        self.max_retries = max_retries
        self._sleep = sleep
        self._client: openai.OpenAI = openai.OpenAI(
            api_key=key or "no-key",
            base_url=config.base_url,
            timeout=openai.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
            max_retries=0,
        )

    def complete(self, request: ChatRequest, *, timeout: float | None = None) -> ChatResponse:
        import openai

        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.tools:
            kwargs["tools"] = request.tools
        if request.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        if timeout is not None:
            kwargs["timeout"] = max(0.05, min(timeout, self.config.timeout_seconds))
        policy = retry_policy(self.max_retries, self.config.max_retry_wait_seconds, self._sleep)
        try:
            completion = policy(self._client.chat.completions.create, **kwargs)
        except openai.OpenAIError as err:
            attempts = policy.statistics.get("attempt_number", 1)
            raise LLMUnavailable(
                f"LLM endpoint {self.config.base_url or 'default'!r} failed for model "
                f"{request.model!r} after {attempts} attempt(s): {_describe(err)}"
            ) from err
        return ChatResponse.from_body(completion.model_dump(mode="json"))
