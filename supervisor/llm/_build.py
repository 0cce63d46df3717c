"""Choosing the chat client: live, live and recorded, or replayed offline."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from supervisor._errors import ConfigError

from ._client import ChatClient, OpenAIChatClient
from ._config import LLMConfig
from ._replay import RecordingClient, ReplayClient


def build_chat_client(
    config: LLMConfig,
    *,
    max_retries: int = 3,
    record_dir: Path | None = None,
    replay_dir: Path | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ChatClient:
    """The client for ``config``: replay (offline) wins; record wraps the live client.

    Args:
        config: The endpoint and model.
        max_retries: Retries per call (``limits.max_retries``).
        record_dir: Save every exchange here (``eval --record DIR``).
        replay_dir: Answer only from exchanges saved here (``eval --replay DIR``); no network.
        sleep: How retries wait (injected in tests).
    """
    if record_dir is not None and replay_dir is not None:
        raise ConfigError("record and replay exclude each other; pass one of --record, --replay")
    if config.model is None:
        raise ConfigError(
            "no LLM model is configured; set llm.model (and llm.base_url) in the config, "
            "MLOPS_SUPERVISOR_LLM__MODEL, or the eval flags, or use the rules reasoner"
        )
    if replay_dir is not None:
        return ReplayClient(replay_dir)
    live = OpenAIChatClient(config, max_retries=max_retries, sleep=sleep)
    return live if record_dir is None else RecordingClient(live, record_dir)
