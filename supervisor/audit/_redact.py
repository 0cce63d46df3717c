"""Secret redaction for audit records, spans, reports and chat messages.

Two layers: values under keys that name a secret are replaced whole, and every string is scanned
for secret-shaped substrings (tokens, keys, credentials in URLs, PEM blocks). The patterns err on
the side of masking: a false positive costs a little readability, a false negative leaks a secret
into an append-only log that cannot be edited afterwards.
"""

from __future__ import annotations

import functools
import re
from itertools import pairwise
from typing import Any

REDACTED = "[REDACTED]"

# Whole words (after splitting snake/kebab/camel case) that mark a key as secret. Short words
# such as "token" or "pass" match only as whole words so that "max_tokens" or "passed" do not.
_SECRET_WORDS = frozenset(
    {
        "token",
        "password",
        "passwd",
        "pwd",
        "pass",
        "passphrase",
        "secret",
        "secrets",
        "credential",
        "credentials",
        "creds",
        "cookie",
        "cookies",
        "session",
        "sessionid",
        "authorization",
        "auth",
        "bearer",
        "jwt",
        "apikey",
        "accesskey",
        "privatekey",
        "secretkey",
        "accesstoken",
        "refreshtoken",
        "signature",
    }
)
# Pairs of adjacent words that mark a key as secret ("api_key", "X-Api-Key", "privateKey").
_SECRET_PAIRS = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("private", "key"),
        ("secret", "key"),
        ("signing", "key"),
        ("encryption", "key"),
        ("master", "key"),
        ("client", "secret"),
    }
)
# Long terms that are unambiguous even inside a run-together key ("dbpassword", "xapikey").
_SECRET_SUBSTRINGS = ("password", "passwd", "secret", "apikey", "credential", "authorization")
# Keys that count or bound something ("token_count", "session_timeout_s") hold no secret.
_MEASURE_WORDS = frozenset(
    {
        "count",
        "counts",
        "limit",
        "limits",
        "max",
        "min",
        "total",
        "used",
        "usage",
        "budget",
        "len",
        "length",
        "ttl",
        "timeout",
        "expiry",
        "expires",
        "num",
        "rotation",
        "rotated",
    }
)

# Labels, annotations and URLs of repeated alerts are the same strings over and over, and the
# checks below are pure functions of an immutable string: cache them, for short strings only,
# to bound the memory.
_CACHED_LEN = 512

_CAMEL_1 = re.compile(r"([a-z0-9])([A-Z])")
_CAMEL_2 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _key_words(key: str) -> list[str]:
    spaced = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", key))
    return [w for w in _NON_ALNUM.split(spaced.lower()) if w]


def _is_secret_key(key: str) -> bool:
    words = _key_words(key)
    if not words or _MEASURE_WORDS.intersection(words):
        return False
    if _SECRET_WORDS.intersection(words):
        return True
    if any(pair in _SECRET_PAIRS for pair in pairwise(words)):
        return True
    joined = "".join(words)
    return any(term in joined for term in _SECRET_SUBSTRINGS)


_is_secret_key_cached = functools.lru_cache(maxsize=4096)(_is_secret_key)


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``api_key``, ``Authorization``, ``dbPassword``)."""
    return _is_secret_key_cached(key) if len(key) <= _CACHED_LEN else _is_secret_key(key)


_KV_TERMS = (
    r"password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential"
    r"|signature|session[_-]?id|authorization"
)

# Order matters: whole blocks and specific token shapes first, generic key=value last.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # PEM private keys, also a block cut off before its END line.
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
            r"(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*\Z)",
            re.DOTALL,
        ),
        "[REDACTED PRIVATE KEY]",
    ),
    # Credentials in URLs: scheme://user:password@host keeps the user, masks the password. The
    # password may hold '/' and '@' (an '@' only when another follows: the last one ends it).
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]+):(?:[^\s@]|@(?=[^\s@]*@))+@"),
        rf"\1:{REDACTED}@",
    ),
    # JSON Web Tokens: three base64url parts, the first two JSON objects ("eyJ").
    (
        re.compile(r"\beyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*"),
        REDACTED,
    ),
    # Authorization schemes.
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*"), rf"\1 {REDACTED}"),
    (re.compile(r"(?i)\b(basic)\s+[A-Za-z0-9+/]{8,}={0,2}"), rf"\1 {REDACTED}"),
    # OpenAI/Anthropic-style keys (sk-..., sk-proj-..., sk-ant-...) and Stripe keys.
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"), REDACTED),
    (re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"), REDACTED),
    # Slack tokens.
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"), REDACTED),
    (re.compile(r"\bxapp-[A-Za-z0-9\-]{10,}"), REDACTED),
    # AWS access key ids (long-term AKIA, temporary ASIA).
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),
    # AWS secret access keys, with or without a key name beside them: exactly 40 base64
    # characters mixing upper case, lower case and digits. Hex digests (sha1, commit ids) are
    # lower case only, so they are kept.
    (
        re.compile(
            r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])"
            r"(?=[A-Za-z0-9/+]{0,39}[0-9])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
        ),
        REDACTED,
    ),
    # GitHub tokens: classic prefixes and fine-grained PATs.
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), REDACTED),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}"), REDACTED),
]


# key=value / key: value / "key": "value" where the key names a secret (query strings,
# connection strings, log lines, JSON embedded in text).
_KEY_VALUE = re.compile(
    rf"""(?ix)
    (?P<key>(?<![\w.\-])[\w.\-]*?(?:{_KV_TERMS})[\w.\-]*)
    (?P<sep>["']?\s*[:=]\s*)
    (?!\[REDACTED|(?:bearer|basic)\s+\[REDACTED)
    (?P<value>"[^"]*"|'[^']*'|[^\s&#;,"'<>]+)
    """
)


def _mask_key_value(match: re.Match[str]) -> str:
    if _MEASURE_WORDS.intersection(_key_words(match["key"])):
        return match[0]  # "max_tokens=100" is a number, not a token
    value = match["value"]
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match['key']}{match['sep']}{quote}{REDACTED}{quote}"


def _redact_text(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _KEY_VALUE.sub(_mask_key_value, text)


_redact_cached = functools.lru_cache(maxsize=8192)(_redact_text)


def redact_text(text: str) -> str:
    """Mask every secret-shaped substring of ``text`` with ``[REDACTED]``.

    Covers bearer/basic credentials, ``sk-`` API keys, Slack ``xox?-`` tokens, AWS access key ids,
    GitHub tokens, JWTs, ``password=``/``token=``-style pairs in URLs, query strings and log
    lines, ``scheme://user:pass@host`` credentials and PEM private key blocks.
    """
    if len(text) <= _CACHED_LEN:
        return _redact_cached(text)
    return _redact_text(text)


def redact(value: Any) -> Any:
    """Return a copy of ``value`` with secrets masked, recursing through dicts, lists and tuples.

    Values under secret-looking keys become ``"[REDACTED]"`` (``None`` and booleans are kept:
    they carry no secret and show whether one was set); every string is passed through
    :func:`redact_text`. Other scalars are returned unchanged.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and is_secret_key(key):
                out[redact_text(key)] = item if item is None or isinstance(item, bool) else REDACTED
            else:
                out[redact_text(key) if isinstance(key, str) else key] = redact(item)
        return out
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact(item) for item in value)
    return value
