"""`serve` with a `slack:` section mounts chat-ops and posts incidents as they move on."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_slack import start_fake_slack
from fastapi.testclient import TestClient
from servicekit import payload

from supervisor.config import config_from_dict
from supervisor.demo import demo_config
from supervisor.service import build_service


def test_service_posts_incidents_to_slack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-secret")
    slack, server = start_fake_slack()
    try:
        raw = demo_config(tmp_path / "state")
        raw["timing"]["verify_settle_seconds"] = 0
        raw["slack"] = {"channel": "C-ML", "api_base_url": slack.api_url}
        service = build_service(config_from_dict(raw, source="test"))
        try:
            with TestClient(service.app) as client:
                assert client.post("/slack/events", data={"x": "1"}).status_code == 401  # unsigned
                out = client.post("/alerts", json=payload()).json()
                service.runtime.drain(timeout=60)
            (incident,) = out["opened"]
            posted = slack.of("chat.postMessage")
            assert posted and incident in str(posted[-1].args)
        finally:
            service.close()
    finally:
        server.shutdown()
        server.server_close()


def test_an_unsigned_or_oversized_post_is_refused_before_its_body_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """M1: /slack/events read the whole body before checking the signature; an unsigned 500 MB
    chunked POST took the server from 350 MB to 1,350 MB."""
    import time

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-secret")
    slack, server = start_fake_slack()
    sent: list[int] = []

    def flood(chunks: int = 2_000, size: int = 65_536):  # type: ignore[no-untyped-def]
        for _ in range(chunks):  # 128 MiB if it were all read
            sent.append(size)
            yield b"x" * size

    try:
        raw = demo_config(tmp_path / "state")
        raw["slack"] = {"channel": "C-ML", "api_base_url": slack.api_url}
        service = build_service(config_from_dict(raw, source="test"))
        try:
            with TestClient(service.app) as client:
                res = client.post("/slack/events", content=flood())
                assert res.status_code == 401
                assert sum(sent) <= 1_048_576  # the body was not read
                sent.clear()
                looks_signed = {
                    "x-slack-signature": "v0=" + "0" * 64,
                    "x-slack-request-timestamp": str(int(time.time())),
                }
                res = client.post("/slack/events", content=flood(), headers=looks_signed)
                assert res.status_code == 413  # (the test client drains its own generator)
        finally:
            service.close()
    finally:
        server.shutdown()
        server.server_close()


def test_the_capped_reader_stops_pulling_chunks_past_the_cap() -> None:
    import asyncio

    from starlette.requests import Request

    from supervisor.chatops._app import MAX_BODY_BYTES, _read_capped

    pulled = 0

    async def receive() -> dict[str, object]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 65_536, "more_body": True}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    assert asyncio.run(_read_capped(request, MAX_BODY_BYTES)) is None
    assert pulled == MAX_BODY_BYTES // 65_536 + 1  # one chunk past the cap, then no more
