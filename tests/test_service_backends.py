"""The service picks real adapters where the config names them and the sim world elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from supervisor import ConfigError
from supervisor.config import config_from_dict
from supervisor.demo import demo_config
from supervisor.service import build_backends


def _write_files(root: Path, now: datetime) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 400), "b": rng.normal(5, 2, 400)})
    ref_path = root / "reference.parquet"
    ref.to_parquet(ref_path)
    logs = root / "logs"
    logs.mkdir()
    cur = pd.DataFrame(
        {
            "a": rng.normal(3, 1, 300),  # drifted
            "b": rng.normal(5, 2, 300),
            "timestamp": [
                now - timedelta(minutes=30) + timedelta(seconds=5 * i) for i in range(300)
            ],
        }
    )
    cur.to_parquet(logs / "part-0.parquet")
    return ref_path, logs


def test_models_with_data_files_get_file_drift_others_the_sim(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    ref, logs = _write_files(tmp_path, now)
    raw = demo_config(tmp_path / "state")
    raw["models"][0]["data"] = {"reference": f"file://{ref}", "current": str(logs)}
    backends = build_backends(config_from_dict(raw, source="test"))
    try:
        files = backends.read.drift.report("churn", window=timedelta(hours=1), end=now)
        assert files is not None and files.reference_rows == 400 and files.current_rows == 300
        assert {f.feature for f in files.features} == {"a", "b"}
        assert [f.feature for f in files.features if f.drifted] == ["a"]
        sim = backends.read.drift.report("fraud", window=timedelta(hours=1), end=now)
        assert sim is not None and {f.feature for f in sim.features} != {"a", "b"}
    finally:
        backends.close()


def test_half_a_data_spec_is_rejected(tmp_path: Path) -> None:
    raw = demo_config(tmp_path)
    raw["models"][0]["data"] = {"reference": "/data/ref.parquet"}
    with pytest.raises(ConfigError, match=r"models\.0\.data.*current is missing"):
        config_from_dict(raw, source="test")


def test_mlflow_backend_serves_the_registry_and_train_ports(tmp_path: Path) -> None:
    from tools.mlflow import MlflowRegistry, MlflowTrainer

    raw = demo_config(tmp_path / "state")
    raw["backends"] = {
        "mlflow": {
            "connection": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
            "entry_points": {"churn": "my_pkg.train:fit"},
        }
    }
    backends = build_backends(config_from_dict(raw, source="test"))
    try:
        assert isinstance(backends.write.registry, MlflowRegistry)
        assert isinstance(backends.write.train, MlflowTrainer)
        with pytest.raises(AttributeError, match="not a read operation"):
            backends.read.registry.set_alias  # noqa: B018 - tools only see reads
    finally:
        backends.close()
