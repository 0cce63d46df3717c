"""Reopening a run's state directory (config, world, audit log, checkpoints) for a command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor._errors import SupervisorError

if TYPE_CHECKING:
    from supervisor.runtime import Supervisor


@contextmanager
def open_session(state_dir: Path) -> Iterator[Supervisor]:
    """The supervisor of ``state_dir``; the simulated world is saved back afterwards.

    A demo run that kept its models in MLflow gets the same MLflow-backed registry and train
    ports again (the store is in ``state_dir``).
    """
    from supervisor.config import load_config
    from supervisor.demo import demo_backends, load_world, save_world
    from supervisor.runtime import Supervisor
    from supervisor.telemetry import TelemetryConfig, setup_tracing

    cfg_path = state_dir / "config.yaml"
    if not cfg_path.exists():
        raise SupervisorError(
            f"{str(state_dir)!r} holds no config.yaml; pass the state directory of a run"
        )
    config = load_config(cfg_path)
    world = load_world(state_dir)
    if world is None:
        raise SupervisorError(
            f"{str(state_dir)!r} has no simulated world; "
            "only simulated-world runs can be resumed from the CLI"
        )
    with demo_backends(world, state_dir) as (read, write):
        tracing = setup_tracing(TelemetryConfig(file=state_dir / "traces.jsonl"))
        sup = Supervisor(
            config, read=read, write=write, clock=world.clock, tracing=tracing, state_dir=state_dir
        )
        try:
            yield sup
            save_world(world, state_dir)
        finally:
            sup.close()
            tracing.shutdown()
