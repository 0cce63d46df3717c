"""Retraining through MLflow against a real ``mlflow server``: a ``module:function`` entry
point run in a subprocess, evaluated with ``mlflow.models.evaluate``, registered as challenger."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from mlflow_server import make_dataset, mlflow_server

from supervisor import ActionError
from supervisor.domain import TimeWindow
from tools import TrainPort
from tools.mlflow import (
    InProcessRunner,
    LocalRunner,
    MlflowConnection,
    MlflowRegistry,
    MlflowTrainer,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:mlflow.*"),
]

TESTS = str(Path(__file__).resolve().parents[1])
START = datetime(2026, 1, 5, tzinfo=UTC)
WINDOW = TimeWindow(start=START, end=START + timedelta(hours=24))
POISONED = TimeWindow(start=START + timedelta(hours=3), end=START + timedelta(hours=5))


@pytest.fixture(scope="session")
def mlflow_url(request: pytest.FixtureRequest) -> str:
    return mlflow_server(request.config).url


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "rows.parquet", rows=2000)


def _setup(url: str, data: Path, tmp: Path, entry: str = "mlflow_server:train_classifier"):
    conn = MlflowConnection(tracking_uri=url, max_retries=0)
    registry = MlflowRegistry(conn)
    model = f"churn-{uuid.uuid4().hex[:8]}"
    registry.client.create_registered_model(model)
    trainer = MlflowTrainer(
        conn,
        {model: entry},
        params={model: {"data": str(data)}},
        runner=LocalRunner(pythonpath=[TESTS], timeout_s=120, log_dir=tmp),
        registry=registry,
    )
    return model, registry, trainer


def test_retrain_registers_a_validated_challenger_honouring_exclusions(
    mlflow_url: str, data: Path, tmp_path: Path
) -> None:
    model, registry, trainer = _setup(mlflow_url, data, tmp_path)
    assert isinstance(trainer, TrainPort)
    result = trainer.retrain(
        model, window=WINDOW, exclude=[POISONED], idempotency_key="inc-1/retrain", min_accuracy=0.7
    )
    assert result.validation_passed and result.version == "1"
    assert result.metrics["accuracy"] >= 0.7
    frame = pd.read_parquet(data)
    naive = lambda ts: ts.replace(tzinfo=None)  # noqa: E731
    in_window = (frame.t >= naive(WINDOW.start)) & (frame.t < naive(WINDOW.end))
    in_poison = (frame.t >= naive(POISONED.start)) & (frame.t < naive(POISONED.end))
    assert result.details["rows_excluded"] == int(in_poison.sum()) == 120
    kept = int(in_window.sum()) - 120  # one row a minute: 1440 in the window
    assert result.details["holdout_rows"] == round(kept * 0.25)
    assert result.details["rows_used"] == kept - round(kept * 0.25)
    assert result.excluded_windows == [POISONED]
    versions = registry.versions(model)
    assert versions[-1].aliases == ["challenger"]
    assert versions[-1].tags["validation_status"] == "passed"
    assert versions[-1].tags["idempotency_key"] == "inc-1/retrain"
    assert versions[-1].training_window == WINDOW
    # mlflow.models.evaluate logged its classifier metrics into the training run.
    assert "accuracy_score" in result.details["all_metrics"]
    assert "f1_score" in result.details["all_metrics"]
    lineage = registry.lineage(model, result.version)
    assert lineage.data_ref == str(data) and lineage.excluded_windows == [POISONED]
    # Reconciliation: the key finds the run; retraining with it trains nothing new.
    found = trainer.find_run(model, "inc-1/retrain")
    assert found is not None and found.run_id == result.run_id
    again = trainer.retrain(
        model, window=WINDOW, exclude=[POISONED], idempotency_key="inc-1/retrain", min_accuracy=0.7
    )
    assert again == found
    assert [v.version for v in registry.versions(model)] == ["1"]
    assert trainer.find_run(model, "another-key") is None
    # A passed challenger can be promoted.
    registry.promote(model, result.version, expected_champion=None)
    assert registry.aliases(model) == {"champion": "1"}


def test_failed_validation_is_tagged_and_never_promoted(
    mlflow_url: str, data: Path, tmp_path: Path
) -> None:
    model, registry, trainer = _setup(mlflow_url, data, tmp_path)
    result = trainer.retrain(
        model, window=WINDOW, exclude=[], idempotency_key="inc-2", min_accuracy=0.99
    )
    assert not result.validation_passed
    assert "threshold check failed" in result.details["validation"]
    version = registry.versions(model)[-1]
    assert version.tags["validation_status"] == "failed"
    assert version.aliases == ["challenger"]
    with pytest.raises(ActionError, match="validation"):
        registry.promote(model, result.version, expected_champion=None)
    with pytest.raises(ActionError, match="failed validation"):
        registry.set_alias(model, "champion", result.version, expected=None)
    assert "champion" not in registry.aliases(model)


def test_a_crashing_entry_point_registers_nothing(
    mlflow_url: str, data: Path, tmp_path: Path
) -> None:
    model, registry, trainer = _setup(
        mlflow_url, data, tmp_path, entry="mlflow_server:train_crashing"
    )
    with pytest.raises(ActionError, match=r"(?s)exited with 1.*feature table missing column f3"):
        trainer.retrain(model, window=WINDOW, exclude=[], idempotency_key="k3", min_accuracy=0.5)
    assert registry.versions(model) == []
    assert trainer.find_run(model, "k3") is None
    runs = registry.client.search_runs(
        [registry.client.get_experiment_by_name("mlops-supervisor-retrain").experiment_id],
        "tags.idempotency_key = 'k3'",
    )
    assert [r.info.status for r in runs] == ["FAILED"]


def test_unknown_model_and_entry_point_fail_before_training(
    mlflow_url: str, data: Path, tmp_path: Path
) -> None:
    _, _, trainer = _setup(mlflow_url, data, tmp_path)
    with pytest.raises(ActionError, match=r"no training entry point configured for 'other'"):
        trainer.retrain("other", window=WINDOW, exclude=[], idempotency_key="k", min_accuracy=0.5)
    trainer.entry_points["ghost"] = "mlflow_server:train_classifier"
    with pytest.raises(Exception, match=r"no registered model 'ghost'"):
        trainer.retrain("ghost", window=WINDOW, exclude=[], idempotency_key="k", min_accuracy=0.5)


def test_in_process_runner_same_result_without_a_subprocess(
    mlflow_url: str, data: Path, tmp_path: Path
) -> None:
    model, registry, trainer = _setup(mlflow_url, data, tmp_path)
    trainer.runner = InProcessRunner(pythonpath=[TESTS])
    result = trainer.retrain(
        model, window=WINDOW, exclude=[POISONED], idempotency_key="inproc", min_accuracy=0.7
    )
    assert result.validation_passed and result.details["rows_excluded"] == 120
    assert registry.aliases(model) == {"challenger": result.version}
    trainer.entry_points[model] = "mlflow_server:train_crashing"
    with pytest.raises(ActionError, match="RuntimeError: feature table missing column f3"):
        trainer.retrain(model, window=WINDOW, exclude=[], idempotency_key="k4", min_accuracy=0.5)
