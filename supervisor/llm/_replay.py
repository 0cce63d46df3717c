"""Record and replay of LLM exchanges, so an LLM eval run can be reproduced offline in CI.

Each exchange is one JSON file named by the sha256 of the canonical request (model, messages,
tools, sampling settings). Recording wraps a live client; replay answers from the files alone
and fails loudly, naming the request, when an exchange is missing. Stored requests are redacted
for reading; the key is computed before redaction, so replay matches what was really sent.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from supervisor._errors import SupervisorError
from supervisor.audit._redact import redact

from ._client import ChatClient
from ._types import ChatRequest, ChatResponse


class ReplayMiss(SupervisorError):
    """Replay found no recorded exchange for a request."""


def _path(directory: Path, key: str) -> Path:
    return directory / f"{key}.json"


def _last_words(request: ChatRequest) -> str:
    for msg in reversed(request.messages):
        content = msg.get("content")
        if isinstance(content, str) and content:
            text = content.replace("\n", " ")
            return text[:160] + ("..." if len(text) > 160 else "")
        if msg.get("tool_calls"):
            return f"(assistant tool calls {[c['function']['name'] for c in msg['tool_calls']]})"
    return "(no text)"


class RecordingClient:
    """Passes each request to ``inner`` and writes the exchange to ``directory``."""

    def __init__(self, inner: ChatClient, directory: Path) -> None:
        self.inner = inner
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def complete(self, request: ChatRequest, *, timeout: float | None = None) -> ChatResponse:
        response = self.inner.complete(request, timeout=timeout)
        key = request.key()
        record: dict[str, Any] = {
            "key": key,
            "request": redact(request.model_dump(mode="json")),
            "response": response.model_dump(mode="json"),
        }
        # Eval workers record in parallel: each writes its own temporary file, then renames.
        tmp = _path(self.directory, key).with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(_path(self.directory, key))
        return response


class ReplayClient:
    """Answers requests from recorded exchanges only; never touches the network."""

    def __init__(self, directory: Path) -> None:
        if not directory.is_dir():
            raise ReplayMiss(
                f"replay directory {str(directory)!r} does not exist; record one first with "
                "--record DIR"
            )
        self.directory = directory
        self.served = 0

    def complete(self, request: ChatRequest, *, timeout: float | None = None) -> ChatResponse:
        key = request.key()
        path = _path(self.directory, key)
        if not path.exists():
            raise ReplayMiss(
                f"no recorded LLM exchange {key[:16]}... in {str(self.directory)!r} for the "
                f"request to {request.model!r} ending {_last_words(request)!r}; the prompt, "
                "tools or data changed since recording: record again with --record DIR"
            )
        raw = json.loads(path.read_text(encoding="utf-8"))
        self.served += 1
        return ChatResponse.model_validate(raw["response"])
