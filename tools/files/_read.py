"""Reading reference data and time windows of inference logs into pandas frames.

Every failure is a :class:`supervisor.BackendError` whose message names the path and what to
fix. pandas and pyarrow are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from supervisor import BackendError

if TYPE_CHECKING:
    import pandas as pd

#: URI schemes resolved through ``mlflow.artifacts.download_artifacts``.
MLFLOW_SCHEMES = frozenset({"runs", "models", "mlflow-artifacts"})


def is_mlflow_uri(uri: str) -> bool:
    """Whether ``uri`` names an MLflow artifact: ``runs:/``, ``models:/``, ``mlflow-artifacts:``."""
    return urlsplit(uri).scheme.lower() in MLFLOW_SCHEMES


def local_path(uri: str, *, what: str) -> Path:
    """The local path a plain path or ``file://`` URL names.

    Raises:
        BackendError: for any other scheme, or a ``file://`` URL with a remote host.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise BackendError(
                f"{what} {uri!r} names host {parts.netloc!r}; a file:// URL must be local: "
                "write file:///absolute/path (three slashes)"
            )
        return Path(url2pathname(unquote(parts.path)))
    # A one-letter "scheme" is a Windows drive letter, not a scheme.
    if scheme == "" or len(scheme) == 1:
        return Path(uri).expanduser()
    also = " or an MLflow artifact URI (runs:/, models:/)" if what == "reference" else ""
    raise BackendError(
        f"{what} {uri!r} has unsupported scheme {scheme!r}; use a local path, a file:// URL{also}"
    )


def download_mlflow(uri: str) -> Path:
    """Download an MLflow artifact (file or directory) and return its local path.

    Raises:
        BackendError: when mlflow is not installed or the download fails.
    """
    try:
        import mlflow.artifacts  # type: ignore[import-not-found, unused-ignore]
    except ImportError as err:
        raise BackendError(
            f"reference {uri!r} is an MLflow artifact URI but mlflow is not installed; "
            "run `pip install mlflow` (and set MLFLOW_TRACKING_URI), or point data.reference "
            "at a local file"
        ) from err
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as err:  # mlflow raises many types: all mean "could not fetch"
        raise BackendError(
            f"cannot download reference {uri!r} from MLflow: {err}; check the URI, "
            "MLFLOW_TRACKING_URI and that the run or model exists"
        ) from err


def _is_csv(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".csv", ".csv.gz"))


def list_files(directory: Path, globs: Iterable[str]) -> list[Path]:
    """Files under ``directory`` matching any of ``globs``, sorted by path (deterministic)."""
    found: set[Path] = set()
    for pattern in globs:
        found.update(p for p in directory.glob(pattern) if p.is_file())
    return sorted(found)


def fingerprint(paths: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime, size) of each file: changes when any file is rewritten."""
    out = []
    for p in paths:
        st = p.stat()
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


def read_file(path: Path, *, what: str, row_filter: RowFilter | None = None) -> pd.DataFrame:
    """Read one Parquet or CSV file, whole or only the rows ``row_filter`` may keep.

    Raises:
        BackendError: when the file is missing, empty (no bytes) or unreadable.
    """
    import pandas as pd

    if not path.is_file():
        raise BackendError(
            f"{what} file {str(path)!r} does not exist; check the path in the model's data "
            "config and that the file was written"
        )
    if path.stat().st_size == 0:
        raise BackendError(f"{what} file {str(path)!r} is empty (0 bytes); rewrite it or remove it")
    kind = "CSV" if _is_csv(path) else "Parquet"
    try:
        if kind == "CSV":
            return pd.read_csv(path)
        return _read_parquet(path, row_filter)
    except Exception as err:  # pandas/pyarrow raise many types: all mean "unreadable"
        raise BackendError(
            f"cannot read {what} file {str(path)!r} as {kind}: {type(err).__name__}: {err}; "
            f"check that it is a valid {kind} file (CSV files must end in .csv or .csv.gz)"
        ) from err


@dataclass(frozen=True)
class RowFilter:
    """Rows with ``start <= column < end``; used to push the window down into Parquet reads."""

    column: str
    start: datetime
    end: datetime


def _read_parquet(path: Path, row_filter: RowFilter | None) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if row_filter is not None:
        schema = pq.read_schema(path)
        idx = schema.get_field_index(row_filter.column)
        if idx >= 0 and pa.types.is_timestamp(schema.field(idx).type):
            # Row-group statistics let pyarrow skip data outside the window; the caller still
            # filters the frame itself, so this is only ever an optimisation.
            tz = schema.field(idx).type.tz
            lo, hi = row_filter.start.astimezone(UTC), row_filter.end.astimezone(UTC)
            if tz is None:
                lo, hi = lo.replace(tzinfo=None), hi.replace(tzinfo=None)
            table = pq.read_table(
                path, filters=[(row_filter.column, ">=", lo), (row_filter.column, "<", hi)]
            )
            return table.to_pandas()
    return pq.read_table(path).to_pandas()


def parse_times(frame: pd.DataFrame, column: str, unit: str, *, path: Path) -> pd.Series:
    """The timestamp column as UTC datetimes; unparseable values become NaT.

    Raises:
        BackendError: when the column is missing, or no value of a non-empty file parses.
    """
    import pandas as pd

    if column not in frame.columns:
        raise BackendError(
            f"inference log {str(path)!r} has no timestamp column {column!r} "
            f"(columns {list(frame.columns)!r}); set timestamp_column in the drift files config"
        )
    raw = frame[column]
    if pd.api.types.is_datetime64_any_dtype(raw):
        times = raw.dt.tz_localize(UTC) if raw.dt.tz is None else raw.dt.tz_convert(UTC)
    elif pd.api.types.is_numeric_dtype(raw):
        times = pd.to_datetime(raw, unit=unit, utc=True, errors="coerce")
    else:
        times = pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601")
    if len(times) and times.isna().all():
        raise BackendError(
            f"timestamp column {column!r} of {str(path)!r} holds no parseable time "
            f"(first value {raw.iloc[0]!r}); write ISO 8601 times or epoch numbers and set "
            "timestamp_unit"
        )
    return times


def sample(frame: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """At most ``max_rows`` rows, chosen deterministically, in their original order."""
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=max_rows, random_state=0).sort_index().reset_index(drop=True)


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames stacked, columns in order of first appearance (absent cells are null)."""
    import pandas as pd

    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True, sort=False)


def align_numeric(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    """Give int and float columns of the same feature the float dtype, in place.

    CSV type inference and pandas' null handling (an int column with one null becomes float)
    turn the same feature into int64 on one side and float64 on the other; that is not the
    upstream schema change the dtype check is there to catch. A change of kind (number to
    string, bool to number) is left alone and reported.
    """
    import pandas as pd

    def numeric(s: Any) -> bool:
        return bool(pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))

    for name in set(reference.columns) & set(current.columns):
        ref, cur = reference[name], current[name]
        if numeric(ref) and numeric(cur) and ref.dtype != cur.dtype:
            reference[name] = ref.astype("float64")
            current[name] = cur.astype("float64")


def drop_columns(frame: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """``frame`` without the named columns that it has."""
    present = [n for n in names if n in frame.columns]
    return frame.drop(columns=present) if present else frame
