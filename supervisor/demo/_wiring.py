"""Wiring a supervisor to the simulated world, and persisting that world between commands."""

from __future__ import annotations

import pickle
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
