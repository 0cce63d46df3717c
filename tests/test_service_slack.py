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
