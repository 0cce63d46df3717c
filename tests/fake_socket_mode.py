"""A loopback stand-in for Slack's Socket Mode websocket.

Slack hands the app a websocket URL (``apps.connections.open``, answered by tests/fake_slack.py
with this server's ``ws://`` URL), says ``hello``, then delivers every interaction as an
envelope (``{"envelope_id", "type": "interactive" | "slash_commands" | ..., "payload"}``) that
the app must acknowledge by sending ``{"envelope_id"[, "payload"]}`` back. This server does
the same over plain ws on 127.0.0.1 (slack_sdk's client speaks plain ws to a port other than
443), and records the acknowledgements.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve


class SocketModeServer:
    """The connected app (one at a time), envelopes sent to it, and its acknowledgements."""

    def __init__(self) -> None:
        self.url = ""
        self.connected = threading.Event()
        self.acks: dict[str, dict[str, Any]] = {}
        self._acked = threading.Condition()
        self._conn: ServerConnection | None = None
        self._ids = itertools.count(1)

    def handle(self, conn: ServerConnection) -> None:
        self._conn = conn
        conn.send(json.dumps({"type": "hello", "num_connections": 1,
                              "debug_info": {"host": "fake-socket-mode"},
                              "connection_info": {"app_id": "A0MLOPS"}}))  # fmt: skip
        self.connected.set()
        try:
            for raw in conn:
                message = json.loads(raw)
                if "envelope_id" in message:
                    with self._acked:
                        self.acks[message["envelope_id"]] = message
                        self._acked.notify_all()
        except ConnectionClosed:
            pass
        finally:
            self.connected.clear()

    def deliver(self, kind: str, payload: dict[str, Any], *, timeout: float = 30) -> dict[str, Any]:
        """Send one envelope of ``kind`` and return the app's acknowledgement of it."""
        if self._conn is None or not self.connected.wait(timeout):
            raise AssertionError("no app is connected")
        envelope_id = f"env-{next(self._ids)}"
        self._conn.send(json.dumps({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                    "accepts_response_payload": True,
                                    "retry_attempt": 0, "retry_reason": ""}))  # fmt: skip
        with self._acked:
            if not self._acked.wait_for(lambda: envelope_id in self.acks, timeout):
                raise AssertionError(f"envelope {envelope_id} was not acknowledged")
            return self.acks[envelope_id]


@contextmanager
def fake_socket_mode() -> Iterator[SocketModeServer]:
    """Serve on a free loopback port; the server's ``url`` is what Slack would hand out."""
    state = SocketModeServer()
    server = serve(state.handle, "127.0.0.1", 0, compression=None)
    port = server.socket.getsockname()[1]
    state.url = f"ws://127.0.0.1:{port}/link/?ticket=fake"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        thread.join(10)
