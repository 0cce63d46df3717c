"""The HTTP API: Alertmanager intake, health, metrics, incidents and approvals."""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from supervisor.domain import IncidentStatus

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


def create_app(
    runtime: ServiceRuntime,
    *,
    probes: list[Probe] | None = None,
    approval_token: str | None = None,
    warm_up: WarmUp | None = None,
) -> FastAPI:
    """The service's routes over one runtime (no globals: tests build as many as they like).

    Args:
        runtime: Intake, workers and scheduler; started and shut down with the app.
        probes: Readiness probes of the real backends (``/readyz``); none: only shutdown
            makes the service unready.
        approval_token: Bearer token of the approval API; default: the environment variable
            named by ``service.approval_token_env``. Unset or empty: the API answers 503.
        warm_up: Background work after the start; ``/readyz`` answers 503 "warming up"
            until it has finished.
    """
    config = runtime.supervisor.config
    limit = config.service.intake.max_body_bytes
    token_env = config.service.approval_token_env
    token = approval_token if approval_token is not None else os.environ.get(token_env, "")
    probes = probes or []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(runtime.start)
        yield
        # uvicorn stopped accepting connections and finished the open requests already.
        await run_in_threadpool(runtime.shutdown)

    app = FastAPI(title="mlops-supervisor", version="0.1.0", lifespan=lifespan)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
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

    @app.post("/alerts")
    async def alerts(request: Request) -> JSONResponse:
        """Alertmanager webhook (version 4). 413 over the size limit, 422 naming a bad field;
        neither changes any state."""
        raw = await _read_json(request, limit)
        if isinstance(raw, JSONResponse):
            return raw
        try:
            payload = WebhookPayload.model_validate(raw)
        except ValidationError as err:
            return _problem(422, _field_errors(err))
        if runtime.closed:
            return _problem(503, "the service is stopping; Alertmanager will retry")
        # Intake blocks until its audit records are on disk. On a worker thread, concurrent
        # notifications share one fsync (the audit log's group commit) and the event loop keeps
        # reading the next requests meanwhile.
        return JSONResponse(await run_in_threadpool(runtime.intake, payload))

    @app.get("/incidents")
    def incidents(status: IncidentStatus | None = None, model: str | None = None) -> dict[str, Any]:
        """Incidents, oldest first, optionally of one status or model."""
        found = [
            incident_summary(i)
            for i in runtime.supervisor.incidents.all()
            if (status is None or i.status is status) and (model is None or i.model == model)
        ]
        return {"incidents": found}

    @app.get("/incidents/{incident_id}")
    def incident(incident_id: str) -> JSONResponse:
        """Diagnosis, evidence, decisions, approvals, actions and outcomes of one incident."""
        inc = runtime.supervisor.incidents.get(incident_id)
        if inc is None:
            return _problem(404, f"no incident {incident_id!r}")
        return JSONResponse(incident_detail(runtime.supervisor, inc))

    def authorised(request: Request) -> JSONResponse | None:
        if not token:
            return _problem(503, f"approval API disabled: set ${token_env} to a bearer token")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            log.warning("approval API: bad or missing bearer token from %s", request.client)
            return _problem(
                401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        return None

    async def authorised_body(request: Request, model: type[B]) -> B | JSONResponse:
        """The bearer token checked, then the body parsed as ``model`` (401/413/422 if not)."""
        refused = authorised(request)
        if refused is not None:
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

    @app.post("/pause")
    async def pause(request: Request) -> JSONResponse:
        """Hold back every action (of one model, or all); investigation and reports go on."""
        return await switch(request, "pause")

    @app.post("/resume")
    async def resume(request: Request) -> JSONResponse:
        """Lift a pause (of one model, or the global one)."""
        return await switch(request, "resume")

    @app.post("/incidents/{incident_id}/approve", status_code=202)
    async def approve(request: Request, incident_id: str) -> JSONResponse:
        """Approve the pending action (bearer token; ``by`` must be a policy approver).
        202: the incident resumes on a worker; follow it with ``GET /incidents/{id}``."""
        return await answer(request, incident_id, "approved")

    @app.post("/incidents/{incident_id}/deny", status_code=202)
    async def deny(request: Request, incident_id: str) -> JSONResponse:
        """Deny the pending action (bearer token; ``by`` must be a policy approver)."""
        return await answer(request, incident_id, "denied")

    return app
