"""The CLI as a client of a running service (``--service URL``): list incidents, answer
approvals and pause or resume over the service's API, so an operator next to a deployment
(``kubectl exec``, a port-forward) need not reach its state. The service checks who asks and
runs the graph."""

from __future__ import annotations

import os
from typing import Any

from supervisor._errors import SupervisorError

_TIMEOUT_S = 30.0


def answer_via_service(
    url: str, incident_id: str, verb: str, by: str, comment: str, token_env: str
) -> dict[str, Any]:
    """``POST /incidents/{id}/approve|deny`` with the bearer token in ``$token_env``; the
    service's answer (202: queued for a worker). Raises :class:`SupervisorError` naming what
    the service refused (401, 403, 404, 409, 422) or why it could not be reached."""
    body = {"by": by, "comment": comment}
    return _call(
        "POST", url, f"/incidents/{incident_id}/{verb}", json=body, headers=_auth(token_env)
    )


def switch_via_service(url: str, verb: str, model: str | None, by: str, token_env: str) -> bool:
    """``POST /pause`` or ``/resume`` (one model, or all); whether the switch changed."""
    body = {"by": by, "model": model}
    return bool(_call("POST", url, f"/{verb}", json=body, headers=_auth(token_env))["changed"])


def _auth(token_env: str) -> dict[str, str]:
    token = os.environ.get(token_env, "").strip()
    if not token:
        raise SupervisorError(
            f"set ${token_env} to the service's approval token (the variable its config names "
            "in service.approval_token_env), or pass --token-env NAME"
        )
    return {"Authorization": f"Bearer {token}"}


def incidents_via_service(url: str) -> list[dict[str, Any]]:
    """``GET /incidents``: every incident the service knows, oldest first."""
    found: list[dict[str, Any]] = _call("GET", url, "/incidents")["incidents"]
    return found


def pending_via_service(url: str, incident_id: str) -> dict[str, Any] | None:
    """The approval ``incident_id`` waits for (action, approvers, deadline), if any."""
    pending: dict[str, Any] | None = _call("GET", url, f"/incidents/{incident_id}").get(
        "pending_approval"
    )
    return pending


def _call(method: str, url: str, path: str, **kwargs: Any) -> dict[str, Any]:
    import httpx

    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise SupervisorError(
            f"--service {url!r} is not a URL; pass the service's base URL, "
            "e.g. http://127.0.0.1:8080"
        )
    try:
        resp = httpx.request(method, base + path, timeout=_TIMEOUT_S, **kwargs)
    except httpx.HTTPError as err:
        raise SupervisorError(
            f"cannot reach the service at {base}: {err}; is `mlops-supervisor serve` running "
            "there (or a port-forward to it)?"
        ) from err
    try:
        body: Any = resp.json()
    except ValueError:
        body = {"detail": resp.text[:500]}
    if resp.status_code >= 400:
        detail = body.get("detail", body) if isinstance(body, dict) else body
        raise SupervisorError(f"the service at {base} answered {resp.status_code}: {detail}")
    if not isinstance(body, dict):
        raise SupervisorError(f"the service at {base} answered {path} with {body!r}")
    return body
