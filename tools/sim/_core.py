"""The world's core: building it from a spec, moving time, and the rows each minute logged.

Reads are in :mod:`._world`, writes in :mod:`._writes`; both build on :class:`WorldCore`.
Time is a :class:`supervisor.SimClock`; scheduled happenings (canary deploys, announced
pipeline changes) take effect when time passes them, whether the clock moved through
:meth:`WorldCore.advance` or directly.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from datetime import datetime, timedelta

import numpy as np

from supervisor import BackendError, SimClock
from supervisor.domain import TimeWindow

from ._model import Version, fit_scorer, holdout_split
from ._spec import DATA_DEFECTS, DeploySpec, WorldSpec
from ._state import Bucket, ModelState, Serving
from ._stream import Stream, minute_index, rng_for

MAX_WINDOW = timedelta(days=1)
TRAIN_ROWS = 1500
# Seeding purposes (see rng_for): keep each random stream separate.
P_METRICS, P_SATURATION, P_REFERENCE, P_FIT, P_EVAL, P_RETRAIN = 2, 3, 4, 5, 6, 7


class WorldCore:
    """State, time and rows of a simulated world; no port methods of its own."""

    def __init__(self, spec: WorldSpec, clock: SimClock | None = None) -> None:
        self.spec = spec
        self.clock = clock or SimClock(spec.start)
        self.start = spec.start
        self.actions: Counter[str] = Counter()
        self.pages: list[dict[str, str]] = []
        self._models: dict[str, ModelState] = {}
        for model_spec in spec.models:
            state = ModelState(stream=Stream(spec.seed, model_spec, spec.faults))
            self._models[model_spec.name] = state
            self._initial_versions(state)
        self._past_changes()
        self._prepared: dict[int, Version] = {
            i: self._deploy_version(i, d) for i, d in enumerate(spec.deploys)
        }
        # (minute, kind, index) of what happens later, in time order.
        self._pending: list[tuple[float, str, int]] = sorted(
            [(d.at_minutes, "deploy", i) for i, d in enumerate(spec.deploys)]
            + [
                (f.at_minutes, "pipeline_change", i)
                for i, f in enumerate(spec.faults)
                if f.kind in DATA_DEFECTS and bool(f.param("announced"))
            ]
        )
        self._sync()

    # ------------------------------------------------------------------ building

    def _fit_version(self, state: ModelState, purpose: int, *, corrupt: bool = False) -> Version:
        stream = state.stream
        rng = rng_for(self.spec.seed, state.name, P_FIT, purpose)
        x, y = stream.sample(rng, TRAIN_ROWS, 0.0, faults=False)
        train, hold = holdout_split(len(y), rng)
        y_fit = y.copy()
        if corrupt:
            # A label-join bug: the labels of a whole customer segment are flipped.
            z1 = (x[:, 1] - stream.mu[1]) / stream.sd[1]
            y_fit[z1 > 0.3] ^= 1
        scorer = fit_scorer(x[train], y_fit[train])
        # Validated on clean labels, so a bad model's offline metric is honestly lower.
        accuracy = float(((scorer.proba(x[hold]) >= 0.5) == y[hold]).mean())
        return Version(
            id="",
            created_at=self.start,
            scorer=scorer,
            train_x=x[train],
            metrics={"accuracy": round(accuracy, 4), "training_rows": float(len(train))},
            tags={"validation_status": "passed"},
        )

    def _initial_versions(self, state: ModelState) -> None:
        n = state.stream.spec.initial_versions
        for i in range(1, n + 1):
            version = self._fit_version(state, 1000 + i)
            version.id = str(i)
            version.created_at = self.start - timedelta(days=7 * (n - i + 1))
            version.training_window = TimeWindow(
                start=version.created_at - timedelta(days=7), end=version.created_at
            )
            version.run_id = run_id(state.name, f"initial-{i}")
            state.versions[version.id] = version
            state.event(version.created_at, "registered", version.id)
        champion = str(n)
        deployed_at = state.versions[champion].created_at + timedelta(hours=1)
        state.aliases["champion"] = champion
        state.event(deployed_at, "alias_moved", champion, f"champion: None -> {champion}")
        state.event(deployed_at, "deployed", champion, "serving as stable")
        state.history.append(Serving(since=deployed_at, stable=champion))

    def _deploy_version(self, index: int, deploy: DeploySpec) -> Version:
        state = self._models[deploy.model]
        version = self._fit_version(state, 2000 + index, corrupt=deploy.quality == "bad")
        if deploy.quality == "bad":
            version.error_add = 0.06
            version.latency_factor = 2.5
        elif deploy.quality == "skewed":
            # Serving multiplies one signal feature by 100 (a percent-vs-fraction mix-up in
            # the serving code); training did not, so offline validation looks fine.
            version.skew = (1, 100.0)
        if deploy.error_rate_add is not None:
            version.error_add = deploy.error_rate_add
        if deploy.latency_factor is not None:
            version.latency_factor = deploy.latency_factor
        version.collapse = deploy.collapse
        version.run_id = run_id(state.name, f"deploy-{index}")
        return version

    def _past_changes(self) -> None:
        """Put the spec's history (changes before minute 0) on the models' timelines."""
        for index, past in sorted(enumerate(self.spec.history), key=lambda p: p[1].at_minutes):
            state = self._models[past.model]
            at = self.start + timedelta(minutes=past.at_minutes)
            stable = state.serving.stable
            if past.action == "retrain":
                version = self._fit_version(state, 3000 + index)
                version.id = state.next_version_id()
                version.created_at = at
                version.training_window = TimeWindow(start=at - timedelta(hours=2), end=at)
                version.run_id = run_id(state.name, f"past-retrain-{index}")
                version.tags["trigger"] = "retrain"
                state.versions[version.id] = version
                state.event(at, "retrained", version.id, f"run {version.run_id} (before the run)")
                state.event(at, "registered", version.id)
                old = state.aliases.get("challenger")
                state.aliases["challenger"] = version.id
                state.event(at, "alias_moved", version.id, f"challenger: {old} -> {version.id}")
            elif past.action == "rollback":
                state.event(at, "rolled_back", stable, f"stable rolled back to {stable}")
            elif past.action == "promote_canary":
                state.event(at, "promoted", stable, f"canary {stable} promoted to stable")
            elif past.action == "abort_canary":
                state.event(at, "aborted", None, "canary dropped, all traffic to stable")
            else:
                state.event(at, "canary_weight", None, "canary weight changed")

    # ------------------------------------------------------------------ time

    @property
    def now(self) -> datetime:
        """Current sim time."""
        return self.clock.now()

    def advance(self, delta: timedelta) -> None:
        """Move sim time forward; scheduled deploys and announcements happen on the way."""
        self.clock.advance(delta)
        self._sync()

    def _sync(self) -> None:
        now_minute = minute_index(self.start, self.now)
        while self._pending and self._pending[0][0] <= now_minute:
            minute, kind, index = self._pending.pop(0)
            at = self.start + timedelta(minutes=minute)
            if kind == "deploy":
                self._start_scheduled_canary(index, at)
                continue
            fault = self.spec.faults[index]
            state = self._models[fault.model]
            column = state.stream.features[int(fault.param("feature"))]
            state.event(
                at,
                "pipeline_change",
                None,
                f"upstream pipeline change announced by {state.stream.spec.data_owner}: "
                f"{fault.kind} on column {column!r}",
            )

    def _start_scheduled_canary(self, index: int, at: datetime) -> None:
        deploy = self.spec.deploys[index]
        state = self._models[deploy.model]
        version = self._prepared.pop(index)
        version.id = state.next_version_id()
        version.created_at = at
        version.training_window = TimeWindow(start=at - timedelta(days=7), end=at)
        state.versions[version.id] = version
        state.event(at, "registered", version.id)
        if deploy.mode == "full":
            stable = state.serving.stable
            old = state.aliases.get("champion")
            state.aliases["champion"] = version.id
            state.event(at, "alias_moved", version.id, f"champion: {old} -> {version.id}")
            self._set_serving(state, Serving(since=at, stable=version.id))
            state.event(at, "deployed", version.id, f"stable {stable} -> {version.id}")
            return
        old = state.aliases.get("challenger")
        state.aliases["challenger"] = version.id
        state.event(at, "alias_moved", version.id, f"challenger: {old} -> {version.id}")
        serving = Serving(
            since=at, stable=state.serving.stable, canary=version.id, weight=deploy.canary_weight
        )
        self._set_serving(state, serving)
        state.event(at, "canary_started", version.id, f"weight {deploy.canary_weight}%")

    def _set_serving(self, state: ModelState, serving: Serving) -> None:
        state.history.append(serving)
        state.resource_version += 1
        # A minute is served by the state in effect when it begins: drop minutes not begun.
        first = math.ceil(minute_index(self.start, serving.since))
        for m in [m for m in state.cache if m >= first]:
            del state.cache[m]

    def _state(self, model: str) -> ModelState:
        try:
            return self._models[model]
        except KeyError:
            raise BackendError(
                f"sim: unknown model {model!r}; the world serves {sorted(self._models)!r}"
            ) from None

    # ------------------------------------------------------------------ rows

    def _seconds(self, when: datetime) -> float:
        return (when - self.start).total_seconds()

    def _bucket(self, state: ModelState, m: int) -> Bucket:
        bucket = state.cache.get(m)
        if bucket is not None:
            return bucket
        rows = state.stream.minute(m)
        serving = state.serving_at(self.start + timedelta(minutes=m))
        x = state.stream.matrix(rows.columns)
        if serving.canary is not None:
            version = np.where(rows.route < serving.weight / 100.0, serving.canary, serving.stable)
        else:
            version = np.full(len(x), serving.stable)
        proba = np.empty(len(x))
        for vid in np.unique(version):
            sel = version == vid
            proba[sel] = state.versions[str(vid)].proba(x[sel])
        bucket = Bucket(rows=rows, serving=serving, x=x, version=version, proba=proba)
        if m * 60.0 <= self._seconds(self.now):
            state.cache[m] = bucket
        return bucket

    def _window(self, window: timedelta, end: datetime | None) -> tuple[float, float]:
        """``[end - window, end)`` in seconds since start, with ``end`` no later than now."""
        if window <= timedelta(0) or window > MAX_WINDOW:
            raise BackendError(
                f"sim: window {window!r} must be positive and at most {MAX_WINDOW!r}"
            )
        self._sync()
        end = min(end or self.now, self.now)
        return self._seconds(end - window), self._seconds(end)

    def _buckets(self, state: ModelState, ws: float, we: float) -> list[tuple[int, Bucket]]:
        first, last = math.floor(ws / 60.0), math.ceil(we / 60.0)
        return [(m, self._bucket(state, m)) for m in range(first, last)]

    def _rows(
        self, state: ModelState, ws: float, we: float, *, version: str | None = None
    ) -> list[tuple[Bucket, np.ndarray]]:
        """Logged rows with times in ``[ws, we)``, per minute, as (bucket, row mask)."""
        out = []
        for _, bucket in self._buckets(state, ws, we):
            sel = (bucket.rows.t >= ws) & (bucket.rows.t < we)
            if version is not None:
                sel &= bucket.version == version
            if sel.any():
                out.append((bucket, sel))
        return out


def run_id(model: str, what: str) -> str:
    """A stable run id for a model's training run."""
    return "run-" + hashlib.sha256(f"{model}/{what}".encode()).hexdigest()[:12]
