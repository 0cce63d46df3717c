"""``mlops-supervisor demo``: three incidents in the simulated world, end to end.

(a) churn: covariate drift; retrain needs approval, the demo approver approves, the new version
    is canaried and, after its analysis, promoted.
(b) fraud: a new version regresses on its canary; the canary is aborted.
(c) pricing: an upstream unit change looks like drift; the supervisor refuses to retrain and
    pages the data owner.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from supervisor.audit import verify
from supervisor.config import config_from_dict
from supervisor.telemetry import TelemetryConfig, setup_tracing

from ._console import Timeline
from ._scenario import DEMO_APPROVER, demo_config
from ._wiring import save_world, sim_backends

TICK = timedelta(minutes=5)
HORIZON = timedelta(hours=2, minutes=30)
APPROVER_DELAY = timedelta(minutes=20)


def run_demo(out: Path, *, seed: int = 7, quiet: bool = False) -> int:
    """Run the demo into ``out``; return 0 when the audit log verifies."""
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
    read, write = sim_backends(world)
    tracing = setup_tracing(TelemetryConfig(file=state_dir / "traces.jsonl"))
    sup = Supervisor(
        config, read=read, write=write, clock=world.clock, tracing=tracing, state_dir=state_dir
    )
    view = Timeline(quiet=quiet)
    view.header(seed, world.clock.now(), [m.name for m in config.models])
    seen = 0

    def flush() -> None:
        nonlocal seen
        records = sup.audit.records()
        view.records(records[seen:])
        seen = len(records)

    try:
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
        save_world(world, state_dir)
    finally:
        sup.close()
        tracing.shutdown()
    reports = sorted((state_dir / "reports").glob("*.md"))
    result = verify(state_dir / "audit.jsonl")
    view.summary(sup.incidents.all(), reports, result, state_dir, time.perf_counter() - started)
    return 0 if result.ok else 1
