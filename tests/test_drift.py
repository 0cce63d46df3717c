"""compute_drift: Evidently drift plus the data-quality checks that separate defects from drift."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from supervisor import BackendError
from tools._drift import compute_drift

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
END = START + timedelta(minutes=30)


def _frame(seed: int, rows: int = 500, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = rng.normal(10.0, 2.0, size=(rows, 5))
    data[:, 0] += shift * 2.0
    return pd.DataFrame(data, columns=[f"f{i}" for i in range(5)])


def _drift(reference: pd.DataFrame, current: pd.DataFrame, **kw: object):  # type: ignore[no-untyped-def]
    return compute_drift("m", reference, current, window_start=START, window_end=END, **kw)  # type: ignore[arg-type]


def test_same_distribution_does_not_drift() -> None:
    report = _drift(_frame(1), _frame(2))
    assert report.drift_share == 0.0
    assert not report.dataset_drift
    assert [f.feature for f in report.features] == ["f0", "f1", "f2", "f3", "f4"]
    assert all(f.method == "K-S p_value" and f.threshold == 0.05 for f in report.features)
    assert report.reference_rows == report.current_rows == 500
    assert report.missing_columns == report.new_columns == []


def test_shifted_feature_drifts_with_its_score() -> None:
    report = _drift(_frame(1), _frame(2, shift=1.0))
    by_name = {f.feature: f for f in report.features}
    assert by_name["f0"].drifted and by_name["f0"].score < 1e-10
    assert not by_name["f1"].drifted
    assert report.drift_share == pytest.approx(0.2)
    assert not report.dataset_drift
    assert 0 < report.compute_seconds < 5


def test_dataset_drift_when_half_the_features_drift() -> None:
    current = _frame(2)
    for c in ("f0", "f1", "f2"):
        current[c] += 3.0
    report = _drift(_frame(1), current)
    assert report.drift_share == pytest.approx(0.6)
    assert report.dataset_drift


def test_quality_catches_unit_change_nulls_and_schema() -> None:
    current = _frame(2)
    current["f0"] *= 1000
    current.loc[:449, "f1"] = np.nan
    current = current.rename(columns={"f2": "f2_renamed"})
    report = _drift(_frame(1), current)
    quality = {q.feature: q for q in report.quality}
    assert quality["f0"].scale_ratio == pytest.approx(1000, rel=0.05)
    assert quality["f0"].out_of_range_share > 0.99
    assert quality["f1"].null_share_current == pytest.approx(0.9)
    assert quality["f1"].null_share_reference == 0.0
    assert report.missing_columns == ["f2"]
    assert report.new_columns == ["f2_renamed"]
    assert quality["f2"].dtype_current is None and quality["f2"].null_share_current == 1.0
    assert quality["f2_renamed"].dtype_reference is None
    # Evidently only sees the overlapping columns.
    assert "f2" not in {f.feature for f in report.features}


def test_dtype_change_is_reported_and_kept_out_of_evidently() -> None:
    current = _frame(2)
    current["f3"] = current["f3"].map(lambda v: f"{v:.1f}")
    report = _drift(_frame(1), current)
    quality = {q.feature: q for q in report.quality}
    assert quality["f3"].dtype_reference == "float64"
    assert quality["f3"].dtype_current == "object"
    assert "f3" not in {f.feature for f in report.features}


def test_prediction_column_is_prediction_drift_not_a_feature() -> None:
    reference, current = _frame(1), _frame(2)
    reference["score"] = np.random.default_rng(3).uniform(0, 1, 500)
    current["score"] = np.random.default_rng(4).uniform(0.5, 1, 500)
    report = _drift(reference, current, prediction_column="score")
    assert report.prediction_drift is not None and report.prediction_drift.drifted
    assert "score" not in {f.feature for f in report.features}
    assert report.drift_share == 0.0


def test_all_null_column_is_left_to_the_quality_checks() -> None:
    current = _frame(2)
    current["f4"] = np.nan
    report = _drift(_frame(1), current)
    assert "f4" not in {f.feature for f in report.features}
    assert {q.feature: q for q in report.quality}["f4"].null_share_current == 1.0


@pytest.mark.parametrize("which", ["reference", "current"])
def test_empty_frame_is_a_backend_error(which: str) -> None:
    frames = {"reference": _frame(1), "current": _frame(2)}
    frames[which] = frames[which].iloc[0:0]
    with pytest.raises(BackendError, match=which):
        _drift(frames["reference"], frames["current"])


def test_no_overlapping_columns_is_a_backend_error() -> None:
    current = _frame(2).add_prefix("x_")
    with pytest.raises(BackendError, match="share no numeric column"):
        _drift(_frame(1), current)


def test_importing_the_module_does_not_import_evidently() -> None:
    code = "import sys, tools._drift; assert 'evidently' not in sys.modules, 'evidently imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
