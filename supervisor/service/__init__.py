"""The cluster service: Alertmanager intake over HTTP, incident workers, health."""

from ._alertmanager import Unmapped, WebhookAlert, WebhookPayload, signals_from_webhook
from ._app import create_app
from ._backends import Backends, WallClock, build_backends
from ._runtime import ServiceRuntime
from ._serve import build_service, serve

__all__ = [
    "Backends",
    "ServiceRuntime",
    "Unmapped",
    "WallClock",
    "WebhookAlert",
    "WebhookPayload",
    "build_backends",
    "build_service",
    "create_app",
    "serve",
    "signals_from_webhook",
]
