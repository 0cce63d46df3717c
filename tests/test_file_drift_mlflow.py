"""FileDriftAdapter with the reference as an MLflow run artifact (``runs:/``), through a real
MLflow tracking store (SQLite in a temporary directory). Skipped when mlflow is not installed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from test_file_drift import REF_SEED, T0, _rows, _write

from supervisor import BackendError
from tools.files import FileDriftAdapter, FileDriftSource

pytestmark = [
    pytest.mark.slow,
    # mlflow and SQLAlchemy emit deprecation warnings from their own modules.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

mlflow = pytest.importorskip("mlflow")


def test_reference_from_a_run_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    experiment = client.create_experiment("drift", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(experiment).info.run_id
    ref = _write(
        _rows(REF_SEED, T0, n=600).drop(columns="timestamp"), tmp_path / "reference.parquet"
    )
    client.log_artifact(run_id, str(ref), artifact_path="data")
    ref.unlink()  # only MLflow has it now
    _write(_rows(12, T0, shift=1.5), tmp_path / "logs" / "a.parquet")

    adapter = FileDriftAdapter(
        {
            "m": FileDriftSource(
                reference=f"runs:/{run_id}/data/reference.parquet", current=str(tmp_path / "logs")
            )
        }
    )
    report = adapter.report("m", window=timedelta(hours=1), end=T0 + timedelta(hours=1))
    assert report is not None and report.reference_rows == 600
    assert [f.feature for f in report.features if f.drifted] == ["f0"]

    missing = FileDriftAdapter(
        {"m": FileDriftSource(reference=f"runs:/{run_id}/nope.parquet", current=str(tmp_path))}
    )
    with pytest.raises(BackendError, match=r"cannot download reference 'runs:/.*/nope\.parquet'"):
        missing.report("m", window=timedelta(hours=1), end=T0)
