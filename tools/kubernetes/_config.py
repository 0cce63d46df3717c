"""Configuration of the Kubernetes deploy adapter: how to reach the API server and, per model,
which object serves it and where that object says which model version it runs.

Version mapping (how a revision or a pod template is tied to a model version):

* **KServe InferenceService**: the version the spec declares is the annotation
  ``version_annotation`` on the InferenceService, falling back to parsing
  ``spec.predictor.model.storageUri`` with ``storage_uri_template``; when both are there they
  must agree (the adapter writes both in one patch). While a canary runs, the spec only holds
  the canary's model; the stable model (what ``latestRolledoutRevision`` serves) is recorded by
  the adapter in the same write, as the annotations ``<bookkeeping_prefix>/stable-version`` and
  ``<bookkeeping_prefix>/stable-storage-uri``, with ``<bookkeeping_prefix>/canary-version``
  naming the spec version they were written for. Every adapter write leaves ``canary-version``
  equal to the spec's version; if someone changes the model by hand they differ, the record is
  not trusted, and a canary it cannot explain is an error that says what to annotate. Revisions
  in ``status.components.predictor.traffic`` marked ``latestRevision`` serve the spec's version;
  the others serve the stable version. No extra API reads (Knative revisions) are needed.
* **Deployment**: the version is the value of an env var on a named container of the pod
  template (``MODEL_VERSION`` by default) or an annotation on the pod template; changing it
  rolls the Deployment out.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# RFC 1123 label (namespace) and subdomain (object name).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Qualified annotation key: optional DNS prefix, then a name.
_ANNOTATION_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")

DEFAULT_VERSION_ANNOTATION = "mlops-supervisor.io/model-version"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_annotation(key: str) -> str:
    if not _ANNOTATION_KEY.match(key):
        raise ValueError(
            f"{key!r} is not a valid annotation key such as 'example.com/model-version'"
        )
    return key


class _Target(_Strict):
    namespace: str = Field(description="Namespace of the object.")
    name: str = Field(description="Name of the object.")
    environment: str = Field(
        default="production", description="Environment reported in the deployment status."
    )

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        if not _DNS_LABEL.match(v) or len(v) > 63:
            raise ValueError(f"{v!r} is not a valid Kubernetes namespace (RFC 1123 label)")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _DNS_SUBDOMAIN.match(v) or len(v) > 253:
            raise ValueError(f"{v!r} is not a valid Kubernetes object name (RFC 1123 subdomain)")
        return v


class KServeTarget(_Target):
    """A model served by a KServe ``InferenceService`` (v1beta1), canaried by KServe."""

    kind: Literal["kserve"] = "kserve"
    storage_uri_template: str | None = Field(
        default=None,
        description="storageUri of a version, with '{version}', "
        "e.g. 's3://models/fraud/{version}'. Needed to serve a version; also used to read "
        "the version when the annotation is absent.",
    )
    version_annotation: str = Field(
        default=DEFAULT_VERSION_ANNOTATION,
        description="Annotation on the InferenceService that names the spec's model version.",
    )

    @field_validator("storage_uri_template")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        if v is not None and v.count("{version}") != 1:
            raise ValueError(f"storage_uri_template {v!r} must contain '{{version}}' exactly once")
        return v

    @field_validator("version_annotation")
    @classmethod
    def _annotation(cls, v: str) -> str:
        return _check_annotation(v)

    def storage_uri(self, version: str) -> str | None:
        """The storageUri of ``version``, or None without a template."""
        if self.storage_uri_template is None:
            return None
        return self.storage_uri_template.replace("{version}", version)

    def version_of_uri(self, uri: str) -> str | None:
        """The version a storageUri names under the template, or None if it does not match."""
        if self.storage_uri_template is None:
            return None
        prefix, _, suffix = self.storage_uri_template.partition("{version}")
        if len(uri) > len(prefix) + len(suffix) and uri.startswith(prefix) and uri.endswith(suffix):
            version = uri[len(prefix) : len(uri) - len(suffix)]
            return version if "/" not in version else None
        return None


class DeploymentTarget(_Target):
    """A model served by a plain ``apps/v1`` Deployment: no canary, one version at a time."""

    kind: Literal["deployment"] = "deployment"
    version_from: Literal["env", "annotation"] = Field(
        default="env", description="Where the pod template names the model version."
    )
    container: str | None = Field(
        default=None,
        description="Container whose env carries the version (version_from='env'); "
        "may be omitted when the pod has one container.",
    )
    env_var: str = Field(default="MODEL_VERSION", description="Env var naming the version.")
    annotation: str = Field(
        default=DEFAULT_VERSION_ANNOTATION,
        description="Pod-template annotation naming the version (version_from='annotation').",
    )

    @field_validator("env_var")
    @classmethod
    def _env(cls, v: str) -> str:
        if not _ENV_NAME.match(v):
            raise ValueError(f"{v!r} is not a valid environment variable name")
        return v

    @field_validator("annotation")
    @classmethod
    def _annotation(cls, v: str) -> str:
        return _check_annotation(v)


Target = Annotated[KServeTarget | DeploymentTarget, Field(discriminator="kind")]


class KubernetesConnection(_Strict):
    """How to reach the API server."""

    mode: Literal["kubeconfig", "in_cluster"] = Field(
        default="kubeconfig",
        description="'in_cluster' uses the pod's service account; 'kubeconfig' reads a kubeconfig.",
    )
    kubeconfig: str | None = Field(
        default=None,
        description="Path of the kubeconfig; None means $KUBECONFIG or ~/.kube/config.",
    )
    context: str | None = Field(default=None, description="kubeconfig context; None: current.")
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="Per-request timeout.")

    @model_validator(mode="after")
    def _consistent(self) -> KubernetesConnection:
        if self.mode == "in_cluster" and (self.kubeconfig or self.context):
            raise ValueError("kubeconfig and context apply only to mode 'kubeconfig'")
        return self


class KubernetesConfig(_Strict):
    """Settings of the Kubernetes deploy adapter."""

    connection: KubernetesConnection = Field(default_factory=KubernetesConnection)
    models: dict[str, Target] = Field(
        default_factory=dict, description="Per model name: the object that serves it."
    )
    bookkeeping_prefix: str = Field(
        default="mlops-supervisor.io",
        description="Prefix of the annotations in which the adapter records the stable model "
        "while a KServe canary runs.",
    )
    write_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Read-check-patch rounds per write; a 409 conflict or an unknown outcome "
        "(5xx, connection lost) starts the next round after re-reading the object.",
    )
    read_retries: int = Field(
        default=2, ge=0, le=10, description="Extra attempts of a read on connection errors or 5xx."
    )
    backoff_s: float = Field(default=0.2, ge=0, description="First wait before a retried request.")
    backoff_max_s: float = Field(default=2.0, ge=0, description="Longest wait between attempts.")

    @field_validator("bookkeeping_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not _DNS_SUBDOMAIN.match(v):
            raise ValueError(
                f"bookkeeping_prefix {v!r} must be a DNS subdomain such as 'example.com'"
            )
        return v

    def stable_version_key(self) -> str:
        """Annotation recording the stable version while a KServe canary runs."""
        return f"{self.bookkeeping_prefix}/stable-version"

    def canary_version_key(self) -> str:
        """Annotation naming the canary the stable-* annotations were recorded for."""
        return f"{self.bookkeeping_prefix}/canary-version"

    def stable_uri_key(self) -> str:
        """Annotation recording the stable storageUri while a KServe canary runs."""
        return f"{self.bookkeeping_prefix}/stable-storage-uri"
