"""Where the MLflow store is and how patiently to talk to it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class MlflowConnection(BaseModel):
    """An MLflow tracking server (``http://...``) or a local store (``sqlite:///...``).

    The same adapters work on both: a server for production, a sqlite file plus a local
    artifact directory for the demo (no server needed; ``mlflow ui --backend-store-uri`` opens
    it afterwards).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str = Field(description="e.g. http://mlflow:5000 or sqlite:////abs/mlflow.db")
    registry_uri: str | None = Field(
        default=None, description="Model registry URI; None means the tracking URI."
    )
    experiment: str = Field(
        default="mlops-supervisor-retrain", description="Experiment retrain runs are logged to."
    )
    artifact_location: str | None = Field(
        default=None,
        description="Artifact root for the experiment when the adapter creates it "
        "(a local directory for a sqlite store; None: the server's default).",
    )
    timeout_s: float = Field(default=10.0, gt=0, description="Per-request HTTP timeout.")
    max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of connection errors, timeouts and 5xx answers (MLflow's client "
        "retries them itself, with exponential backoff).",
    )
    backoff_factor: int = Field(
        default=1, ge=0, description="Backoff between retries: factor * 2**(retry - 1) s."
    )

    @property
    def registry(self) -> str:
        """The registry URI actually used."""
        return self.registry_uri or self.tracking_uri

    @property
    def is_server(self) -> bool:
        """True when the store is reached over HTTP (errors are then network errors)."""
        return self.tracking_uri.startswith(("http://", "https://"))

    @classmethod
    def local(cls, directory: str | Path, **kwargs: object) -> MlflowConnection:
        """A local store in ``directory``: ``mlflow.db`` (sqlite) and ``artifacts/``."""
        root = Path(directory).resolve()
        root.mkdir(parents=True, exist_ok=True)
        (root / "artifacts").mkdir(exist_ok=True)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        return cls.model_validate(
            {"tracking_uri": uri, "artifact_location": str(root / "artifacts"), **kwargs}
        )
