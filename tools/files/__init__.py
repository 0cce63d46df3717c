"""File drift adapter: the drift port over a reference file and a directory of inference logs.

Each model has a reference window (a Parquet or CSV file or directory, a ``file://`` URL, or an
MLflow artifact URI when mlflow is installed) and a directory of inference logs, one row per
prediction with a timestamp column. A report compares the reference with the log rows in
``[end - window, end)`` through :func:`tools._drift.compute_drift`, the same Evidently
computation the simulated world uses.

Typical use::

    drift = FileDriftAdapter(
        {"churn": FileDriftSource(reference="file:///data/churn/ref.parquet",
                                  current="/data/churn/inference/")},
        FileDriftConfig(timestamp_column="ts", prediction_column="score"),
        clock=clock,
    )
    report = drift.report("churn", window=timedelta(hours=1))  # None: no rows in the window

pandas, pyarrow and Evidently are imported on the first report, not with this package.
"""

from ._adapter import LOGGER_NAME, FileDriftAdapter
from ._config import FileDriftConfig, FileDriftSource

__all__ = ["LOGGER_NAME", "FileDriftAdapter", "FileDriftConfig", "FileDriftSource"]
