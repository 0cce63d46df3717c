"""The shape a Slack request must have before it reaches bolt and our listeners.

Bolt parses a body while it builds its request and our listeners index into it; a body that is
signed yet malformed (a bug or a compromised signing secret) must be a 400 naming the problem,
never a 500 halfway through a listener.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs


def _json(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except RecursionError:
        return None, "nested too deeply"
    except ValueError as err:  # JSONDecodeError, or an integer past the digit limit
        return None, f"not JSON ({err})"


def malformed(body: bytes, content_type: str) -> str | None:
    """Why ``body`` is not a request Slack sends (None: it is well-formed)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    if content_type.startswith("application/json"):
        data, err = _json(text)
        if err is not None:
            return f"the event body is {err}"
        return None if isinstance(data, dict) else "the event body is not a JSON object"
    form = parse_qs(text, keep_blank_values=True)
    if "payload" not in form:
        return None  # a slash command: plain form fields, read with defaults
    payload, err = _json(form["payload"][0])
    if err is not None:
        return f"the interaction payload is {err}"
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return "the interaction payload is not an object with a 'type'"
    if payload["type"] == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions:
            return "the block_actions payload has no actions"
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            return "an action of the block_actions payload has no action_id"
    return None
