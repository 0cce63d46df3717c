"""Chat-ops parts on their own: the pause switch, the Slack config, Block Kit redaction and
escaping, Socket Mode construction, the app manifest and the package's exports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from simworld import Rig, make_rig

import supervisor.chatops as chatops
from supervisor._errors import ConfigError, SupervisorError
from supervisor.audit import verify
from supervisor.chatops import ChatOps, PauseSwitch, SlackConfig, incident_blocks
from supervisor.domain import AuditKind, Incident, IncidentStatus, Symptom

REPO = Path(__file__).resolve().parents[1]
BOT = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
APP = "xapp-1-A0MLOPS-2735462-9e5b6d1f0c6b4e8f9a1b2c3d4e5f6a7b"


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    rig = make_rig(tmp_path)
    yield rig
    rig.close()


def switch(rig: Rig) -> PauseSwitch:
    return PauseSwitch(
        rig.state_dir / "pause.json", rig.sup.recorder, rig.sup.clock, known_models=["m", "n"]
    )


def pause_data(rig: Rig) -> list[dict[str, object]]:
    return [r.data["pause"] for r in rig.records(AuditKind.INCIDENT_UPDATED) if "pause" in r.data]


# --------------------------------------------------------------------------- pause switch


def test_pause_switch_global_and_per_model(rig: Rig) -> None:
    sw = switch(rig)
    assert not sw.is_paused("m")
    assert sw.pause("m", "alice", "canary freeze") is True
    assert sw.is_paused("m") and not sw.is_paused("n")
    assert sw.pause(None, "bob") is True
    assert sw.is_paused("n")
    entry = sw.paused_by("m")
    assert entry is not None and entry.by == "bob"  # the global pause answers first
    assert sw.resume(None, "bob") is True
    assert sw.is_paused("m") and not sw.is_paused("n")  # each pause is lifted where it was set
    assert sw.resume("m", "alice") is True
    assert not sw.is_paused("m")


def test_pause_switch_persists_and_a_second_instance_sees_changes_at_once(rig: Rig) -> None:
    first, second = switch(rig), switch(rig)
    first.pause(None, "alice")
    assert second.is_paused("m")  # e.g. the CLI paused, the service reads it
    raw = json.loads((rig.state_dir / "pause.json").read_text())
    assert raw["global"]["by"] == "alice" and raw["models"] == {}
    second.resume(None, "alice")
    assert not first.is_paused("m")


def test_every_pause_change_is_audited_and_no_ops_are_not(rig: Rig) -> None:
    sw = switch(rig)
    sw.pause("m", "alice", "investigating by hand")
    assert sw.pause("m", "bob") is False
    assert sw.resume("n", "bob") is False
    sw.resume("m", "bob")
    assert pause_data(rig) == [
        {"event": "paused", "scope": "model", "model": "m", "by": "alice",
         "reason": "investigating by hand"},
        {"event": "resumed", "scope": "model", "model": "m", "by": "bob", "reason": ""},
    ]  # fmt: skip
    assert verify(rig.state_dir / "audit.jsonl").ok


def test_a_suppressed_action_is_audited_with_the_pause_that_held_it(rig: Rig) -> None:
    sw = switch(rig)
    sw.pause(None, "alice")
    data = sw.record_suppressed("inc-0001-m", "m", "retrain", "key-1")
    [record] = [r for r in rig.records(AuditKind.INCIDENT_UPDATED, "inc-0001-m")]
    assert record.data == data and record.actor == "pause-switch"
    assert data["idempotency_key"] == "key-1"
    assert data["pause"] == {
        "event": "suppressed", "model": "m", "action": "retrain", "scope": "global",
        "paused_by": "alice", "paused_at": rig.sup.clock.now().isoformat(),
    }  # fmt: skip


def test_pausing_an_unknown_model_names_the_known_ones(rig: Rig) -> None:
    with pytest.raises(SupervisorError, match=r"no watched model 'x'; pause one of \['m', 'n'\]"):
        switch(rig).pause("x", "alice")
    assert pause_data(rig) == []


# --------------------------------------------------------------------------- config


def test_slack_config_forbids_unknown_keys_and_maps_identities() -> None:
    with pytest.raises(ValidationError, match="bot_token"):
        SlackConfig.model_validate({"channel": "C1", "bot_token": BOT})
    with pytest.raises(ValidationError):
        SlackConfig.model_validate({"channel": "C1", "mode": "webhook"})
    cfg = SlackConfig.model_validate({"channel": "C1", "users": {"U1": "alice"}})
    assert cfg.identity("U1") == "alice" and cfg.identity("U2") == "slack:U2"


def test_a_missing_secret_names_the_variable() -> None:
    cfg = SlackConfig(channel="C1", signing_secret_env="MY_SIGNING")
    with pytest.raises(ConfigError, match="'MY_SIGNING', which is not set"):
        cfg.secret("signing_secret_env", {})
    assert cfg.secret("signing_secret_env", {"MY_SIGNING": "s3"}) == "s3"


def test_http_mode_needs_the_signing_secret(rig: Rig) -> None:
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        ChatOps(rig.sup, SlackConfig(channel="C1"), env={"SLACK_BOT_TOKEN": BOT})


def test_socket_mode_builds_a_handler_with_the_app_token_without_connecting(rig: Rig) -> None:
    cfg = SlackConfig(channel="C1", mode="socket", api_base_url="http://127.0.0.1:9/api/")
    ops = ChatOps(rig.sup, cfg, env={"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP})
    try:
        handler = ops.socket_mode_handler()
        assert handler.app is ops.app and handler.client.app_token == APP
        assert handler.client.web_client.base_url == "http://127.0.0.1:9/api/"
        assert ops.socket_mode_handler() is handler
    finally:
        ops.close()
    ops = ChatOps(rig.sup, cfg, env={"SLACK_BOT_TOKEN": BOT})
    try:
        with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
            ops.socket_mode_handler()
    finally:
        ops.close()


# --------------------------------------------------------------------------- blocks


def test_blocks_redact_secrets_and_escape_untrusted_markup() -> None:
    now = datetime(2026, 1, 5, 9, tzinfo=UTC)
    inc = Incident(
        id="inc-0007-m", model="m", environment="production", symptom=Symptom.DATA_DRIFT,
        status=IncidentStatus.ESCALATED, opened_at=now, updated_at=now,
    )  # fmt: skip
    summary = f"feature store said <!channel> <https://evil.example|click> token={BOT} & more"
    state = {
        "finding": {
            "diagnosis": {
                "root_cause": "upstream_data_defect", "confidence": 0.9, "summary": summary,
                "evidence": [{"call_id": "c1", "tool": "t", "finding": f"Bearer {BOT}"}],
            }
        },
        "escalation": {"owner": "team-m", "reason": f"paged with {APP}"},
    }  # fmt: skip
    dumped = json.dumps(incident_blocks(inc, state))  # type: ignore[arg-type]
    assert BOT not in dumped and APP not in dumped and "xoxb-" not in dumped
    assert "[REDACTED]" in dumped
    assert "<!channel>" not in dumped and "&lt;!channel&gt;" in dumped
    assert "<https://evil" not in dumped and "&amp; more" in dumped


# --------------------------------------------------------------------------- manifest, exports


def test_the_manifest_declares_the_command_the_url_and_the_scopes() -> None:
    manifest = yaml.safe_load((REPO / "deploy" / "slack" / "manifest.yaml").read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == SlackConfig(channel="C1").command == "/mlops"
    assert command["url"].endswith(chatops.EVENTS_PATH)
    for verb in ("status", "incidents", "explain", "approve", "deny", "pause", "resume"):
        assert verb in command["usage_hint"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["interactivity"]["request_url"].endswith(chatops.EVENTS_PATH)
    assert {"chat:write", "commands"} <= set(manifest["oauth_config"]["scopes"]["bot"])


def test_public_exports() -> None:
    assert len(set(chatops.__all__)) == len(chatops.__all__)
    for name in chatops.__all__:
        assert not name.startswith("_") and getattr(chatops, name) is not None
    assert {"ChatOps", "SlackConfig", "SlackNotifier", "PauseSwitch", "mount_slack"} <= set(
        chatops.__all__
    )


def test_the_pause_switch_loads_without_slack_or_fastapi() -> None:
    """The executor and the CLI consult the switch; they must not pay for slack_bolt."""
    code = (
        "import sys; from supervisor.chatops import PauseSwitch, SlackConfig; "
        "print(sorted(m for m in ('slack_bolt', 'slack_sdk', 'fastapi') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"
