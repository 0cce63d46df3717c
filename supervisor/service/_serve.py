"""``mlops-supervisor serve``: the cluster service on uvicorn."""

from __future__ import annotations

import gc
import logging
import math
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.config import SupervisorConfig, load_config

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ._backends import Backends
    from ._health import WarmUp
    from ._runtime import ServiceRuntime


@dataclass
class Service:
    """An app with the runtime and backends behind it; :meth:`close` after the app stopped."""

    app: FastAPI
    runtime: ServiceRuntime
    backends: Backends

    def close(self) -> None:
        """Shut the runtime down (if the app's lifespan did not), flush and close state."""
        self.runtime.shutdown()
        self.runtime.supervisor.close()
        self.backends.close()


def build_service(
    config: SupervisorConfig,
    *,
    state_dir: Path | None = None,
    approval_token: str | None = None,
    warm_up: WarmUp | None = None,
) -> Service:
    """A service for ``config``: real adapters where configured, the simulated world elsewhere.

    The approval token defaults to the environment variable ``service.approval_token_env``.
    With ``warm_up``, ``/readyz`` answers 503 until it has finished (the caller starts it).
    """
    from supervisor.metrics import SupervisorMetrics
    from supervisor.runtime import Supervisor
    from supervisor.telemetry import setup_tracing

    from ._app import create_app
    from ._backends import build_backends
    from ._health import readiness_probes
    from ._runtime import ServiceRuntime

    metrics = SupervisorMetrics(models=[m.name for m in config.models])
    backends = build_backends(config, metrics)
    tracing = setup_tracing(config.telemetry)
    elector = None
    if config.ha.lease is not None:
        # Only the Lease holder runs incident graphs (so only it acts); see supervisor/ha.
        from supervisor._clock import SystemClock
        from supervisor.ha import LeaseElector

        elector = LeaseElector.from_config(config.ha.lease, SystemClock())
        threading.Thread(
            target=elector.run,
            args=(backends.clock.stopping, config.ha.lease.renew_every_seconds),
            name="lease",
            daemon=True,
        ).start()
    sup = Supervisor(
        config,
        read=backends.read,
        write=backends.write,
        clock=backends.clock,
        tracing=tracing,
        state_dir=state_dir,
        leader=elector,
    )
    runtime = ServiceRuntime(sup, config.service.workers, metrics, stopping=backends.clock.stopping)
    probes = readiness_probes(
        config, sup.state_dir, backends.read, postgres=sup.ping_shared if sup.shared else None
    )
    app = create_app(runtime, probes=probes, approval_token=approval_token, warm_up=warm_up)
    if config.slack is not None:
        from supervisor.chatops import ChatOps, mount_slack

        chatops = ChatOps(sup, config.slack, pause=sup.pause, on_answered=runtime.observe)
        mount_slack(app, chatops)
        runtime.listeners.append(chatops.notifier.incident_changed)
        backends.closers.append(chatops)
        chatops.start()
    return Service(app=app, runtime=runtime, backends=backends)


def _import_evidently() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import evidently.metrics  # noqa: F401


def _freeze_heap() -> None:
    # Everything allocated so far (modules, classes, Evidently, the config) lives as long as
    # the process. Left to the collector, every full collection walks it again: 150-350 ms
    # with Evidently imported, a stall of every thread (webhook latency) each time.
    gc.collect()
    gc.freeze()


def serve(config_path: Path, host: str | None = None, port: int | None = None) -> int:
    """Run until SIGINT/SIGTERM. uvicorn stops accepting and finishes open requests; then the
    scheduler stops, sleeping incidents stop at their last checkpoint, running ones get
    ``service.shutdown_grace_seconds``, and the audit log and checkpoints are closed. Whatever
    did not finish resumes on the next start."""
    import uvicorn

    from ._health import WarmUp

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = load_config(config_path)
    # Incident graphs (Evidently, pandas) hold the GIL for the default 5 ms slices; every
    # fsync of an intake gives the GIL up and waits that long to get it back. A shorter
    # slice keeps webhook latency down while graphs run (measured: 53 -> 74 notifications/s
    # during a storm of new incidents, p99 750 -> 600 ms; see benchmarks/bench_alert_load.py).
    sys.setswitchinterval(0.0005)
    # Evidently costs ~3 s of CPU to import; pay it now, beside the service, not inside the
    # first incident. Until it is done the pod is not ready: the import holds the GIL in long
    # stretches and would stall webhook intake (p99 latency) for those seconds.
    warm_up = WarmUp(
        [("import evidently", _import_evidently), ("freeze the boot heap", _freeze_heap)]
    )
    service = build_service(config, warm_up=warm_up)
    warm_up.start()
    # uvicorn handles SIGINT/SIGTERM itself, then re-raises the signal once it has stopped;
    # with the default handlers that would kill the process before the state is closed.
    received: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    try:
        uvicorn.run(
            service.app,
            host=host or config.service.host,
            port=config.service.port if port is None else port,
            log_level="info",
            access_log=False,  # one line per webhook is noise; the audit log has every alert
            timeout_graceful_shutdown=max(1, math.ceil(config.service.shutdown_grace_seconds)),
        )
    finally:
        service.close()
    if received:
        logging.getLogger("mlops_supervisor.service").info(
            "stopped on %s", signal.Signals(received[0]).name
        )
    return 0
