"""The alerts port over Prometheus's ``/api/v1/alerts``: alerts its rules fire right now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from supervisor import BackendError
from tools._ports import AlertInfo

from ._client import PrometheusClient
from ._config import LabelScheme

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """The fingerprint Prometheus and Alertmanager give a label set (64-bit FNV-1a, hex).

    Computing the same value lets an alert polled here be deduplicated against the same
    alert arriving through an Alertmanager webhook.
    """
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode("utf-8") + b"\xff":
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


class PrometheusAlerts:
    """:class:`tools.AlertsPort` over Prometheus: the firing alerts of its alerting rules.

    The model of an alert is read from the label scheme's model label (mapped back through
    ``model_value``), else from a plain ``model`` label. Labels stay untrusted text.
    """

    def __init__(self, client: PrometheusClient) -> None:
        self._client = client
        self._scheme: LabelScheme = client.config.scheme()

    def firing(self, model: str | None = None) -> list[AlertInfo]:
        """Alerts currently firing, optionally only those of ``model``; oldest first."""
        data = self._client.get("alerts")
        raw = data.get("alerts") if isinstance(data, dict) else None
        if not isinstance(raw, list):
            raise BackendError(
                f"Prometheus at {self._client.url!r} answered GET /api/v1/alerts without an "
                f"'alerts' list (got {type(raw).__name__}); check that url points at Prometheus"
            )
        alerts = [self._alert(a) for a in raw if isinstance(a, dict) and a.get("state") == "firing"]
        if model is not None:
            alerts = [a for a in alerts if a.model == model]
        return sorted(alerts, key=lambda a: (a.active_since, a.name, a.fingerprint))

    def _alert(self, raw: dict[str, Any]) -> AlertInfo:
        labels = {str(k): str(v) for k, v in (raw.get("labels") or {}).items()}
        annotations = {str(k): str(v) for k, v in (raw.get("annotations") or {}).items()}
        try:
            return AlertInfo(
                name=labels.get("alertname", ""),
                model=self._model_of(labels),
                state="firing",
                active_since=raw.get("activeAt"),
                labels=labels,
                annotations=annotations,
                fingerprint=label_fingerprint(labels),
            )
        except ValidationError as err:
            raise BackendError(
                f"Prometheus at {self._client.url!r} returned an alert that does not parse "
                f"({err.error_count()} problem(s), first: {err.errors()[0]['msg']}; "
                f"labels {labels!r}); check the Prometheus version"
            ) from None

    def _model_of(self, labels: Mapping[str, str]) -> str | None:
        value = labels.get(self._scheme.model_label)
        if value is not None:
            model = self._scheme.model_of(value)
            if model is not None:
                return model
        return labels.get("model")
