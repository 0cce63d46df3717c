"""The demo's training entry point, as a team would write one for ``MlflowTrainer``.

``supervisor.demo._training:fit`` runs inside the MLflow run the supervisor created (the
harness in :mod:`tools.mlflow` logs, evaluates and validates what it returns). It reads the
labelled rows the demo exported from the simulated world to a parquet file, drops the rows of
the excluded (poisoned) windows, and fits the world's model type on the rest: zero-filled
features -> StandardScaler -> LogisticRegression, on the train rows of the world's own split,
so the model MLflow registers is exactly the one the world's own retrain would fit.
"""

from __future__ import annotations

from typing import Any

#: Columns of the exported frame that are not features.
LABEL, TIME, HOLDOUT = "label", "t", "holdout"


def fit(request: Any) -> Any:
    """Fit on ``request.params['data']`` within ``request.window`` minus ``request.exclude``.

    Args:
        request: the :class:`tools.mlflow.TrainingRequest` of this retrain.

    Returns:
        A :class:`tools.mlflow.TrainedModel` with the fitted pipeline and its holdout.
    """
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from tools.mlflow import TrainedModel

    path = request.params["data"]
    frame = pd.read_parquet(path)
    lo = np.datetime64(request.window.start.replace(tzinfo=None), "ns")
    hi = np.datetime64(request.window.end.replace(tzinfo=None), "ns")
    rows = frame[(frame[TIME] >= lo) & (frame[TIME] < hi)]
    dropped = request.excluded(rows[TIME])
    rows = rows[~dropped]
    features = [c for c in rows.columns if c not in (LABEL, TIME, HOLDOUT)]
    # The feature pipeline fills missing values with 0 before the model sees them (the world's
    # models do the same). It happens here, not in a SimpleImputer step, because MLflow's
    # default (skops) serialization refuses SimpleImputer's fitted dtype.
    x = rows[features].fillna(0.0)
    y = rows[LABEL].astype(int)
    hold = rows[HOLDOUT].to_numpy(dtype=bool)
    if len(np.unique(y[~hold])) < 2:
        raise ValueError(
            f"every labelled row of {str(path)!r} in the window has the same label; "
            "a classifier cannot be fitted: widen the window"
        )
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(solver="liblinear"))
    pipeline.fit(x[~hold], y[~hold])
    holdout = x[hold].reset_index(drop=True)
    holdout[LABEL] = y[hold].to_numpy()
    return TrainedModel(
        estimator=pipeline,
        holdout=holdout,
        target=LABEL,
        rows_used=int((~hold).sum()),
        rows_excluded=int(dropped.sum()),
        data_ref=str(path),
        params={"model_type": "StandardScaler+LogisticRegression(liblinear)", "fill_value": 0},
    )
