"""Slack chat-ops: incident messages with Approve/Deny buttons, the ``/mlops`` command, the
pause switch, request signature checks, HTTP and Socket Mode."""

from ._app import EVENTS_PATH, ChatOps, SignatureCheck, mount_slack
from ._blocks import APPROVE_ACTION, DENY_ACTION, incident_blocks
from ._commands import Caller, Commands, Reply
from ._config import SlackConfig
from ._notifier import SlackNotifier
from ._pause import PauseEntry, PauseState, PauseSwitch

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
