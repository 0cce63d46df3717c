"""The demo's models in a real MLflow store: sqlite plus local artifacts, no server.

The simulated world keeps producing traffic, metrics, drift and deploys; MLflow keeps the
models. Three pieces connect them:

* :class:`MirroredRegistry` (RegistryReader and RegistryWriter). Versions the world makes on
  its own (the initial ones, a team's scheduled canary deploy) are logged to MLflow as real
  scikit-learn models and registered, with their validation tags and sim-time timestamps,
  the first time anyone reads the registry after they appear. Reads come from MLflow; the
  timeline adds the world's deployment events (deployed, canary, aborted, rolled back), which
  a registry does not hold. Alias moves go to MLflow (:class:`tools.mlflow.MlflowRegistry`,
  with its preconditions and alias-move log) and are mirrored onto the world.
* :class:`MlflowRetrainer` (TrainPort). It exports the window's labelled rows from the world to
  parquet and runs :class:`tools.mlflow.MlflowTrainer` in process on them (fit, log,
  ``mlflow.models.evaluate``, ``validate_evaluation_results``, register as challenger), then
  loads the registered model back from MLflow and hands it to the world, which serves it.
* :func:`process_store`: MLflow's fluent API (logging a model, the in-process training
  harness) uses process-wide URIs; this points them at the demo's store for the run and puts
  them back afterwards, and keeps MLflow's log lines and warnings out of the demo's output.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor import ActionError, BackendError, SimClock
from supervisor.domain import TimeWindow
from tools import (
    ChangeEvent,
    DeploymentStatus,
    ModelVersionInfo,
    ReadBackends,
    RetrainResult,
    WriteBackends,
    read_only,
)
from tools.mlflow import InProcessRunner, MlflowConnection, MlflowRegistry, MlflowTrainer

from ._training import HOLDOUT, LABEL, TIME

if TYPE_CHECKING:
    from tools.sim import SimWorld

#: The store's directory inside a run's state directory.
STORE_DIR = "mlflow"
#: Where retrain data is exported, inside the state directory.
DATA_DIR = "data"
ENTRY_POINT = "supervisor.demo._training:fit"
#: Experiment holding the runs of the versions the world made itself.
MODELS_EXPERIMENT = "mlops-supervisor-demo-models"
#: Run tag naming the simulated world's own run id of a mirrored version.
SIM_RUN_TAG = "mlops_supervisor.sim_run_id"
_MODEL_TAG = "mlops_supervisor.model"
_CREATED_AT_TAG = "mlops_supervisor.created_at"
#: Timeline events that happen in the deployment, not the registry: the world's to tell.
_DEPLOY_EVENTS = frozenset(
    {
        "deployed",
        "canary_started",
        "canary_weight",
        "promoted",
        "rolled_back",
        "aborted",
        "pipeline_change",
        "config_change",
    }
)
#: The world's pipelines contain a SimpleImputer, whose fitted dtype skops must be told to trust.
_TRUSTED = ["numpy.dtype"]
_QUIET_LOGGERS = ("mlflow", "alembic")

log = logging.getLogger(__name__)


def has_store(state_dir: Path) -> bool:
    """True when the run in ``state_dir`` kept its models in the demo's MLflow store."""
    return (state_dir / STORE_DIR / "mlflow.db").exists()


def connection_for(state_dir: Path) -> MlflowConnection:
    """The local store of ``state_dir`` (created if missing)."""
    return MlflowConnection.local(state_dir / STORE_DIR)


@contextmanager
def process_store(connection: MlflowConnection) -> Iterator[None]:
    """Point MLflow's process-wide tracking and registry URIs at ``connection`` for a while.

    The previous URIs (and ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI``, which MLflow sets
    alongside) are restored on exit, so a caller in a longer-lived process (tests, a notebook)
    is left as it was. MLflow's INFO lines and third-party warnings are silenced meanwhile:
    the demo's output is the supervisor's timeline.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    # MLflow has no public "unset"; its module globals are the only way to restore "unset".
    saved_uris = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    try:
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning, UserWarning):
                warnings.simplefilter("ignore", category)
            mlflow.set_tracking_uri(connection.tracking_uri)
            mlflow.set_registry_uri(connection.registry)
            yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved_uris
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def mlflow_backends(world: SimWorld, state_dir: Path) -> tuple[ReadBackends, WriteBackends]:
    """The world for metrics, alerts, drift, deploy and paging; MLflow for registry and train.

    Use inside :func:`process_store` of the same store.
    """
    registry = MirroredRegistry(world, connection_for(state_dir))
    trainer = MlflowRetrainer(world, registry, state_dir / DATA_DIR)
    read = read_only(metrics=world, alerts=world, drift=world, registry=registry, deploy=world)
    deploy = TaggedDeploy(world, registry)
    write = WriteBackends(registry=registry, deploy=deploy, train=trainer, notifier=world)
    return read, write


class MirroredRegistry:
    """RegistryReader and RegistryWriter on MLflow, kept in step with the simulated world."""

    def __init__(self, world: SimWorld, connection: MlflowConnection) -> None:
        self.world = world
        self.connection = connection
        self.mlflow = MlflowRegistry(connection, clock=world.clock)
        self._known: dict[str, set[str]] = {}
        self._experiment_id: str | None = None

    # ------------------------------------------------------------------ RegistryReader

    def versions(self, model: str) -> list[ModelVersionInfo]:
        """All versions of ``model`` as MLflow has them, oldest first."""
        self.sync()
        return self.mlflow.versions(model)

    def timeline(self, model: str, since: datetime) -> list[ChangeEvent]:
        """MLflow's registrations, retrains and alias moves plus the world's deploy events."""
        self.sync()
        events = self.mlflow.timeline(model, since)
        events += [e for e in self.world.timeline(model, since) if e.kind in _DEPLOY_EVENTS]
        return sorted(events, key=lambda e: e.at)

    # ------------------------------------------------------------------ RegistryWriter

    def set_alias(self, model: str, alias: str, version: str, *, expected: str | None) -> None:
        """Move the alias in MLflow (preconditions, alias log), then in the world."""
        self.sync()
        self.mlflow.set_alias(model, alias, version, expected=expected)
        self._mirror_alias(model, alias, version)

    def set_tag(self, model: str, version: str, key: str, value: str) -> None:
        """Set a version tag in MLflow and in the world."""
        self.sync()
        self.mlflow.set_tag(model, version, key, value)
        self.world.set_tag(model, version, key, value)

    def summary(self) -> list[str]:
        """One line per model (versions, aliases, alias moves), then how to open the store."""
        lines = []
        since = datetime.min.replace(tzinfo=UTC)
        for spec in self.world.spec.models:
            versions = self.mlflow.versions(spec.name)
            aliases = sorted(self.mlflow.aliases(spec.name).items())
            moves = [
                e
                for e in self.mlflow.timeline(spec.name, since)
                if e.kind in ("alias_moved", "promoted", "rolled_back")
            ]
            lines.append(
                f"{spec.name}: versions {', '.join(v.version for v in versions)}"
                + "".join(f" · {alias} {version}" for alias, version in aliases)
                + f" · {len(moves)} alias move{'s' if len(moves) != 1 else ''}"
            )
        lines.append(f"open it: mlflow ui --backend-store-uri {self.connection.tracking_uri}")
        return lines

    # ------------------------------------------------------------------ mirroring

    def sync(self) -> list[tuple[str, str]]:
        """Log and register the versions the world made that MLflow does not have yet.

        Returns the (model, version) pairs registered now. BackendError if MLflow numbers a
        version differently from the world (someone else registered versions in the store).
        """
        from mlflow.exceptions import MlflowException

        done: list[tuple[str, str]] = []
        for spec in self.world.spec.models:
            model = spec.name
            known = self._known.get(model)
            if known is None:
                known = self._known[model] = self._registered(model)
            new = [v for v in self.world.versions(model) if v.version not in known]
            if new:  # rare: re-read, the trainer registers versions too
                known |= self._registered(model)
                new = [v for v in new if v.version not in known]
            for info in sorted(new, key=lambda v: int(v.version)):
                try:
                    self._log_version(model, info)
                except MlflowException as err:
                    raise BackendError(
                        f"mlflow: logging version {info.version!r} of {model!r} to "
                        f"{self.connection.registry!r} failed: {err}; check that the store is "
                        "writable, or run the demo into a fresh directory"
                    ) from err
                known.add(info.version)
                done.append((model, info.version))
            for info in new:
                for alias in info.aliases:
                    current = self.mlflow.aliases(model).get(alias)
                    if current != info.version:
                        at = self._alias_moved_at(model, alias, info.version)
                        mover = MlflowRegistry(
                            self.connection, clock=SimClock(at), client=self.mlflow.client
                        )
                        mover.set_alias(model, alias, info.version, expected=current)
        return done

    def note(self, model: str, version: str) -> None:
        """``version`` of ``model`` was registered in MLflow by someone else (the trainer)."""
        self._known.setdefault(model, set()).add(version)

    def _registered(self, model: str) -> set[str]:
        """Versions MLflow holds of ``model``; registers the model first if it is new."""
        from mlflow.exceptions import MlflowException

        client = self.mlflow.client
        try:
            name = model.replace("'", "\\'")
            if not client.search_registered_models(f"name='{name}'"):
                self._create(model)
                return set()
            return {str(mv.version) for mv in client.search_model_versions(f"name='{name}'")}
        except MlflowException as err:
            raise BackendError(
                f"mlflow: cannot read registered model {model!r} in {self.connection.registry!r}:"
                f" {err}; delete the demo's state directory and run the demo again"
            ) from err

    def _create(self, model: str) -> None:
        spec = next(m for m in self.world.spec.models if m.name == model)
        self.mlflow.client.create_registered_model(
            model,
            tags={"owner": spec.owner, "data_owner": spec.data_owner},
            description=f"{model}: watched by mlops-supervisor (demo, simulated traffic).",
        )

    def _experiment(self) -> str:
        if self._experiment_id is None:
            client = self.mlflow.client
            exp = client.get_experiment_by_name(MODELS_EXPERIMENT)
            self._experiment_id = (
                exp.experiment_id
                if exp is not None
                else client.create_experiment(
                    MODELS_EXPERIMENT, artifact_location=self.connection.artifact_location
                )
            )
        return str(self._experiment_id)

    def _log_version(self, model: str, info: ModelVersionInfo) -> None:
        """Log the world's fitted pipeline of one version to a run dated in sim time, and
        register it with the world's tags."""
        import mlflow
        import sklearn
        from mlflow.entities import Metric, Param

        client = self.mlflow.client
        at = _millis(info.created_at)
        run = client.create_run(
            self._experiment(),
            start_time=at,
            tags={
                "mlflow.runName": f"{model}-v{info.version}",
                _MODEL_TAG: model,
                SIM_RUN_TAG: info.run_id or "",
                "trigger": info.tags.get("trigger", "team"),
            },
        )
        run_id = run.info.run_id
        with mlflow.start_run(run_id=run_id):
            logged = mlflow.sklearn.log_model(
                self.world.estimator(model, info.version),
                name="model",
                # Naming the requirement skips MLflow's environment inference (~10 s a model).
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
                skops_trusted_types=_TRUSTED,
            )
        params = []
        if info.training_window is not None:
            params = [
                Param("training_window_start", info.training_window.start.isoformat()),
                Param("training_window_end", info.training_window.end.isoformat()),
            ]
        metrics = [Metric(k, float(v), at, 0) for k, v in info.metrics.items()]
        client.log_batch(run_id, metrics=metrics, params=params)
        # The run ended now (wall clock); date it in sim time like the rest of the story.
        client.set_terminated(run_id, end_time=at + 1000)
        mv = client.create_model_version(
            model,
            logged.model_uri,
            run_id=run_id,
            model_id=logged.model_id,
            tags={**info.tags, _CREATED_AT_TAG: info.created_at.isoformat()},
        )
        if str(mv.version) != info.version:
            raise BackendError(
                f"mlflow: registered {model!r} version {info.version!r} of the simulated world "
                f"as version {mv.version!r}; the store holds versions the world does not: "
                "run the demo into a fresh directory"
            )

    def _alias_moved_at(self, model: str, alias: str, version: str) -> datetime:
        """When the world moved ``alias`` to ``version`` (now, if its timeline does not say)."""
        since = datetime.min.replace(tzinfo=UTC)
        moves = [
            e.at
            for e in self.world.timeline(model, since)
            if e.kind == "alias_moved" and e.version == version and e.detail.startswith(f"{alias}:")
        ]
        return moves[-1] if moves else self.world.now

    def _mirror_alias(self, model: str, alias: str, version: str) -> None:
        current = next((v.version for v in self.world.versions(model) if alias in v.aliases), None)
        if current != version:
            self.world.set_alias(model, alias, version, expected=current)


class TaggedDeploy:
    """DeployWriter: the world serves; each change the supervisor makes is also written on the
    MLflow version as a tag (``mlops_supervisor.deploy.<what>`` = sim time), so the store shows
    which versions were canaried, aborted, promoted or rolled back, and when."""

    def __init__(self, world: SimWorld, registry: MirroredRegistry) -> None:
        self.world = world
        self.registry = registry

    def set_canary_weight(
        self, model: str, weight: int, *, expected_version: str
    ) -> DeploymentStatus:
        status = self.world.set_canary_weight(model, weight, expected_version=expected_version)
        self._tag(model, expected_version, f"canary_weight_{weight}")
        return status

    def promote_canary(self, model: str, *, expected_version: str) -> DeploymentStatus:
        status = self.world.promote_canary(model, expected_version=expected_version)
        self._tag(model, expected_version, "promoted")
        return status

    def abort_canary(self, model: str, *, expected_version: str) -> DeploymentStatus:
        status = self.world.abort_canary(model, expected_version=expected_version)
        self._tag(model, expected_version, "canary_aborted")
        return status

    def serve_version(
        self, model: str, version: str, *, expected_version: str, canary_weight: int = 0
    ) -> DeploymentStatus:
        status = self.world.serve_version(
            model, version, expected_version=expected_version, canary_weight=canary_weight
        )
        what = "canary_started" if canary_weight else "served_as_stable"
        self._tag(model, version, what)
        return status

    def _tag(self, model: str, version: str, what: str) -> None:
        # The change happened in the deployment; a tag that fails to write loses no state.
        try:
            self.registry.mlflow.set_tag(
                model, version, f"mlops_supervisor.deploy.{what}", self.world.now.isoformat()
            )
        except ActionError as err:
            log.warning("demo: %s of %r v%s not tagged in MLflow: %s", what, model, version, err)


class MlflowRetrainer:
    """TrainPort: retrain through MLflow on the world's rows; the world then serves the result."""

    def __init__(self, world: SimWorld, registry: MirroredRegistry, data_dir: Path) -> None:
        self.world = world
        self.registry = registry
        self.data_dir = data_dir

    def retrain(
        self,
        model: str,
        *,
        window: TimeWindow,
        exclude: list[TimeWindow],
        idempotency_key: str,
        min_accuracy: float,
    ) -> RetrainResult:
        """Export the window's labelled rows, train and register in MLflow, adopt in the world."""
        self.registry.sync()  # the world's own versions first, so the numbering agrees
        done = self.find_run(model, idempotency_key)
        if done is not None:
            return done
        frame = self.world.training_frame(
            model, window=window, exclude=exclude, idempotency_key=idempotency_key
        )
        path = self._data(model, idempotency_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path)
        result = self._trainer({model: {"data": str(path)}}).retrain(
            model,
            window=window,
            exclude=exclude,
            idempotency_key=idempotency_key,
            min_accuracy=min_accuracy,
        )
        self._adopt(model, result)
        return result

    def find_run(self, model: str, idempotency_key: str) -> RetrainResult | None:
        """The MLflow version of the retrain ``idempotency_key``; the world adopts it if it has
        not yet (a crash between registering and serving)."""
        found = self._trainer({}).find_run(model, idempotency_key)
        if found is not None:
            self._adopt(model, found)
        return found

    def _trainer(self, params: dict[str, dict[str, str]]) -> MlflowTrainer:
        models = [m.name for m in self.world.spec.models]
        return MlflowTrainer(
            self.registry.connection,
            dict.fromkeys(models, ENTRY_POINT),
            runner=InProcessRunner(),
            params=params,
            registry=self.registry.mlflow,
            clock=self.world.clock,
        )

    def _data(self, model: str, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in key)
        return self.data_dir / f"{model}-{safe}.parquet"

    def _adopt(self, model: str, result: RetrainResult) -> None:
        self.registry.note(model, result.version)
        if any(v.version == result.version for v in self.world.versions(model)):
            return
        import mlflow
        import pandas as pd

        path = self._data(model, result.idempotency_key)
        if not path.exists():
            raise ActionError(
                f"demo: MLflow has retrained version {result.version!r} of {model!r} but its "
                f"training data {str(path)!r} is gone, so the world cannot serve it; "
                "run the demo again into a fresh directory"
            )
        frame = pd.read_parquet(path)
        excluded = pd.Series(False, index=frame.index)
        for w in result.excluded_windows:
            lo = w.start.replace(tzinfo=None)
            hi = w.end.replace(tzinfo=None)
            excluded |= (frame[TIME] >= lo) & (frame[TIME] < hi)
        train = ~frame[HOLDOUT] & ~excluded
        features = [c for c in frame.columns if c not in (LABEL, TIME, HOLDOUT)]
        # The model the world serves is the one MLflow registered, loaded back from the store.
        estimator = mlflow.sklearn.load_model(f"models:/{model}/{result.version}")
        tags = dict(self.registry.mlflow.client.get_model_version(model, result.version).tags)
        self.world.adopt_version(
            model,
            result.version,
            estimator,
            train_x=frame.loc[train, features].to_numpy(dtype=float),
            metrics=dict(result.metrics),
            tags=tags,
            training_window=result.training_window,
            run_id=result.run_id,
        )


def _millis(when: datetime) -> int:
    return int(when.timestamp() * 1000)
