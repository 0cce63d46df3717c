"""The simulated production world: every backend port, in-process, deterministic from a seed.

This module holds the read ports and the ground-truth helpers; :mod:`._core` builds the world
and generates rows, :mod:`._writes` holds the write ports.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from supervisor import BackendError, SimClock
from supervisor.domain import MetricName
from tools._backends import ReadBackends, WriteBackends, read_only
from tools._ports import (
    AlertInfo,
    ChangeEvent,
    DeploymentStatus,
    DriftReport,
    MetricReading,
    ModelVersionInfo,
)

from ._core import P_EVAL, P_METRICS, P_REFERENCE, P_SATURATION
from ._spec import WorldSpec
from ._state import ModelState
from ._stream import minute_index, rng_for, stable_hash

if TYPE_CHECKING:
    import pandas as pd
from ._writes import WriteSide

#: Name of the model-output column in drift frames.
PREDICTION_COLUMN = "prediction_score"
_REFERENCE_ROWS = 500
_CURRENT_ROWS = 500
_SEED_OFFSET = 10_000_000

# Alert rules, like the Prometheus rules a platform team ships: (name, metric, limit,
# severity, summary template), each evaluated per serving version over the last 5 minutes.
_RULE_WINDOW = timedelta(minutes=5)
_RULES = [
    ("HighErrorRate", MetricName.ERROR_RATE, 0.05, "critical", "error rate {v:.1%} above 5%"),
    (
        "HighLatency",
        MetricName.LATENCY_P99,
        500.0,
        "warning",
        "p99 latency {v:.0f} ms above 500 ms",
    ),
    ("Saturation", MetricName.SATURATION, 0.9, "warning", "CPU saturation {v:.0%} above 90%"),
]


class SimWorld(WriteSide):
    """A seeded world of models in production that implements every backend port.

    Read ports: MetricsPort, AlertsPort, DriftPort, RegistryReader, DeployReader.
    Write ports: RegistryWriter, DeployWriter, TrainPort, NotifierPort.
    Ground truth for evals (not ports): :meth:`evaluate`, :meth:`serving_accuracy`,
    :meth:`snapshot`, :meth:`action_counts`, :attr:`pages`.
    """

    # ------------------------------------------------------------------ MetricsPort

    def read(
        self,
        model: str,
        metric: MetricName,
        *,
        version: str | None,
        window: timedelta,
        end: datetime | None = None,
    ) -> MetricReading | None:
        """Aggregate ``metric`` over ``[end - window, end)``; None when there is no data.

        Accuracy counts only rows whose label has arrived (``label_delay_minutes``).
        """
        if model not in self._models:
            return None
        state = self._models[model]
        ws, we = self._window(window, end)
        metric = MetricName(metric)
        if metric in (MetricName.ACCURACY, MetricName.PREDICTION_SCORE_MEAN):
            value, samples = self._row_metric(state, metric, ws, we, version)
        else:
            value, samples = self._serving_metric(state, metric, ws, we, version)
        if value is None:
            return None
        return MetricReading(
            model=model,
            metric=metric,
            version=version,
            value=value,
            window_start=self.start + timedelta(seconds=ws),
            window_end=self.start + timedelta(seconds=we),
            samples=samples,
        )

    def _row_metric(
        self, state: ModelState, metric: MetricName, ws: float, we: float, version: str | None
    ) -> tuple[float | None, int]:
        if metric is MetricName.ACCURACY:
            labelled = self._seconds(self.now) - state.stream.spec.label_delay_minutes * 60.0
            we = min(we, labelled)
            if we <= ws:
                return None, 0
        rows = self._rows(state, ws, we, version=version)
        if not rows:
            return None, 0
        if metric is MetricName.ACCURACY:
            parts = [b.pred[s] == b.rows.labels[s] for b, s in rows]
        else:
            parts = [b.proba[s] for b, s in rows]
        values = np.concatenate(parts)
        return float(values.mean()), len(values)

    def _serving_metric(
        self, state: ModelState, metric: MetricName, ws: float, we: float, version: str | None
    ) -> tuple[float | None, int]:
        requests = weighted = 0.0
        minutes = 0
        # Serving signals need only who served each minute, not the minute's logged rows.
        for m in range(math.floor(ws / 60.0), math.ceil(we / 60.0)):
            shares = state.serving_at(self.start + timedelta(minutes=m)).shares()
            if version is not None:
                shares = {version: shares[version]} if version in shares else {}
            if shares:
                minutes += 1
            for vid, share in shares.items():
                stats = self._minute_stats(state, m, vid, share)
                requests += stats["requests"]
                weighted += stats[metric.value] * stats["requests"]
        if requests <= 0:
            return None, 0
        if metric is MetricName.THROUGHPUT:
            return requests / (60.0 * minutes), round(requests)
        return weighted / requests, round(requests)

    def _minute_stats(self, state: ModelState, m: int, vid: str, share: float) -> dict[str, float]:
        """Serving signals of one version in minute ``m``: small seeded noise around the truth."""
        # A pure function of its arguments and the spec, so the cache never goes stale.
        key = (m, vid, share)
        cached = state.stats.get(key)
        if cached is None:
            cached = state.stats[key] = self._compute_minute_stats(state, m, vid, share)
        return cached

    def _compute_minute_stats(
        self, state: ModelState, m: int, vid: str, share: float
    ) -> dict[str, float]:
        spec = state.stream.spec
        version = state.versions[vid]
        n = rng_for(
            self.spec.seed, state.name, P_METRICS, m + _SEED_OFFSET, stable_hash(vid)
        ).standard_normal(4)
        s = rng_for(self.spec.seed, state.name, P_SATURATION, m + _SEED_OFFSET).standard_normal()
        saturation = 0.45 + 0.03 * float(s)
        latency, tail, errors = version.latency_factor, 2.5, version.error_add
        for fault in state.stream.active_faults(float(m)):
            if fault.kind == "saturation":
                saturation = float(fault.param("level")) + 0.01 * float(s)
                latency *= float(fault.param("latency_factor"))
                tail = 4.0
                errors += float(fault.param("error_rate"))
        p50 = spec.base_latency_ms * latency * (1.0 + 0.05 * float(n[1]))
        error_rate = spec.base_error_rate * (1.0 + 0.2 * float(n[3])) + errors
        return {
            "requests": max(spec.traffic_rps * 60.0 * share * (1.0 + 0.03 * float(n[0])), 0.0),
            "throughput": spec.traffic_rps * share,
            "latency_p50": p50,
            "latency_p99": p50 * tail * (1.0 + 0.05 * float(n[2])),
            "error_rate": min(max(error_rate, 0.0), 1.0),
            "saturation": min(max(saturation, 0.0), 1.0),
        }

    # ------------------------------------------------------------------ DriftPort

    def report(
        self, model: str, *, window: timedelta, end: datetime | None = None
    ) -> DriftReport | None:
        """Evidently drift of the window's inputs against the stable version's training data."""
        import pandas as pd

        if model not in self._models:
            return None
        state = self._models[model]
        ws, we = self._window(window, end)
        current = self._input_frame(state, ws, we)
        if current is None:
            return None
        stable = state.versions[state.serving.stable]
        rng = rng_for(self.spec.seed, model, P_REFERENCE, int(stable.id))
        size = min(_REFERENCE_ROWS, len(stable.train_x))
        ref_x = stable.train_x[np.sort(rng.choice(len(stable.train_x), size, replace=False))]
        reference = pd.DataFrame(ref_x, columns=state.stream.features)
        importances = self.importances(model, stable.id)
        reference[PREDICTION_COLUMN] = stable.proba(ref_x)
        return self._drift(model, reference, current, (ws, we), importances)

    def seasonal_report(
        self, model: str, *, window: timedelta, period: timedelta, end: datetime | None = None
    ) -> DriftReport | None:
        """Evidently drift of the window's inputs against the same hours one period earlier.

        The world regenerates any minute's rows deterministically (history before the start
        included, with periodic faults in effect there too), so last cycle's inputs are the
        rows the world logged then, scored by the version that served then.
        """
        if model not in self._models:
            return None
        if period <= timedelta(0):
            raise BackendError(f"sim: the seasonal period must be positive, not {period}")
        state = self._models[model]
        ws, we = self._window(window, end)
        back = period.total_seconds()
        current = self._input_frame(state, ws, we)
        earlier = self._input_frame(state, ws - back, we - back)
        if current is None or earlier is None:
            return None
        importances = self.importances(model, state.serving.stable)
        return self._drift(model, earlier, current, (ws, we), importances)

    def _drift(
        self,
        model: str,
        reference: pd.DataFrame,
        current: pd.DataFrame,
        window: tuple[float, float],
        importances: dict[str, float],
    ) -> DriftReport:
        """Evidently's drift of ``current`` against ``reference`` over the window (seconds
        from the start), weighted by the stable version's permutation importances."""
        from tools._drift import compute_drift

        return compute_drift(
            model,
            reference,
            current,
            window_start=self.start + timedelta(seconds=window[0]),
            window_end=self.start + timedelta(seconds=window[1]),
            prediction_column=PREDICTION_COLUMN,
            importances=importances,
            importance_source="permutation",
        )

    def _input_frame(self, state: ModelState, ws: float, we: float) -> pd.DataFrame | None:
        """The logged inputs and served scores in ``[ws, we)`` (at most ``_CURRENT_ROWS``
        rows, evenly spaced); None when no row was logged then."""
        import pandas as pd

        rows = self._rows(state, ws, we)
        if not rows:
            return None
        present: set[str] = set().union(*(b.rows.present for b, _ in rows))
        names = [n for n in state.stream.features if n in present]
        names += sorted(present - set(names))
        columns = {
            n: np.concatenate(
                [b.rows.columns.get(n, np.full(len(b.rows.t), np.nan))[s] for b, s in rows]
            )
            for n in names
        }
        columns[PREDICTION_COLUMN] = np.concatenate([b.proba[s] for b, s in rows])
        frame = pd.DataFrame(columns)
        if len(frame) > _CURRENT_ROWS:
            keep = np.linspace(0, len(frame) - 1, _CURRENT_ROWS).round().astype(int)
            frame = frame.iloc[keep].reset_index(drop=True)
        return frame

    def importances(self, model: str, version: str) -> dict[str, float]:
        """Permutation importance of each feature for ``version``, on its reference data.

        Computed once per version (scikit-learn's ``permutation_importance`` of the version's
        fitted pipeline on the same reference sample the drift report uses) and cached: a
        version's model and training data never change.
        """
        import pandas as pd

        from tools._drift import permutation_importances

        cache: dict[tuple[str, str], dict[str, float]] = self.__dict__.setdefault(
            "_importance_cache", {}
        )
        key = (model, version)
        if key not in cache:
            state = self._state(model)
            v = state.versions[version]
            rng = rng_for(self.spec.seed, model, P_REFERENCE, int(v.id))
            size = min(_REFERENCE_ROWS, len(v.train_x))
            ref_x = v.train_x[np.sort(rng.choice(len(v.train_x), size, replace=False))]
            frame = pd.DataFrame(ref_x, columns=state.stream.features)
            # The pipeline fills NaN itself; training rows never carry the serving skew.
            cache[key] = permutation_importances(v.scorer.pipeline, frame, seed=int(v.id))
        return dict(cache[key])

    # ------------------------------------------------------------------ AlertsPort

    def firing(self, model: str | None = None) -> list[AlertInfo]:
        """Alerts firing now: the built-in rules per serving version, plus injected alerts."""
        self._sync()
        alerts: list[AlertInfo] = []
        for name, state in self._models.items():
            if model is None or name == model:
                alerts.extend(self._rule_alerts(state))
        now_minute = minute_index(self.start, self.now)
        for extra in self.spec.alerts:
            if model is not None and extra.model != model:
                continue
            ended = extra.until_minutes is not None and now_minute >= extra.until_minutes
            if now_minute < extra.at_minutes or ended:
                continue
            labels = {"alertname": extra.name, **extra.labels}
            if extra.model is not None:
                labels["model"] = extra.model
            alerts.append(
                AlertInfo(
                    name=extra.name,
                    model=extra.model,
                    state="firing",
                    active_since=self.start + timedelta(minutes=extra.at_minutes),
                    labels=labels,
                    annotations=dict(extra.annotations),
                    fingerprint=_fingerprint(labels),
                )
            )
        return alerts

    def _rule_alerts(self, state: ModelState) -> list[AlertInfo]:
        out = []
        for alert, metric, limit, severity, summary in _RULES:
            for vid in state.serving.shares():
                reading = self.read(state.name, metric, version=vid, window=_RULE_WINDOW)
                if reading is None or reading.value <= limit:
                    continue
                labels = {
                    "alertname": alert,
                    "model": state.name,
                    "version": vid,
                    "severity": severity,
                    "environment": state.stream.spec.environment,
                }
                out.append(
                    AlertInfo(
                        name=alert,
                        model=state.name,
                        state="firing",
                        active_since=self._onset(state, metric, vid, limit),
                        labels=labels,
                        annotations={
                            "summary": f"{state.name} v{vid}: {summary.format(v=reading.value)}"
                        },
                        fingerprint=_fingerprint(labels),
                    )
                )
        return out

    def _onset(self, state: ModelState, metric: MetricName, vid: str, limit: float) -> datetime:
        """Start of the run of minutes, up to now, in which the signal was over the limit."""
        m = math.floor(minute_index(self.start, self.now))
        first = m
        for back in range(m, m - 240, -1):
            share = state.serving_at(self.start + timedelta(minutes=back)).shares().get(vid)
            if share is None or self._minute_stats(state, back, vid, share)[metric.value] <= limit:
                break
            first = back
        return self.start + timedelta(minutes=first)

    # ------------------------------------------------------------------ RegistryReader

    def versions(self, model: str) -> list[ModelVersionInfo]:
        """All versions of ``model``, oldest first. Raises BackendError if it does not exist."""
        self._sync()
        state = self._state(model)
        aliases: dict[str, list[str]] = {}
        for alias, vid in state.aliases.items():
            aliases.setdefault(vid, []).append(alias)
        return [
            ModelVersionInfo(
                model=model,
                version=v.id,
                created_at=v.created_at,
                aliases=sorted(aliases.get(v.id, [])),
                tags=dict(v.tags),
                metrics=dict(v.metrics),
                run_id=v.run_id,
                training_window=v.training_window,
            )
            for v in sorted(state.versions.values(), key=lambda v: (v.created_at, int(v.id)))
        ]

    def timeline(self, model: str, since: datetime) -> list[ChangeEvent]:
        """What changed for ``model`` since ``since``, oldest first."""
        self._sync()
        state = self._state(model)
        return sorted((e for e in state.events if e.at >= since), key=lambda e: e.at)

    # ------------------------------------------------------------------ DeployReader

    def status(self, model: str) -> DeploymentStatus | None:
        """Current serving status, or None if the model is not deployed."""
        self._sync()
        state = self._models.get(model)
        return None if state is None else self._status(state)

    # ------------------------------------------------------------------ bundles

    def read_backends(self) -> ReadBackends:
        """This world as the read-only bundle tools get."""
        return read_only(metrics=self, alerts=self, drift=self, registry=self, deploy=self)

    def write_backends(self) -> WriteBackends:
        """This world as the write bundle the executor gets."""
        return WriteBackends(registry=self, deploy=self, train=self, notifier=self)

    # ------------------------------------------------------------------ ground truth

    def evaluate(
        self, model: str, version: str | None = None, *, clean: bool = False, rows: int = 2000
    ) -> float:
        """True accuracy now on fresh rows whose labels are known at once (for evals only).

        ``version`` None scores what serves (stable and canary by weight). ``clean`` draws
        rows with no fault at all: the world as it should be, to judge a model's own quality.
        """
        self._sync()
        state = self._state(model)
        minute = minute_index(self.start, self.now)
        rng = rng_for(self.spec.seed, model, P_EVAL, math.floor(minute) + _SEED_OFFSET, int(clean))
        x, y = state.stream.sample(rng, rows, minute, faults=not clean)
        if version is not None:
            proba = state.versions[version].proba(x)
        else:
            serving = state.serving
            proba = state.versions[serving.stable].proba(x)
            if serving.canary is not None:
                canary = rng.random(rows) < serving.weight / 100.0
                if canary.any():
                    proba[canary] = state.versions[serving.canary].proba(x[canary])
        return float(((proba >= 0.5) == y).mean())

    def serving_accuracy(self, model: str) -> float:
        """True accuracy of what serves now, on the world as it is now."""
        return self.evaluate(model)

    def snapshot(self) -> dict[str, Any]:
        """Serving state of every model and the writes applied, for evals and the demo."""
        self._sync()
        minute = minute_index(self.start, self.now)
        models: dict[str, Any] = {}
        for name, state in self._models.items():
            serving = state.serving
            models[name] = {
                "stable": serving.stable,
                "canary": serving.canary,
                "canary_weight": serving.weight if serving.canary else 0,
                "aliases": dict(state.aliases),
                "versions": list(state.versions),
                "active_faults": [f.kind for f in state.stream.active_faults(minute)],
            }
        return {"now": self.now.isoformat(), "models": models, "actions": self.action_counts()}

    def __getstate__(self) -> dict[str, Any]:
        # Row caches are derived data; a restored world regenerates them identically.
        state = self.__dict__.copy()
        state["_models"] = {k: replace(v, cache={}, stats={}) for k, v in self._models.items()}
        return state


def _fingerprint(labels: dict[str, str]) -> str:
    raw = "\x00".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def build_world(spec: WorldSpec, clock: SimClock | None = None) -> SimWorld:
    """Build the world ``spec`` describes, at its start time (or on the given clock)."""
    return SimWorld(spec, clock)
