"""Span attributes that are safe to export: redacted and of types OpenTelemetry accepts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.util.types import AttributeValue

# Import the private module, not the package: supervisor.audit imports this package in turn.
from supervisor.audit._json import jsonable
from supervisor.audit._redact import REDACTED, is_secret_key, redact, redact_text


def _safe_value(value: Any) -> AttributeValue:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bool | int | float):
        return value
    if (
        isinstance(value, Sequence)
        and not isinstance(value, bytes | bytearray)
        and value
        and all(isinstance(item, str) for item in value)
    ):
        return [redact_text(item) for item in value]
    if (
        isinstance(value, Sequence)
        and not isinstance(value, bytes | bytearray)
        and value
        and len({type(item) for item in value}) == 1
        and isinstance(value[0], bool | int | float)
    ):
        return list(value)
    flat = redact(jsonable(value))
    return json.dumps(flat, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def safe_attributes(attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Return span attributes with secrets masked and non-primitive values flattened to JSON.

    Values under secret-looking keys become ``"[REDACTED]"``; strings pass through
    ``redact_text``; homogeneous lists of primitives stay lists (OpenTelemetry accepts them);
    anything else (dicts, models, mixed lists) becomes a redacted JSON string. ``None`` values
    are dropped because OpenTelemetry rejects them.
    """
    out: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if is_secret_key(key) and not isinstance(value, bool):
            out[key] = REDACTED
        else:
            out[key] = _safe_value(value)
    return out
