"""The metrics port over Prometheus: batched observation of many models, and single reads that
answer from the latest batch when they can."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from supervisor.domain import MetricName
from tools._ports import MetricReading

from ._client import PrometheusClient
from ._config import LabelScheme
from ._promql import Selection, batch_query, promql_duration, split_result

#: ``(model, version, metric)``; version None is every version of the model together.
ObservationKey = tuple[str, str | None, MetricName]


@dataclass(frozen=True)
class Snapshot:
    """What one :meth:`PrometheusMetrics.observe` call saw."""

    readings: Mapping[ObservationKey, MetricReading]
    models: frozenset[str]
    metrics: frozenset[MetricName]
    window: timedelta
    end: datetime
    totals: bool = True

    def covers(
        self, model: str, metric: MetricName, window: timedelta, version: str | None
    ) -> bool:
        """Whether this batch asked for ``model``'s ``metric`` at ``version`` over ``window``."""
        return (
            window == self.window
            and model in self.models
            and metric in self.metrics
            and (version is not None or self.totals)
        )


class PrometheusMetrics:
    """:class:`tools.MetricsPort` over Prometheus, with a batched :meth:`observe`.

    A signal the label scheme has no template for has no data (``None``), like a model that
    Prometheus has no series for. Values of 0/0 (no traffic) are no data too, never zero.
    """

    def __init__(self, client: PrometheusClient) -> None:
        self._client = client
        self._scheme: LabelScheme = client.config.scheme()
        self._snapshot: Snapshot | None = None

    @property
    def supported_metrics(self) -> frozenset[MetricName]:
        """Signals the label scheme has a PromQL template for."""
        return frozenset(self._scheme.templates)

    @property
    def snapshot(self) -> Snapshot | None:
        """The latest batch observation, if any."""
        return self._snapshot

    def observe(
        self,
        models: Sequence[str],
        metrics: Iterable[MetricName],
        window: timedelta,
        *,
        end: datetime | None = None,
        totals: bool = True,
    ) -> dict[ObservationKey, MetricReading]:
        """Read ``metrics`` of every model in ``models`` over ``[end - window, end)``.

        One PromQL query per metric, whatever the number of models: each answers every
        version of every model (keys with a version) and, if ``totals``, every model as a
        whole (version None; False roughly halves Prometheus's work). Keys without data are
        absent. The result becomes the snapshot :meth:`read` answers from.
        """
        end = end or self._client.clock.now()
        wanted = list(dict.fromkeys(models))
        wanted_metrics = list(dict.fromkeys(metrics))
        duration = promql_duration(window)
        many = len(wanted) > self._client.config.max_models_in_selector
        selection = Selection(None if many else tuple(wanted))
        jobs = [
            (
                metric,
                batch_query(
                    signal,
                    self._scheme,
                    selection,
                    window=duration,
                    per_version=True,
                    per_model=totals,
                ),
            )
            for metric in wanted_metrics
            if wanted and (signal := self._scheme.templates.get(metric)) is not None
        ]
        readings: dict[ObservationKey, MetricReading] = {}
        for (metric, query), result in zip(jobs, self._run(jobs, end), strict=True):
            split = split_result(result, self._scheme, wanted, query=query, url=self._client.url)
            for (model, version), (value, samples) in split.items():
                readings[(model, version, metric)] = MetricReading(
                    model=model,
                    metric=metric,
                    version=version,
                    value=value,
                    window_start=end - window,
                    window_end=end,
                    samples=samples,
                )
        self._snapshot = Snapshot(
            readings=readings,
            models=frozenset(wanted),
            metrics=frozenset(wanted_metrics),
            window=window,
            end=end,
            totals=totals,
        )
        return readings

    def _run(self, jobs: Sequence[tuple[MetricName, str]], at: datetime) -> list[list[Any]]:
        """Send the queries, up to ``max_concurrency`` at once; results in order."""
        workers = min(self._client.config.max_concurrency, len(jobs))
        if workers <= 1:
            return [self._client.query(query, at=at) for _, query in jobs]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="promql") as pool:
            return list(pool.map(lambda job: self._client.query(job[1], at=at), jobs))

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

        Answers from the latest :meth:`observe` when it covered this model, metric and window
        and is at most ``snapshot_max_age_s`` old (``end`` None) or ended at ``end``.
        """
        cached = self._from_snapshot(model, metric, version=version, window=window, end=end)
        if cached is not None:
            return cached[0]
        signal = self._scheme.templates.get(metric)
        if signal is None:
            return None
        at = end or self._client.clock.now()
        query = batch_query(
            signal,
            self._scheme,
            Selection((model,), version),
            window=promql_duration(window),
            per_version=version is not None,
            per_model=version is None,
        )
        result = self._client.query(query, at=at)
        split = split_result(result, self._scheme, [model], query=query, url=self._client.url)
        found = split.get((model, version))
        if found is None:
            return None
        value, samples = found
        return MetricReading(
            model=model,
            metric=metric,
            version=version,
            value=value,
            window_start=at - window,
            window_end=at,
            samples=samples,
        )

    def _from_snapshot(
        self,
        model: str,
        metric: MetricName,
        *,
        version: str | None,
        window: timedelta,
        end: datetime | None,
    ) -> tuple[MetricReading | None] | None:
        snap = self._snapshot
        if snap is None or not snap.covers(model, metric, window, version):
            return None
        if end is None:
            age = (self._client.clock.now() - snap.end).total_seconds()
            if not 0 <= age <= self._client.config.snapshot_max_age_s:
                return None
        elif end != snap.end:
            return None
        return (snap.readings.get((model, version, metric)),)
