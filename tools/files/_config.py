"""Configuration of the file drift adapter: where each model's data lives and how to read it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileDriftSource(_Strict):
    """Where one model's reference and current data live (``WatchedModel.data`` in the config)."""

    reference: str = Field(
        min_length=1,
        description="Reference window: a Parquet or CSV file (or a directory of them), as a "
        "local path, a file:// URL, or an MLflow artifact URI (runs:/, mlflow-artifacts:, "
        "models:/; needs mlflow installed).",
    )
    current: str = Field(
        min_length=1,
        description="Directory of inference logs (Parquet or CSV), as a local path or file:// "
        "URL; rows are selected by their timestamp column.",
    )


class FileDriftConfig(_Strict):
    """How the file drift adapter reads inference logs and reference data."""

    timestamp_column: str = Field(
        default="timestamp",
        min_length=1,
        description="Column of the inference logs holding each row's time; naive times are UTC.",
    )
    timestamp_unit: Literal["s", "ms", "us", "ns"] = Field(
        default="s", description="Unit of a numeric (epoch) timestamp column."
    )
    prediction_column: str | None = Field(
        default="prediction",
        description="Column holding the model's output score, tested as prediction drift and "
        "kept out of the feature drift share; None if the logs carry no prediction.",
    )
    exclude_columns: tuple[str, ...] = Field(
        default=(),
        description="Columns that are not model inputs (request ids, labels...), ignored on both "
        "sides.",
    )
    max_rows: int = Field(
        default=5_000,
        ge=100,
        description="Rows kept from each side, sampled deterministically, so a report stays fast "
        "(5,000 rows of a few features: ~0.3 s; 20,000: ~1 s). Evidently picks its test by "
        "size: K-S / chi-squared up to 1000 rows, Wasserstein / Jensen-Shannon above.",
    )
    file_globs: tuple[str, ...] = Field(
        default=("*.parquet", "*.csv"),
        min_length=1,
        description="Glob patterns (relative to the directory; '**/' recurses) selecting the "
        "log files; a file ending in .csv or .csv.gz is read as CSV, anything else as Parquet.",
    )

    @field_validator("file_globs")
    @classmethod
    def _relative(cls, globs: tuple[str, ...]) -> tuple[str, ...]:
        for g in globs:
            if not g or g.startswith("/"):
                raise ValueError(f"file glob {g!r} must be a non-empty relative pattern")
        return globs
