"""Where a training request runs: a local subprocess (here) or a Kubernetes Job (``_kubejob``).

Both run the same harness, ``python -m tools.mlflow.worker``, with the request in
``MLOPS_SUPERVISOR_TRAIN_REQUEST``; the verdict travels back through the MLflow run's tags,
so a runner only has to say whether the attempt finished.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from supervisor import ActionError

from ._config import MlflowConnection
from ._training import REQUEST_ENV, TrainingRequest

_LOG_TAIL = 2000


@runtime_checkable
class TrainingRunner(Protocol):
    """Runs one training request to completion somewhere (a subprocess, a Kubernetes Job)."""

    def run(self, request: TrainingRequest, connection: MlflowConnection) -> str:
        """Run ``request`` to completion; return a short description of where it ran.

        Raises ActionError when the attempt failed or timed out.
        """
        ...


def worker_env(request: TrainingRequest, connection: MlflowConnection) -> dict[str, str]:
    """The environment variables the worker needs."""
    return {
        REQUEST_ENV: request.model_dump_json(),
        "MLFLOW_TRACKING_URI": connection.tracking_uri,
        "MLFLOW_REGISTRY_URI": connection.registry,
    }


class LocalRunner:
    """Runs the worker as a subprocess of the supervisor, bounded by ``timeout_s``.

    ``pythonpath`` is prepended to ``PYTHONPATH`` so the entry point's module can be found;
    ``env`` adds variables (never secrets of the supervisor: the child gets only these, the
    worker's and the parent's ``PATH``/``HOME``/``PYTHONPATH``).
    """

    def __init__(
        self,
        *,
        python: str = sys.executable,
        timeout_s: float = 900.0,
        pythonpath: list[str] | None = None,
        env: dict[str, str] | None = None,
        log_dir: str | Path | None = None,
    ) -> None:
        self.python = python
        self.timeout_s = timeout_s
        self.pythonpath = list(pythonpath or [])
        self.env = dict(env or {})
        self.log_dir = Path(log_dir) if log_dir else None

    def run(self, request: TrainingRequest, connection: MlflowConnection) -> str:
        """Run the worker; ActionError with the tail of its log if it fails or times out."""
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        paths = [*self.pythonpath, os.environ.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        env.update(self.env)
        env.update(worker_env(request, connection))
        log_dir = self.log_dir or Path(tempfile.gettempdir())
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"retrain-{request.run_id}.log"
        with log_path.open("wb") as log_file:
            try:
                proc = subprocess.run(
                    [self.python, "-m", "tools.mlflow.worker"],
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    timeout=self.timeout_s,
                    check=False,
                )
            except subprocess.TimeoutExpired as err:
                raise ActionError(
                    f"mlflow: training {request.entry_point!r} for {request.model!r} did not "
                    f"finish within {self.timeout_s:g} s and was killed (run {request.run_id}, "
                    f"log {str(log_path)!r}); raise the runner's timeout_s or train on less"
                ) from err
        if proc.returncode != 0:
            tail = log_path.read_text(errors="replace")[-_LOG_TAIL:]
            raise ActionError(
                f"mlflow: training {request.entry_point!r} for {request.model!r} exited with "
                f"{proc.returncode} (run {request.run_id}, log {str(log_path)!r}); "
                f"fix the entry point; its log ends:\n{tail}"
            )
        return f"subprocess (log {log_path})"


class InProcessRunner:
    """Runs the harness in this process: no subprocess, no second MLflow import (~5 s less
    per retrain on a local store). It points MLflow's process-wide tracking and registry URIs
    at ``connection``, so use it where the process has one store: the demo, the evals.
    """

    def __init__(self, *, pythonpath: list[str] | None = None) -> None:
        self.pythonpath = list(pythonpath or [])

    def run(self, request: TrainingRequest, connection: MlflowConnection) -> str:
        """Run the harness; ActionError naming the entry point if it raises."""
        import mlflow

        from ._training import run_training

        for path in self.pythonpath:
            if path not in sys.path:
                sys.path.insert(0, path)
        mlflow.set_tracking_uri(connection.tracking_uri)
        mlflow.set_registry_uri(connection.registry)
        try:
            run_training(request)
        except Exception as err:  # the user's code: any failure is a failed attempt
            raise ActionError(
                f"mlflow: training {request.entry_point!r} for {request.model!r} failed "
                f"(run {request.run_id}): {type(err).__name__}: {err}; fix the entry point"
            ) from err
        return "in process"
