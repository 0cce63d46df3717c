"""Feature streams: the rows a model sees each sim minute, with faults applied from onset.

Every random draw is seeded by ``(world seed, model, minute, purpose)``, so a minute's rows are
the same whatever order the world is asked about them in.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from ._model import LABEL_NOISE, n_signal, true_labels
from ._spec import FaultSpec, ModelSpec

#: Keeps negative minute indices (history before the start) non-negative for seeding.
_MINUTE_OFFSET = 10_000_000

#: Weights of the default covariate shift on the signal features: the third moves less, so
#: the shift is strong yet the classes stay balanced (a model that says "yes" to everything
#: must not look good).
_COVARIATE_WEIGHTS = (1.0, 1.0, 0.32)


def stable_hash(text: str) -> int:
    """A process-independent hash (Python's ``hash`` is salted per process)."""
    return zlib.crc32(text.encode())


def rng_for(seed: int, model: str, *parts: int) -> np.random.Generator:
    """The generator for one purpose of one model."""
    return np.random.default_rng([seed, stable_hash(model), *parts])


@dataclass
class Rows:
    """Rows logged in one minute (or a window): inputs as logged, truth, and what was served."""

    t: np.ndarray
    """Row times in seconds since the world's start."""
    columns: dict[str, np.ndarray]
    """Logged input columns by name; a column is NaN where a row did not have it."""
    present: set[str]
    """Columns that exist in the log for these rows (a renamed column is absent)."""
    z: np.ndarray
    """Latent truth behind the inputs."""
    labels: np.ndarray
    """True labels (0/1), known only after the label delay."""
    route: np.ndarray
    """Uniform draw per row, deciding canary vs stable."""


class Stream:
    """One model's synthetic world: feature units, fault schedule, and row generation."""

    def __init__(self, seed: int, spec: ModelSpec, faults: list[FaultSpec]) -> None:
        self.seed = seed
        self.spec = spec
        self.features = spec.features
        self.faults = [f for f in faults if f.model == spec.name]
        rng = rng_for(seed, spec.name, 0)
        d = spec.n_features
        self.mu = rng.uniform(5.0, 50.0, d)
        self.sd = self.mu * rng.uniform(0.1, 0.3, d)
        self.signal = n_signal(d)

    # ------------------------------------------------------------------ faults

    def _active(self, fault: FaultSpec, minutes: np.ndarray) -> np.ndarray:
        return fault.on(minutes)

    def active_faults(self, minute: float) -> list[FaultSpec]:
        """Faults in effect at ``minute`` (minutes since start)."""
        m = np.array([minute])
        return [f for f in self.faults if self._active(f, m)[0]]

    def _shift(self, fault: FaultSpec) -> np.ndarray:
        shift = np.zeros(self.spec.n_features)
        magnitude = float(fault.param("magnitude"))
        chosen = fault.param("features")
        if fault.kind == "covariate_drift":
            idx = list(range(self.signal)) if chosen is None else [int(i) for i in chosen]
            for n, i in enumerate(idx):
                weight = _COVARIATE_WEIGHTS[n] if chosen is None else 1.0
                shift[i] = magnitude * weight
        else:  # seasonal_shift: only features the label ignores
            nuisance = list(range(self.signal, self.spec.n_features))
            idx = nuisance if chosen is None else [int(i) for i in chosen]
            shift[idx] = magnitude
        return shift

    def latent(
        self, rng: np.random.Generator, minutes: np.ndarray, *, faults: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Latent rows at ``minutes`` and their true labels."""
        n = len(minutes)
        z = rng.standard_normal((n, self.spec.n_features))
        eps = rng.normal(0.0, LABEL_NOISE, n)
        concept = np.zeros(n)
        if faults:
            for fault in self.faults:
                active = self._active(fault, minutes)
                if not active.any():
                    continue
                if fault.kind in ("covariate_drift", "seasonal_shift"):
                    level = fault.level(minutes)
                    z[active] += np.outer(level[active], self._shift(fault))
                elif fault.kind == "concept_drift":
                    # A gradual concept drift turns the label function around by degrees.
                    level = fault.level(minutes)
                    concept[active] = float(fault.param("magnitude")) * level[active]
        return z, true_labels(z, eps, concept)

    def observe(
        self, z: np.ndarray, minutes: np.ndarray, rng: np.random.Generator, *, faults: bool = True
    ) -> tuple[dict[str, np.ndarray], set[str]]:
        """Logged columns for latent rows: real units, then upstream defects from onset."""
        x = self.mu + self.sd * z
        columns = {name: x[:, i].copy() for i, name in enumerate(self.features)}
        present = set(self.features)
        u = rng.random(len(minutes))
        if not faults:
            return columns, present
        for fault in self.faults:
            if fault.kind not in ("null_spike", "unit_change", "schema_change"):
                continue
            active = self._active(fault, minutes)
            if not active.any():
                continue
            name = self.features[int(fault.param("feature"))]
            if fault.kind == "null_spike":
                columns[name][active & (u < float(fault.param("null_share")))] = np.nan
            elif fault.kind == "unit_change":
                columns[name][active] *= float(fault.param("factor"))
            else:
                if fault.param("mode") == "rename":
                    new_name = str(fault.param("new_name") or f"{name}_v2")
                    moved = np.full(len(minutes), np.nan)
                    moved[active] = columns[name][active]
                    columns[new_name] = moved
                    present.add(new_name)
                columns[name][active] = np.nan
                if active.all():
                    present.discard(name)
        return columns, present

    # ------------------------------------------------------------------ rows

    def minute(self, m: int) -> Rows:
        """The logged rows of minute ``m`` (index since start; negative is history)."""
        rng = rng_for(self.seed, self.spec.name, 1, m + _MINUTE_OFFSET)
        n = self.spec.logged_rows_per_minute
        t = m * 60.0 + np.sort(rng.random(n)) * 60.0
        route = rng.random(n)
        minutes = t / 60.0
        z, labels = self.latent(rng, minutes)
        columns, present = self.observe(z, minutes, rng)
        return Rows(t=t, columns=columns, present=present, z=z, labels=labels, route=route)

    def sample(
        self, rng: np.random.Generator, n: int, minute: float, *, faults: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` fresh rows as the world is at ``minute`` (model feature order) and their labels."""
        minutes = np.full(n, minute)
        z, labels = self.latent(rng, minutes, faults=faults)
        columns, _ = self.observe(z, minutes, rng, faults=faults)
        return self.matrix(columns), labels

    def matrix(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Columns in the model's feature order; a column the log lacks is all NaN."""
        n = len(next(iter(columns.values())))
        return np.column_stack([columns.get(name, np.full(n, np.nan)) for name in self.features])


def minute_index(start: datetime, when: datetime) -> float:
    """Minutes from ``start`` to ``when``."""
    return (when - start) / timedelta(minutes=1)
