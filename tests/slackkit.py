"""Slack requests as Slack builds them (v0 signatures, ``block_actions``, slash commands), for
the chat-ops tests; the Web API they call back is tests/fake_slack.py."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from urllib.parse import urlencode

from fake_slack import FakeSlack

INC = "inc-0001-m"
CHANNEL = "C0MLOPS01"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documentation example shape
BOT_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
NOW = 1_767_600_000  # the signature window's clock (epoch seconds), injected
USERS = {"U0ALICE": "alice", "U0BOB": "bob", "U0MALLORY": "mallory"}
_TRIGGERS = itertools.count(1)


def trigger_id() -> str:
    """Slack gives every interaction its own trigger id (so no two requests are identical)."""
    return f"13345224609.738474920.{next(_TRIGGERS):031x}"


# --------------------------------------------------------------------------- building requests


def sign(body: str, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    """Slack's v0 scheme: HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing secret."""
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={digest.hexdigest()}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def block_actions(action_id: str, user: str, fake: FakeSlack, value: str = INC) -> str:
    """A form-encoded ``block_actions`` payload, as Slack sends a button press over HTTP."""
    return urlencode({"payload": json.dumps(block_actions_payload(action_id, user, fake, value))})


def block_actions_payload(
    action_id: str, user: str, fake: FakeSlack, value: str = INC
) -> dict[str, object]:
    """A button press's ``block_actions`` payload (form-encoded over HTTP; the ``payload`` of
    an ``interactive`` envelope in Socket Mode)."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": USERS.get(user, "x"), "team_id": "T0001"},
        "api_app_id": "A0MLOPS",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": "1767600000.000001",
                      "channel_id": CHANNEL, "is_ephemeral": False},
        "trigger_id": trigger_id(),
        "team": {"id": "T0001", "domain": "acme"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": CHANNEL, "name": "mlops"},
        "message": {"type": "message", "ts": "1767600000.000001", "text": "incident"},
        "response_url": fake.response_url("button"),
        "actions": [{"action_id": action_id, "block_id": "mlops_approval", "value": value,
                     "type": "button", "action_ts": "1767600001.000000",
                     "text": {"type": "plain_text", "text": "Approve"}}],
    }  # fmt: skip


def slash(text: str, user: str, fake: FakeSlack) -> str:
    """A form-encoded slash command, as Slack sends ``/mlops <text>`` over HTTP."""
    return urlencode(slash_fields(text, user, fake))


def slash_fields(text: str, user: str, fake: FakeSlack) -> dict[str, str]:
    """A slash command's fields (form-encoded over HTTP; the ``payload`` of a
    ``slash_commands`` envelope in Socket Mode)."""
    return {
        "token": "legacy-verification-token",
        "team_id": "T0001",
        "team_domain": "acme",
        "channel_id": CHANNEL,
        "channel_name": "mlops",
        "user_id": user,
        "user_name": USERS.get(user, "x"),
        "command": "/mlops",
        "text": text,
        "api_app_id": "A0MLOPS",
        "is_enterprise_install": "false",
        "response_url": fake.response_url("cmd"),
        "trigger_id": trigger_id(),
    }
