"""Per-model mutable state of the simulated world: registry, deployment, timeline, caches."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from tools._ports import ChangeEvent, RetrainResult

from ._model import Version
from ._stream import Rows, Stream

EventKind = Literal[
    "registered",
    "deployed",
    "canary_started",
    "canary_weight",
    "promoted",
    "rolled_back",
    "aborted",
    "retrained",
    "alias_moved",
    "pipeline_change",
    "config_change",
]


@dataclass(frozen=True)
class Serving:
    """Which versions serve from ``since`` on, and the canary's share of traffic."""

    since: datetime
    stable: str
    canary: str | None = None
    weight: int = 0

    def shares(self) -> dict[str, float]:
        """Traffic share per serving version."""
        if self.canary is None or self.weight == 0:
            return {self.stable: 1.0}
        return {self.stable: 1.0 - self.weight / 100.0, self.canary: self.weight / 100.0}


@dataclass
class Bucket:
    """One minute of logged rows plus what served them (cached once the minute has begun)."""

    rows: Rows
    serving: Serving
    x: np.ndarray
    version: np.ndarray
    proba: np.ndarray

    @property
    def pred(self) -> np.ndarray:
        return (self.proba >= 0.5).astype(np.int8)


@dataclass
class ModelState:
    """Everything the world knows about one model."""

    stream: Stream
    versions: dict[str, Version] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    events: list[ChangeEvent] = field(default_factory=list)
    history: list[Serving] = field(default_factory=list)
    resource_version: int = 1
    runs: dict[str, RetrainResult] = field(default_factory=dict)
    cache: dict[int, Bucket] = field(default_factory=dict)
    stats: dict[tuple[int, str, float], dict[str, float]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.stream.spec.name

    @property
    def serving(self) -> Serving:
        """The serving state now."""
        return self.history[-1]

    def serving_at(self, when: datetime) -> Serving:
        """The serving state in effect at ``when``."""
        times = [s.since for s in self.history]
        i = bisect.bisect_right(times, when) - 1
        return self.history[max(i, 0)]

    def next_version_id(self) -> str:
        return str(max((int(v) for v in self.versions), default=0) + 1)

    def event(
        self, at: datetime, kind: EventKind, version: str | None = None, detail: str = ""
    ) -> None:
        self.events.append(ChangeEvent(at=at, kind=kind, version=version, detail=detail))
