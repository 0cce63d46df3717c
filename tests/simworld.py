"""Shared helpers for tests that run the supervisor on a small simulated world.

A *sim world* here is one model (``m``) with the faults and deploys a test asks for; the
supervisor over it keeps its state (audit log, checkpoints, incidents, reports) in a temporary
directory. Time is the world's :class:`supervisor.SimClock`: tests move it with
``world.advance``, never with a real sleep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import yaml

from supervisor.audit import verify
from supervisor.config import Limits, SupervisorConfig, config_from_dict
from supervisor.demo import save_world, sim_backends
from supervisor.domain import AuditKind, AuditRecord, Incident, Symptom
from supervisor.reasoners import InvestigationSession
from supervisor.runtime import Supervisor
from supervisor.telemetry import TelemetryConfig, Tracing, setup_tracing
from tools import WriteBackends
from tools._catalog import default_registry
from tools._toolkit import ToolContext
from tools.sim import DeploySpec, FaultSpec, ModelSpec, SimWorld, WorldSpec, build_world

REPO = Path(__file__).resolve().parents[1]
POLICY = REPO / "policies" / "default.yaml"
PLAYBOOKS = REPO / "playbooks"

MODEL = "m"
OWNER = "team-m"
DATA_OWNER = "team-m-data"
TICK = timedelta(minutes=5)


def world_spec(
    *,
    faults: Iterable[FaultSpec] = (),
    deploys: Iterable[DeploySpec] = (),
    seed: int = 7,
    **model: Any,
) -> WorldSpec:
    """A one-model world (model ``m``) with the given faults and canary deploys."""
    return WorldSpec(
        seed=seed,
        models=[ModelSpec(name=MODEL, owner=OWNER, data_owner=DATA_OWNER, **model)],
        faults=list(faults),
        deploys=list(deploys),
    )


def fault(kind: str, at: float = 30, **params: Any) -> FaultSpec:
    """A fault on model ``m`` from minute ``at``."""
    return FaultSpec(kind=kind, model=MODEL, at_minutes=at, params=params)  # type: ignore[arg-type]


def deploy(quality: str, at: float = 30, weight: int = 20) -> DeploySpec:
    """A canary of model ``m`` starting at minute ``at``."""
    return DeploySpec(model=MODEL, at_minutes=at, quality=quality, canary_weight=weight)  # type: ignore[arg-type]


def open_session(
    world: SimWorld, symptom: Symptom, limits: Limits | None = None, **kw: Any
) -> InvestigationSession:
    """An investigation of a fresh incident on ``m`` opened now, with the default tools over
    ``world``; ``kw`` goes to :class:`InvestigationSession` (e.g. ``on_result``)."""
    now = world.now
    incident = Incident(
        id="inc-0001-m",
        model=MODEL,
        environment="production",
        symptom=symptom,
        opened_at=now,
        updated_at=now,
    )
    return InvestigationSession(
        incident,
        default_registry(),
        ToolContext(backends=world.read_backends(), clock=world.clock),
        limits or Limits(),
        **kw,
    )


def config_dict(state_dir: Path, *, policy_file: Path = POLICY, **extra: Any) -> dict[str, Any]:
    """The watch config of model ``m``, as a user would write it in YAML."""
    raw: dict[str, Any] = {
        "models": [{"name": MODEL, "owner": OWNER, "data_owner": DATA_OWNER}],
        "policy_file": str(policy_file),
        "playbooks_dir": str(PLAYBOOKS),
        "state_dir": str(state_dir),
        "timing": {"verify_settle_seconds": 600, "canary_analysis_minutes": 30},
    }
    raw.update(extra)
    return raw


@dataclass
class Rig:
    """A world, the supervisor over it and where its state lives."""

    world: SimWorld
    sup: Supervisor
    state_dir: Path
    tracing: Tracing
    raw_config: dict[str, Any]

    # ------------------------------------------------------------------ driving

    def tick_until(
        self,
        done: Callable[[Rig], bool],
        *,
        bound: timedelta = timedelta(hours=3),
        step: timedelta = TICK,
    ) -> None:
        """Advance the world ``step`` at a time and tick, until ``done`` holds (or fail)."""
        end = self.world.now + bound
        while self.world.now < end:
            self.world.advance(step)
            self.sup.tick()
            if done(self):
                return
        raise AssertionError(
            f"condition not reached within {bound} (now {self.world.now:%H:%M}); "
            f"incidents: {[(i.id, i.symptom.value, i.status.value) for i in self.incidents()]}"
        )

    def answer_later(self, minutes: float = 30) -> None:
        """Time passes before a person answers an approval request. By then the labels of the
        drifted rows have arrived, so a retrain (whose window holds labelled rows only) fits the
        drifted world rather than the one before it."""
        self.world.advance(timedelta(minutes=minutes))

    def first_incident(self, *, bound: timedelta = timedelta(hours=3)) -> Incident:
        """Tick until the checks open an incident; return it (as it stands after its run)."""
        self.tick_until(lambda r: bool(r.incidents()), bound=bound)
        return self.incidents()[0]

    # ------------------------------------------------------------------ reading

    def incidents(self) -> list[Incident]:
        return self.sup.incidents.all()

    def incident(self, incident_id: str) -> Incident:
        inc = self.sup.incidents.get(incident_id)
        assert inc is not None, incident_id
        return inc

    def records(self, kind: AuditKind, incident_id: str | None = None) -> list[AuditRecord]:
        return self.sup.audit.find(kind, incident_id=incident_id)

    def kinds(self, incident_id: str) -> list[str]:
        return [r.kind.value for r in self.sup.audit.records(incident_id)]

    def diagnosis(self, incident_id: str) -> dict[str, Any]:
        return dict(self.records(AuditKind.DIAGNOSIS, incident_id)[-1].data["diagnosis"])

    def decision(self, incident_id: str) -> dict[str, Any]:
        return dict(self.records(AuditKind.DECISION, incident_id)[-1].data["decision"])

    def plan(self, incident_id: str) -> dict[str, Any]:
        return dict(self.records(AuditKind.PROPOSAL, incident_id)[-1].data["plan"])

    def outcomes(self, incident_id: str | None = None) -> list[dict[str, Any]]:
        return [r.data for r in self.records(AuditKind.ACTION_OUTCOME, incident_id)]

    def tool_results(self, incident_id: str) -> dict[str, dict[str, Any]]:
        """Tool results the incident's audit trail holds, by call id."""
        return {r.data["call_id"]: r.data for r in self.records(AuditKind.TOOL_CALL, incident_id)}

    def world_writes(self) -> dict[str, int]:
        """Backend changes the world applied (pages excluded: they change nothing)."""
        return {k: v for k, v in self.world.action_counts().items() if k != "page" and v}

    def verified(self) -> bool:
        result = verify(self.state_dir / "audit.jsonl")
        return bool(result.ok)

    # ------------------------------------------------------------------ lifecycle

    def save(self) -> None:
        """Persist the world and the config as the demo does, so the CLI can reopen the state."""
        (self.state_dir / "config.yaml").write_text(
            yaml.safe_dump(self.raw_config, sort_keys=False), encoding="utf-8"
        )
        save_world(self.world, self.state_dir)

    def close(self) -> None:
        self.sup.close()
        self.tracing.shutdown()

    def reopen(self) -> Rig:
        """Close this supervisor and open a new one on the same world and state directory."""
        self.close()
        return open_rig(self.world, self.state_dir, self.raw_config)


def open_rig(
    world: SimWorld,
    state_dir: Path,
    raw: dict[str, Any],
    *,
    wrap_write: Callable[[WriteBackends], WriteBackends] | None = None,
) -> Rig:
    """A supervisor over ``world`` with its state in ``state_dir``.

    ``wrap_write`` may replace the write side (e.g. with a backend that dies mid-call).
    """
    config: SupervisorConfig = config_from_dict(raw, source="test config")
    read, write = sim_backends(world)
    if wrap_write is not None:
        write = wrap_write(write)
    tracing = setup_tracing(TelemetryConfig())
    sup = Supervisor(
        config, read=read, write=write, clock=world.clock, tracing=tracing, state_dir=state_dir
    )
    return Rig(world=world, sup=sup, state_dir=state_dir, tracing=tracing, raw_config=raw)


def make_rig(
    tmp_path: Path,
    *,
    faults: Iterable[FaultSpec] = (),
    deploys: Iterable[DeploySpec] = (),
    seed: int = 7,
    policy_file: Path = POLICY,
    config: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None,
    wrap_write: Callable[[WriteBackends], WriteBackends] | None = None,
) -> Rig:
    """A fresh one-model world and a supervisor over it, state in ``tmp_path / 'state'``."""
    world = build_world(world_spec(faults=faults, deploys=deploys, seed=seed, **(model or {})))
    state_dir = (tmp_path / "state").resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    raw = config_dict(state_dir, policy_file=policy_file, **(config or {}))
    return open_rig(world, state_dir, raw, wrap_write=wrap_write)


def write_policy(path: Path, rules: list[dict[str, Any]], **defaults: Any) -> Path:
    """A policy file in ``path`` with ``rules`` (and escalate/no_action allowed)."""
    policy = {
        "version": 1,
        "defaults": {"verdict": "deny", "approvers": ["ml-oncall"], **defaults},
        "approver_groups": {"ml-oncall": ["alice", "bob"]},
        "rules": [
            {"id": "allow-escalate", "description": "paging changes nothing", "effect": "allow",
             "match": {"actions": ["escalate"]}},
            {"id": "allow-no-action", "description": "nothing changes", "effect": "allow",
             "match": {"actions": ["no_action"]}},
            *rules,
        ],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
    return path


class AfterWrite:
    """A write port whose calls take effect and then ``then(method)`` runs: a process that dies
    right after its write reached the world. Reads (``status``) pass through."""

    def __init__(self, inner: Any, then: Callable[[str], object]) -> None:
        self._inner, self._then = inner, then

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._inner, name)
        if name == "status":
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            self._then(name)
            return result

        return call


def exit_after(what: str) -> Callable[[str], NoReturn]:
    """A ``then`` for :class:`AfterWrite`: ``SystemExit("<what> after <method>")``."""

    def then(name: str) -> NoReturn:
        raise SystemExit(f"{what} after {name}")

    return then
