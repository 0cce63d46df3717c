"""The HTTP API: Alertmanager intake and health."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from ._alertmanager import WebhookPayload
from ._runtime import ServiceRuntime


def _problem(status: int, detail: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


def create_app(runtime: ServiceRuntime) -> FastAPI:
    """The service's routes over one runtime (no globals: tests build as many as they like)."""
    app = FastAPI(title="mlops-supervisor", version="0.1.0")
    limit = runtime.supervisor.config.service.intake.max_body_bytes

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus exposition: incidents, decisions, actions, tool calls, drift figures."""
        return Response(runtime.metrics.render(), media_type=runtime.metrics.content_type)

    @app.post("/alerts")
    async def alerts(request: Request) -> JSONResponse:
        """Alertmanager webhook (version 4). 413 over the size limit, 422 naming a bad field;
        neither changes any state."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _problem(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _problem(413, f"body exceeds the limit of {limit} bytes")
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            return _problem(422, [{"loc": ["body"], "msg": f"not JSON: {err}"}])
        try:
            payload = WebhookPayload.model_validate(raw)
        except ValidationError as err:
            return _problem(
                422,
                [
                    {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                    for e in err.errors(include_url=False)
                ],
            )
        return JSONResponse(runtime.intake(payload))

    return app
