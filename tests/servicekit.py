"""Building a service (app + runtime) on the simulated world in a temporary state dir."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from supervisor.config import SupervisorConfig, config_from_dict
from supervisor.demo import demo_config
from supervisor.service import ServiceRuntime, create_app
from supervisor.service._backends import build_backends

#: Bearer token of the approval API in tests.
TOKEN = "test-approval-token-0123456789"


def make_service(
    state_dir: Path, *, probes: Any = None, **overrides: Any
) -> tuple[Any, ServiceRuntime, Any]:
    """(FastAPI app, runtime, backends) over a sim-backed supervisor writing into state_dir.

    The scheduler is off unless ``service`` overrides say otherwise, so a test sees only the
    incidents its own notifications open.
    """
    raw = demo_config(state_dir)
    service = {"check_interval_seconds": 0, **overrides.pop("service", {})}
    raw.update(overrides)
    raw["service"] = service
    config = config_from_dict(raw, source="test config")
    backends = build_backends(config)
    sup = open_supervisor(config, backends.read, backends.write, backends.clock, state_dir)
    runtime = ServiceRuntime(sup, workers=2, stopping=backends.clock.stopping)
    return create_app(runtime, probes=probes, approval_token=TOKEN), runtime, backends


def open_supervisor(
    config: SupervisorConfig, read: Any, write: Any, clock: Any, state_dir: Path
) -> Any:
    """A Supervisor over the given ports, tracing into state_dir."""
    from supervisor.runtime import Supervisor
    from supervisor.telemetry import TelemetryConfig, setup_tracing

    tracing = setup_tracing(TelemetryConfig(file=state_dir / "traces.jsonl"))
    return Supervisor(
        config, read=read, write=write, clock=clock, tracing=tracing, state_dir=state_dir
    )


def close_service(runtime: ServiceRuntime, backends: Any = None) -> None:
    """Shut the runtime down and close its state (idempotent shutdown)."""
    runtime.shutdown(grace=5)
    runtime.supervisor.close()
    if backends is not None:
        backends.close()


def auth(token: str = TOKEN) -> dict[str, str]:
    """Authorization header of the approval API."""
    return {"Authorization": f"Bearer {token}"}


def payload(
    status: str = "firing",
    *,
    fingerprint: str = "fp-churn-1",
    model: str = "churn",
    alertname: str = "ModelHighErrorRate",
    group_key: str = '{}:{alertname="ModelHighErrorRate"}',
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A webhook v4 notification with one alert."""
    alert = {
        "status": status,
        "labels": {"alertname": alertname, "model": model, "version": "2", "severity": "page"},
        "annotations": annotations or {"summary": f"{model} error rate above 5%"},
        "startsAt": "2026-01-05T09:00:00Z",
        "endsAt": "2026-01-05T09:10:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    }
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "mlops-supervisor",
        "groupLabels": {"alertname": alertname},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert],
    }


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` (real time: the service runs on the wall clock) until it holds."""
    done = threading.Event()
    end = timeout
    step = 0.02
    while end > 0:
        if predicate():
            return
        done.wait(step)
        end -= step
    raise AssertionError(f"{what} not reached within {timeout} s")
