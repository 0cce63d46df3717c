"""What a training entry point receives and returns, and the harness that runs it.

A user's entry point is a ``module:function`` taking a :class:`TrainingRequest` and returning a
:class:`TrainedModel`. It loads the labelled rows of ``request.window`` minus
``request.exclude`` from wherever the team keeps them, fits a model, and hands back the model
with a holdout it did not train on. The harness (:func:`run_training`, run by
``python -m tools.mlflow.worker`` in a subprocess or a Kubernetes Job) does the rest inside the
MLflow run the supervisor created: logs the model and the row counts, evaluates the model on the
holdout with ``mlflow.models.evaluate``, checks the result with
``mlflow.validate_evaluation_results`` and records the verdict as run tags.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from supervisor.domain import TimeWindow

#: The environment variable carrying the request's JSON to ``python -m tools.mlflow.worker``.
REQUEST_ENV = "MLOPS_SUPERVISOR_TRAIN_REQUEST"
#: Run tags the harness writes and the trainer reads back.
TRAINED_TAG = "mlops_supervisor.trained"
MODEL_URI_TAG = "mlops_supervisor.model_uri"
MODEL_ID_TAG = "mlops_supervisor.model_id"
VALIDATION_TAG = "validation_status"
DETAIL_TAG = "mlops_supervisor.validation_detail"
ACCURACY = "accuracy_score"


class TrainingRequest(BaseModel):
    """Everything a training entry point is given."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Registered model name.")
    idempotency_key: str
    run_id: str = Field(description="The MLflow run to log into (already created).")
    window: TimeWindow = Field(description="Train on labelled rows of this window ...")
    exclude: list[TimeWindow] = Field(default_factory=list, description="... minus these.")
    entry_point: str = Field(description="'package.module:function'.")
    params: dict[str, str] = Field(default_factory=dict, description="From the trainer config.")
    min_accuracy: float = Field(ge=0.0, le=1.0)
    compare_to_champion: bool = Field(
        default=False,
        description="Also require accuracy >= champion's accuracy on the same holdout "
        "minus champion_tolerance (the harness evaluates the champion there).",
    )
    champion_tolerance: float = Field(default=0.0, ge=0.0, le=1.0)

    def excluded(self, t: Any) -> Any:
        """Boolean mask over timestamps ``t`` (pandas Series/NumPy): inside an excluded window."""
        import numpy as np

        ts = np.asarray(t, dtype="datetime64[ns]")
        mask = np.zeros(len(ts), dtype=bool)
        for w in self.exclude:
            lo = np.datetime64(w.start.replace(tzinfo=None), "ns")
            hi = np.datetime64(w.end.replace(tzinfo=None), "ns")
            mask |= (ts >= lo) & (ts < hi)
        return mask


@dataclass
class TrainedModel:
    """What a training entry point returns."""

    estimator: Any
    """A fitted scikit-learn estimator (logged with ``mlflow.sklearn``)."""
    holdout: Any
    """A pandas DataFrame of feature columns plus ``target``, not used for fitting."""
    target: str
    rows_used: int
    """Labelled rows fitted on (window minus excluded windows, minus the holdout)."""
    rows_excluded: int
    """Rows of the window dropped because they fall in an excluded window."""
    data_ref: str | None = None
    """Where the data came from (a path, a table and snapshot id, a dataset URI)."""
    params: dict[str, str | int | float] = field(default_factory=dict)


def load_entry_point(path: str) -> Any:
    """Import ``package.module:function``."""
    module, sep, name = path.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"entry point {path!r} must look like 'package.module:function'")
    fn = getattr(importlib.import_module(module), name, None)
    if not callable(fn):
        raise ValueError(f"entry point {path!r}: {module!r} has no function {name!r}")
    return fn


def run_training(request: TrainingRequest) -> dict[str, str]:
    """Train, log, evaluate and validate inside ``request.run_id``; returns the run tags set.

    The tracking and registry URIs come from ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``.
    """
    import mlflow
    import sklearn
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    fn = load_entry_point(request.entry_point)
    seconds: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        seconds[name] = round(now - mark, 3)
        mark = now

    with mlflow.start_run(run_id=request.run_id):
        lap("open_run")
        out = fn(request)
        lap("train")
        if not isinstance(out, TrainedModel):
            raise TypeError(
                f"entry point {request.entry_point!r} returned {type(out).__name__}, "
                "not tools.mlflow.TrainedModel"
            )
        if out.target not in out.holdout.columns or len(out.holdout) == 0:
            raise ValueError(
                f"entry point {request.entry_point!r}: the holdout is empty or has no "
                f"{out.target!r} column"
            )
        mlflow.log_params(
            {
                "rows_used": out.rows_used,
                "rows_excluded": out.rows_excluded,
                "holdout_rows": len(out.holdout),
                "data_ref": out.data_ref or "",
                **out.params,
            }
        )
        mlflow.log_metric("training_rows", float(out.rows_used))
        info = mlflow.sklearn.log_model(
            out.estimator,
            name="model",
            # Naming the requirement skips MLflow's environment inference (~10 s per model).
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
        lap("log_model")
        result = mlflow.models.evaluate(  # type: ignore[no-untyped-call]
            model=info.model_uri,
            data=out.holdout,
            targets=out.target,
            model_type="classifier",
            evaluators=["default"],
        )
        lap("evaluate")
        accuracy = float(result.metrics[ACCURACY])
        mlflow.log_metric("accuracy", accuracy)
        threshold = request.min_accuracy
        detail = f"accuracy {accuracy:.4f} vs min_accuracy {request.min_accuracy:.4f}"
        if request.compare_to_champion:
            champion = _champion_accuracy(request, out)
            if champion is not None:
                mlflow.log_metric("champion_accuracy", champion)
                threshold = max(threshold, champion - request.champion_tolerance)
                detail += f", champion {champion:.4f} (tolerance {request.champion_tolerance:g})"
        bar = MetricThreshold(threshold=threshold, greater_is_better=True)  # type: ignore[no-untyped-call]
        try:
            mlflow.validate_evaluation_results({ACCURACY: bar}, result)
            status = "passed"
        except ModelValidationFailedException as err:
            status = "failed"
            detail += f": {' '.join(str(err).split())}"
        lap("validate")
        mlflow.log_metrics({f"seconds_{k}": v for k, v in seconds.items()})
        tags = {
            VALIDATION_TAG: status,
            DETAIL_TAG: detail[:4000],
            MODEL_URI_TAG: info.model_uri,
            MODEL_ID_TAG: str(info.model_id or ""),
            TRAINED_TAG: "true",
        }
        mlflow.set_tags(tags)
    return tags


def _champion_accuracy(request: TrainingRequest, out: TrainedModel) -> float | None:
    """Accuracy of the current champion on the same holdout, None if there is no champion."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        champion = mlflow.pyfunc.load_model(f"models:/{request.model}@champion")
    except MlflowException:
        return None
    features = out.holdout.drop(columns=[out.target])
    predicted = champion.predict(features)
    return float((predicted == out.holdout[out.target].to_numpy()).mean())
