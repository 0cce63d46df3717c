"""Building the backends a service runs on from its config.

Ports with a real adapter configured use it; every other port is answered by the simulated
world, whose clock follows the wall clock so it can sit behind a real-time service.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from supervisor._clock import SimClock
from supervisor.config import SupervisorConfig
from supervisor.metrics import ObservedDrift, SupervisorMetrics
from tools import (
    DriftPort,
    DriftReport,
    NoSeasonalHistory,
    ReadBackends,
    SeasonalDriftPort,
    WriteBackends,
    read_only,
)
from tools.files._config import FileDriftSource


class ServiceStopping(BaseException):
    """Raised out of a sleep when the service shuts down.

    A BaseException on purpose: it must pass through every ``except Exception`` of the graph,
    the tools and the adapters, so the node that was waiting fails without writing and the
    incident's thread stays at its last checkpoint, to resume on the next start.
    """


class WallClock(SimClock):
    """A SimClock that reads the wall clock, so the simulated world moves in real time.

    Its sleeps (verify settle times, retry backoffs) end early with :class:`ServiceStopping`
    once :attr:`stopping` is set, so a shutdown never waits out a ten-minute settle.
    """

    def __init__(self, stopping: threading.Event | None = None) -> None:
        super().__init__(datetime.now(UTC))
        #: Set by the service at shutdown.
        self.stopping = stopping or threading.Event()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, delta: Any) -> None:  # time moves by itself
        return None

    def sleep(self, seconds: float) -> None:
        if self.stopping.wait(max(seconds, 0.0)):
            raise ServiceStopping(f"service stopping during a sleep of {seconds:g} s")


@dataclass
class Backends:
    """The ports a service uses, plus what must be closed at shutdown."""

    read: ReadBackends
    write: WriteBackends
    clock: WallClock
    world: Any
    closers: list[Any]

    def close(self) -> None:
        for c in self.closers:
            c.close()


class RoutedDrift:
    """Answers each model's drift from its own adapter (files), others from the fallback."""

    def __init__(self, routes: dict[str, DriftPort], fallback: DriftPort) -> None:
        self.routes = routes
        self.fallback = fallback

    def report(
        self, model: str, *, window: timedelta, end: datetime | None = None
    ) -> DriftReport | None:
        return self.routes.get(model, self.fallback).report(model, window=window, end=end)

    def seasonal_report(
        self, model: str, *, window: timedelta, period: timedelta, end: datetime | None = None
    ) -> DriftReport | None:
        port = self.routes.get(model, self.fallback)
        if not isinstance(port, SeasonalDriftPort):
            raise NoSeasonalHistory(
                f"the drift backend of model {model!r} keeps no history of inputs"
            )
        return port.seasonal_report(model, window=window, period=period, end=end)


def build_backends(
    config: SupervisorConfig, metrics_sink: SupervisorMetrics | None = None
) -> Backends:
    """Real adapters where configured, the simulated world elsewhere."""
    from tools.sim import ModelSpec, WorldSpec, build_world

    clock = WallClock()
    spec = WorldSpec(
        seed=config.backends.sim_seed,
        start=clock.now(),
        models=[
            ModelSpec(
                name=m.name,
                environment=m.environment,
                owner=m.owner,
                data_owner=m.data_owner or m.owner,
            )
            for m in config.models
        ],
    )
    world = build_world(spec, clock)
    metrics: Any = world
    alerts: Any = world
    closers: list[Any] = []
    if config.backends.prometheus is not None:
        from tools.prometheus import PrometheusAlerts, PrometheusClient, PrometheusMetrics

        client = PrometheusClient(config.backends.prometheus, clock=clock)
        metrics, alerts = PrometheusMetrics(client), PrometheusAlerts(client)
        closers.append(client)
    drift: Any = world
    sources = {
        m.name: FileDriftSource(reference=m.data.reference, current=m.data.current)
        for m in config.models
        if m.data.reference and m.data.current
    }
    if config.backends.drift_files is not None or sources:
        from tools.files import FileDriftAdapter

        files = FileDriftAdapter(sources, config.backends.drift_files, clock=clock)
        drift = RoutedDrift({name: files for name in sources}, fallback=world)
    if metrics_sink is not None:
        drift = ObservedDrift(drift, metrics_sink)
    deploy: Any = world
    if config.backends.kubernetes is not None:
        from tools.kubernetes import KubernetesDeploy

        deploy = KubernetesDeploy(config.backends.kubernetes, clock=clock)
        closers.append(deploy)
    registry: Any = world
    train: Any = world
    if config.backends.mlflow is not None:
        from tools.mlflow import InProcessRunner, LocalRunner, MlflowRegistry, MlflowTrainer

        ml = config.backends.mlflow
        registry = MlflowRegistry(ml.connection, clock=clock)
        runner = InProcessRunner() if ml.runner == "in_process" else LocalRunner()
        train = MlflowTrainer(
            ml.connection,
            ml.entry_points,
            runner=runner,
            compare_to_champion=ml.compare_to_champion,
            champion_tolerance=ml.champion_tolerance,
            registry=registry,
            clock=clock,
        )
    read = read_only(metrics=metrics, alerts=alerts, drift=drift, registry=registry, deploy=deploy)
    write = WriteBackends(registry=registry, deploy=deploy, train=train, notifier=world)
    return Backends(read=read, write=write, clock=clock, world=world, closers=closers)
