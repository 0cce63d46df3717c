"""Wiring a supervisor to the simulated world, and persisting that world between commands."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tools import ReadBackends, WriteBackends, read_only

if TYPE_CHECKING:
    from tools.sim import SimWorld

WORLD_FILE = "world.pickle"


def sim_backends(world: SimWorld) -> tuple[ReadBackends, WriteBackends]:
    """Read-only views for tools, and the write side for the executor."""
    read = read_only(metrics=world, alerts=world, drift=world, registry=world, deploy=world)
    write = WriteBackends(registry=world, deploy=world, train=world, notifier=world)
    return read, write


@contextmanager
def demo_backends(
    world: SimWorld, state_dir: Path, *, mlflow: bool | None = None
) -> Iterator[tuple[ReadBackends, WriteBackends]]:
    """The backends of a demo run in ``state_dir``: the world alone, or the world with its
    models in the MLflow store inside ``state_dir`` (``mlflow=None``: whichever the run used,
    that is MLflow if the store exists)."""
    from ._mlflow import connection_for, has_store, mlflow_backends, process_store

    if mlflow is None:
        mlflow = has_store(state_dir)
    if not mlflow:
        yield sim_backends(world)
        return
    with process_store(connection_for(state_dir)):
        yield mlflow_backends(world, state_dir)


def save_world(world: SimWorld, state_dir: Path) -> None:
    tmp = state_dir / (WORLD_FILE + ".tmp")
    tmp.write_bytes(pickle.dumps(world))
    tmp.replace(state_dir / WORLD_FILE)


def load_world(state_dir: Path) -> SimWorld | None:
    path = state_dir / WORLD_FILE
    if not path.exists():
        return None
    world: SimWorld = pickle.loads(path.read_bytes())  # our own file, written by save_world
    return world
