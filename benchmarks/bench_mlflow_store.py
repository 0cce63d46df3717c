"""What MLflow costs on a local sqlite store (the demo's setup: no server).

    python benchmarks/bench_mlflow_store.py [--rows 2000] [--keep DIR]

Prints seconds for: importing mlflow (in a fresh interpreter), opening a new store (creates
the sqlite schema), logging + registering a scikit-learn model version, moving an alias with
the adapter's precondition, and one retrain + evaluate + validate + register through
``MlflowTrainer`` with the subprocess runner on ``--rows`` rows.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def train_entry(request: Any) -> Any:
    """Training entry point used by the benchmark (runs in the worker subprocess)."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from tools.mlflow import TrainedModel

    frame = pd.read_parquet(request.params["data"])
    lo = np.datetime64(request.window.start.replace(tzinfo=None), "ns")
    hi = np.datetime64(request.window.end.replace(tzinfo=None), "ns")
    rows = frame[(frame.t >= lo) & (frame.t < hi)]
    dropped = request.excluded(rows.t)
    rows = rows[~dropped].drop(columns=["t"])
    holdout = rows.sample(frac=0.25, random_state=0)
    train = rows.drop(holdout.index)
    features = [c for c in rows.columns if c != "label"]
    model = LogisticRegression().fit(train[features], train["label"])
    return TrainedModel(
        estimator=model,
        holdout=holdout.reset_index(drop=True),
        target="label",
        rows_used=len(train),
        rows_excluded=int(dropped.sum()),
        data_ref=request.params["data"],
    )


def _timed(label: str, results: dict[str, float], fn: Any) -> Any:
    t = time.perf_counter()
    out = fn()
    results[label] = time.perf_counter() - t
    print(f"{label:<48} {results[label]:7.2f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--keep", type=Path, default=None, help="store directory to keep")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    results: dict[str, float] = {}

    _timed(
        "import mlflow (fresh interpreter)",
        results,
        lambda: subprocess.run([sys.executable, "-c", "import mlflow"], check=True),
    )
    _timed("import mlflow (this process)", results, lambda: __import__("mlflow"))

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from supervisor.domain import TimeWindow
    from tools.mlflow import (
        InProcessRunner,
        LocalRunner,
        MlflowConnection,
        MlflowRegistry,
        MlflowTrainer,
    )

    conn = MlflowConnection.local(root / "mlflow")
    registry = MlflowRegistry(conn)
    client = _timed(
        "open a new store (create sqlite schema)",
        results,
        lambda: registry.client.search_experiments(),
    )
    del client
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, 4))
    y = (x[:, 0] + rng.normal(scale=0.5, size=args.rows) > 0).astype(int)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(4)])
    frame["label"] = y
    start = datetime(2026, 1, 5, tzinfo=UTC)
    frame["t"] = pd.date_range(start.replace(tzinfo=None), periods=args.rows, freq="1min")
    data = root / "rows.parquet"
    frame.to_parquet(data)

    import mlflow
    import sklearn

    mlflow.set_tracking_uri(conn.tracking_uri)
    exp = registry.client.create_experiment("bench", artifact_location=conn.artifact_location)

    def log_and_register() -> str:
        with mlflow.start_run(experiment_id=exp) as run:
            info = mlflow.sklearn.log_model(
                LogisticRegression().fit(x, y),
                name="model",
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            )
        if not registry.client.search_registered_models("name='bench'"):
            registry.client.create_registered_model("bench")
        mv = registry.client.create_model_version(
            "bench", info.model_uri, run_id=run.info.run_id, model_id=info.model_id,
            tags={"validation_status": "passed"},
        )  # fmt: skip
        return str(mv.version)

    v1 = _timed("log + register a sklearn model version", results, log_and_register)
    _timed(
        "register a version (model already logged)",
        results,
        lambda: registry.client.create_model_version(
            "bench", "runs:/x/model", tags={"validation_status": "passed"}
        ),
    )
    _timed("move an alias (read, compare, set, re-read, log)", results,
           lambda: registry.set_alias("bench", "champion", v1, expected=None))  # fmt: skip
    _timed("read versions() (2 versions)", results, lambda: registry.versions("bench"))
    trainer = MlflowTrainer(
        conn,
        {"bench": "bench_mlflow_store:train_entry"},
        params={"bench": {"data": str(data)}},
        runner=LocalRunner(pythonpath=[str(ROOT / "benchmarks")], log_dir=root),
        registry=registry,
    )
    window = TimeWindow(start=start, end=start + timedelta(minutes=args.rows))
    result = _timed(
        f"retrain+evaluate+validate+register ({args.rows} rows)",
        results,
        lambda: trainer.retrain(
            "bench", window=window, exclude=[], idempotency_key="bench-1", min_accuracy=0.6
        ),
    )
    print(f"  -> version {result.version}, accuracy {result.metrics.get('accuracy', 0):.3f}, "
          f"validation {'passed' if result.validation_passed else 'failed'}")  # fmt: skip
    _timed(
        "find_run (reconciliation lookup)", results, lambda: trainer.find_run("bench", "bench-1")
    )
    trainer.runner = InProcessRunner(pythonpath=[str(ROOT / "benchmarks")])
    _timed(
        f"same, InProcessRunner ({args.rows} rows)",
        results,
        lambda: trainer.retrain(
            "bench", window=window, exclude=[], idempotency_key="bench-2", min_accuracy=0.6
        ),
    )
    print(f"store: {conn.tracking_uri}  (mlflow ui --backend-store-uri {conn.tracking_uri})")


if __name__ == "__main__":
    main()
