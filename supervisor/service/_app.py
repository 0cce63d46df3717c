"""The HTTP API: Alertmanager intake, health, metrics, incidents and approvals."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from supervisor._errors import ConfigError
from supervisor.domain import AuditKind, IncidentStatus

from ._alertmanager import WebhookPayload
from ._health import Probe, WarmUp, run_probes
from ._runtime import ApprovalRefused, ServiceRuntime
from ._views import incident_detail, incident_summary

log = logging.getLogger("mlops_supervisor.service")


B = TypeVar("B", bound=BaseModel)


class PauseRequest(BaseModel):
    """Body of ``POST /pause`` and ``/resume``."""

    model_config = ConfigDict(extra="forbid")

    by: str = Field(min_length=1, max_length=200, description="Who: a policy approver.")
    model: str | None = Field(default=None, description="One model; omit for all.")
    reason: str = Field(default="", max_length=2000, description="Why, for the audit log.")


class ApprovalAnswer(BaseModel):
    """Body of ``POST /incidents/{id}/approve`` and ``/deny``."""

    model_config = ConfigDict(extra="forbid")

    by: str = Field(min_length=1, max_length=200, description="Who answers: a policy approver.")
    comment: str = Field(default="", max_length=2000, description="Why, for the audit log.")


class Problem(BaseModel):
    """Body of every refusal the service answers (4xx, 503): what was wrong."""

    detail: str | list[dict[str, Any]] = Field(
        description="What was refused and why, or (422) one entry per bad field: its 'loc', "
        "'msg' and 'type'."
    )


def _answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route that answers these refusals besides its success."""
    return {s: {"description": _REFUSALS[s], "model": Problem} for s in statuses}


_REFUSALS = {
    401: "Missing or wrong bearer token (header WWW-Authenticate: Bearer).",
    403: "The person named by 'by' is not a policy approver; the refusal is audited.",
    404: "No such incident, or no such watched model.",
    409: "The incident is not awaiting approval, or an answer is already being applied.",
    413: "The body exceeds the size limit.",
    422: "The body is not JSON, or a field is missing or wrong (each named).",
    503: "The service is stopping, or (approval API) no bearer token is configured.",
}


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as a route's JSON body. The routes read the raw
    body themselves (size-capped before any parsing), so FastAPI cannot see it; the schema
    itself is added to the components by :meth:`ServiceApp.openapi`."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


_BEARER: dict[str, Any] = {"security": [{"bearer": []}]}


def _without_bearer(request: Request, token: str, what: str) -> JSONResponse | None:
    """None if the request carries ``Authorization: Bearer <token>`` (compared in constant
    time); else the 401 to answer, logged as refused by ``what``."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    log.warning("%s: bad or missing bearer token from %s", what, request.client)
    return _problem(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


#: Longest span one audit record of bearer refusals covers, per route. A refusal changes
#: nothing, so the log needs that refusals happen, how many and from where, not one record each:
#: a record each would let an unauthenticated flood force one fsync per request. One a minute
#: bounds a flood to 60 writes an hour per route while an operator still sees it within a minute.
REFUSAL_WINDOW_SECONDS = 60.0

#: Distinct client addresses one refusal record keeps (a flood from many addresses must not
#: grow the record without bound).
REFUSAL_SOURCES = 10


class RefusalTally:
    """Bearer token refusals, per route, folded into at most one audit record a window.

    The first refusal of a route is recorded at once; later ones inside ``window`` seconds of
    the last record are only counted, and go into the next record (the next refusal after the
    window, or :meth:`drain` when the service stops) with how many there were and from where.
    """

    def __init__(
        self,
        window: float = REFUSAL_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}
        self._sources: dict[str, list[str]] = {}

    def refused(self, route: str, source: str) -> dict[str, Any] | None:
        """Count one refusal; the data of the record to write now, or None (counted only)."""
        with self._lock:
            self._count[route] = self._count.get(route, 0) + 1
            sources = self._sources.setdefault(route, [])
            if source not in sources and len(sources) < REFUSAL_SOURCES:
                sources.append(source)
            now = self._clock()
            last = self._last.get(route)
            if last is not None and now - last < self._window:
                return None
            self._last[route] = now
            return self._take(route)

    def drain(self) -> list[dict[str, Any]]:
        """The records of every refusal counted but not yet recorded."""
        with self._lock:
            return [self._take(route) for route, n in list(self._count.items()) if n]

    def _take(self, route: str) -> dict[str, Any]:
        data = {
            "event": "refused",
            "route": route,
            "reason": "missing or wrong bearer token",
            "refusals": self._count.pop(route),
            "sources": self._sources.pop(route, []),
            "window_s": self._window,
        }
        return {"access": data}


def _intake_token(token_env: str | None, given: str | None) -> str | None:
    if given is not None or token_env is None:
        return given
    token = os.environ.get(token_env, "").strip()
    if not token:
        raise ConfigError(
            f"service.intake.token_env names ${token_env}, which is unset or empty: set it to "
            "the bearer token Alertmanager sends (the receiver's http_config.authorization), "
            "or remove token_env to leave POST /alerts open"
        )
    return token


def _problem(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)


def _field_errors(err: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in err.errors(include_url=False)
    ]


async def _read_json(request: Request, limit: int) -> Any:
    """The body as JSON, or a 413/422 response; never more than ``limit`` bytes are read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _problem(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return _problem(413, f"body exceeds the limit of {limit} bytes")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return _problem(422, [{"loc": ["body"], "msg": f"not JSON: {err}"}])
    except RecursionError:
        return _problem(422, [{"loc": ["body"], "msg": "not JSON we accept: nested too deeply"}])
    except ValueError as err:  # an integer past Python's 4,300-digit conversion limit
        return _problem(422, [{"loc": ["body"], "msg": f"not JSON we accept: {err}"}])


class LaneClosed(Exception):
    """The intake lane takes no more notifications (the service is stopping)."""


_Outcome = dict[str, Any] | Exception
_Pending = tuple[WebhookPayload, asyncio.AbstractEventLoop, "asyncio.Future[dict[str, Any]]"]


class IntakeLane:
    """Runs the webhook's intake on one thread, for the notifications waiting, in batches.

    Intake blocks until its audit records are on disk, so it cannot run on the event loop.
    One thread rather than a pool: every notification waits for the disk anyway, and a pool
    costs each request two thread hand-offs (a queue wake-up there, a loop wake-up back) and
    contention on the incident and audit locks in between, all of it fought out over the GIL.
    Here the thread takes every notification waiting, in arrival order (at most ``max_batch``:
    the first of a batch waits for the whole batch), inside one ``batch_sync`` block: one wait
    for the disk for all of them, while the event loop reads the next requests. Each event
    loop is woken once per batch. A notification is answered once every record of its batch
    is durable; if that final sync fails, every notification of the batch fails.

    The thread starts with the first notification and ends after ``idle_seconds`` without one.
    """

    def __init__(
        self,
        intake: Callable[[WebhookPayload], dict[str, Any]],
        batch_sync: Callable[[], AbstractContextManager[object]],
        *,
        max_batch: int = 64,
        idle_seconds: float = 10.0,
    ) -> None:
        self._intake = intake
        self._batch_sync = batch_sync
        self._max_batch = max_batch
        self._idle = idle_seconds
        self._ready = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def intake(self, payload: WebhookPayload) -> dict[str, Any]:
        """What intake returns for ``payload``, once its records are durable.

        Raises what intake (or the batch's sync) raised, or :class:`LaneClosed` after
        :meth:`close`.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        with self._ready:
            if self._closed:
                raise LaneClosed("the intake lane is closed")
            self._queue.append((payload, loop, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="intake", daemon=True)
                self._thread.start()
            self._ready.notify()
        return await future

    def close(self, timeout: float | None = None) -> None:
        """Take no more notifications; wait (up to ``timeout`` s) for those queued."""
        with self._ready:
            self._closed = True
            thread = self._thread
            self._ready.notify()
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                if not self._queue and not self._closed:
                    self._ready.wait(self._idle)
                if not self._queue:
                    self._thread = None  # idle or closed; the next notification starts one
                    return
                batch = [
                    self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))
                ]
            _answer(batch, self._take(batch))

    def _take(self, batch: list[_Pending]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        try:
            with self._batch_sync():
                for payload, _, _ in batch:
                    try:
                        outcomes.append(self._intake(payload))
                    except Exception as err:  # this notification's answer: a 500
                        outcomes.append(err)
        except Exception as err:  # the wait for the disk failed: nothing here is durable
            return [err] * len(batch)
        return outcomes


def _answer(batch: list[_Pending], outcomes: list[_Outcome]) -> None:
    """Hand each outcome to its request's event loop: one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], _Outcome]]] = {}
    for (_, loop, future), outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((future, outcome))
    for loop, answers in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, answers)
        except RuntimeError:  # that loop is closed: its requests went with it
            log.warning("intake: %d answers for a closed event loop dropped", len(answers))


def _settle(answers: list[tuple[asyncio.Future[Any], _Outcome]]) -> None:
    for future, outcome in answers:
        if future.done():  # the request was cancelled (client gone); its records stand
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class ServiceApp(FastAPI):
    """FastAPI, with a shortcut for the Alertmanager webhook.

    ``POST /alerts`` is the one hot path (thousands of notifications a minute in an alert
    storm); the shortcut calls its endpoint function directly, skipping the middleware layers,
    the router and the dependency machinery, about 40 us of event-loop time per request. The
    route is declared as usual all the same (OpenAPI, and any request the shortcut does not
    take), so both paths run the same function.
    """

    webhook: Callable[[Request], Awaitable[Response]] | None = None

    #: The request bodies the routes declare with :func:`_json_body`.
    bodies: tuple[type[BaseModel], ...] = ()

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, plus the schemas of the bodies the routes read themselves and
        the bearer scheme of the approval API and the alerts webhook."""
        if self.openapi_schema is None:
            schema = super().openapi()
            components = schema.setdefault("components", {})
            found = components.setdefault("schemas", {})
            for model in self.bodies:
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                found.update(body.pop("$defs", {}))
                found[model.__name__] = body
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            return schema
        return self.openapi_schema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.webhook is not None
            and scope["type"] == "http"
            and scope["path"] == "/alerts"
            and scope["method"] == "POST"
        ):
            try:
                response = await self.webhook(Request(scope, receive))
            except ClientDisconnect:
                return  # nobody to answer; nothing was recorded
            except Exception:  # as Starlette's ServerErrorMiddleware would: log, answer 500
                log.exception("POST /alerts failed")
                response = _problem(500, "internal error; see the service log")
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    runtime: ServiceRuntime,
    *,
    probes: list[Probe] | None = None,
    approval_token: str | None = None,
    intake_token: str | None = None,
    warm_up: WarmUp | None = None,
) -> ServiceApp:
    """The service's routes over one runtime (no globals: tests build as many as they like).

    Args:
        runtime: Intake, workers and scheduler; started and shut down with the app.
        probes: Readiness probes of the real backends (``/readyz``); none: only shutdown
            makes the service unready.
        approval_token: Bearer token of the approval API; default: the environment variable
            named by ``service.approval_token_env``. Unset or empty: the API answers 503.
        intake_token: Bearer token ``POST /alerts`` requires; default: the environment
            variable named by ``service.intake.token_env``, if that is set (and then it must
            not be empty: :class:`ConfigError`). None and no ``token_env``: no token.
        warm_up: Background work after the start; ``/readyz`` answers 503 "warming up"
            until it has finished.
    """
    config = runtime.supervisor.config
    limit = config.service.intake.max_body_bytes
    token_env = config.service.approval_token_env
    token = approval_token if approval_token is not None else os.environ.get(token_env, "")
    intake_token = _intake_token(config.service.intake.token_env, intake_token)
    probes = probes or []
    lane = IntakeLane(runtime.intake, runtime.supervisor.audit.deferred_sync)
    refusals = RefusalTally()

    def record_refusal(data: dict[str, Any]) -> None:
        # No incident: audited like a refused pause (an update record without an incident).
        try:
            runtime.supervisor.audit.append(
                AuditKind.INCIDENT_UPDATED, incident_id=None, actor="service", data=data
            )
        except Exception:  # the answer is a 401 all the same; nothing else was written
            log.exception("could not audit bearer token refusals: %s", data)

    async def bearer_refusal(request: Request, token: str, route: str) -> JSONResponse | None:
        """The 401 to answer (audited, see :class:`RefusalTally`), or None: the token is right."""
        refused = _without_bearer(request, token, route)
        if refused is not None:
            source = request.client.host if request.client else "unknown"
            if (data := refusals.refused(route, source)) is not None:
                await run_in_threadpool(record_refusal, data)
        return refused

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(runtime.start)
        yield
        # uvicorn stopped accepting connections and finished the open requests already.
        await run_in_threadpool(lane.close, config.service.shutdown_grace_seconds)
        for data in refusals.drain():
            await run_in_threadpool(record_refusal, data)
        await run_in_threadpool(runtime.shutdown)

    app = ServiceApp(title="mlops-supervisor", version="0.1.0", lifespan=lifespan)
    app.bodies = (WebhookPayload, PauseRequest, ApprovalAnswer)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "Not ready: what failed, or warm-up."}})
    def readyz() -> JSONResponse:
        """Readiness: warm-up finished, configured backends reachable, state writable; 503
        naming what failed (or the warm-up step still running)."""
        if runtime.closed:
            return JSONResponse({"status": "stopping", "checks": {}}, status_code=503)
        ok, checks = run_probes(probes)
        if warm_up is not None and not warm_up.done:
            checks["warm_up"] = f"running: {warm_up.current}"
            return JSONResponse({"status": "warming up", "checks": checks}, status_code=503)
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus exposition: incidents, decisions, actions, tool calls, drift figures."""
        runtime.refresh_incident_gauges()
        return Response(runtime.metrics.render(), media_type=runtime.metrics.content_type)

    @app.post(
        "/alerts",
        openapi_extra={**_json_body(WebhookPayload), **(_BEARER if intake_token else {})},
        responses=_answers(*([401] if intake_token else []), 413, 422, 503),
    )
    async def alerts(request: Request) -> Response:
        """Alertmanager webhook (version 4). 413 over the size limit, 422 naming a bad field;
        neither changes any state."""
        if intake_token and (refused := await bearer_refusal(request, intake_token, "alerts")):
            return refused
        raw = await _read_json(request, limit)
        if isinstance(raw, JSONResponse):
            return raw
        try:
            payload = WebhookPayload.model_validate(raw)
        except ValidationError as err:
            return _problem(422, _field_errors(err))
        if not runtime.closed:
            # Intake blocks until its audit records are on disk: on the lane's thread, in
            # batches that share one wait for the disk; the event loop reads the next
            # requests meanwhile.
            with contextlib.suppress(LaneClosed):
                return JSONResponse(await lane.intake(payload))
        return _problem(503, "the service is stopping; Alertmanager will retry")

    app.webhook = alerts

    @app.get("/incidents")
    def incidents(status: IncidentStatus | None = None, model: str | None = None) -> dict[str, Any]:
        """Incidents, oldest first, optionally of one status or model."""
        found = [
            incident_summary(i)
            for i in runtime.supervisor.incidents.all()
            if (status is None or i.status is status) and (model is None or i.model == model)
        ]
        return {"incidents": found}

    @app.get("/incidents/{incident_id}", responses=_answers(404))
    def incident(incident_id: str) -> JSONResponse:
        """Diagnosis, evidence, decisions, approvals, actions and outcomes of one incident."""
        inc = runtime.supervisor.incidents.get(incident_id)
        if inc is None:
            return _problem(404, f"no incident {incident_id!r}")
        return JSONResponse(incident_detail(runtime.supervisor, inc))

    async def authorised_body(request: Request, model: type[B]) -> B | JSONResponse:
        """The bearer token checked, then the body parsed as ``model`` (401/413/422 if not)."""
        if not token:
            return _problem(503, f"approval API disabled: set ${token_env} to a bearer token")
        if refused := await bearer_refusal(request, token, "approval API"):
            return refused
        raw = await _read_json(request, 16_384)
        if isinstance(raw, JSONResponse):
            return raw
        try:
            return model.model_validate(raw)
        except ValidationError as err:
            return _problem(422, _field_errors(err))

    async def answer(
        request: Request, incident_id: str, decision: Literal["approved", "denied"]
    ) -> JSONResponse:
        body = await authorised_body(request, ApprovalAnswer)
        if isinstance(body, JSONResponse):
            return body
        try:
            await run_in_threadpool(runtime.answer, incident_id, decision, body.by, body.comment)
        except ApprovalRefused as err:
            return _problem(err.status, str(err))
        return JSONResponse(
            {"incident": incident_id, "decision": decision, "by": body.by, "queued": True},
            status_code=202,
        )

    @app.get("/pause")
    def pause_state() -> JSONResponse:
        """The pause switch: global and per model."""
        return JSONResponse(runtime.supervisor.pause.state().model_dump(mode="json", by_alias=True))

    async def switch(request: Request, verb: Literal["pause", "resume"]) -> JSONResponse:
        body = await authorised_body(request, PauseRequest)
        if isinstance(body, JSONResponse):
            return body
        sup = runtime.supervisor
        people = sup.policy.members(sorted(sup.policy.approver_groups))
        if body.by not in people:
            sup.pause.record_refused(verb, body.model, body.by, via="api")
            return _problem(403, f"{body.by!r} may not {verb}; approvers are {people}")
        if body.model is not None and sup.config.model_for(body.model) is None:
            return _problem(404, f"no watched model {body.model!r}")
        act = sup.pause.pause if verb == "pause" else sup.pause.resume
        changed = act(body.model, body.by, body.reason)
        return JSONResponse({"model": body.model, verb: True, "changed": changed})

    @app.post(
        "/pause",
        openapi_extra={**_json_body(PauseRequest), **_BEARER},
        responses=_answers(401, 403, 404, 413, 422, 503),
    )
    async def pause(request: Request) -> JSONResponse:
        """Hold back every action (of one model, or all); investigation and reports go on."""
        return await switch(request, "pause")

    @app.post(
        "/resume",
        openapi_extra={**_json_body(PauseRequest), **_BEARER},
        responses=_answers(401, 403, 404, 413, 422, 503),
    )
    async def resume(request: Request) -> JSONResponse:
        """Lift a pause (of one model, or the global one)."""
        return await switch(request, "resume")

    @app.post(
        "/incidents/{incident_id}/approve",
        status_code=202,
        openapi_extra={**_json_body(ApprovalAnswer), **_BEARER},
        responses=_answers(401, 403, 404, 409, 413, 422, 503),
    )
    async def approve(request: Request, incident_id: str) -> JSONResponse:
        """Approve the pending action (bearer token; ``by`` must be a policy approver).
        202: the incident resumes on a worker; follow it with ``GET /incidents/{id}``."""
        return await answer(request, incident_id, "approved")

    @app.post(
        "/incidents/{incident_id}/deny",
        status_code=202,
        openapi_extra={**_json_body(ApprovalAnswer), **_BEARER},
        responses=_answers(401, 403, 404, 409, 413, 422, 503),
    )
    async def deny(request: Request, incident_id: str) -> JSONResponse:
        """Deny the pending action (bearer token; ``by`` must be a policy approver)."""
        return await answer(request, incident_id, "denied")

    return app
