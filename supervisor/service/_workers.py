"""A small pool of daemon threads that run incident graphs, one job per incident at a time.

Not :class:`concurrent.futures.ThreadPoolExecutor`: its threads are joined at interpreter
exit, so one incident stuck in a long backend call would hold a shutting-down process hostage.
Here shutdown waits a bounded grace time; whatever still runs stops at its last LangGraph
checkpoint when the process ends and is resumed on the next start.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ._backends import ServiceStopping

log = logging.getLogger("mlops_supervisor.service")


@dataclass
class _Job:
    incident_id: str
    what: str
    run: Callable[[], object]
    done: threading.Event = field(default_factory=threading.Event)


class WorkerPool:
    """Runs jobs keyed by incident on ``size`` daemon threads; :meth:`submit` never blocks."""

    def __init__(self, size: int, on_done: Callable[[str], None]) -> None:
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._active: dict[str, _Job] = {}  # queued or running, by incident
        self._accepting = True
        self._on_done = on_done
        self._threads = [
            threading.Thread(target=self._loop, name=f"incident-{i}", daemon=True)
            for i in range(size)
        ]
        for t in self._threads:
            t.start()

    def submit(self, incident_id: str, what: str, run: Callable[[], object]) -> bool:
        """Queue ``run`` for ``incident_id``; False if the pool is closed or the incident
        already has a job queued or running (its graph thread runs one step at a time)."""
        job = _Job(incident_id, what, run)
        with self._lock:
            if not self._accepting or incident_id in self._active:
                return False
            self._active[incident_id] = job
        self._queue.put(job)
        return True

    def busy(self, incident_id: str) -> bool:
        """True while ``incident_id`` has a job queued or running."""
        with self._lock:
            return incident_id in self._active

    def active(self) -> list[str]:
        """Incidents with a job queued or running."""
        with self._lock:
            return sorted(self._active)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until no job is queued or running (new ones included); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                jobs = list(self._active.values())
            if not jobs:
                return True
            for job in jobs:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                if not job.done.wait(left):
                    return False

    def close(self, grace: float) -> list[str]:
        """Stop taking jobs and starting queued ones; wait up to ``grace`` seconds for the
        running ones; return the incidents still running."""
        with self._lock:
            self._accepting = False
        self.drain(grace)
        for _ in self._threads:
            self._queue.put(None)
        return self.active()

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                with self._lock:
                    closing = not self._accepting
                if closing:  # never start a graph during shutdown; the next start picks it up
                    log.info("incident %s (%s) left for the next start", job.incident_id, job.what)
                else:
                    job.run()
            except ServiceStopping:
                log.info("incident %s stopped for shutdown at its last checkpoint", job.incident_id)
            except Exception:  # one failing incident must not take the worker down
                log.exception(
                    "incident %s failed (%s); its checkpoint is kept for resume",
                    job.incident_id,
                    job.what,
                )
            finally:
                # Observed before the job counts as done, so drain() implies fresh /metrics.
                try:
                    self._on_done(job.incident_id)
                except Exception:
                    log.exception("observing incident %s for /metrics failed", job.incident_id)
                with self._lock:
                    self._active.pop(job.incident_id, None)
                job.done.set()
