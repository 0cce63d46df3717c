"""FileDriftAdapter: real Parquet and CSV files, windows selected by time, drift and data quality,
and every bad input as a BackendError or None, also as the get_drift_report tool sees it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tools.files
from supervisor import BackendError, SimClock
from supervisor.domain import ToolStatus
from tools import DriftReport, read_only
from tools._catalog import default_registry
from tools._toolkit import ToolContext
from tools.files import LOGGER_NAME, FileDriftAdapter, FileDriftConfig, FileDriftSource
from tools.sim import build_world, demo_world_spec

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
ROWS_PER_HOUR = 240  # one row every 15 s
FEATURES = ["f0", "f1", "f2", "f3"]
#: A reference sample with no chance drift against the unshifted logs (K-S p > 0.06 throughout).
REF_SEED = 60


def _rows(seed: int, start: datetime, n: int = ROWS_PER_HOUR, shift: float = 0.0) -> pd.DataFrame:
    """``n`` log rows evenly spread over the hour after ``start``; f0 shifted by ``shift`` sd."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(10.0, 2.0, size=(n, len(FEATURES))), columns=FEATURES)
    frame["f0"] += shift * 2.0
    frame["prediction"] = rng.uniform(0, 1, n)
    frame.insert(0, "timestamp", pd.date_range(start, periods=n, freq=HOUR / n))
    return frame


def _write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A reference (Parquet) and four hourly log files from 08:00, f0 shifted from 10:00.

    Two logs are Parquet (tz-aware timestamps), two CSV (ISO strings). The 11:00 file's name
    claims the wrong hour: rows are selected by their column, never by file names.
    """
    ref = _rows(REF_SEED, T0 - 24 * HOUR, n=600).drop(columns="timestamp")
    _write(ref, tmp_path / "ref.parquet")
    logs = tmp_path / "logs"
    _write(_rows(10, T0), logs / "2026-01-05T08.parquet")
    _write(_rows(11, T0 + HOUR), logs / "2026-01-05T09.csv")
    _write(_rows(12, T0 + 2 * HOUR, shift=1.5), logs / "2026-01-05T10.parquet")
    _write(_rows(13, T0 + 3 * HOUR, shift=1.5), logs / "2026-01-05T03.csv")
    return tmp_path


def _adapter(root: Path, **config: object) -> FileDriftAdapter:
    source = FileDriftSource(reference=str(root / "ref.parquet"), current=str(root / "logs"))
    return FileDriftAdapter(
        {"m": source}, FileDriftConfig.model_validate(config), clock=SimClock(T0 + 4 * HOUR)
    )


def _report(adapter: FileDriftAdapter, start: datetime, end: datetime) -> DriftReport:
    report = adapter.report("m", window=end - start, end=end)
    assert report is not None
    return report


# --------------------------------------------------------------------------- windows and drift


def test_window_selects_rows_by_their_timestamp_across_parquet_and_csv(data: Path) -> None:
    adapter = _adapter(data)
    report = _report(adapter, T0 + 1.5 * HOUR, T0 + 2.5 * HOUR)
    # Half of 09:00 (CSV) and half of 10:00 (Parquet): [start, end) keeps exactly 240 rows.
    assert report.current_rows == ROWS_PER_HOUR
    assert report.window_start == T0 + 1.5 * HOUR and report.window_end == T0 + 2.5 * HOUR
    assert report.reference_rows == 600
    # The misnamed file holds 11:00-12:00 rows; a window there finds them.
    late = _report(adapter, T0 + 3 * HOUR, T0 + 4 * HOUR)
    assert late.current_rows == ROWS_PER_HOUR
    # The window end defaults to the clock's now (12:00), so this is the same window.
    default_end = adapter.report("m", window=HOUR)
    assert default_end is not None and default_end.window_end == T0 + 4 * HOUR
    assert default_end.features == late.features


def test_unshifted_window_does_not_drift_and_reports_evidently_tests(data: Path) -> None:
    report = _report(_adapter(data), T0, T0 + HOUR)
    assert [f.feature for f in report.features] == FEATURES
    for f in report.features:
        # Evidently's choice for <= 1000 numeric values: two-sample K-S, p-value below 0.05.
        assert (f.method, f.threshold) == ("K-S p_value", 0.05)
        assert 0.05 <= f.score <= 1.0 and not f.drifted
    assert report.drift_share == 0.0 and not report.dataset_drift
    assert report.prediction_drift is not None and not report.prediction_drift.drifted
    assert report.missing_columns == report.new_columns == []


def test_shifted_feature_drifts_in_the_window_that_holds_it(data: Path) -> None:
    report = _report(_adapter(data), T0 + 2 * HOUR, T0 + 3 * HOUR)
    by_name = {f.feature: f for f in report.features}
    assert by_name["f0"].drifted and by_name["f0"].score < 1e-10
    assert not any(by_name[c].drifted for c in ("f1", "f2", "f3"))
    assert report.drift_share == pytest.approx(0.25)
    assert not report.dataset_drift
    # The prediction column is prediction drift, not a feature.
    assert "prediction" not in by_name


def test_numbers_match_evidently_data_drift_preset(data: Path) -> None:
    """compute_drift skips the preset's widgets, not its numbers: check on the files' data."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    adapter = _adapter(data, prediction_column=None, exclude_columns=["prediction"])
    report = _report(adapter, T0 + 2 * HOUR, T0 + 3 * HOUR)
    ref = pd.read_parquet(data / "ref.parquet")[FEATURES]
    cur = pd.read_parquet(data / "logs" / "2026-01-05T10.parquet")[FEATURES]
    definition = DataDefinition(numerical_columns=FEATURES)
    snapshot = Report([DataDriftPreset(columns=FEATURES)]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    preset = {}
    for metric in snapshot.dict()["metrics"]:
        name = metric["metric_name"]
        if name.startswith("ValueDrift("):
            column = name.split("column=")[1].split(",")[0]
            method = name.split("method=")[1].split(",threshold")[0]
            preset[column] = (method, metric["value"])
        elif name.startswith("DriftedColumnsCount("):
            preset_share = metric["value"]["share"]
    assert report.drift_share == pytest.approx(preset_share)
    for f in report.features:
        assert (f.method, f.score) == pytest.approx(preset[f.feature])


def test_rows_are_capped_by_a_deterministic_sample(data: Path) -> None:
    adapter = _adapter(data, max_rows=100)
    first = _report(adapter, T0, T0 + 2 * HOUR)
    assert first.current_rows == 100 and first.reference_rows == 100
    again = _report(_adapter(data, max_rows=100), T0, T0 + 2 * HOUR)
    assert again.features == first.features


def test_large_windows_use_evidently_distance_tests(data: Path) -> None:
    report = _report(_adapter(data), T0, T0 + 4 * HOUR)  # 960 current rows, 600 reference
    assert report.current_rows == 4 * ROWS_PER_HOUR
    big = _rows(2, T0, n=1500).drop(columns="timestamp")
    _write(big, data / "ref.parquet")
    report = _report(_adapter(data), T0, T0 + 4 * HOUR)
    f0 = next(f for f in report.features if f.feature == "f0")
    assert (f0.method, f0.threshold) == ("Wasserstein distance (normed)", 0.1)
    assert f0.drifted and f0.score > 0.1


def test_epoch_and_naive_timestamps(tmp_path: Path) -> None:
    _write(_rows(1, T0, n=600).drop(columns="timestamp"), tmp_path / "ref.csv")
    rows = _rows(2, T0)
    epoch = rows.assign(ts=rows["timestamp"].astype("int64") // 10**6).drop(columns="timestamp")
    _write(epoch, tmp_path / "logs" / "a.csv")
    naive = _rows(3, T0 + HOUR)
    naive["ts"] = naive.pop("timestamp").dt.tz_localize(None)
    _write(naive, tmp_path / "logs" / "b.parquet")
    adapter = FileDriftAdapter(
        {
            "m": FileDriftSource(
                reference=(tmp_path / "ref.csv").as_uri(), current=str(tmp_path / "logs")
            )
        },
        FileDriftConfig(timestamp_column="ts", timestamp_unit="ms"),
    )
    assert _report(adapter, T0, T0 + HOUR).current_rows == ROWS_PER_HOUR
    assert _report(adapter, T0 + HOUR, T0 + 2 * HOUR).current_rows == ROWS_PER_HOUR
    assert (
        _report(
            adapter, T0 + 30 * timedelta(minutes=1), T0 + 90 * timedelta(minutes=1)
        ).current_rows
        == ROWS_PER_HOUR
    )


def test_reference_is_cached_until_the_file_changes(data: Path) -> None:
    adapter = _adapter(data)
    before = _report(adapter, T0, T0 + HOUR)
    assert before.drift_share == 0.0
    ref = data / "ref.parquet"
    shifted = _rows(REF_SEED, T0, n=600, shift=3.0).drop(columns="timestamp")
    _write(shifted, ref)
    later = ref.stat().st_mtime_ns + 10**9
    os.utime(ref, ns=(later, later))
    after = _report(adapter, T0, T0 + HOUR)
    assert [f.feature for f in after.features if f.drifted] == ["f0"]


# --------------------------------------------------------------------------- data quality


def _current_with(data: Path, change: str) -> Path:
    """Replace the 08:00 log with one carrying an upstream defect."""
    frame = _rows(10, T0)
    if change == "null_spike":
        frame.loc[: int(ROWS_PER_HOUR * 0.8), "f1"] = np.nan
    elif change == "unit_change":
        frame["f0"] *= 1000
    elif change == "missing_column":
        frame = frame.drop(columns="f2")
    elif change == "new_column":
        frame["f9"] = 1.0
    elif change == "dtype_change":
        frame["f3"] = frame["f3"].map(lambda v: f"{v:.2f}")
    elif change == "out_of_range":
        frame.loc[:59, "f2"] = 100.0
    (data / "logs" / "2026-01-05T08.parquet").unlink()
    _write(frame, data / "logs" / "2026-01-05T08.parquet")
    return data


@pytest.mark.parametrize(
    ("change", "defect"),
    [
        ("null_spike", "null spike on 'f1'"),
        ("unit_change", "unit change on 'f0'"),
        ("missing_column", "missing column 'f2'"),
        ("new_column", "new column 'f9'"),
        ("dtype_change", "dtype change on 'f3': float64 -> object"),
    ],
)
def test_upstream_defects_are_reported_and_flagged_by_the_tool(
    data: Path, change: str, defect: str
) -> None:
    adapter = _adapter(_current_with(data, change))
    report = _report(adapter, T0, T0 + HOUR)
    q = {x.feature: x for x in report.quality}
    if change == "null_spike":
        assert q["f1"].null_share_reference == 0.0
        assert q["f1"].null_share_current == pytest.approx(193 / 240)
    elif change == "unit_change":
        assert q["f0"].scale_ratio == pytest.approx(1000, rel=0.1)
        assert q["f0"].out_of_range_share > 0.99
    elif change == "missing_column":
        assert report.missing_columns == ["f2"] and q["f2"].dtype_current is None
    elif change == "new_column":
        assert report.new_columns == ["f9"] and q["f9"].dtype_reference is None
    elif change == "dtype_change":
        assert (q["f3"].dtype_reference, q["f3"].dtype_current) == ("float64", "object")
        assert "f3" not in {f.feature for f in report.features}
    summary = _tool(adapter, T0 + HOUR)
    assert summary.status is ToolStatus.OK and summary.data is not None
    assert [d for d in summary.data["defects"] if d.startswith(defect)], summary.data["defects"]


def test_out_of_range_values_are_measured(data: Path) -> None:
    report = _report(_adapter(_current_with(data, "out_of_range")), T0, T0 + HOUR)
    q = {x.feature: x for x in report.quality}
    # 60 injected values, plus the few a 240-row sample puts past a 600-row range.
    assert q["f2"].out_of_range_share == pytest.approx(60 / 240, abs=0.03)
    assert q["f1"].out_of_range_share < 0.02


def test_int_and_float_columns_of_one_feature_are_no_dtype_change(tmp_path: Path) -> None:
    ref = _rows(1, T0, n=600).drop(columns="timestamp")
    _write(ref, tmp_path / "ref.parquet")
    cur = _rows(2, T0)
    cur["f0"] = cur["f0"].round().astype("int64")  # CSV infers int64 for whole numbers
    _write(cur, tmp_path / "logs" / "a.csv")
    report = _report(_adapter(tmp_path), T0, T0 + HOUR)
    assert {q.feature: q for q in report.quality}["f0"].dtype_current == "float64"
    assert "f0" in {f.feature for f in report.features}


# --------------------------------------------------------------------------- bad input


def test_empty_window_is_no_data_with_a_log_line(
    data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        assert _adapter(data).report("m", window=HOUR, end=T0) is None
    (line,) = [r for r in caplog.records if r.name == LOGGER_NAME]
    assert "no drift data for model 'm'" in line.getMessage() and "4 file(s)" in line.getMessage()


def test_empty_log_directory_is_no_data(data: Path) -> None:
    (data / "empty").mkdir()
    adapter = FileDriftAdapter(
        {"m": FileDriftSource(reference=str(data / "ref.parquet"), current=str(data / "empty"))}
    )
    assert adapter.report("m", window=HOUR, end=T0 + HOUR) is None


def _corrupt(data: Path, case: str) -> tuple[FileDriftAdapter, str]:
    ref, logs = data / "ref.parquet", data / "logs"
    source = {"reference": str(ref), "current": str(logs)}
    config: dict[str, object] = {}
    if case == "missing_reference":
        ref.unlink()
        expected = f"reference file '{ref}' does not exist; check data.reference"
    elif case == "empty_reference":
        ref.write_bytes(b"")
        expected = f"reference file '{ref}' is empty (0 bytes)"
    elif case == "header_only_reference":
        (data / "ref.csv").write_text("f0,f1,f2,f3\n")
        source["reference"] = str(data / "ref.csv")
        expected = "has no rows; write the reference window"
    elif case == "unreadable_log":
        (logs / "2026-01-05T09.parquet").write_bytes(b"not parquet at all")
        expected = f"cannot read inference log file '{logs / '2026-01-05T09.parquet'}' as Parquet"
    elif case == "empty_log":
        (logs / "zz.csv").write_bytes(b"")
        expected = f"inference log file '{logs / 'zz.csv'}' is empty (0 bytes)"
    elif case == "no_overlapping_columns":
        renamed = _rows(1, T0, n=600).drop(columns="timestamp").add_prefix("x_")
        _write(renamed, ref)
        expected = "share no numeric column"
    elif case == "missing_log_directory":
        source["current"] = str(data / "nowhere")
        expected = f"inference log directory '{data / 'nowhere'}' does not exist"
    elif case == "no_timestamp_column":
        config["timestamp_column"] = "ts"
        expected = "has no timestamp column 'ts'"
    elif case == "unsupported_scheme":
        source["current"] = "s3://bucket/logs"
        expected = "current 's3://bucket/logs' has unsupported scheme 's3'"
    elif case == "remote_file_url":
        source["reference"] = "file://otherhost/ref.parquet"
        expected = "a file:// URL must be local"
    adapter = FileDriftAdapter(
        {"m": FileDriftSource.model_validate(source)}, FileDriftConfig.model_validate(config)
    )
    return adapter, expected


BAD_INPUTS = [
    "missing_reference",
    "empty_reference",
    "header_only_reference",
    "unreadable_log",
    "empty_log",
    "no_overlapping_columns",
    "missing_log_directory",
    "no_timestamp_column",
    "unsupported_scheme",
    "remote_file_url",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_a_backend_error_with_one_log_line(
    data: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    adapter, expected = _corrupt(data, case)
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME), pytest.raises(BackendError) as err:
        adapter.report("m", window=HOUR, end=T0 + HOUR)
    assert expected in str(err.value)
    (line,) = [r for r in caplog.records if r.name == LOGGER_NAME]
    assert line.levelno == logging.WARNING
    assert line.getMessage() == f"drift check failed for model 'm': {err.value}"


def test_no_overlapping_columns_names_both_paths(data: Path) -> None:
    adapter, _ = _corrupt(data, "no_overlapping_columns")
    with pytest.raises(BackendError) as err:
        adapter.report("m", window=HOUR, end=T0 + HOUR)
    assert f"reference {str(data / 'ref.parquet')!r}" in str(err.value)
    assert f"current logs {str(data / 'logs')!r}" in str(err.value)


def test_unknown_model_is_a_backend_error(data: Path) -> None:
    with pytest.raises(BackendError, match=r"no drift data configured for model 'other'"):
        _adapter(data).report("other", window=HOUR)


def test_mlflow_reference_without_mlflow_says_to_install_it(data: Path) -> None:
    # A child interpreter where ``import mlflow`` fails, installed or not.
    code = (
        "import sys; sys.modules['mlflow'] = None\n"
        "from datetime import UTC, datetime, timedelta\n"
        "from supervisor import BackendError\n"
        "from tools.files import FileDriftAdapter, FileDriftSource\n"
        "src = FileDriftSource(reference='runs:/abc123/reference.parquet', current=sys.argv[1])\n"
        "try:\n"
        "    FileDriftAdapter({'m': src}).report('m', window=timedelta(hours=1),"
        " end=datetime(2026, 1, 5, tzinfo=UTC))\n"
        "except BackendError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(data)], check=True, capture_output=True, text=True
    )
    assert out.stdout.startswith(
        "reference 'runs:/abc123/reference.parquet' is an MLflow artifact URI but mlflow is not "
        "installed; run `pip install mlflow`"
    ), out


def test_config_forbids_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        FileDriftConfig.model_validate({"timestamp_col": "ts"})
    with pytest.raises(ValueError, match="relative pattern"):
        FileDriftConfig(file_globs=("/abs/*.csv",))


# --------------------------------------------------------------------------- through the tool


def _tool(adapter: FileDriftAdapter, now: datetime, window_minutes: int = 60):  # type: ignore[no-untyped-def]
    world = build_world(demo_world_spec())
    backends = read_only(metrics=world, alerts=world, drift=adapter, registry=world, deploy=world)
    ctx = ToolContext(backends=backends, clock=SimClock(now))
    return default_registry().call(
        ctx, "get_drift_report", {"model": "m", "window_minutes": window_minutes}, call_id="c1"
    )


def test_tool_reports_drift_from_files(data: Path) -> None:
    result = _tool(_adapter(data), T0 + 3 * HOUR)
    assert result.status is ToolStatus.OK and result.data is not None
    assert result.data["drifted_features"] == ["f0"]
    assert result.data["defects"] == []
    assert {t["feature"]: t["method"] for t in result.data["feature_tests"]}["f0"] == "K-S p_value"


def test_tool_turns_an_empty_window_into_no_data(data: Path) -> None:
    result = _tool(_adapter(data), T0)
    assert result.status is ToolStatus.NO_DATA


@pytest.mark.parametrize("case", ["missing_reference", "empty_log", "no_overlapping_columns"])
def test_tool_turns_bad_input_into_an_error_result(data: Path, case: str) -> None:
    adapter, expected = _corrupt(data, case)
    result = _tool(adapter, T0 + HOUR)
    assert result.status is ToolStatus.ERROR
    assert result.message is not None and expected in result.message


# --------------------------------------------------------------------------- packaging


def test_importing_the_package_does_not_import_pandas_pyarrow_or_evidently() -> None:
    code = (
        "import sys, tools.files\n"
        "heavy = sorted(m for m in sys.modules"
        " if m.split('.')[0] in {'pandas', 'pyarrow', 'evidently', 'mlflow', 'numpy'})\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_exports_are_curated() -> None:
    assert len(set(tools.files.__all__)) == len(tools.files.__all__)
    public = {n for n in vars(tools.files) if not n.startswith("_") and n != "annotations"}
    assert public == set(tools.files.__all__)
