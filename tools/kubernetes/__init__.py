"""Kubernetes adapter: the deploy port on KServe ``InferenceService`` canaries and plain
``Deployment`` objects, through the official ``kubernetes`` client.

Typical use::

    config = KubernetesConfig(
        connection=KubernetesConnection(mode="in_cluster"),
        models={
            "fraud": KServeTarget(
                namespace="ml", name="fraud", storage_uri_template="s3://models/fraud/{version}"
            ),
            "churn": DeploymentTarget(namespace="ml", name="churn", container="server"),
        },
    )
    deploy = KubernetesDeploy(config)
    deploy.status("fraud")

The Role it needs is in ``deploy/rbac/``: get and patch on the two resources, nothing else.
"""

from ._adapter import KubernetesDeploy
from ._api import DEPLOYMENT, INFERENCE_SERVICE, Resource
from ._config import (
    DEFAULT_VERSION_ANNOTATION,
    DeploymentTarget,
    KServeTarget,
    KubernetesConfig,
    KubernetesConnection,
    Target,
)
from ._kserve import RevisionTraffic

__all__ = [
    "DEFAULT_VERSION_ANNOTATION",
    "DEPLOYMENT",
    "INFERENCE_SERVICE",
    "DeploymentTarget",
    "KServeTarget",
    "KubernetesConfig",
    "KubernetesConnection",
    "KubernetesDeploy",
    "Resource",
    "RevisionTraffic",
    "Target",
]
