"""A lab for running the executor over the real adapters, and killing it mid-action.

The lab is what the exactly-once and fault tests share:

* **Kubernetes**: a :class:`KubeEmulator` on loopback, enforcing the shipped Role and holding the
  KServe InferenceService ``ml-serving/fraud`` (stable ``2``, canary ``3`` at 20 %). It runs in
  the test process, so it outlives a child that is killed; its request log is the record of
  every write that reached "the cluster".
* **MLflow**: a local sqlite store (``MlflowConnection.local``) copied from a template seeded once
  per session (the schema migrations of a fresh store take seconds): registered model ``fraud``
  with versions 1, 2, 3 (all ``validation_status=passed``), ``champion`` on 2, ``challenger`` on 3.
  Every alias move the registry adapter makes is a registered-model tag (its alias log).
* **Notifier**: the simulated world's pager (idempotent per incident and owner), pickled in the
  state directory so it survives the process.

:func:`child_main` is the process that dies: it builds the executor over those adapters,
records the guard decision (and the approval where the policy would ask for one) as the graph's
guard node does, and executes the plan through write ports wrapped by :class:`Dying`, which send
``SIGKILL`` to their own process right before or right after one named backend call.
Run it as ``python tests/crashkit.py <job.json>``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # run as a script: the sibling helpers must import
    sys.path.insert(0, str(TESTS))

from kube_cluster import KSERVE, NS, URI, isvc, role_rules  # noqa: E402
from kube_emulator import Call, KubeEmulator  # noqa: E402
from kube_schemas import validate_core, validate_isvc  # noqa: E402

from supervisor import SimClock  # noqa: E402
from supervisor._recorder import Recorder  # noqa: E402
from supervisor.audit import AuditLog  # noqa: E402
from supervisor.demo import load_world, save_world  # noqa: E402
from supervisor.domain import (  # noqa: E402
    ActionPlan,
    ActionTarget,
    ActionType,
    Approval,
    AuditKind,
    Diagnosis,
    Evidence,
    Incident,
    PolicyDecision,
    RootCause,
    Symptom,
    Verdict,
)
from supervisor.executor import Executor  # noqa: E402
from supervisor.telemetry import TelemetryConfig, Tracing, setup_tracing  # noqa: E402
from tools import ReadBackends, WriteBackends, read_only  # noqa: E402
from tools.kubernetes import (  # noqa: E402
    KServeTarget,
    KubernetesConfig,
    KubernetesConnection,
    KubernetesDeploy,
)
from tools.mlflow import InProcessRunner, MlflowConnection, MlflowRegistry, MlflowTrainer  # noqa: E402

A = ActionType
MODEL = "fraud"
OWNER = "team-fraud"
APPROVER = "alice"
#: The child's clock; the restarted executor runs later (so its alias-log entries, keyed by
#: the millisecond of the move, could never collide with the child's).
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
RESTART_AT = T0 + timedelta(minutes=5)
ALIAS_LOG = "mlops_supervisor.alias_move."
MLFLOW_WARNINGS = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore::UserWarning:_distutils_hack.*"),
]

INCIDENT = Incident(
    id="inc-0001-fraud",
    model=MODEL,
    environment="production",
    symptom=Symptom.CANARY_ANALYSIS,
    opened_at=T0,
    updated_at=T0,
)

DIAGNOSIS = Diagnosis(
    root_cause=RootCause.BAD_MODEL_VERSION,
    confidence=0.9,
    summary="canary 3 errs more than stable 2",
    evidence=[Evidence(call_id="inc-0001-fraud:t1", tool="compare_canary", finding="worse")],
)

#: Actions the production policy would let run only with an approval on record.
NEEDS_APPROVAL = {A.RETRAIN, A.ROLLBACK}


def plan_for(action: ActionType, model: str = MODEL, **params: Any) -> ActionPlan:
    """The plan the graph would make for ``action`` on the lab's starting state."""
    version = {A.ABORT_CANARY: "3", A.PROMOTE_CANARY: "3", A.SET_CANARY_WEIGHT: "3"}.get(action)
    defaults: dict[str, Any] = {
        A.SET_CANARY_WEIGHT: {"weight": 50},
        A.RETRAIN: {"window_hours": 8, "min_accuracy": 0.5, "canary_weight": 10},
        A.ESCALATE: {"owner": OWNER, "message": f"{model}: canary 3 is bad, please look"},
        # the graph records the champion a promote or rollback was planned against
        A.PROMOTE_CANARY: {"expected_champion": "2"},
        A.ROLLBACK: {"expected_champion": "2"},
    }.get(action, {})
    if action is A.ROLLBACK:
        version = "1"
    return ActionPlan(
        action=action,
        target=ActionTarget(model=model, environment="production", version=version),
        parameters={**defaults, **params},
        expected_effect=f"{action.value} done",
        undo="by hand",
    )


# --------------------------------------------------------------------------- MLflow store


def seed_store(directory: Path) -> Path:
    """A local MLflow store with ``fraud`` v1..v3 (passed), champion 2, challenger 3; and a
    labelled dataset for retraining. Returns the dataset's path."""
    from mlflow_server import make_dataset

    conn = MlflowConnection.local(directory)
    client = MlflowRegistry(conn).client
    client.create_registered_model(MODEL)
    exp = client.create_experiment("seed", artifact_location=conn.artifact_location)
    for i in (1, 2, 3):
        run = client.create_run(exp)
        rid = run.info.run_id
        client.log_param(rid, "training_window_start", (T0 - timedelta(days=i + 1)).isoformat())
        client.log_param(rid, "training_window_end", (T0 - timedelta(days=i)).isoformat())
        client.set_terminated(rid)
        client.create_model_version(
            MODEL, f"runs:/{rid}/model", run_id=rid, tags={"validation_status": "passed"}
        )
    client.set_registered_model_alias(MODEL, "champion", "2")
    client.set_registered_model_alias(MODEL, "challenger", "3")
    return make_dataset(directory / "rows.parquet", rows=720, start="2026-01-05T00:00:00")


@pytest.fixture(scope="session", name="mlflow_template")
def mlflow_template_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded store, made once per session and copied by each lab."""
    root = tmp_path_factory.mktemp("mlflow-template")
    seed_store(root / "store")
    return root / "store"


# --------------------------------------------------------------------------- Kubernetes


def start_emulator(kubeconfig: Path) -> KubeEmulator:
    """An emulator enforcing the shipped Role and KServe's schema; a kubeconfig pointing at it."""
    emulator = KubeEmulator(
        rbac_rules=role_rules(),
        validators={"inferenceservices": validate_isvc, "deployments": validate_core},
    )
    emulator.served.update(
        {(KSERVE, "v1beta1", "inferenceservices"), ("apps", "v1", "deployments")}
    )
    url = emulator.start()
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulator", "cluster": {"server": url}}],
                "users": [{"name": "supervisor", "user": {"token": "test-token"}}],
                "contexts": [
                    {"name": "emulator", "context": {"cluster": "emulator", "user": "supervisor"}}
                ],
                "current-context": "emulator",
            }
        ),
        encoding="utf-8",
    )
    return emulator


# --------------------------------------------------------------------------- wiring


class Unused:
    """A port the executor must not touch (metrics, alerts, drift)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        raise AssertionError(f"the executor used the {self._name} port ({attr})")


@dataclass(frozen=True)
class Setup:
    """Where one lab's backends and state live (JSON-able: the child gets it in its job)."""

    state_dir: str
    kubeconfig: str
    mlflow_dir: str
    data: str
    #: ``tracking_uri`` override (a closed port, a fault proxy); None: the local store.
    tracking_uri: str | None = None
    #: Models the Kubernetes adapter knows, each served by the InferenceService of that name.
    kube_models: tuple[str, ...] = (MODEL,)

    def connection(self) -> MlflowConnection:
        if self.tracking_uri is not None:
            return MlflowConnection(tracking_uri=self.tracking_uri, max_retries=0, timeout_s=30)
        return MlflowConnection.local(self.mlflow_dir)

    def kube_config(self) -> KubernetesConfig:
        return KubernetesConfig(
            connection=KubernetesConnection(kubeconfig=self.kubeconfig, timeout_s=30),
            models={
                m: KServeTarget(namespace=NS, name=m, storage_uri_template=URI)
                for m in self.kube_models
            },
            backoff_s=0.01,
        )


@dataclass
class Backends:
    read: ReadBackends
    write: WriteBackends
    registry: MlflowRegistry
    deploy: KubernetesDeploy
    trainer: MlflowTrainer
    world: Any  # the sim world paging owners, or None

    def close(self) -> None:
        self.deploy.close()


def build_backends(setup: Setup, clock: SimClock) -> Backends:
    """The executor's ports over the real adapters, as the service wires them."""
    conn = setup.connection()
    registry = MlflowRegistry(conn, clock=clock)
    trainer = MlflowTrainer(
        conn,
        {MODEL: "mlflow_server:train_classifier", "ghost": "mlflow_server:train_classifier"},
        params={MODEL: {"data": setup.data}, "ghost": {"data": setup.data}},
        runner=InProcessRunner(pythonpath=[str(TESTS)]),
        registry=registry,
        clock=clock,
    )
    deploy = KubernetesDeploy(setup.kube_config(), clock=clock)
    world = load_world(Path(setup.state_dir))
    read = read_only(
        metrics=Unused("metrics"),  # type: ignore[arg-type]
        alerts=Unused("alerts"),  # type: ignore[arg-type]
        drift=Unused("drift"),  # type: ignore[arg-type]
        registry=registry,
        deploy=deploy,
    )
    write = WriteBackends(
        registry=registry,
        deploy=deploy,
        train=trainer,
        notifier=world if world is not None else Unused("notifier"),  # type: ignore[arg-type]
    )
    return Backends(read, write, registry, deploy, trainer, world)


def record_guard(
    recorder: Recorder, plan: ActionPlan, at: datetime, *, incident_id: str = INCIDENT.id
) -> None:
    """The guard's decision, and the approval where the policy asks for one, recorded with the
    same kinds and fields as the graph's guard, request_approval and await_approval nodes."""
    key = plan.idempotency_key(incident_id)
    approval = plan.action in NEEDS_APPROVAL
    decision = PolicyDecision(
        verdict=Verdict.REQUIRE_APPROVAL if approval else Verdict.ALLOW,
        action=plan.action,
        rule_ids=["test-approval" if approval else "test-allow"],
        reasons=["the lab's policy"],
        approver_groups=["ml-oncall"] if approval else [],
        approvers=[APPROVER] if approval else [],
        decided_at=at,
    )
    recorder.record(
        AuditKind.DECISION,
        incident_id=incident_id,
        actor="guard",
        data={
            "idempotency_key": key,
            "decision": decision.model_dump(mode="json"),
            "evidence": [e.call_id for e in DIAGNOSIS.evidence],
        },
    )
    if not approval:
        return
    recorder.record(
        AuditKind.APPROVAL_REQUESTED,
        incident_id=incident_id,
        actor="guard",
        data={"idempotency_key": key, "approvers": [APPROVER], "groups": ["ml-oncall"],
              "deadline": None},
    )  # fmt: skip
    answer = Approval(decision="approved", by=APPROVER, at=at)
    recorder.record(
        AuditKind.APPROVAL,
        incident_id=incident_id,
        actor=APPROVER,
        data={"idempotency_key": key, "approval": answer.model_dump(mode="json")},
    )


@dataclass
class Station:
    """One executor over the lab's backends and audit log (a process's worth of state)."""

    backends: Backends
    audit: AuditLog
    recorder: Recorder
    executor: Executor
    tracing: Tracing
    clock: SimClock

    def execute(self, plan: ActionPlan, incident: Incident = INCIDENT) -> Any:
        return self.executor.execute(incident, plan, DIAGNOSIS)

    def close(self) -> None:
        self.audit.close()
        self.tracing.shutdown()
        self.backends.close()


def open_station(
    setup: Setup,
    clock: SimClock,
    *,
    wrap: Callable[[Backends], WriteBackends] | None = None,
) -> Station:
    backends = build_backends(setup, clock)
    write = wrap(backends) if wrap is not None else backends.write
    tracing = setup_tracing(TelemetryConfig())
    audit = AuditLog(Path(setup.state_dir) / "audit.jsonl", clock)
    recorder = Recorder(audit, tracing.tracer)
    executor = Executor(backends.read, write, recorder, clock)
    return Station(backends, audit, recorder, executor, tracing, clock)


# --------------------------------------------------------------------------- dying


@dataclass(frozen=True)
class KillPoint:
    """SIGKILL the process right ``when`` ("before" or "after") the write port call ``method``."""

    when: str
    method: str

    @property
    def label(self) -> str:
        return f"{self.when}-{self.method}"


class Dying:
    """A port whose call ``kill.method`` kills the process before or after the real call."""

    def __init__(self, inner: Any, kill: KillPoint, on_kill: Callable[[], None]) -> None:
        self._inner = inner
        self._kill = kill
        self._on_kill = on_kill

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._inner, name)
        if name != self._kill.method:
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._kill.when == "before":
                self._die()
            real(*args, **kwargs)
            self._die()

        return call

    def _die(self) -> None:
        self._on_kill()
        os.kill(os.getpid(), signal.SIGKILL)


def dying(backends: Backends, kill: KillPoint, state_dir: Path) -> WriteBackends:
    """The write ports, each killing the process at ``kill`` (the sim pager is saved first:
    in a real pager the page would be on the pager's side already)."""

    def save() -> None:
        if backends.world is not None:
            save_world(backends.world, state_dir)

    w = backends.write
    return WriteBackends(
        registry=Dying(w.registry, kill, save),  # type: ignore[arg-type]
        deploy=Dying(w.deploy, kill, save),  # type: ignore[arg-type]
        train=Dying(w.train, kill, save),  # type: ignore[arg-type]
        notifier=Dying(w.notifier, kill, save),  # type: ignore[arg-type]
    )


@dataclass
class Job:
    """What the child runs: the plan, where the backends are, and where to die."""

    setup: Setup
    plan: dict[str, Any]
    kill: KillPoint
    extra: dict[str, Any] = field(default_factory=dict)

    def dump(self, path: Path) -> None:
        path.write_text(
            json.dumps({"setup": asdict(self.setup), "plan": self.plan, "kill": asdict(self.kill)}),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, path: Path) -> Job:
        raw = json.loads(path.read_text(encoding="utf-8"))
        setup = Setup(**{**raw["setup"], "kube_models": tuple(raw["setup"]["kube_models"])})
        return cls(setup=setup, plan=raw["plan"], kill=KillPoint(**raw["kill"]))


@dataclass
class Child:
    """A running :func:`child_main` process; its output goes to ``log``."""

    proc: subprocess.Popen[bytes]
    log: Path

    def wait(self, timeout: float = 120) -> tuple[int, str]:
        """Its return code (``-SIGKILL`` when it died at the kill point) and its output."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        return code, self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def spawn_child(job: Job, directory: Path) -> Child:
    """Start :func:`child_main` on ``job`` in a new Python process (it should die by SIGKILL)."""
    path = directory / "job.json"
    job.dump(path)
    log = directory / "child.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(TESTS / "crashkit.py"), str(path)],
            cwd=TESTS.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Child(proc, log)


def child_main(job_path: Path) -> int:
    job = Job.load(job_path)
    state = Path(job.setup.state_dir)
    clock = SimClock(T0)
    station = open_station(job.setup, clock, wrap=lambda b: dying(b, job.kill, state))
    plan = ActionPlan.model_validate(job.plan)
    record_guard(station.recorder, plan, clock.now())
    outcome = station.execute(plan)
    # Not reached when the kill point is hit: say what happened instead.
    print(f"survived: {outcome.status.value}: {outcome.detail}", file=sys.stderr)
    return 3


# --------------------------------------------------------------------------- backend facts


def alias_moves(registry: MlflowRegistry, alias: str, model: str = MODEL) -> list[dict[str, Any]]:
    """The alias moves the registry itself records (one registered-model tag per move)."""
    tags = registry.client.get_registered_model(model).tags or {}
    prefix = f"{ALIAS_LOG}{alias}."
    return [json.loads(v) for k, v in sorted(tags.items()) if k.startswith(prefix)]


def versions_with_key(registry: MlflowRegistry, key: str, model: str = MODEL) -> list[str]:
    found = registry.client.search_model_versions(
        f"name='{model}' and tags.idempotency_key='{key}'"
    )
    return sorted(str(v.version) for v in found)


def runs_with_key(registry: MlflowRegistry, key: str) -> int:
    client = registry.client
    exp = client.get_experiment_by_name(registry.connection.experiment)
    if exp is None:
        return 0
    return len(client.search_runs([exp.experiment_id], f"tags.idempotency_key = '{key}'"))


def applied_patches(emulator: KubeEmulator) -> list[Call]:
    """Writes the emulator accepted (answered 200)."""
    return [c for c in emulator.writes() if c.status == 200]


@pytest.fixture(name="clean_mlflow_globals")
def clean_mlflow_globals_fixture() -> Iterator[None]:
    """InProcessRunner points MLflow's process-wide URIs at its store: put them back after."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    tracking, registry = tracking_utils._tracking_uri, registry_utils._registry_uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    import mlflow

    mlflow.set_tracking_uri(tracking)  # type: ignore[arg-type]
    mlflow.set_registry_uri(registry)  # type: ignore[arg-type]
    if env is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = env


# --------------------------------------------------------------------------- the lab


@dataclass
class Lab:
    """One test's backends: the emulator (in this process), a copy of the MLflow store, the
    pager, and the state directory the executor's audit log lives in."""

    root: Path
    setup: Setup
    emulator: KubeEmulator
    _stations: list[Station] = field(default_factory=list)

    def station(self, at: datetime = RESTART_AT, **kw: Any) -> Station:
        """An executor as a (re)started process would build it, on the lab's clock ``at``."""
        station = open_station(self.setup, SimClock(at), **kw)
        self._stations.append(station)
        return station

    def with_setup(self, **changes: Any) -> Lab:
        fields_ = {**asdict(self.setup), **changes}
        fields_["kube_models"] = tuple(fields_["kube_models"])
        return Lab(self.root, Setup(**fields_), self.emulator, self._stations)

    def isvc(self, name: str = MODEL) -> dict[str, Any]:
        return self.emulator.get(KSERVE, "inferenceservices", NS, name)

    def registry(self) -> MlflowRegistry:
        return MlflowRegistry(MlflowConnection.local(self.setup.mlflow_dir))

    def champion(self) -> str | None:
        return self.registry().aliases(MODEL).get("champion")

    def add_pager(self, world_file: Path) -> None:
        """Give the executor a pager: the sim world pickled in ``world_file``."""
        shutil.copy(world_file, Path(self.setup.state_dir) / "world.pickle")

    def pages(self) -> list[dict[str, Any]]:
        world = load_world(Path(self.setup.state_dir))
        return [] if world is None else list(world.pages)

    def audit_path(self) -> Path:
        return Path(self.setup.state_dir) / "audit.jsonl"

    def close(self) -> None:
        for station in self._stations:
            station.close()
        self.emulator.stop()


def open_lab(root: Path, template: Path) -> Lab:
    """Emulator with ``ml-serving/fraud`` (stable 2, canary 3 at 20 %) and a fresh copy of the
    seeded MLflow store. No pager: :meth:`Lab.add_pager` adds one."""
    state = root / "state"
    state.mkdir(parents=True)
    emulator = start_emulator(root / "kubeconfig")
    obj = isvc(MODEL, version="3", stable="2", weight=20)
    validate_isvc(obj)
    emulator.put(obj)
    store = root / "mlflow"
    shutil.copytree(template, store)
    setup = Setup(
        state_dir=str(state),
        kubeconfig=str(root / "kubeconfig"),
        mlflow_dir=str(store),
        data=str(template / "rows.parquet"),
    )
    return Lab(root, setup, emulator)


@pytest.fixture(scope="session", name="pager_world")
def pager_world_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pickled sim world whose pager the escalate action uses (built once: it fits models)."""
    from simworld import world_spec

    from tools.sim import build_world

    directory = tmp_path_factory.mktemp("pager")
    save_world(build_world(world_spec()), directory)
    return directory / "world.pickle"


@pytest.fixture(name="lab")
def lab_fixture(tmp_path: Path, mlflow_template: Path) -> Iterator[Lab]:
    lab = open_lab(tmp_path, mlflow_template)
    try:
        yield lab
    finally:
        lab.close()


if __name__ == "__main__":
    sys.exit(child_main(Path(sys.argv[1])))
