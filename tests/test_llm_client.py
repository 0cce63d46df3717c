"""The chat client through the real ``openai`` package against a loopback fake server: parsing,
the retry policy (429 with Retry-After, 5xx, timeouts; never other 4xx), record and replay, the
daily token budget and cost."""

from __future__ import annotations

import importlib
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, call, error, reply, slow

from supervisor import ConfigError
from supervisor.llm import (
    ChatRequest,
    DailyTokenBudget,
    LLMConfig,
    LLMUnavailable,
    ModelPrice,
    OpenAIChatClient,
    RecordingClient,
    ReplayClient,
    ReplayMiss,
    build_chat_client,
    token_cost,
)


def _config(fake: FakeOpenAI, **kw: object) -> LLMConfig:
    return LLMConfig.model_validate({"model": "fake-model", "base_url": fake.base_url, **kw})


def _request(text: str = "hello") -> ChatRequest:
    return ChatRequest(
        model="fake-model", messages=[{"role": "user", "content": text}], max_tokens=64
    )


class Sleeps:
    """An injected sleep: records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_completion_with_tool_calls_is_parsed_and_tools_are_sent() -> None:
    tools = [{"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}}]
    with FakeOpenAI([reply(tool_calls=[call("t", {"x": 1})], prompt_tokens=11)]) as fake:
        client = OpenAIChatClient(_config(fake))
        resp = client.complete(_request().model_copy(update={"tools": tools}))
    assert resp.finish_reason == "tool_calls"
    assert [(t.name, json.loads(t.arguments)) for t in resp.tool_calls] == [("t", {"x": 1})]
    assert (resp.input_tokens, resp.output_tokens) == (11, 20)
    sent = fake.requests[0]
    assert sent["model"] == "fake-model" and sent["tools"] == tools and sent["max_tokens"] == 64


def test_429_is_retried_after_the_servers_retry_after() -> None:
    sleeps = Sleeps()
    with FakeOpenAI([error(429, retry_after="2"), reply("ok")]) as fake:
        resp = OpenAIChatClient(_config(fake), max_retries=3, sleep=sleeps).complete(_request())
    assert resp.content == "ok"
    assert sleeps.waits == [2.0]
    assert len(fake.requests) == 2


def test_retry_after_is_capped_by_config() -> None:
    sleeps = Sleeps()
    with FakeOpenAI([error(429, retry_after="3600"), reply("ok")]) as fake:
        client = OpenAIChatClient(_config(fake, max_retry_wait_seconds=5), sleep=sleeps)
        client.complete(_request())
    assert sleeps.waits == [5.0]


def test_5xx_is_retried_with_backoff_up_to_max_retries() -> None:
    sleeps = Sleeps()
    with FakeOpenAI([error(500), error(503), error(502)]) as fake:
        client = OpenAIChatClient(_config(fake), max_retries=2, sleep=sleeps)
        with pytest.raises(LLMUnavailable, match=r"after 3 attempt\(s\).*HTTP 502"):
            client.complete(_request())
    assert len(fake.requests) == 3
    assert len(sleeps.waits) == 2 and all(0 < w <= 30 for w in sleeps.waits)


def test_other_4xx_are_never_retried() -> None:
    sleeps = Sleeps()
    with FakeOpenAI([error(400, "bad request"), reply("never reached")]) as fake:
        client = OpenAIChatClient(_config(fake), max_retries=3, sleep=sleeps)
        with pytest.raises(LLMUnavailable, match="HTTP 400"):
            client.complete(_request())
    assert len(fake.requests) == 1 and sleeps.waits == []


def test_a_timeout_is_retried_then_reported() -> None:
    sleeps = Sleeps()
    script = [slow(reply("late"), 1.0), slow(reply("late"), 1.0)]
    with FakeOpenAI(script) as fake:
        client = OpenAIChatClient(_config(fake, timeout_seconds=0.2), max_retries=1, sleep=sleeps)
        started = time.perf_counter()
        with pytest.raises(LLMUnavailable, match="APITimeoutError"):
            client.complete(_request())
    assert time.perf_counter() - started < 1.5
    assert len(fake.requests) == 2 and len(sleeps.waits) == 1


def test_missing_api_key_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="'MY_LLM_KEY'"):
        OpenAIChatClient(LLMConfig(model="m", api_key_env="MY_LLM_KEY"), environ={})


def test_default_endpoint_in_tests_is_dead_loopback() -> None:
    # The autouse guard points OPENAI_BASE_URL at a closed loopback port: an unconfigured base
    # URL can never reach a real endpoint from a test.
    client = OpenAIChatClient(LLMConfig(model="gpt-x"), max_retries=0)
    with pytest.raises(LLMUnavailable, match="APIConnectionError"):
        client.complete(_request())


def test_no_model_means_no_client() -> None:
    with pytest.raises(ConfigError, match=r"llm\.model"):
        build_chat_client(LLMConfig())


def test_record_then_replay_offline(tmp_path: Path) -> None:
    with FakeOpenAI([reply("first"), reply("second")]) as fake:
        live = RecordingClient(OpenAIChatClient(_config(fake)), tmp_path)
        a = live.complete(_request("one"))
        b = live.complete(_request("two sk-abcdefghijklmnopqrstuvwx"))
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 2
    assert "sk-abcdefghijklmnop" not in "".join(f.read_text() for f in files)  # redacted
    replay = ReplayClient(tmp_path)  # no server now: replay never touches the network
    assert replay.complete(_request("two sk-abcdefghijklmnopqrstuvwx")) == b
    assert replay.complete(_request("one")) == a
    with pytest.raises(ReplayMiss, match="ending 'three'"):
        replay.complete(_request("three"))


def test_build_chat_client_modes(tmp_path: Path) -> None:
    cfg = LLMConfig(model="m", base_url="http://127.0.0.1:9/v1")
    assert isinstance(build_chat_client(cfg, record_dir=tmp_path), RecordingClient)
    assert isinstance(build_chat_client(cfg, replay_dir=tmp_path), ReplayClient)
    assert isinstance(build_chat_client(cfg), OpenAIChatClient)
    with pytest.raises(ConfigError, match="exclude"):
        build_chat_client(cfg, record_dir=tmp_path, replay_dir=tmp_path)
    with pytest.raises(ReplayMiss, match="does not exist"):
        build_chat_client(cfg, replay_dir=tmp_path / "nope")


def test_daily_budget_rolls_over_and_persists(tmp_path: Path) -> None:
    now = [datetime(2026, 1, 5, 23, 0, tzinfo=UTC)]
    path = tmp_path / "budget.json"
    budget = DailyTokenBudget(1000, lambda: now[0], path)
    budget.charge(600)
    assert budget.remaining() == 400 and not budget.exhausted()
    budget.charge(500)
    assert budget.exhausted()
    assert DailyTokenBudget(1000, lambda: now[0], path).exhausted()  # survives a restart
    now[0] += timedelta(hours=2)
    assert budget.remaining() == 1000
    assert DailyTokenBudget(None, lambda: now[0]).remaining() is None


def test_cost_from_price_table() -> None:
    price = ModelPrice(input_per_million=2.5, output_per_million=10.0)
    assert token_cost(price, 1_000_000, 100_000) == pytest.approx(3.5)
    assert token_cost(None, 10, 10) is None
    cfg = LLMConfig(model="m", prices={"m": price})
    assert cfg.price() == price and cfg.configured and not LLMConfig().configured


def test_public_exports_are_curated() -> None:
    mod = importlib.import_module("supervisor.llm")
    exported = mod.__all__
    assert sorted(exported) == exported and len(set(exported)) == len(exported)
    assert all(hasattr(mod, s) for s in exported)
    public = {
        n for n in vars(mod) if not n.startswith("_") and not isinstance(getattr(mod, n), type(mod))
    }
    assert public <= set(exported)
