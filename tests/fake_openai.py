"""A loopback OpenAI-compatible Chat Completions server that plays a script, for tests.

The real ``openai`` client talks to it over HTTP on 127.0.0.1, so the whole client path
(serialisation, status codes, ``Retry-After``, timeouts, retries) is exercised without a model.
A script is a list of steps, each answering one request in order, or one function that answers
every request (a scripted model that reads the conversation, e.g. an adversary that obeys
instructions injected into tool output).

    with FakeOpenAI([reply(tool_calls=[call("get_deployment_status")]), reply(content="{}")]) as f:
        client = OpenAIChatClient(LLMConfig(model="fake", base_url=f.base_url))
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    """One scripted answer: an HTTP status, headers and JSON body, after an optional delay."""

    body: dict[str, Any] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None


_ids = itertools.count(1)


def call(
    name: str, args: dict[str, Any] | None = None, *, raw: str | None = None
) -> dict[str, Any]:
    """A tool call as the model emits it (``raw``: the arguments text verbatim, e.g. invalid)."""
    return {
        "id": f"call_{next(_ids)}",
        "type": "function",
        "function": {"name": name, "arguments": raw if raw is not None else json.dumps(args or {})},
    }


def reply(
    content: str | dict[str, Any] | None = None,
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str | None = None,
    prompt_tokens: int = 100,
    completion_tokens: int = 20,
    model: str = "fake-model",
) -> Step:
    """A 200 completion with text (a dict is sent as its JSON) and/or tool calls."""
    text = json.dumps(content) if isinstance(content, dict) else content
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return Step(
        body={
            "id": f"chatcmpl-{next(_ids)}",
            "object": "chat.completion",
            "created": 1767600000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def error(status: int, message: str = "scripted error", **headers: str) -> Step:
    """An API error response (e.g. ``error(429, retry_after="2")``)."""
    return Step(
        body={"error": {"message": message, "type": "scripted", "code": status}},
        status=status,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


def slow(step: Step, seconds: float) -> Step:
    """``step``, answered only after ``seconds`` (for client timeouts)."""
    return Step(step.body, step.status, step.headers, seconds, step.raw)


Script = list[Step] | Callable[[dict[str, Any]], Step]


class FakeOpenAI:
    """The server. ``requests`` holds every request body received, in order."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.unexpected: list[str] = []
        self._lock = threading.Lock()
        self._position = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.endswith("/chat/completions"):
                    fake.unexpected.append(self.path)
                    self._send(Step({"error": {"message": "not found"}}, status=404))
                    return
                self._send(fake._next(body))

            def _send(self, step: Step) -> None:
                if step.delay:
                    time.sleep(step.delay)
                data = step.raw if step.raw is not None else json.dumps(step.body).encode()
                with suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(step.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in step.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _next(self, body: dict[str, Any]) -> Step:
        with self._lock:
            self.requests.append(body)
            if callable(self.script):
                return self.script(body)
            if self._position >= len(self.script):
                self.unexpected.append(f"request {len(self.requests)} after the script ended")
                return error(400, "fake server: the script has no more steps")
            step = self.script[self._position]
            self._position += 1
            return step

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def remaining(self) -> int:
        """Scripted steps not yet played."""
        return 0 if callable(self.script) else len(self.script) - self._position

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def tool_messages(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The tool-result messages of a request."""
    return (m for m in body["messages"] if m["role"] == "tool")
