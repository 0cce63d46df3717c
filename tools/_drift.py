"""Drift and data-quality checks of one model's inputs: Evidently plus plain pandas.

Shared by every drift adapter (simulated world, files, MLflow artifacts): they fetch the
reference and current frames, this module turns them into a :class:`DriftReport`.

Evidently decides drift: a ``Report`` with ``DriftedColumnsCount`` gives the dataset-level verdict
(share of drifted columns), and Evidently's own test selection (``get_stattest``, the function
its drift presets call) gives each column's method, threshold and score. We do not run the
``DataDriftPreset`` itself because it renders Plotly widgets for every column, which costs
~300 ms a report and which nobody here looks at; the numbers are the same.

The data-quality half (nulls, dtypes, range, scale, schema) is what tells a broken pipeline
from a changed world, and Evidently's drift tests alone cannot: a column multiplied by 1000 and
a genuinely shifted column both "drift".

Importance-aware drift. A shift in a feature the model ignores costs nothing; a shift in the
feature it rests on most can cost everything. Each report therefore carries the model's feature
importances and a *weighted drift share*::

    weighted_drift_share = sum(importance_i * drifted_i) / sum(importance_i)

over the features Evidently could test. Importances come from the registry when they were logged
with the model, else from :func:`permutation_importances`, computed once per model version on its
reference (training) data: the drop in agreement with the model's own predictions when one
feature's values are shuffled (scikit-learn's ``permutation_importance``). Using the model's own
predictions as the target needs no labels, so it works on any reference sample; it measures how
much the *model* relies on a feature, which is what decides whether drift in it moves the
outputs. With no importances at all every feature weighs the same ("uniform"), and the weighted
share equals the plain one.

Prediction drift is Evidently's test on the model's output column against the reference outputs:
a label-free signal that the shift reaches what the model decides.

Evidently, pandas and scikit-learn are imported inside the functions, so importing this module
is cheap.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from supervisor import BackendError
from supervisor.stats import holm_reject

from ._ports import DriftReport, FeatureDrift, FeatureQuality, ImportanceSource

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DRIFT_SHARE_THRESHOLD",
    "PREDICTION_STATTEST",
    "SeasonalReference",
    "compute_drift",
    "family_drifted",
    "normalise_importances",
    "permutation_importances",
    "weighted_share",
]

#: Evidently's default: the dataset drifts when at least this share of columns drift.
DRIFT_SHARE_THRESHOLD = 0.5

#: Evidently's test for the model's output column: normed Wasserstein distance (effect size).
PREDICTION_STATTEST = "wasserstein"


@contextmanager
def _quiet() -> Iterator[None]:
    # Evidently (and litestar, which it imports for its UI) emit deprecation and runtime
    # warnings attributed to their own modules; with pytest's warnings-as-errors they would
    # fail callers that did nothing wrong.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def compute_drift(
    model: str,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    window_start: datetime,
    window_end: datetime,
    prediction_column: str | None = None,
    importances: dict[str, float] | None = None,
    importance_source: ImportanceSource = "uniform",
) -> DriftReport:
    """Compare ``current`` inputs with ``reference`` inputs of ``model``.

    Args:
        model: Name of the model the inputs belong to (copied into the report).
        reference: Reference inputs, usually a sample of the training data.
        current: Inputs observed in ``[window_start, window_end)``.
        window_start: Start of the current window.
        window_end: End of the current window.
        prediction_column: Column holding the model's output score, present in both frames;
            it is tested as prediction drift and kept out of the feature drift share.
        importances: Feature -> importance (any non-negative scale); None or empty: uniform.
        importance_source: Where ``importances`` came from, copied into the report.

    Returns:
        Per-feature drift (Evidently's test, threshold, score), drift share, dataset drift,
        per-feature data quality and the columns missing from or new in ``current``.

    Raises:
        BackendError: when either frame is empty or they share no numeric feature column.
    """
    import numpy as np
    import pandas as pd

    if reference.empty or current.empty:
        raise BackendError(
            f"cannot compute drift for model {model!r}: the "
            f"{'reference' if reference.empty else 'current'} frame has no rows "
            f"(reference {len(reference)} rows, current {len(current)} rows); "
            "check the window and the reference data source"
        )
    started = time.perf_counter()
    ref_cols = [c for c in reference.columns if c != prediction_column]
    cur_cols = [c for c in current.columns if c != prediction_column]
    missing = [c for c in ref_cols if c not in set(cur_cols)]
    new = [c for c in cur_cols if c not in set(ref_cols)]
    shared = [c for c in ref_cols if c in set(cur_cols)]
    numeric = [
        c
        for c in shared
        if pd.api.types.is_numeric_dtype(reference[c]) and pd.api.types.is_numeric_dtype(current[c])
    ]
    # Evidently rejects a column that is empty once nulls are dropped; such a column is
    # reported by the quality checks (null share 1.0) instead.
    testable = [c for c in numeric if reference[c].notna().any() and current[c].notna().any()]
    if not testable:
        raise BackendError(
            f"cannot compute drift for model {model!r}: reference and current share no numeric "
            f"column with data (reference columns {ref_cols!r}, current columns {cur_cols!r}); "
            "check that the current window logs the model's features"
        )

    quality = [_quality(c, reference, current, np, pd) for c in [*ref_cols, *new]]
    with _quiet():
        features, share, dataset_drift = _evidently_drift(reference, current, testable, pd)
        prediction_drift = None
        if (
            prediction_column is not None
            and prediction_column in reference.columns
            and prediction_column in current.columns
            and reference[prediction_column].notna().any()
            and current[prediction_column].notna().any()
        ):
            # The output is judged by effect size, not significance: Evidently's normed
            # Wasserstein distance (its own default for large samples, threshold 0.1 of the
            # reference outputs' standard deviation). A K-S p-value flags tiny, harmless output
            # moves on a few hundred rows about one window in twenty; an incident must rest on a
            # shift big enough to change decisions.
            prediction_drift = _column_drift(
                prediction_column,
                reference[prediction_column],
                current[prediction_column],
                stattest=PREDICTION_STATTEST,
            )

    return DriftReport(
        model=model,
        reference_rows=len(reference),
        current_rows=len(current),
        window_start=window_start,
        window_end=window_end,
        drift_share=share,
        dataset_drift=dataset_drift,
        features=features,
        quality=quality,
        missing_columns=missing,
        new_columns=new,
        prediction_drift=prediction_drift,
        compute_seconds=time.perf_counter() - started,
        importances=normalise_importances(importances or {}, ref_cols),
        importance_source=importance_source if importances else "uniform",
        weighted_drift_share=weighted_share(features, importances or {}),
    )


def normalise_importances(importances: dict[str, float], features: list[str]) -> dict[str, float]:
    """Importances of ``features`` scaled to sum to 1 (negatives, i.e. noise, count as 0).

    Empty when none is positive: nothing is known, and callers weigh features uniformly.
    """
    clipped = {f: max(float(importances.get(f, 0.0)), 0.0) for f in features}
    total = sum(clipped.values())
    if total <= 0:
        return {}
    return {f: round(v / total, 6) for f, v in clipped.items()}


def weighted_share(features: list[FeatureDrift], importances: dict[str, float]) -> float:
    """Importance-weighted share of drifted features among those tested.

    A feature without a known importance weighs 0 when some importances are known (it was not
    part of the model's inputs when they were measured); all weigh 1 when none is known.
    """
    if not features:
        return 0.0
    weights = {f.feature: max(float(importances.get(f.feature, 0.0)), 0.0) for f in features}
    if sum(weights.values()) <= 0:
        weights = {f.feature: 1.0 for f in features}
    total = sum(weights.values())
    drifted = family_drifted(features)
    return round(sum(weights[f.feature] for f in features if drifted[f.feature]) / total, 6)


def family_drifted(features: list[FeatureDrift]) -> dict[str, bool]:
    """Which features drifted once the p-value tests are corrected for testing them all.

    Evidently tests each column at p < 0.05, so among five clean columns at least one "drifts"
    in ~23% of windows, and a weighted share that trusts those verdicts jumps whenever the noise
    lands on an important feature. Holm's step-down correction (statsmodels) keeps the family's
    false-drift rate at 0.05 and still passes a real shift, whose p-value is ~0. Tests that
    score a distance rather than a p-value keep Evidently's verdict.
    """
    out = {f.feature: f.drifted for f in features}
    tested = [f for f in features if "p_value" in f.method]
    if tested:
        alpha = min(f.threshold for f in tested)
        reject = holm_reject([f.score for f in tested], alpha)
        out.update({f.feature: r for f, r in zip(tested, reject, strict=True)})
    return out


def permutation_importances(
    estimator: Any, reference: pd.DataFrame, *, seed: int = 0, repeats: int = 5
) -> dict[str, float]:
    """Permutation importance of each column of ``reference`` for ``estimator``, normalised.

    The target is the estimator's own predictions on the unshuffled rows, so no labels are
    needed: a feature scores the share of predictions that flip when it is shuffled.

    Args:
        estimator: A fitted scikit-learn classifier taking the columns of ``reference`` in order.
        reference: Reference (training) inputs, features only.
        seed: Seeds the shuffles, so the same model and data give the same importances.
        repeats: Shuffles per feature (scikit-learn's default is 5).

    Returns:
        Feature -> importance summing to 1, or empty when no feature matters at all.
    """
    import numpy as np
    from sklearn.inspection import permutation_importance

    x = reference.to_numpy(dtype=float)
    target = np.asarray(estimator.predict(x))
    result = permutation_importance(
        estimator, x, target, scoring="accuracy", n_repeats=repeats, random_state=seed
    )
    raw = {
        str(c): float(v) for c, v in zip(reference.columns, result.importances_mean, strict=True)
    }
    return normalise_importances(raw, [str(c) for c in reference.columns])


def _evidently_drift(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], pd: Any
) -> tuple[list[FeatureDrift], float, bool]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount

    definition = DataDefinition(numerical_columns=columns)
    ref = pd.DataFrame({c: reference[c].astype(float) for c in columns})
    cur = pd.DataFrame({c: current[c].astype(float) for c in columns})
    report = Report(
        [DriftedColumnsCount(columns=columns, drift_share=DRIFT_SHARE_THRESHOLD)],
        include_tests=False,
    )
    snapshot = report.run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    (result,) = snapshot.metric_results.values()
    share = float(result.share.value)
    features = [_column_drift(c, ref[c], cur[c]) for c in columns]
    return features, share, share >= DRIFT_SHARE_THRESHOLD


def _column_drift(
    name: str, reference: pd.Series, current: pd.Series, *, stattest: str | None = None
) -> FeatureDrift:
    """Evidently's test (its default, or ``stattest``) for one numeric column, cleaned the way
    Evidently cleans it."""
    import numpy as np
    from evidently.legacy.calculations.stattests import get_stattest

    ref = reference.astype(float).replace([np.inf, -np.inf], np.nan).dropna()
    cur = current.astype(float).replace([np.inf, -np.inf], np.nan).dropna()
    test = get_stattest(ref, cur, "num", stattest)
    out = test(ref, cur, "num", None)
    return FeatureDrift(
        feature=name,
        method=str(test.display_name),
        threshold=float(out.actual_threshold),
        score=float(out.drift_score),
        drifted=bool(out.drifted),
    )


def _quality(
    name: str, reference: pd.DataFrame, current: pd.DataFrame, np: Any, pd: Any
) -> FeatureQuality:
    # A column absent from one side is all-null there, with no dtype.
    ref = reference[name] if name in reference.columns else pd.Series([], dtype=object)
    cur = current[name] if name in current.columns else pd.Series([], dtype=object)
    out_of_range = 0.0
    scale: float | None = None
    if pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur):
        ref_ok = ref.dropna().astype(float)
        cur_ok = cur.dropna().astype(float)
        if len(ref_ok) and len(cur_ok):
            lo, hi = float(ref_ok.min()), float(ref_ok.max())
            out_of_range = float(((cur_ok < lo) | (cur_ok > hi)).mean())
            ref_median = float(np.median(np.abs(ref_ok.to_numpy())))
            if ref_median > 0:
                scale = float(np.median(np.abs(cur_ok.to_numpy()))) / ref_median
    return FeatureQuality(
        feature=name,
        null_share_reference=float(ref.isna().mean()) if name in reference.columns else 1.0,
        null_share_current=float(cur.isna().mean()) if name in current.columns else 1.0,
        dtype_reference=str(ref.dtype) if name in reference.columns else None,
        dtype_current=str(cur.dtype) if name in current.columns else None,
        out_of_range_share=out_of_range,
        scale_ratio=scale,
    )


# --------------------------------------------------------------------------- seasonality

#: A period is a whole number and a unit: minutes, hours, days or weeks.
_PERIOD = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 24 * 60, "w": 7 * 24 * 60}


class SeasonalReference(BaseModel):
    """Judge drift also against the same hours one cycle earlier (e.g. last week's).

    A shift that recurs every cycle (the weekend basket mix, the night-time traffic) is the
    model's normal world, not news: it shows against the training reference every cycle but not
    against the same period of the cycle before. Off unless configured per model.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    period: str = Field(
        description="Length of one cycle: a whole number and a unit, m (minutes), h (hours), "
        "d (days) or w (weeks), e.g. '7d' for a weekly pattern, '24h' for a daily one."
    )
    reference_window: Literal["same_hours"] = Field(
        default="same_hours",
        description="Which rows of the earlier cycle form the reference: 'same_hours', the "
        "current window shifted back by exactly one period (same weekday and hours for 7d).",
    )

    @field_validator("period")
    @classmethod
    def _duration(cls, value: str) -> str:
        match = _PERIOD.match(value)
        if match is None or int(match.group(1)) <= 0:
            raise ValueError(
                f"period {value!r} is not a positive duration; write a whole number and a unit "
                "(m, h, d or w), e.g. '7d' for the same hours last week or '24h' for yesterday's"
            )
        return f"{int(match.group(1))}{match.group(2)}"

    @property
    def period_minutes(self) -> int:
        """The period in minutes."""
        match = _PERIOD.match(self.period)
        assert match is not None  # validated above
        return int(match.group(1)) * _UNIT_MINUTES[match.group(2)]

    @property
    def delta(self) -> timedelta:
        """The period as a timedelta."""
        return timedelta(minutes=self.period_minutes)
