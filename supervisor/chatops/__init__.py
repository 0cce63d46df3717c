"""Slack chat-ops: incident messages with Approve/Deny buttons, the ``/mlops`` command, the
pause switch, request signature checks, HTTP and Socket Mode.

The Slack- and FastAPI-backed names (``ChatOps``, ``SlackNotifier``, ``SignatureCheck``,
``mount_slack``, ``EVENTS_PATH``) load on first use, so the executor and the CLI can use the
pause switch without importing slack_bolt.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._blocks import APPROVE_ACTION, DENY_ACTION, incident_blocks
from ._commands import Caller, Commands, Reply
from ._config import SlackConfig
from ._pause import PauseEntry, PauseState, PauseSwitch

if TYPE_CHECKING:
    from ._app import EVENTS_PATH, ChatOps, SignatureCheck, mount_slack
    from ._notifier import SlackNotifier

_LAZY = {
    "EVENTS_PATH": "._app",
    "ChatOps": "._app",
    "SignatureCheck": "._app",
    "mount_slack": "._app",
    "SlackNotifier": "._notifier",
}

__all__ = [
    "APPROVE_ACTION",
    "DENY_ACTION",
    "EVENTS_PATH",
    "Caller",
    "ChatOps",
    "Commands",
    "PauseEntry",
    "PauseState",
    "PauseSwitch",
    "Reply",
    "SignatureCheck",
    "SlackConfig",
    "SlackNotifier",
    "incident_blocks",
    "mount_slack",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
