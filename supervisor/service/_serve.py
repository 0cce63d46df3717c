"""``mlops-supervisor serve``: the cluster service on uvicorn."""

from __future__ import annotations

from pathlib import Path

from supervisor.config import SupervisorConfig, load_config


def build_service(config: SupervisorConfig) -> tuple[object, object, object]:
    """(app, runtime, backends) for a config; the caller closes the runtime and backends."""
    from supervisor.metrics import SupervisorMetrics
    from supervisor.runtime import Supervisor
    from supervisor.telemetry import setup_tracing

    from ._app import create_app
    from ._backends import build_backends
    from ._runtime import ServiceRuntime

    metrics = SupervisorMetrics(models=[m.name for m in config.models])
    backends = build_backends(config, metrics)
    tracing = setup_tracing(config.telemetry)
    sup = Supervisor(
        config, read=backends.read, write=backends.write, clock=backends.clock, tracing=tracing
    )
    runtime = ServiceRuntime(sup, config.service.workers, metrics)
    return create_app(runtime), runtime, backends


def serve(config_path: Path, host: str | None = None, port: int | None = None) -> int:
    """Run until interrupted; on shutdown in-flight incidents finish and everything is flushed."""
    import uvicorn

    config = load_config(config_path)
    app, runtime, backends = build_service(config)
    try:
        uvicorn.run(
            app,  # type: ignore[arg-type]
            host=host or config.service.host,
            port=config.service.port if port is None else port,
            log_level="info",
        )
    finally:
        runtime.shutdown()  # type: ignore[attr-defined]
        runtime.supervisor.close()  # type: ignore[attr-defined]
        backends.close()  # type: ignore[attr-defined]
    return 0
