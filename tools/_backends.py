"""Bundles of ports handed to tools (read-only) and to the executor (read and write)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from ._ports import (
    AlertsPort,
    DeployReader,
    DeployWriter,
    DriftPort,
    MetricsPort,
    RegistryReader,
    RegistryWriter,
    TrainPort,
)


@runtime_checkable
class NotifierPort(Protocol):
    def page(self, owner: str, incident_id: str, message: str, *, at: datetime) -> str:
        """Page a human owner; returns a page id. Paging twice with one incident is one page."""
        ...


@dataclass(frozen=True)
class ReadBackends:
    """What tools may use. Only read ports: no tool can change anything."""

    metrics: MetricsPort
    alerts: AlertsPort
    drift: DriftPort
    registry: RegistryReader
    deploy: DeployReader


@dataclass(frozen=True)
class WriteBackends:
    """What the executor may use, and only after an allowing guard decision."""

    registry: RegistryWriter
    deploy: DeployWriter
    train: TrainPort
    notifier: NotifierPort


class _ReadOnlyView:
    """Forwards only the named read methods of an adapter that may also be able to write."""

    _allowed: frozenset[str] = frozenset()

    def __init__(self, inner: object) -> None:
        object.__setattr__(self, "_inner", inner)

    def __getattr__(self, name: str) -> object:
        if name not in self._allowed:
            raise AttributeError(f"{name!r} is not a read operation; tools cannot call it")
        return getattr(object.__getattribute__(self, "_inner"), name)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("read-only view")


class _MetricsView(_ReadOnlyView):
    _allowed = frozenset({"read"})


class _AlertsView(_ReadOnlyView):
    _allowed = frozenset({"firing"})


class _DriftView(_ReadOnlyView):
    _allowed = frozenset({"report", "seasonal_report"})


class _RegistryView(_ReadOnlyView):
    _allowed = frozenset({"versions", "timeline"})


class _DeployView(_ReadOnlyView):
    _allowed = frozenset({"status"})


def read_only(
    *,
    metrics: MetricsPort,
    alerts: AlertsPort,
    drift: DriftPort,
    registry: RegistryReader,
    deploy: DeployReader,
) -> ReadBackends:
    """Wrap adapters so that only their read methods are reachable from tools."""
    return ReadBackends(
        metrics=_MetricsView(metrics),  # type: ignore[arg-type]
        alerts=_AlertsView(alerts),  # type: ignore[arg-type]
        drift=_DriftView(drift),  # type: ignore[arg-type]
        registry=_RegistryView(registry),  # type: ignore[arg-type]
        deploy=_DeployView(deploy),  # type: ignore[arg-type]
    )
