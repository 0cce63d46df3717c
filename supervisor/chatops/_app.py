"""The Slack app: buttons, ``/mlops``, signature checks, HTTP and Socket Mode wiring."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.middleware import Middleware
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from slack_sdk.signature import Clock as SignatureClock
from slack_sdk.signature import SignatureVerifier
from starlette.concurrency import run_in_threadpool

from supervisor.domain import IncidentStatus

from ._blocks import APPROVE_ACTION, DENY_ACTION
from ._commands import USAGE, Caller, Commands, Reply, parse
from ._config import SlackConfig
from ._notifier import SlackNotifier
from ._pause import PauseSwitch
from ._payload import malformed

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from supervisor.runtime import Supervisor

log = logging.getLogger("mlops_supervisor.chatops")

#: Events, interactivity and slash commands all arrive here (one Request URL in the manifest).
EVENTS_PATH = "/slack/events"

#: Slack's window for the request timestamp; also how long a signature is remembered.
REPLAY_WINDOW_S = 300

#: Largest request body read from the internet-facing events URL. Slack's interactive payloads
#: carry at most the message they came from (50 blocks of 3,000 characters); 1 MiB is several
#: times that, and an unsigned flood cannot make the server buffer more.
MAX_BODY_BYTES = 1_048_576

_P = ParamSpec("_P")
_T = TypeVar("_T")


class _EpochClock(SignatureClock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class SignatureCheck(Middleware):
    """Slack's v0 request signature over ``v0:{timestamp}:{body}`` with the signing secret,
    a 5-minute timestamp window against an injectable clock, and no second use of a signature
    within that window (a captured request cannot be replayed). Anything else is a 401 that
    reaches no listener."""

    def __init__(self, signing_secret: str, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._verifier = SignatureVerifier(signing_secret, clock=_EpochClock(now))
        self._seen: dict[str, int] = {}  # signature -> its request timestamp
        self._lock = threading.Lock()

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        if req.mode == "socket_mode":  # the websocket is authenticated by the app token
            return next()
        timestamp = req.headers.get("x-slack-request-timestamp", [""])[0]
        signature = req.headers.get("x-slack-signature", [""])[0]
        try:
            valid = self._verifier.is_valid(req.raw_body, timestamp, signature)
        except ValueError:  # a timestamp that is not a number
            valid = False
        if valid and self._first_use(signature, int(timestamp)):
            return next()
        log.warning("slack: refused a request: bad signature, stale timestamp or a replay")
        return BoltResponse(status=401, body={"error": "invalid request"})

    def signed(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Whether ``body`` carries a valid signature (the replay check stays with
        :meth:`process`, which every request still passes)."""
        timestamp = headers.get("x-slack-request-timestamp", "")
        try:
            return self._verifier.is_valid(body, timestamp, headers.get("x-slack-signature", ""))
        except ValueError:
            return False

    def plausible(self, headers: Mapping[str, str]) -> bool:
        """Whether a request can be signed at all: a v0 signature and a fresh timestamp. Checked
        before the body is read, so an unsigned or stale post costs no memory."""
        timestamp = headers.get("x-slack-request-timestamp", "")
        if not headers.get("x-slack-signature", "").startswith("v0=") or not timestamp.isdigit():
            return False
        return abs(self._now() - int(timestamp)) <= REPLAY_WINDOW_S

    def _first_use(self, signature: str, timestamp: int) -> bool:
        horizon = self._now() - REPLAY_WINDOW_S
        with self._lock:
            for sig in [s for s, ts in self._seen.items() if ts < horizon]:
                del self._seen[sig]  # older than the window: the timestamp check refuses it
            if signature in self._seen:
                return False
            self._seen[signature] = timestamp
            return True


class SocketModeOnly(Middleware):
    """In Socket Mode every request comes over the websocket the app token opened; one that
    arrives any other way (an HTTP post to the events URL) is refused: nothing signs it."""

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        if req.mode == "socket_mode":
            return next()
        log.warning("slack: refused an HTTP request in Socket Mode (no signing secret)")
        return BoltResponse(status=401, body={"error": "invalid request"})


class _TrackedPool(ThreadPoolExecutor):
    """The listeners' pool; ``drain`` waits for work in flight (tests, shutdown)."""

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="slack")
        self._pending: set[Future[Any]] = set()
        self._pending_lock = threading.Lock()

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        fut = super().submit(fn, *args, **kwargs)
        with self._pending_lock:
            self._pending.add(fut)
        fut.add_done_callback(self._forget)
        return fut

    def _forget(self, fut: Future[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(fut)

    def drain(self, timeout: float | None = None) -> None:
        while True:
            with self._pending_lock:
                pending = list(self._pending)
            if not pending:
                return
            for f in pending:
                f.exception(timeout=timeout)


class ChatOps:
    """Slack chat-ops over one supervisor: incident messages, buttons and ``/mlops``.

    Build it once per service; mount its routes with :func:`mount_slack` (HTTP mode) or call
    :meth:`start` (Socket Mode). ``env`` defaults to ``os.environ``; ``now`` (epoch seconds)
    is the clock of the signature window; ``client`` replaces the Web API client;
    ``on_answered(incident_id)`` runs after an approval or denial from Slack has resumed the
    graph (the service passes ``ServiceRuntime.observe`` so /metrics sees it).
    """

    def __init__(
        self,
        supervisor: Supervisor,
        config: SlackConfig,
        *,
        pause: PauseSwitch | None = None,
        env: Mapping[str, str] | None = None,
        client: WebClient | None = None,
        now: Callable[[], float] = time.time,
        workers: int = 4,
        on_answered: Callable[[str], None] | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.config = config
        self.pause = pause or supervisor.pause
        self._env = env
        self._on_answered = on_answered
        if client is None:
            client = WebClient(
                token=config.secret("bot_token_env", env),
                base_url=config.api_base_url or WebClient.BASE_URL,
            )
        self.client = client
        self.notifier = SlackNotifier(supervisor, config, client, pause=self.pause)
        self.commands = Commands(supervisor, self.pause)
        self._pool = _TrackedPool(workers)
        check: Middleware = SocketModeOnly()
        secret = ""
        self._signature: SignatureCheck | None = None
        if config.mode == "http":
            secret = config.secret("signing_secret_env", env)
            check = self._signature = SignatureCheck(secret, now)
        self.app = App(
            name="mlops-supervisor",
            client=client,
            token_verification_enabled=False,  # no Slack call at construction
            request_verification_enabled=False,  # replaced by SignatureCheck (injected clock)
            before_authorize=check,
            listener_executor=self._pool,
            signing_secret=secret,  # checked by SignatureCheck; unused in Socket Mode
        )
        self._socket: SocketModeHandler | None = None
        self._register()

    # ------------------------------------------------------------------ wiring

    def router(self) -> APIRouter:
        """``POST /slack/events``: events, interactivity and slash commands."""
        router = APIRouter()
        app = self.app

        signature = self._signature

        @router.post(EVENTS_PATH, include_in_schema=False)
        async def slack_events(request: Request) -> Response:
            if signature is not None and not signature.plausible(request.headers):
                log.warning("slack: refused a request with no signature or a stale timestamp")
                return JSONResponse({"error": "invalid request"}, status_code=401)
            body = await _read_capped(request, MAX_BODY_BYTES)
            if body is None:
                return JSONResponse(
                    {"error": f"body exceeds {MAX_BODY_BYTES} bytes"}, status_code=413
                )
            if signature is not None and signature.signed(body, request.headers):
                problem = malformed(body, request.headers.get("content-type", ""))
                if problem is not None:
                    log.warning("slack: refused a signed but malformed request: %s", problem)
                    return JSONResponse({"error": problem}, status_code=400)
            # bolt blocks until the listener acks; keep the event loop free meanwhile
            resp = await run_in_threadpool(app.dispatch, to_bolt_request(request, body))
            return to_starlette_response(resp)

        return router

    def socket_mode_handler(self) -> SocketModeHandler:
        """The Socket Mode handler (built once; ``start`` connects it)."""
        if self._socket is None:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            self._socket = SocketModeHandler(
                self.app, self.config.secret("app_token_env", self._env)
            )
        return self._socket

    def start(self) -> None:
        """In Socket Mode, open the websocket (returns at once); in HTTP mode, nothing."""
        if self.config.mode == "socket":
            self.socket_mode_handler().connect()  # type: ignore[no-untyped-call]

    def drain(self, timeout: float | None = None) -> None:
        """Wait until the work that buttons and commands started is done."""
        self._pool.drain(timeout)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()  # type: ignore[no-untyped-call]
        self._pool.shutdown(wait=True)

    # ------------------------------------------------------------------ service hooks

    def incident_changed(self, incident_id: str) -> str | None:
        """Post or update the incident's message (see :meth:`SlackNotifier.incident_changed`)."""
        return self.notifier.incident_changed(incident_id)

    # ------------------------------------------------------------------ listeners

    def _register(self) -> None:
        self.app.action(APPROVE_ACTION)(self._on_approve)
        self.app.action(DENY_ACTION)(self._on_deny)
        self.app.command(self.config.command)(self._on_command)

    def _on_approve(self, ack: Callable[..., Any], body: dict[str, Any]) -> None:
        ack()
        self._button(body, "approved")

    def _on_deny(self, ack: Callable[..., Any], body: dict[str, Any]) -> None:
        ack()
        self._button(body, "denied")

    def _button(self, body: dict[str, Any], decision: str) -> None:
        user = str(body["user"]["id"])
        channel = str((body.get("channel") or {}).get("id") or self.config.channel)
        incident_id = str(body["actions"][0]["value"])
        caller = Caller(user, self.config.identity(user), channel)
        reply = self.commands.answer(incident_id, caller, decision)
        if not reply.ok or not self.supervisor.leading():
            # A refusal, or an answer queued for the leader: the message changes only once
            # the leader applies it, so tell the person now.
            self._ephemeral(channel, user, reply)
        self._answered(incident_id, reply)

    def _on_command(
        self, ack: Callable[..., Any], command: dict[str, Any], respond: Callable[..., Any]
    ) -> None:
        words = parse(str(command.get("text", "")))
        verb = words[0].lower() if words else "help"
        user = str(command["user_id"])
        caller = Caller(user, self.config.identity(user), command.get("channel_id"))
        if verb in ("approve", "deny"):
            if len(words) < 2:
                ack(**Reply(f"Usage: `{self.config.command} {verb} ID [comment]`").payload())
                return
            incident_id = words[1]
            ack(response_type="ephemeral", text=f"Working on `{verb} {incident_id}`…")
            decision = "approved" if verb == "approve" else "denied"
            reply = self.commands.answer(incident_id, caller, decision, " ".join(words[2:]))
            respond(**reply.payload(), replace_original=False)
            self._answered(incident_id, reply)
            return
        if verb in ("pause", "resume"):
            reply = self.commands.switch(verb, words[1] if len(words) > 1 else None, caller)
            ack(**reply.payload())
            if reply.ok:
                self._refresh_open()
            return
        if verb == "status":
            reply = self.commands.status()
        elif verb == "incidents":
            reply = self.commands.incidents()
        elif verb == "explain" and len(words) > 1:
            reply = self.commands.explain(words[1])
        else:
            reply = Reply(USAGE)
        ack(**reply.payload())

    def _answered(self, incident_id: str, reply: Reply) -> None:
        if reply.ok and self._on_answered is not None:
            try:
                self._on_answered(incident_id)
            except Exception:  # a hook must not keep the message from updating
                log.exception("slack: on_answered failed for %s", incident_id)
        # A follower only queued the answer: the leader applies it and updates the message.
        # Rendering here would race the leader's run and could show a half-applied state.
        if self.supervisor.leading() and self.supervisor.incidents.get(incident_id) is not None:
            self.notifier.incident_changed(incident_id)

    def _refresh_open(self) -> None:
        """Open incidents' messages show whether actions are paused."""
        ended = {IncidentStatus.MITIGATED, IncidentStatus.ESCALATED, IncidentStatus.CLOSED}
        for inc in self.supervisor.incidents.all():
            if inc.status not in ended and self.notifier.message_of(inc.id) is not None:
                self.notifier.incident_changed(inc.id)

    def _ephemeral(self, channel: str, user: str, reply: Reply) -> None:
        try:
            self.client.chat_postEphemeral(
                channel=channel, user=user, text=reply.text, blocks=reply.blocks or None
            )
        except (SlackClientError, OSError) as err:
            log.warning("slack: could not tell %s: %s", user, err)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None past ``limit`` bytes (declared or streamed); never reads more."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def mount_slack(app: FastAPI, chatops: ChatOps) -> None:
    """Add ``POST /slack/events`` (events, interactivity, slash commands) to the service, in
    HTTP mode; in Socket Mode nothing (requests come over the websocket)."""
    if chatops.config.mode != "http":
        return  # Socket Mode: Slack talks over the websocket; an open URL would be unsigned
    app.include_router(chatops.router())
