"""Retraining as a Kubernetes Job rendered from the team's own template.

The template is a ``batch/v1`` Job manifest (YAML or a dict) whose string values may hold
``${placeholders}``; they are substituted after parsing, so a value can never change the
manifest's structure. Placeholders:

``${job_name}`` ``${model}`` ``${run_id}`` ``${idempotency_key}`` ``${entry_point}``
``${window_start}`` ``${window_end}`` ``${tracking_uri}`` ``${registry_uri}``
``${request_json}`` (what ``python -m tools.mlflow.worker`` reads from
``MLOPS_SUPERVISOR_TRAIN_REQUEST``).

The Job's name is derived from the idempotency key, so submitting twice creates one Job
(409 AlreadyExists is taken as "already submitted", and the runner waits for it).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

import yaml

from supervisor import ActionError, Clock, ConfigError, SystemClock

from ._config import MlflowConnection
from ._runners import worker_env
from ._training import REQUEST_ENV, TrainingRequest

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

KEY_LABEL = "mlops-supervisor/idempotency-key-hash"
MODEL_LABEL = "mlops-supervisor/model"


def job_name(model: str, idempotency_key: str) -> str:
    """A DNS-1123 Job name, stable for one (model, key)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")[:40] or "model"
    digest = hashlib.sha256(f"{model}/{idempotency_key}".encode()).hexdigest()[:10]
    return f"retrain-{slug}-{digest}"


def render_job(
    template: dict[str, Any] | str | Path,
    request: TrainingRequest,
    connection: MlflowConnection,
    *,
    namespace: str | None = None,
) -> dict[str, Any]:
    """The Job manifest for ``request``: ``template`` with its placeholders filled in."""
    doc = _load(template)
    if doc.get("apiVersion") != "batch/v1" or doc.get("kind") != "Job":
        raise ConfigError(
            f"mlflow: the retrain template must be a batch/v1 Job, not "
            f"{doc.get('apiVersion')!r} {doc.get('kind')!r}"
        )
    name = job_name(request.model, request.idempotency_key)
    env = worker_env(request, connection)
    values = {
        "job_name": name,
        "model": request.model,
        "run_id": request.run_id,
        "idempotency_key": request.idempotency_key,
        "entry_point": request.entry_point,
        "window_start": request.window.start.isoformat(),
        "window_end": request.window.end.isoformat(),
        "tracking_uri": connection.tracking_uri,
        "registry_uri": connection.registry,
        "request_json": env[REQUEST_ENV],
    }
    job: dict[str, Any] = _fill(doc, values, path="")
    meta = job.setdefault("metadata", {})
    meta["name"] = name
    if namespace is not None:
        meta["namespace"] = namespace
    digest = name.rsplit("-", 1)[1]
    meta.setdefault("labels", {}).update({KEY_LABEL: digest, MODEL_LABEL: _label(request.model)})
    return job


class KubernetesJobRunner:
    """Submits the rendered Job with the ``kubernetes`` client and waits for it to finish.

    ``api_client`` is a configured ``kubernetes.client.ApiClient``; the Role needs ``create``
    and ``get`` on ``jobs.batch`` in ``namespace``. ``clock`` paces the polling, bounded by
    ``timeout_s``.
    """

    def __init__(
        self,
        template: dict[str, Any] | str | Path,
        *,
        namespace: str,
        api_client: ApiClient,
        timeout_s: float = 3600.0,
        poll_s: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self.template = _load(template)
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self._clock = clock or SystemClock()
        from kubernetes.client import BatchV1Api

        self._batch = BatchV1Api(api_client)

    def run(self, request: TrainingRequest, connection: MlflowConnection) -> str:
        """Create the Job (once per key) and wait until it succeeds; ActionError otherwise."""
        from kubernetes.client.exceptions import ApiException

        job = render_job(self.template, request, connection, namespace=self.namespace)
        name = job["metadata"]["name"]
        where = f"Job {self.namespace}/{name}"
        try:
            self._batch.create_namespaced_job(self.namespace, job)
        except ApiException as err:
            if err.status != 409:  # 409: submitted before (a replay): wait for that one
                raise ActionError(
                    f"mlflow: creating {where} for {request.model!r} failed with "
                    f"{err.status} {err.reason}: {str(err.body)[:300]}; check the template and "
                    "that the supervisor's Role may create jobs.batch"
                ) from err
        except OSError as err:
            raise ActionError(
                f"mlflow: the Kubernetes API is unreachable while creating {where}: {err}; "
                "whether the Job exists is unknown: retrying with the same key is safe"
            ) from err
        waited = 0.0
        while True:
            status = self._status(where)
            if status.get("succeeded"):
                return where
            failed = [
                c
                for c in status.get("conditions") or []
                if c.get("type") == "Failed" and c.get("status") == "True"
            ]
            if failed:
                reason = failed[0].get("message") or failed[0].get("reason") or "unknown reason"
                raise ActionError(
                    f"mlflow: {where} retraining {request.model!r} failed: {reason}; "
                    f"see `kubectl logs -n {self.namespace} job/{name}`"
                )
            if waited >= self.timeout_s:
                raise ActionError(
                    f"mlflow: {where} did not finish within {self.timeout_s:g} s; it is left "
                    "running: check it and retry with the same key to pick up its result"
                )
            self._clock.sleep(self.poll_s)
            waited += self.poll_s

    def _status(self, where: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        name = where.rsplit("/", 1)[1]
        try:
            resp = self._batch.read_namespaced_job_status(
                name, self.namespace, _preload_content=False
            )
            body = json.loads(resp.data or b"{}")
        except ApiException as err:
            raise ActionError(
                f"mlflow: reading {where} failed with {err.status} {err.reason}; "
                "check the supervisor's Role (get on jobs.batch)"
            ) from err
        except OSError as err:
            raise ActionError(
                f"mlflow: the Kubernetes API is unreachable reading {where}: {err}"
            ) from err
        status = body.get("status") if isinstance(body, dict) else None
        return dict(status or {})


def _load(template: dict[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(template, dict):
        return copy.deepcopy(template)
    text = Path(template).read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ConfigError(f"mlflow: the retrain template {str(template)!r} is not a YAML mapping")
    return doc


def _fill(node: Any, values: dict[str, str], *, path: str) -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, values, path=f"{path}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, values, path=f"{path}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str):
        try:
            return Template(node).substitute(values)
        except (KeyError, ValueError) as err:
            raise ConfigError(
                f"mlflow: the retrain template has an unknown placeholder {err} at "
                f"{path.lstrip('.')!r}; known: {sorted(values)!r} (write $$ for a literal $)"
            ) from err
    return node


def _label(value: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:63].strip("-_.")
    return cleaned or "model"
