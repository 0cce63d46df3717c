"""Building the backends a service runs on from its config.

Ports with a real adapter configured use it; every other port is answered by the simulated
world, whose clock follows the wall clock so it can sit behind a real-time service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from supervisor._clock import SimClock
from supervisor.config import SupervisorConfig
from tools import ReadBackends, WriteBackends, read_only


class WallClock(SimClock):
    """A SimClock that reads the wall clock, so the simulated world moves in real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, delta: Any) -> None:  # time moves by itself
        return None

    def sleep(self, seconds: float) -> None:
        import time

        time.sleep(seconds)


@dataclass
class Backends:
    """The ports a service uses, plus what must be closed at shutdown."""

    read: ReadBackends
    write: WriteBackends
    clock: SimClock
    world: Any
    closers: list[Any]

    def close(self) -> None:
        for c in self.closers:
            c.close()


def build_backends(config: SupervisorConfig) -> Backends:
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
    deploy: Any = world
    if config.backends.kubernetes is not None:
        from tools.kubernetes import KubernetesDeploy

        deploy = KubernetesDeploy(config.backends.kubernetes, clock=clock)
        closers.append(deploy)
    read = read_only(metrics=metrics, alerts=alerts, drift=world, registry=world, deploy=deploy)
    write = WriteBackends(registry=world, deploy=deploy, train=world, notifier=world)
    return Backends(read=read, write=write, clock=clock, world=world, closers=closers)
