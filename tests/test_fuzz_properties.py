"""Hypothesis properties of the untrusted-input boundaries: webhook parsing, Slack payloads,
config loading and redaction. Each either accepts its input or refuses it with the one error
it documents, never anything else (issue 14, requirement 2)."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fuzzkit import FUZZ
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from servicekit import payload
from test_redact import AWS, AWS_SECRET, GITHUB, JWT, PEM, SK, SLACK

from supervisor._errors import ConfigError
from supervisor.audit import redact, redact_text
from supervisor.chatops._payload import malformed
from supervisor.config import IntakeConfig, SupervisorConfig, config_from_dict
from supervisor.demo import demo_config
from supervisor.service._alertmanager import WebhookPayload, signals_from_webhook

# ------------------------------------------------------------------ strategies

#: Text as an attacker can send it: any code point, lone UTF-16 surrogates included (JSON's
#: "\udc80" escapes decode to them), and now and then a long run.
_CHAR = st.characters(codec=None) | st.characters(categories=["Cs"])
TEXT = st.text(_CHAR, max_size=40) | st.builds(
    lambda s, n: s * n, st.text(_CHAR, min_size=1, max_size=4), st.integers(1, 20_000)
)
SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
JSONISH = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
LABELS = st.dictionaries(
    st.sampled_from(["alertname", "model", "version", "severity", "symptom", "env"]) | TEXT,
    st.sampled_from(["ModelHighErrorRate", "churn", "data_drift", "2"]) | TEXT,
    max_size=6,
)

#: Names of the webhook fields, of a notification and of one alert.
_TOP = list(WebhookPayload.model_fields)
_ALERT = ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"]


@st.composite
def webhook_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A real notification with some fields replaced by anything, or anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return {"whatever": draw(JSONISH)}
    body = payload()
    template = body["alerts"][0]
    for key in draw(st.lists(st.sampled_from(_TOP), max_size=3)):
        body[key] = draw(JSONISH)
    alerts = [dict(template) for _ in range(draw(st.integers(0, 3)))]
    for alert in alerts:
        alert["labels"] = draw(LABELS)
        alert["annotations"] = draw(LABELS)
        for key in draw(st.lists(st.sampled_from(_ALERT), max_size=2)):
            alert[key] = draw(JSONISH | st.sampled_from(["2026-01-05T09:00:00Z", "resolved"]))
    if draw(st.booleans()):
        body["alerts"] = alerts
    return body


# ------------------------------------------------------------------ webhook parsing


@FUZZ
@given(webhook_dicts())
def test_a_webhook_body_validates_or_is_a_validation_error_and_then_parses(
    body: dict[str, Any],
) -> None:
    try:
        parsed = WebhookPayload.model_validate(body)
    except ValidationError:
        return  # the 422
    signals, unmapped = signals_from_webhook(parsed, IntakeConfig(), datetime.now(UTC))
    assert len(signals) + len(unmapped) == len(parsed.alerts)
    for item in [*signals, *unmapped]:
        # every signal can be stored: no lone surrogate survives into it (issue 14 H1)
        item.model_dump_json().encode("utf-8")


# ------------------------------------------------------------------ Slack payloads

_CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", ""]
) | st.text(max_size=30)


@st.composite
def slack_bodies(draw: st.DrawFn) -> bytes:
    """Bytes of any kind, JSON of any shape, or a form whose ``payload`` is either."""
    kind = draw(st.sampled_from(["bytes", "json", "form"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2048))
    value = draw(
        JSONISH
        | st.fixed_dictionaries(
            {"type": st.sampled_from(["block_actions", "view_submission"]) | TEXT},
            optional={"actions": JSONISH | st.lists(st.dictionaries(TEXT, JSONISH, max_size=3))},
        )
    )
    text = json.dumps(value)
    if kind == "json":
        return text.encode()
    fields = {"payload": text, **draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5)))}
    return urlencode(fields).encode()


@FUZZ
@given(slack_bodies(), _CONTENT_TYPES)
def test_malformed_answers_for_any_slack_body(body: bytes, content_type: str) -> None:
    why = malformed(body, content_type)
    assert why is None or (isinstance(why, str) and why)
    if why is None and content_type.startswith("application/json"):
        assert isinstance(json.loads(body), dict)  # what the listeners index into


# ------------------------------------------------------------------ config loading


def _sections(model: type[BaseModel]) -> dict[str, list[str]]:
    """Each config field, with the fields of its nested model (if it is one)."""
    out: dict[str, list[str]] = {}
    for name, field in model.model_fields.items():
        kind = field.annotation
        nested = kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None
        out[name] = list(nested.model_fields) if nested is not None else []
    return out


_CONFIG_FIELDS = _sections(SupervisorConfig)


@st.composite
def config_dicts(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """The demo config with some fields (or fields of a section) replaced by anything."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.dictionaries(TEXT, JSONISH, max_size=4))
    raw: dict[str, Any] = json.loads(json.dumps(base))
    keys: list[str] = draw(
        st.lists(st.sampled_from(sorted(_CONFIG_FIELDS)), min_size=1, max_size=3)
    )
    for key in keys:
        inner = _CONFIG_FIELDS[key]
        in_section: bool = draw(st.booleans())
        if inner and in_section:
            section: dict[str, Any] = raw[key] if isinstance(raw.get(key), dict) else {}
            section[draw(st.sampled_from(inner))] = draw(JSONISH)
            raw[key] = section
        else:
            raw[key] = draw(JSONISH)
    return raw


def test_config_from_any_mapping_is_a_config_or_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        monkeypatch.chdir(tmp)  # a relative path a field names stays in here
        base = demo_config(Path(tmp) / "state")

        @FUZZ
        @given(config_dicts(base))
        def check(raw: dict[str, Any]) -> None:
            try:
                config_from_dict(raw, source="fuzzed config")
            except ConfigError as err:
                assert str(err)

        check()


# ------------------------------------------------------------------ redaction

SECRETS = [SK, SLACK, AWS, GITHUB, JWT, PEM, AWS_SECRET]
_AROUND = st.text(st.characters(codec="utf-8"), max_size=60)


@FUZZ
@given(TEXT | _AROUND)
def test_redaction_never_raises_and_is_idempotent(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once


@FUZZ
@given(_AROUND, st.sampled_from(SECRETS), _AROUND, st.sampled_from([" ", "\n", "\t", " = "]))
def test_a_secret_of_each_shape_is_masked_wherever_it_sits(
    before: str, secret: str, after: str, gap: str
) -> None:
    text = f"{before}{gap}{secret}{gap}{after}"
    out = redact_text(text)
    assert secret not in out
    assert secret not in json.dumps(redact({"note": text, "labels": {"x": [text]}}))
    dsn = redact_text(f"{before} postgres://svc:{secret.splitlines()[0]}@db:5432/x {after}")
    assert f"svc:{secret.splitlines()[0]}@" not in dsn
