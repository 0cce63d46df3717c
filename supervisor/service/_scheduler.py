"""The scheduled checks: one background thread running a check pass every interval."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ._backends import ServiceStopping

log = logging.getLogger("mlops_supervisor.service")


class Scheduler:
    """Calls ``run_pass`` now and then every ``interval`` seconds until ``stopping`` is set.

    Passes never overlap (one thread) and a slow pass delays the next rather than stacking
    up. A failing pass is logged and counted; the next one runs on time.
    """

    def __init__(
        self,
        interval: float,
        run_pass: Callable[[], object],
        stopping: threading.Event,
        *,
        name: str = "scheduled check",
    ) -> None:
        self.interval = interval
        self.name = name
        self._run_pass = run_pass
        self._stopping = stopping
        self._thread: threading.Thread | None = None
        #: Passes completed and passes that raised, for health and tests.
        self.passes = 0
        self.failures = 0
        #: monotonic time the last pass ended (None before the first).
        self.last_pass: float | None = None

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def start(self) -> None:
        """Start the thread (no-op when the interval is 0 or it already runs)."""
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Wait for the thread to end; the caller has set ``stopping``."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._run_pass()
            except ServiceStopping:
                return
            except Exception:
                self.failures += 1
                log.exception("%s pass failed; the next runs in %g s", self.name, self.interval)
            finally:
                self.passes += 1
                self.last_pass = time.monotonic()
            if self._stopping.wait(self.interval):
                return
