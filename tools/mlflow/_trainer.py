"""The train port on MLflow: retrain through a runner, register the result as ``challenger``.

One retrain, keyed by its idempotency key:

1. a version tagged with the key exists: that is the answer (nothing runs);
2. a finished run tagged with the key exists but registered nothing (a crash after training):
   register it, no training;
3. otherwise create a run (tagged with the key, the window and the excluded windows), run the
   worker in it (subprocess or Kubernetes Job), then register the logged model as a new
   version tagged with the key and ``validation_status`` and move ``challenger`` to it.

A version that failed validation is registered too (for the record) and can never become
champion: the registry adapter refuses it.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import TYPE_CHECKING

from supervisor import ActionError, BackendError, Clock, SystemClock
from supervisor.domain import TimeWindow
from tools._ports import RetrainResult

from . import _history
from ._client import NotFound, Rejected, Unavailable, action_error, backend_error, classify
from ._config import MlflowConnection
from ._registry import CHALLENGER, EXCLUDED, WINDOW_END, WINDOW_START, MlflowRegistry
from ._runners import LocalRunner, TrainingRunner
from ._training import (
    DETAIL_TAG,
    MODEL_ID_TAG,
    MODEL_URI_TAG,
    TRAINED_TAG,
    VALIDATION_TAG,
    TrainingRequest,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

KEY_TAG = "idempotency_key"
MODEL_TAG = "mlops_supervisor.model"


class MlflowTrainer:
    """TrainPort: retrain ``model`` with the entry point configured for it.

    ``entry_points`` maps model names to ``package.module:function``; ``params`` (per model)
    are handed to the entry point (e.g. where its data lives). ``compare_to_champion`` adds
    "no worse than the champion on the same holdout, within ``champion_tolerance``" to the
    policy's ``min_accuracy``.
    """

    def __init__(
        self,
        connection: MlflowConnection,
        entry_points: dict[str, str],
        *,
        runner: TrainingRunner | None = None,
        params: dict[str, dict[str, str]] | None = None,
        compare_to_champion: bool = False,
        champion_tolerance: float = 0.0,
        registry: MlflowRegistry | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.connection = connection
        self.entry_points = dict(entry_points)
        self.runner: TrainingRunner = runner or LocalRunner()
        self.params = dict(params or {})
        self.compare_to_champion = compare_to_champion
        self.champion_tolerance = champion_tolerance
        self._clock = clock or SystemClock()
        self.registry = registry or MlflowRegistry(connection, clock=self._clock)

    @property
    def client(self) -> MlflowClient:
        return self.registry.client

    # ------------------------------------------------------------------ TrainPort

    def retrain(
        self,
        model: str,
        *,
        window: TimeWindow,
        exclude: list[TimeWindow],
        idempotency_key: str,
        min_accuracy: float,
    ) -> RetrainResult:
        """Fit and register a new version on ``window`` minus ``exclude``; tag it with the key."""
        done = self.find_run(model, idempotency_key)
        if done is not None:
            return done
        entry = self.entry_points.get(model)
        if entry is None:
            raise ActionError(
                f"mlflow: no training entry point configured for {model!r} "
                f"(configured: {sorted(self.entry_points)!r}); add one to train.entry_points"
            )
        self.registry.versions(model)  # fails fast, naming the model, if it is not registered
        run = self._run_for_key(model, idempotency_key)
        if run is None or run.data.tags.get(TRAINED_TAG) != "true":
            if run is not None and run.info.status == "RUNNING":
                raise ActionError(
                    f"mlflow: retrain {idempotency_key!r} of {model!r} is still running as run "
                    f"{run.info.run_id}; wait for it (or mark it failed) before retrying"
                )
            run_id = self._create_run(model, window, exclude, idempotency_key)
            request = TrainingRequest(
                model=model,
                idempotency_key=idempotency_key,
                run_id=run_id,
                window=window,
                exclude=list(exclude),
                entry_point=entry,
                params=self.params.get(model, {}),
                min_accuracy=min_accuracy,
                compare_to_champion=self.compare_to_champion,
                champion_tolerance=self.champion_tolerance,
            )
            try:
                where = self.runner.run(request, self.connection)
            except ActionError:
                self._fail_run(run_id)
                raise
            run = self._get_run(run_id)
            if run.data.tags.get(TRAINED_TAG) != "true":
                self._fail_run(run_id)
                raise ActionError(
                    f"mlflow: training of {model!r} ({where}) finished without logging a "
                    f"validated model to run {run_id}; check the entry point {entry!r}"
                )
        mv = self._register(model, run, idempotency_key, min_accuracy)
        expected = self.registry.aliases(model).get(CHALLENGER)
        self.registry.set_alias(model, CHALLENGER, str(mv.version), expected=expected)
        return self._result(mv, run)

    def find_run(self, model: str, idempotency_key: str) -> RetrainResult | None:
        """The version registered by the retrain started with ``idempotency_key``, if any."""
        found = self._versions_with_key(model, idempotency_key)
        if not found:
            return None
        mv = found[0]
        run = self._get_run(mv.run_id) if mv.run_id else None
        return self._result(mv, run)

    # ------------------------------------------------------------------ internals

    def _versions_with_key(self, model: str, key: str) -> list[ModelVersion]:
        flt = f"name='{_q(model)}' and tags.{KEY_TAG}='{_q(key)}'"
        try:
            found = classify(self.connection, lambda: list(self.client.search_model_versions(flt)))
        except (NotFound, Rejected, Unavailable) as err:
            raise backend_error(
                self.connection, f"looking up retrain {key!r} of {model!r}", err
            ) from err
        return sorted(found, key=lambda mv: int(mv.version))

    def _experiment_id(self) -> str:
        name = self.connection.experiment
        try:
            exp = classify(self.connection, lambda: self.client.get_experiment_by_name(name))
            if exp is not None:
                return str(exp.experiment_id)
            return str(
                classify(
                    self.connection,
                    lambda: self.client.create_experiment(
                        name, artifact_location=self.connection.artifact_location
                    ),
                )
            )
        except (NotFound, Rejected, Unavailable) as err:
            raise action_error(
                self.connection, f"opening experiment {name!r}", err, "nothing was trained"
            ) from err

    def _run_for_key(self, model: str, key: str) -> Run | None:
        flt = f"tags.{KEY_TAG} = '{_q(key)}' and tags.`{MODEL_TAG}` = '{_q(model)}'"
        try:
            runs = classify(
                self.connection,
                lambda: list(
                    self.client.search_runs(
                        [self._experiment_id()], flt, order_by=["attribute.start_time DESC"]
                    )
                ),
            )
        except (NotFound, Rejected, Unavailable) as err:
            raise action_error(
                self.connection, f"looking up runs of retrain {key!r}", err, "nothing was trained"
            ) from err
        return runs[0] if runs else None

    def _create_run(
        self, model: str, window: TimeWindow, exclude: list[TimeWindow], key: str
    ) -> str:
        experiment = self._experiment_id()
        tags = {
            KEY_TAG: key,
            MODEL_TAG: model,
            "trigger": "retrain",
            "mlflow.runName": f"retrain-{model}",
        }
        params = {
            WINDOW_START: window.start.isoformat(),
            WINDOW_END: window.end.isoformat(),
            EXCLUDED: json.dumps([w.model_dump(mode="json") for w in exclude]),
            KEY_TAG: key,
        }
        try:
            run = classify(self.connection, lambda: self.client.create_run(experiment, tags=tags))
            run_id = run.info.run_id
            for k, v in params.items():
                classify(self.connection, lambda k=k, v=v: self.client.log_param(run_id, k, v))  # type: ignore[misc]
        except (NotFound, Rejected, Unavailable) as err:
            raise action_error(
                self.connection, f"creating the retrain run of {model!r}", err,
                "nothing was trained; retrying with the same key is safe",
            ) from err  # fmt: skip
        return str(run_id)

    def _get_run(self, run_id: str) -> Run:
        try:
            return classify(self.connection, lambda: self.client.get_run(run_id))
        except (NotFound, Rejected, Unavailable) as err:
            raise backend_error(self.connection, f"reading run {run_id!r}", err) from err

    def _fail_run(self, run_id: str) -> None:
        # If this fails the run stays RUNNING; a retry after it goes stale is still safe.
        with contextlib.suppress(NotFound, Rejected, Unavailable):
            classify(self.connection, lambda: self.client.set_terminated(run_id, status="FAILED"))

    def _register(self, model: str, run: Run, key: str, min_accuracy: float) -> ModelVersion:
        tags = run.data.tags
        source = tags.get(MODEL_URI_TAG) or f"runs:/{run.info.run_id}/model"
        version_tags = {
            KEY_TAG: key,
            "trigger": "retrain",
            VALIDATION_TAG: tags.get(VALIDATION_TAG, "failed"),
            DETAIL_TAG: tags.get(DETAIL_TAG, ""),
            "min_accuracy": f"{min_accuracy:g}",
            _history.CREATED_AT_TAG: self._clock.now().isoformat(),
        }
        try:
            return classify(
                self.connection,
                lambda: self.client.create_model_version(
                    model,
                    source,
                    run_id=run.info.run_id,
                    tags=version_tags,
                    # MLflow 3 logged models (models:/m-...) register by id.
                    model_id=tags.get(MODEL_ID_TAG) or None,
                ),
            )
        except (NotFound, Rejected, Unavailable) as err:
            # An unknown outcome: the version may exist. Look before saying anything.
            found = self._versions_with_key(model, key)
            if found:
                return found[0]
            raise action_error(
                self.connection, f"registering run {run.info.run_id} as a version of {model!r}",
                err, "no version was registered; retrying with the same key registers it "
                "without training again",
            ) from err  # fmt: skip

    def _result(self, mv: ModelVersion, run: Run | None) -> RetrainResult:
        tags = dict(mv.tags or {})
        params = dict(run.data.params) if run else {}
        metrics = dict(run.data.metrics) if run else {}
        start, end = params.get(WINDOW_START), params.get(WINDOW_END)
        if not start or not end:
            raise BackendError(
                f"mlflow: version {mv.version} of {mv.name!r} carries the retrain key but its "
                f"run {mv.run_id!r} has no training window params; it was not made by this "
                "adapter: remove the idempotency_key tag from it"
            )
        window = TimeWindow(start=datetime.fromisoformat(start), end=datetime.fromisoformat(end))
        excluded = [TimeWindow.model_validate(w) for w in json.loads(params.get(EXCLUDED, "[]"))]
        return RetrainResult(
            run_id=str(mv.run_id),
            version=str(mv.version),
            idempotency_key=tags.get(KEY_TAG, ""),
            training_window=window,
            excluded_windows=excluded,
            metrics={k: metrics[k] for k in ("accuracy", "training_rows") if k in metrics},
            validation_passed=tags.get(VALIDATION_TAG) == "passed",
            details={
                "rows_used": _int(params.get("rows_used")),
                "rows_excluded": _int(params.get("rows_excluded")),
                "holdout_rows": _int(params.get("holdout_rows")),
                "min_accuracy": float(tags.get("min_accuracy", "nan")),
                "validation": tags.get(DETAIL_TAG, ""),
                "data_ref": params.get("data_ref") or None,
                "all_metrics": metrics,
            },
        )


def _q(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _int(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None
