"""``python -m tools.mlflow.worker``: run one training request (subprocess or Kubernetes Job).

The request is the JSON of :class:`tools.mlflow.TrainingRequest` in the environment variable
``MLOPS_SUPERVISOR_TRAIN_REQUEST``; MLflow is found through ``MLFLOW_TRACKING_URI`` (and
``MLFLOW_REGISTRY_URI``). Exit status 0 means the run holds a logged, evaluated model and its
``validation_status`` tag; anything else is a failed attempt the supervisor may retry.
"""

from __future__ import annotations

import os
import sys
import time

from ._training import REQUEST_ENV

__all__ = ["REQUEST_ENV", "main"]


def main() -> int:
    """Run the request in the environment; print the verdict; return the exit status."""
    t0 = time.perf_counter()
    from ._training import TrainingRequest, run_training

    raw = os.environ.get(REQUEST_ENV)
    if not raw:
        print(f"worker: {REQUEST_ENV} is not set", file=sys.stderr)
        return 2
    request = TrainingRequest.model_validate_json(raw)
    print(f"worker: started in {time.perf_counter() - t0:.2f} s", flush=True)
    tags = run_training(request)
    print(f"worker: run {request.run_id} done in {time.perf_counter() - t0:.2f} s: {tags}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
