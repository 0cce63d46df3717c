"""The drift port over files: a reference file against a time window of inference logs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor import BackendError, Clock, SystemClock
from tools._drift import compute_drift
from tools._ports import DriftReport

from . import _read
from ._config import FileDriftConfig, FileDriftSource

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LOGGER_NAME", "FileDriftAdapter"]

#: Name of the logger every drift failure and empty window is reported on.
LOGGER_NAME = "mlops_supervisor.drift"

_log = logging.getLogger(LOGGER_NAME)


class FileDriftAdapter:
    """The drift port comparing each model's reference file with its recent inference logs.

    The reference is read once and cached until the file changes (an MLflow artifact is
    downloaded once). The current window is read from every log file on each report, rows
    selected by the timestamp column; Parquet reads push the window down to row groups.
    Both sides are capped at ``config.max_rows`` rows, sampled deterministically.

    Returns None when the window holds no rows. Raises :class:`supervisor.BackendError`, and
    logs one line on the ``mlops_supervisor.drift`` logger, when a file is missing, empty or
    unreadable, or when reference and current share no numeric column.
    """

    def __init__(
        self,
        sources: Mapping[str, FileDriftSource],
        config: FileDriftConfig | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._sources = dict(sources)
        self._config = config or FileDriftConfig()
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._downloads: dict[str, Path] = {}
        self._references: dict[str, tuple[object, pd.DataFrame]] = {}

    @property
    def models(self) -> list[str]:
        """Models this adapter has data for."""
        return sorted(self._sources)

    def report(
        self, model: str, *, window: timedelta, end: datetime | None = None
    ) -> DriftReport | None:
        """Compare the model's reference data with its inference logs in ``[end - window, end)``.

        Args:
            model: Name of the model.
            window: Length of the current window.
            end: End of the window (exclusive); defaults to the clock's now.

        Returns:
            The drift report, or None when no log row falls in the window.

        Raises:
            BackendError: a file is missing, empty or unreadable, a log lacks the timestamp
                column, or reference and current share no numeric column.
        """
        try:
            return self._report(model, window, end)
        except BackendError as err:
            _log.warning("drift check failed for model %r: %s", model, err)
            raise

    def _report(self, model: str, window: timedelta, end: datetime | None) -> DriftReport | None:
        source = self._sources.get(model)
        if source is None:
            raise BackendError(
                f"no drift data configured for model {model!r} (configured: {self.models!r}); "
                "set data.reference and data.current for it in the config"
            )
        if window <= timedelta(0):
            raise BackendError(f"drift window must be positive, got {window!r}")
        end = end or self._clock.now()
        if end.tzinfo is None:
            raise BackendError(f"drift window end {end!r} must be timezone-aware")
        start = end - window

        reference = self._reference(source)
        current, files = self._current(source, start, end)
        if current.empty:
            _log.info(
                "no drift data for model %r: no log row in [%s, %s) in %d file(s) under %r",
                model,
                start.isoformat(),
                end.isoformat(),
                files,
                source.current,
            )
            return None
        reference = reference.copy()
        _read.align_numeric(reference, current)
        return self._compute(
            model,
            reference,
            current,
            (start, end),
            where=f"reference {source.reference!r}, current logs {source.current!r}",
            hint="; check the column types of both files",
        )

    def seasonal_report(
        self, model: str, *, window: timedelta, period: timedelta, end: datetime | None = None
    ) -> DriftReport | None:
        """Compare the inference logs in ``[end - window, end)`` with the same logs one
        ``period`` earlier (the same hours last cycle), read the same way as the current window.

        Returns:
            The drift report (reference: last cycle's rows), or None when either window holds
            no log row (the logs do not reach back one period).

        Raises:
            BackendError: as :meth:`report`.
        """
        try:
            return self._seasonal(model, window, period, end)
        except BackendError as err:
            _log.warning("seasonal drift check failed for model %r: %s", model, err)
            raise

    def _seasonal(
        self, model: str, window: timedelta, period: timedelta, end: datetime | None
    ) -> DriftReport | None:
        source = self._sources.get(model)
        if source is None:
            raise BackendError(
                f"no drift data configured for model {model!r} (configured: {self.models!r}); "
                "set data.reference and data.current for it in the config"
            )
        if window <= timedelta(0) or period <= timedelta(0):
            raise BackendError(
                f"drift window {window!r} and seasonal period {period!r} must be positive"
            )
        end = end or self._clock.now()
        if end.tzinfo is None:
            raise BackendError(f"drift window end {end!r} must be timezone-aware")
        start = end - window
        current, _ = self._current(source, start, end)
        earlier, files = self._current(source, start - period, end - period)
        if current.empty or earlier.empty:
            _log.info(
                "no seasonal drift data for model %r: %s window [%s, %s) has no log row in %d "
                "file(s) under %r",
                model,
                "the current" if current.empty else "last cycle's",
                (start if current.empty else start - period).isoformat(),
                (end if current.empty else end - period).isoformat(),
                files,
                source.current,
            )
            return None
        _read.align_numeric(earlier, current)
        return self._compute(
            model,
            earlier,
            current,
            (start, end),
            where=f"seasonal reference: logs {source.current!r} against the same logs "
            f"{period} earlier",
        )

    def _compute(
        self,
        model: str,
        reference: pd.DataFrame,
        current: pd.DataFrame,
        window: tuple[datetime, datetime],
        *,
        where: str,
        hint: str = "",
    ) -> DriftReport:
        """Evidently's drift of ``current`` against ``reference``; any failure is a
        :class:`BackendError` that says which files (``where``) and what to check (``hint``)."""
        try:
            return compute_drift(
                model,
                reference,
                current,
                window_start=window[0],
                window_end=window[1],
                prediction_column=self._config.prediction_column,
            )
        except BackendError as err:
            raise BackendError(f"{err} ({where})") from err
        except Exception as err:  # Evidently's own failures: still a backend that did not answer
            raise BackendError(
                f"Evidently failed on model {model!r} ({where}): {type(err).__name__}: {err}{hint}"
            ) from err

    # ------------------------------------------------------------------ reference

    def _reference(self, source: FileDriftSource) -> pd.DataFrame:
        path = self._reference_path(source.reference)
        if path.is_dir():
            files = _read.list_files(path, self._config.file_globs)
            if not files:
                raise BackendError(
                    f"reference directory {str(path)!r} holds no file matching "
                    f"{list(self._config.file_globs)!r}; put the reference Parquet or CSV there"
                )
        else:
            files = [path]
            if not path.is_file():
                raise BackendError(
                    f"reference file {str(path)!r} does not exist; check data.reference "
                    f"({source.reference!r}) of the model in the config"
                )
        key = _read.fingerprint(files)
        cached = self._references.get(source.reference)
        if cached is not None and cached[0] == key:
            return cached[1]
        frame = _read.concat([_read.read_file(f, what="reference") for f in files])
        if frame.empty:
            raise BackendError(
                f"reference {source.reference!r} has no rows; write the reference window "
                "(e.g. a sample of the training data) to it"
            )
        frame = self._prepare(frame)
        with self._lock:
            self._references[source.reference] = (key, frame)
        return frame

    def _reference_path(self, uri: str) -> Path:
        if not _read.is_mlflow_uri(uri):
            return _read.local_path(uri, what="reference")
        with self._lock:
            path = self._downloads.get(uri)
        if path is None:
            path = _read.download_mlflow(uri)
            with self._lock:
                self._downloads[uri] = path
        return path

    # ------------------------------------------------------------------ current window

    def _current(
        self, source: FileDriftSource, start: datetime, end: datetime
    ) -> tuple[pd.DataFrame, int]:
        import pandas as pd

        cfg = self._config
        path = _read.local_path(source.current, what="current")
        if path.is_dir():
            files = _read.list_files(path, cfg.file_globs)
        elif path.is_file():
            files = [path]
        else:
            raise BackendError(
                f"inference log directory {str(path)!r} does not exist; check data.current "
                f"({source.current!r}) of the model in the config"
            )
        row_filter = _read.RowFilter(cfg.timestamp_column, start, end)
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        frames = []
        for f in files:
            frame = _read.read_file(f, what="inference log", row_filter=row_filter)
            if frame.empty:
                continue
            times = _read.parse_times(frame, cfg.timestamp_column, cfg.timestamp_unit, path=f)
            frames.append(frame[((times >= lo) & (times < hi)).to_numpy()])
        return self._prepare(_read.concat(frames)), len(files)

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        cfg = self._config
        frame = _read.drop_columns(frame, [cfg.timestamp_column, *cfg.exclude_columns])
        return _read.sample(frame, cfg.max_rows)
