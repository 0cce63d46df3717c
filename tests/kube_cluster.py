"""Fixtures for the Kubernetes adapter tests: an API emulator enforcing the shipped Role and
validating every stored object against its official schema, a kubeconfig pointing at it, and
builders of the InferenceService and Deployment objects KServe and kubectl would hold.

Import the fixture in a test module with ``from kube_cluster import cluster_fixture``
(it is registered under the name ``cluster``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_emulator import KubeEmulator
from kube_schemas import validate_core, validate_isvc

from supervisor import SimClock
from tools.kubernetes import (
    DEFAULT_VERSION_ANNOTATION,
    DeploymentTarget,
    KServeTarget,
    KubernetesConfig,
    KubernetesConnection,
    KubernetesDeploy,
)

ROOT = Path(__file__).resolve().parent.parent
RBAC = ROOT / "deploy" / "rbac" / "supervisor-rbac.yaml"
NS = "ml-serving"
KSERVE = "serving.kserve.io"
URI = "s3://models/fraud/{version}"
STABLE_KEY = "mlops-supervisor.io/stable-version"
STABLE_URI_KEY = "mlops-supervisor.io/stable-storage-uri"
CANARY_KEY = "mlops-supervisor.io/canary-version"


def rbac_documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(RBAC.read_text(encoding="utf-8")) if d]


def role_rules() -> list[dict[str, Any]]:
    role = next(d for d in rbac_documents() if d["kind"] == "Role")
    rules: list[dict[str, Any]] = role["rules"]
    return rules


# --------------------------------------------------------------------------- object builders


def isvc(
    name: str = "fraud",
    *,
    version: str = "3",
    stable: str | None = None,
    weight: int | None = None,
    annotate: bool = True,
    ready: bool = True,
) -> dict[str, Any]:
    """An InferenceService as KServe reports it: serving ``version`` and, when ``stable`` is
    given, a canary of ``version`` at ``weight`` percent over ``stable`` (recorded by the
    adapter's bookkeeping annotations)."""
    annotations: dict[str, str] = {}
    if annotate:
        annotations[DEFAULT_VERSION_ANNOTATION] = version
    if stable is not None:
        annotations[STABLE_KEY] = stable
        annotations[STABLE_URI_KEY] = URI.format(version=stable)
        annotations[CANARY_KEY] = version
    predictor: dict[str, Any] = {
        "model": {
            "modelFormat": {"name": "sklearn"},
            "storageUri": URI.format(version=version),
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        },
        "minReplicas": 1,
    }
    if weight is not None:
        predictor["canaryTrafficPercent"] = weight
    if stable is not None and weight is not None:
        traffic = [
            {
                "revisionName": f"{name}-predictor-00001",
                "percent": 100 - weight,
                "latestRevision": False,
                "tag": "prev",
            },
            {
                "revisionName": f"{name}-predictor-00002",
                "percent": weight,
                "latestRevision": True,
                "tag": "latest",
            },
        ]
        latest, rolled = f"{name}-predictor-00002", f"{name}-predictor-00001"
    else:
        traffic = [
            {"revisionName": f"{name}-predictor-00001", "percent": 100, "latestRevision": True}
        ]
        latest = rolled = f"{name}-predictor-00001"
    return {
        "apiVersion": f"{KSERVE}/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "spec": {"predictor": predictor},
        "status": {
            "observedGeneration": 1,
            "url": f"http://{name}.{NS}.example.com",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": "2026-01-05T08:00:00Z",
                },
            ],
            "components": {
                "predictor": {
                    "latestCreatedRevision": latest,
                    "latestReadyRevision": latest,
                    "latestRolledoutRevision": rolled,
                    "previousRolledoutRevision": rolled,
                    "traffic": traffic,
                },
            },
        },
    }


def deployment(
    name: str = "churn",
    *,
    version: str | None = "7",
    replicas: int = 2,
    updated: int = 2,
    available: int = 2,
    annotation: str | None = None,
) -> dict[str, Any]:
    """A Deployment with a ``server`` container naming its model in ``MODEL_VERSION`` and a
    ``proxy`` sidecar; ``annotation`` names it in the pod template instead."""
    env = [{"name": "LOG_LEVEL", "value": "info"}]
    if version is not None and annotation is None:
        env.append({"name": "MODEL_VERSION", "value": version})
    template_meta: dict[str, Any] = {"labels": {"app": name}}
    if annotation is not None and version is not None:
        template_meta["annotations"] = {annotation: version}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": template_meta,
                "spec": {
                    "containers": [
                        {"name": "proxy", "image": "envoyproxy/envoy:v1.30.0"},
                        {"name": "server", "image": f"registry.example.com/{name}:1", "env": env},
                    ],
                },
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": max(replicas, updated),
            "updatedReplicas": updated,
            "readyReplicas": available,
            "availableReplicas": available,
        },
    }


# --------------------------------------------------------------------------- the rig


@dataclass
class Cluster:
    """The emulator, a kubeconfig for it, and adapters built on the real client."""

    emulator: KubeEmulator
    kubeconfig: Path
    clock: SimClock

    def config(self, **models: KServeTarget | DeploymentTarget) -> KubernetesConfig:
        targets = models or {
            "fraud": KServeTarget(namespace=NS, name="fraud", storage_uri_template=URI),
            "churn": DeploymentTarget(namespace=NS, name="churn", container="server"),
        }
        return KubernetesConfig(
            connection=KubernetesConnection(kubeconfig=str(self.kubeconfig), timeout_s=5),
            models=targets,
            backoff_s=0.5,
        )

    def adapter(self, **models: KServeTarget | DeploymentTarget) -> KubernetesDeploy:
        return KubernetesDeploy(self.config(**models), clock=self.clock)

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        (validate_isvc if obj["kind"] == "InferenceService" else validate_core)(obj)
        return self.emulator.put(obj)

    def isvc(self, name: str = "fraud") -> dict[str, Any]:
        return self.emulator.get(KSERVE, "inferenceservices", NS, name)

    def deployment(self, name: str = "churn") -> dict[str, Any]:
        return self.emulator.get("apps", "deployments", NS, name)

    def patches(self) -> list[Any]:
        return [c.body for c in self.emulator.writes()]


@pytest.fixture(name="cluster")
def cluster_fixture(tmp_path: Path) -> Iterator[Cluster]:
    emulator = KubeEmulator(
        rbac_rules=role_rules(),
        validators={"inferenceservices": validate_isvc, "deployments": validate_core},
    )
    emulator.served.update(
        {(KSERVE, "v1beta1", "inferenceservices"), ("apps", "v1", "deployments")}
    )
    url = emulator.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulator", "cluster": {"server": url}}],
                "users": [{"name": "supervisor", "user": {"token": "test-token"}}],
                "contexts": [
                    {"name": "emulator", "context": {"cluster": "emulator", "user": "supervisor"}}
                ],
                "current-context": "emulator",
            }
        ),
        encoding="utf-8",
    )
    try:
        yield Cluster(emulator=emulator, kubeconfig=kubeconfig, clock=SimClock())
    finally:
        emulator.stop()
