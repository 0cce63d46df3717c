"""Conversion of arbitrary payloads to plain, strictly valid JSON values."""

from __future__ import annotations

import math
from typing import Any

from pydantic_core import to_jsonable_python


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        # Strict JSON has no NaN/Infinity; a string keeps the fact that the value was one.
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def jsonable(value: Any) -> Any:
    """``value`` as dicts, lists, strings, numbers, booleans and None only.

    Datetimes become ISO strings, enums their values, pydantic models and dataclasses dicts,
    tuples and sets lists, unknown objects their ``str``; NaN and infinities become the strings
    ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
    """
    return _finite(to_jsonable_python(value, serialize_unknown=True))
