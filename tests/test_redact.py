"""Secret redaction: every pattern, every secret key name, nested structures, and the things
that must be left alone."""

from __future__ import annotations

import pytest

from supervisor.audit import REDACTED, is_secret_key, redact, redact_text

# Fake secrets are assembled at runtime so secret scanners do not flag this file.
SK = "sk-" + "proj-" + "Abc123Def456Ghi789Jkl012"
SLACK = "xox" + "b-" + "123456789012-123456789012-AbCdEfGhIjKlMnOp"
AWS = "AKIA" + "IOSFODNN7EXAMPLE"
GITHUB = "ghp" + "_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
JWT = (
    "eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJ" + "zdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA7bq8Y0o1\nZm9vYmFy\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Authorization: Bearer abc.def-ghi_jkl~123",
            "Authorization: Bearer [REDACTED]",
            id="bearer",
        ),
        pytest.param("auth Basic dXNlcjpwYXNzd29yZA==", "auth Basic [REDACTED]", id="basic"),
        pytest.param(f"using key {SK} now", "using key [REDACTED] now", id="sk-key"),
        pytest.param(f"slack {SLACK}", "slack [REDACTED]", id="slack"),
        pytest.param(f"aws id {AWS} here", "aws id [REDACTED] here", id="aws"),
        pytest.param(f"token {GITHUB}.", "token [REDACTED].", id="github"),
        pytest.param(f"jwt={JWT}", "jwt=[REDACTED]", id="jwt"),
        pytest.param(
            "https://api.example/v1?model=churn&token=s3cr3t&limit=5",
            "https://api.example/v1?model=churn&token=[REDACTED]&limit=5",
            id="query-token",
        ),
        pytest.param(
            "GET /login?user=bob&password=hunter2 HTTP/1.1",
            "GET /login?user=bob&password=[REDACTED] HTTP/1.1",
            id="query-password",
        ),
        pytest.param(
            "https://x/?X-Amz-Signature=deadbeef&api_key=k1",
            "https://x/?X-Amz-Signature=[REDACTED]&api_key=[REDACTED]",
            id="signature-and-api-key",
        ),
        pytest.param(
            "postgresql://mlflow:pa55word@db.internal:5432/mlflow",
            "postgresql://mlflow:[REDACTED]@db.internal:5432/mlflow",
            id="url-credentials",
        ),
        pytest.param(
            "https://x-access-token:abc123@github.com/org/repo.git",
            "https://x-access-token:[REDACTED]@github.com/org/repo.git",
            id="url-credentials-token",
        ),
        pytest.param(f"key:\n{PEM}\ndone", "key:\n[REDACTED PRIVATE KEY]\ndone", id="pem"),
        pytest.param(
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg",
            "[REDACTED PRIVATE KEY]",
            id="pem-cut-off",
        ),
        pytest.param(
            'log: {"password": "two words", "user": "bob"}',
            'log: {"password": "[REDACTED]", "user": "bob"}',
            id="json-in-text",
        ),
        pytest.param("db_password='x y' ok", "db_password='[REDACTED]' ok", id="single-quoted"),
        pytest.param("client_secret: abc123 rest", "client_secret: [REDACTED] rest", id="colon"),
    ],
)
def test_redact_text_masks(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "error rate 0.12 above 0.05 for model churn v3 (canary 10%)",
        "sklearn model sk-learn v1.4; scikit-learn",
        "max_tokens=512 token_count=40 tokens_used=12",
        "https://prometheus:9090/api/v1/query?query=up&time=1700000000",
        "design=wide author=alice passed=true",
        "sha256 " + "a" * 64,
        "idempotency_key=inc-1:rollback:churn:v2",
        "",
    ],
)
def test_redact_text_leaves_non_secrets_alone(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "access_token",
        "refreshToken",
        "password",
        "db_password",
        "dbPassword",
        "passwd",
        "secret",
        "client_secret",
        "SECRET_KEY",
        "api_key",
        "apikey",
        "X-Api-Key",
        "apiKey",
        "Authorization",
        "private_key",
        "aws_access_key_id",
        "AWS_SECRET_ACCESS_KEY",
        "credential",
        "credentials",
        "Cookie",
        "Set-Cookie",
        "session",
        "session_id",
        "auth",
    ],
)
def test_secret_key_names(key: str) -> None:
    assert is_secret_key(key)
    assert redact({key: "value-1"}) == {key: REDACTED}


@pytest.mark.parametrize(
    "key",
    [
        "idempotency_key",
        "incident_id",
        "max_tokens",
        "token_count",
        "tokens",
        "tokenizer",
        "session_timeout_s",
        "author",
        "key",
        "model",
        "trace_id",
        "passed",
    ],
)
def test_ordinary_key_names(key: str) -> None:
    assert not is_secret_key(key)
    assert redact({key: "value-1"}) == {key: "value-1"}


def test_nested_structures() -> None:
    value = {
        "model": "churn",
        "headers": {"Authorization": "Bearer abcdefghijkl", "Accept": "json"},
        "steps": [
            {"tool": "registry", "url": "https://u:p4ss@mlflow/api"},
            ("tuple", f"key {SK}"),
            3,
            None,
        ],
        "credentials": {"user": "bob", "password": "x"},
        "token": None,
        "auth": True,
        "threshold": 0.5,
    }
    assert redact(value) == {
        "model": "churn",
        "headers": {"Authorization": REDACTED, "Accept": "json"},
        "steps": [
            {"tool": "registry", "url": "https://u:[REDACTED]@mlflow/api"},
            ("tuple", "key [REDACTED]"),
            3,
            None,
        ],
        "credentials": REDACTED,
        "token": None,  # None and booleans say whether a secret is set, not what it is
        "auth": True,
        "threshold": 0.5,
    }


def test_secret_numbers_under_secret_keys_are_masked() -> None:
    assert redact({"pin_password": 123456}) == {"pin_password": REDACTED}


def test_redact_does_not_mutate_its_input() -> None:
    value = {"token": "abc", "inner": ["password=abc"]}
    redact(value)
    assert value == {"token": "abc", "inner": ["password=abc"]}


AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzQ9kLmNoPq"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            f"creds: {AWS} {AWS_SECRET}",
            "creds: [REDACTED] [REDACTED]",
            id="aws-secret-with-no-key-name",
        ),
        pytest.param(
            "dsn postgres://svc:Xq9/zzT+r8w@db2.internal:5432/app",
            "dsn postgres://svc:[REDACTED]@db2.internal:5432/app",
            id="dsn-password-with-slash",
        ),
        pytest.param(
            "postgres://svc:p@ss@db:5432/x",
            "postgres://svc:[REDACTED]@db:5432/x",
            id="password-with-at-sign",
        ),
    ],
)
def test_shapes_the_hostile_input_campaign_leaked(text: str, expected: str) -> None:
    """Issue 14 M3: each of these reached audit.jsonl unredacted or half redacted."""
    assert redact_text(text) == expected


def test_hex_digests_are_not_aws_secrets() -> None:
    for text in ("commit 3f786850e387550fdab836ed7e6dc881de23001b", "0af7651916cd43dd8448eb211c80"):
        assert redact_text(text) == text


def test_intake_redacts_before_it_truncates() -> None:
    """M3: the 2,048-character cap used to cut an sk- key in half before redaction saw it."""
    from datetime import UTC, datetime

    from supervisor.config import IntakeConfig
    from supervisor.service._alertmanager import MAX_TEXT, WebhookPayload, signals_from_webhook

    text = "x" * (MAX_TEXT - 10) + " " + SK
    payload = WebhookPayload.model_validate(
        {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="A", dsn="postgres://svc:{AWS_SECRET}@db"}}',
            "status": "firing",
            "receiver": "r",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "ModelHighErrorRate", "model": "churn"},
                    "annotations": {"description": text},
                    "startsAt": "2026-01-05T09:00:00Z",
                    "fingerprint": "fp-1",
                }
            ],
        }
    )
    intake = IntakeConfig(symptom_map={"ModelHighErrorRate": "high_error_rate"})
    (signal,), _ = signals_from_webhook(payload, intake, datetime.now(UTC))
    assert SK[:12] not in signal.annotations["description"]
    assert "[REDACTED" in signal.annotations["description"]  # the cut may halve the marker
    assert signal.group_key is not None and AWS_SECRET not in signal.group_key
