"""Alertmanager webhook payloads (version 4) and how their alerts become signals.

Labels and annotations are untrusted text: they are carried as data (length-capped), matched
against configured label names, and never interpreted as instructions.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from supervisor.audit import redact, redact_text
from supervisor.config import IntakeConfig
from supervisor.domain import Signal, SignalKind, Symptom
from supervisor.domain._signals import printable_unicode

#: Longest label or annotation value kept; the rest is cut with a marker.
MAX_TEXT = 2048


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Compatible(BaseModel):
    # Alertmanager-compatible senders add fields of their own (Grafana: orgId, silenceURL,
    # dashboardURL, values, ...). Dropping a whole notification for them would lose alerts;
    # the fields intake needs are still validated strictly.
    model_config = ConfigDict(extra="ignore")


class WebhookAlert(_Compatible):
    """One alert of a notification, as Alertmanager sends it."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = Field(min_length=1)


class WebhookPayload(_Compatible):
    """An Alertmanager webhook notification, version 4."""

    version: Literal["4"]
    groupKey: str = Field(min_length=1)
    truncatedAlerts: int = Field(default=0, ge=0)
    status: Literal["firing", "resolved"]
    receiver: str
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[WebhookAlert]


class Unmapped(_Strict):
    """An alert that could not become a signal, and why (it is still audited)."""

    fingerprint: str
    reason: str
    labels: dict[str, str]


def _cap(values: dict[str, str]) -> dict[str, str]:
    """Redacted, then length-capped: a cut made first could split a secret into a shape the
    patterns no longer know (half an ``sk-`` key), and the half would be kept. Lone surrogates
    become U+FFFD first: an alert that maps to no signal is still audited with its labels, and
    no audit line can hold one (a lone surrogate in an alertname was a 500)."""
    out: dict[str, str] = {}
    clean = {printable_unicode(k[:256]): printable_unicode(v) for k, v in values.items()}
    for key, value in redact(clean).items():
        out[key] = value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + " [truncated]"
    return out


def signals_from_webhook(
    payload: WebhookPayload, intake: IntakeConfig, received_at: datetime
) -> tuple[list[Signal], list[Unmapped]]:
    """One signal per alert that names a model and a known symptom; the rest as Unmapped."""
    signals: list[Signal] = []
    unmapped: list[Unmapped] = []
    for alert in payload.alerts:
        labels = _cap(alert.labels)
        model = labels.get(intake.model_label)
        name = labels.get("alertname", "")
        symptom = intake.symptom_map.get(name)
        if symptom is None and labels.get(intake.symptom_label) in {s.value for s in Symptom}:
            symptom = Symptom(labels[intake.symptom_label])
        if not model:
            unmapped.append(
                Unmapped(
                    fingerprint=printable_unicode(alert.fingerprint),
                    labels=labels,
                    reason=f"no {intake.model_label!r} label; set service.intake.model_label",
                )
            )
            continue
        if symptom is None:
            unmapped.append(
                Unmapped(
                    fingerprint=printable_unicode(alert.fingerprint),
                    labels=labels,
                    reason=f"alertname {name!r} has no symptom; "
                    "add it to service.intake.symptom_map",
                )
            )
            continue
        digest = hashlib.sha256(
            f"{payload.groupKey}|{alert.fingerprint}|{alert.status}|{alert.startsAt.isoformat()}|{received_at.isoformat()}".encode()
        ).hexdigest()[:12]
        signals.append(
            Signal(
                id=f"am-{digest}",
                kind=SignalKind.ALERT,
                source="alertmanager",
                model=model,
                environment=labels.get(intake.environment_label, intake.default_environment),
                symptom=symptom,
                status=alert.status,
                version=labels.get(intake.version_label),
                observed_at=alert.endsAt
                if alert.status == "resolved" and alert.endsAt
                else alert.startsAt,
                fingerprint=alert.fingerprint,
                # Redacted here, so no index, checkpoint or API answer ever holds the raw text;
                # deterministic, so repeats of one group still match.
                group_key=redact_text(payload.groupKey),
                labels=labels,
                annotations=_cap(alert.annotations),
            )
        )
    return signals, unmapped
