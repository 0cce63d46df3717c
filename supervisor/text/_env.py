"""One Jinja2 environment for every template, with filters that never print a repr."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jinja2


def num(value: Any) -> str:
    """A number as a person writes it: at most 3 significant digits, no trailing noise."""
    if isinstance(value, bool):
        return plain(value)
    if isinstance(value, float):
        # 3 significant digits: enough to compare with a threshold written with 2 or 3,
        # never the 16 of a float repr.
        return f"{value:.3g}"
    return plain(value)


def plain(value: Any) -> str:
    """Any JSON-like value as words: ``none``, ``yes``/``no``, ``k=v, k=v``, ``a, b``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return num(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value) or "none"
    if isinstance(value, str | int):
        return str(value)
    return json.dumps(value, default=str)


def words(value: Any) -> str:
    """An identifier as words: ``covariate_drift`` -> ``covariate drift``."""
    return plain(value).replace("_", " ")


def omit(value: Any, *keys: str) -> dict[str, Any]:
    """A mapping without some keys (e.g. a long notification text shown elsewhere)."""
    return {k: v for k, v in dict(value).items() if k not in keys}


def when(value: Any) -> str:
    """An ISO timestamp as ``2026-01-05 08:35 UTC`` (as given if it is not one)."""
    try:
        ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return plain(value)
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC)
    return f"{ts:%Y-%m-%d %H:%M} UTC"


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("supervisor.text", "templates"),
        autoescape=False,  # Markdown and terminal text, not HTML
        undefined=jinja2.StrictUndefined,  # a missing field is a bug, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(num=num, plain=plain, words=words, when=when, omit=omit)
    # A bare {{ x }} goes through plain too, so None, True or a dict never reach the text.
    env.finalize = plain
    return env


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context``."""
    return _environment().get_template(template).render(**context)
