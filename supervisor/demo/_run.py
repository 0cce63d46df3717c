"""``mlops-supervisor demo``: three incidents in the simulated world, end to end.

(a) churn: covariate drift; retrain needs approval, the demo approver approves, the new version
    is canaried and, after its analysis, promoted.
(b) fraud: a new version regresses on its canary; the canary is aborted.
(c) pricing: an upstream unit change looks like drift; the supervisor refuses to retrain and
    pages the data owner.

By default the models live in a real MLflow store in ``<out>/state/mlflow`` (sqlite, no
server): the world's versions are logged and registered, the retrain is an MLflow run that is
evaluated and validated, aliases move in MLflow. ``registry="sim"`` keeps everything in the
simulated world.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml

from supervisor.audit import verify
from supervisor.config import config_from_dict
from supervisor.telemetry import TelemetryConfig, setup_tracing
from tools import WriteBackends

from ._console import Timeline
from ._scenario import DEMO_APPROVER, demo_config
from ._wiring import demo_backends, save_world

if TYPE_CHECKING:
    from supervisor.runtime import Supervisor
    from tools.sim import SimWorld

    from ._mlflow import MirroredRegistry

TICK = timedelta(minutes=5)
HORIZON = timedelta(hours=2, minutes=30)
APPROVER_DELAY = timedelta(minutes=20)


def run_demo(
    out: Path, *, seed: int = 7, quiet: bool = False, registry: Literal["mlflow", "sim"] = "mlflow"
) -> int:
    """Run the demo into ``out``; return 0 when the audit log verifies.

    ``registry="mlflow"`` keeps the models in an MLflow store in ``out/state/mlflow``;
    ``"sim"`` keeps them in the simulated world.
    """
    from supervisor.runtime import Supervisor
    from tools.sim import build_world, demo_world_spec

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    state_dir = (out / "state").resolve()
    if state_dir.exists() and any(state_dir.iterdir()):
        import shutil

        shutil.rmtree(state_dir)  # a demo always starts from a fresh world
    state_dir.mkdir(parents=True)
    raw = demo_config(state_dir)
    (state_dir / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    config = config_from_dict(raw, source="demo config")
    world = build_world(demo_world_spec(seed))
    view = Timeline(quiet=quiet)
    view.header(seed, world.clock.now(), [m.name for m in config.models])
    with demo_backends(world, state_dir, mlflow=registry == "mlflow") as (read, write):
        store = _open_store(write, view)
        tracing = setup_tracing(TelemetryConfig(file=state_dir / "traces.jsonl"))
        sup = Supervisor(
            config, read=read, write=write, clock=world.clock, tracing=tracing, state_dir=state_dir
        )
        try:
            _run(world, sup, view)
            save_world(world, state_dir)
        finally:
            sup.close()
            tracing.shutdown()
        store_lines = [] if store is None else store.summary()
    reports = sorted((state_dir / "reports").glob("*.md"))
    result = verify(state_dir / "audit.jsonl")
    view.summary(
        sup.incidents.all(),
        reports,
        result,
        state_dir,
        time.perf_counter() - started,
        store=store_lines,
    )
    return 0 if result.ok else 1


def _open_store(write: WriteBackends, view: Timeline) -> MirroredRegistry | None:
    """Log the world's versions to MLflow up front (when the demo runs on MLflow)."""
    from ._mlflow import MirroredRegistry

    if not isinstance(write.registry, MirroredRegistry):
        return None
    t = time.perf_counter()
    logged = write.registry.sync()
    view.note(
        f"{len(logged)} scikit-learn model versions logged and registered in MLflow "
        f"({time.perf_counter() - t:.1f} s): {write.registry.connection.tracking_uri}"
    )
    return write.registry


def _run(world: SimWorld, sup: Supervisor, view: Timeline) -> None:
    seen = 0

    def flush() -> None:
        nonlocal seen
        records = sup.audit.records()
        view.records(records[seen:])
        seen = len(records)

    end = world.clock.now() + HORIZON
    asked: dict[str, datetime] = {}
    while world.clock.now() < end:
        world.advance(TICK)
        sup.tick()
        flush()
        for pending in sup.pending_approvals():
            # A person takes a while to read the report before answering.
            asked_at = asked.setdefault(pending.incident_id, world.clock.now())
            if world.clock.now() - asked_at < APPROVER_DELAY:
                continue
            view.note(
                f"{DEMO_APPROVER} (the demo's approver) reviews {pending.incident_id} "
                f"and approves {pending.action}"
            )
            sup.approve(pending.incident_id, DEMO_APPROVER, "approved in the demo")
            flush()
