"""Building a service (app + runtime) on the simulated world in a temporary state dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from supervisor.config import config_from_dict
from supervisor.demo import demo_config
from supervisor.service import ServiceRuntime, create_app
from supervisor.service._backends import build_backends


def make_service(state_dir: Path, **overrides: Any) -> tuple[Any, ServiceRuntime, Any]:
    """(FastAPI app, runtime, backends) over a sim-backed supervisor writing into state_dir."""
    from supervisor.runtime import Supervisor
    from supervisor.telemetry import TelemetryConfig, setup_tracing

    raw = demo_config(state_dir)
    raw.update(overrides)
    config = config_from_dict(raw, source="test config")
    backends = build_backends(config)
    tracing = setup_tracing(TelemetryConfig(file=state_dir / "traces.jsonl"))
    sup = Supervisor(
        config,
        read=backends.read,
        write=backends.write,
        clock=backends.clock,
        tracing=tracing,
        state_dir=state_dir,
    )
    runtime = ServiceRuntime(sup, workers=2)
    return create_app(runtime), runtime, backends


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
