"""The cluster service: Alertmanager intake over HTTP, incident workers, scheduled checks,
the incident and approval API, health and metrics."""

from ._alertmanager import Unmapped, WebhookAlert, WebhookPayload, signals_from_webhook
from ._app import ApprovalAnswer, create_app
from ._backends import Backends, ServiceStopping, WallClock, build_backends
from ._health import Probe, WarmUp, readiness_probes, run_probes
from ._runtime import ApprovalRefused, ServiceRuntime
from ._serve import Service, build_service, serve

__all__ = [
    "ApprovalAnswer",
    "ApprovalRefused",
    "Backends",
    "Probe",
    "Service",
    "ServiceRuntime",
    "ServiceStopping",
    "Unmapped",
    "WallClock",
    "WarmUp",
    "WebhookAlert",
    "WebhookPayload",
    "build_backends",
    "build_service",
    "create_app",
    "readiness_probes",
    "run_probes",
    "serve",
    "signals_from_webhook",
]
