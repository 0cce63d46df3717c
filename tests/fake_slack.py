"""A loopback stand-in for Slack's Web API and response URLs.

The supervisor's ``WebClient`` gets ``base_url=<server>/api/``; incoming payloads carry
``response_url=<server>/respond/<id>``. Every call is recorded so tests assert the blocks that
were posted and updated. Answers follow the shapes Slack documents for each method.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

BOT_USER = "UBOT0001"
TEAM = "T0001"


@dataclass
class Call:
    """One request Slack received: the API method (or ``respond``) and its arguments."""

    method: str
    args: dict[str, Any]
    path: str
    authorization: str | None


@dataclass
class FakeSlack:
    """Recorded calls and the server's addresses."""

    url: str = ""
    calls: list[Call] = field(default_factory=list)
    failing: dict[str, str] = field(default_factory=dict)  # method -> Slack error to answer
    socket_url: str = ""  # what apps.connections.open hands out (tests/fake_socket_mode.py)
    _seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/respond/{name}"

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def methods(self) -> list[str]:
        """Methods called, auth.test left out (bolt's own bookkeeping)."""
        return [c.method for c in self.calls if c.method != "auth.test"]

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            ts = f"1767600000.{self._seq:06d}"
        if method in self.failing:
            return {"ok": False, "error": self.failing[method]}
        if method == "auth.test":
            return {"ok": True, "url": "https://t.slack.com/", "team": "T", "user": "mlops",
                    "team_id": TEAM, "user_id": BOT_USER, "bot_id": "B0001"}  # fmt: skip
        if method == "chat.postMessage":
            return {"ok": True, "channel": args.get("channel"), "ts": ts,
                    "message": {"text": args.get("text"), "ts": ts}}  # fmt: skip
        if method == "chat.update":
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts"),
                    "text": args.get("text")}  # fmt: skip
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "apps.connections.open":  # Socket Mode: where the websocket is
            if not self.socket_url:
                return {"ok": False, "error": "no_socket_server"}
            return {"ok": True, "url": self.socket_url}
        return {"ok": False, "error": "unknown_method"}


def _decode(body: bytes, content_type: str) -> dict[str, Any]:
    if not body:
        return {}
    if "json" in content_type:
        data: dict[str, Any] = json.loads(body)
        return data
    args: dict[str, Any] = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    for key in ("blocks", "attachments"):  # the SDK sends these JSON-encoded in forms
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    return args


def start_fake_slack() -> tuple[FakeSlack, ThreadingHTTPServer]:
    """Start the server on 127.0.0.1 (a free port); stop it with ``server.shutdown()``."""
    fake = FakeSlack()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            args = _decode(body, self.headers.get("content-type", ""))
            auth = self.headers.get("authorization")
            if self.path.startswith("/api/"):
                method = self.path.removeprefix("/api/").split("?")[0]
                fake.calls.append(Call(method, args, self.path, auth))
                self._send(200, json.dumps(fake.answer(method, args)), "application/json")
            elif self.path.startswith("/respond/"):
                fake.calls.append(Call("respond", args, self.path, auth))
                self._send(200, "ok", "text/plain")
            else:
                self._send(404, "not found", "text/plain")

        def _send(self, status: int, text: str, ctype: str) -> None:
            raw = text.encode()
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server
