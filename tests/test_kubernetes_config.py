"""The adapter's config model, connection loading and public exports."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import tools.kubernetes as kube
from supervisor import BackendError
from tools.kubernetes import (
    DeploymentTarget,
    KServeTarget,
    KubernetesConfig,
    KubernetesConnection,
    KubernetesDeploy,
)


def test_models_are_discriminated_by_kind_and_forbid_extra_fields() -> None:
    config = KubernetesConfig.model_validate(
        {
            "connection": {"mode": "in_cluster"},
            "models": {
                "fraud": {
                    "kind": "kserve",
                    "namespace": "ml",
                    "name": "fraud",
                    "storage_uri_template": "gs://m/fraud/{version}/model",
                },
                "churn": {
                    "kind": "deployment",
                    "namespace": "ml",
                    "name": "churn",
                    "container": "server",
                },
            },
        }
    )
    assert isinstance(config.models["fraud"], KServeTarget)
    assert isinstance(config.models["churn"], DeploymentTarget)
    with pytest.raises(ValidationError, match="extra_forbidden"):
        KubernetesConfig.model_validate({"models": {}, "namspace": "ml"})
    with pytest.raises(ValidationError, match="union_tag_invalid"):
        KubernetesConfig.model_validate(
            {"models": {"x": {"kind": "statefulset", "namespace": "ml", "name": "x"}}}
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("namespace", "ML_Serving", "not a valid Kubernetes namespace"),
        ("name", "fraud_model", "not a valid Kubernetes object name"),
        ("storage_uri_template", "s3://models/fraud", "must contain '{version}' exactly once"),
        ("version_annotation", "bad key!", "not a valid annotation key"),
    ],
)
def test_kserve_target_names_the_bad_value(field: str, value: str, message: str) -> None:
    fields = {"namespace": "ml", "name": "fraud", field: value}
    with pytest.raises(ValidationError, match=message) as err:
        KServeTarget.model_validate(fields)
    assert repr(value) in str(err.value)


def test_storage_uri_template_round_trips() -> None:
    target = KServeTarget(
        namespace="ml", name="fraud", storage_uri_template="gs://m/fraud/{version}/model"
    )
    assert target.storage_uri("12") == "gs://m/fraud/12/model"
    assert target.version_of_uri("gs://m/fraud/12/model") == "12"
    assert target.version_of_uri("gs://m/churn/12/model") is None
    assert target.version_of_uri("gs://m/fraud/a/b/model") is None


def test_in_cluster_mode_takes_no_kubeconfig() -> None:
    with pytest.raises(ValidationError, match="apply only to mode 'kubeconfig'"):
        KubernetesConnection(mode="in_cluster", kubeconfig="/etc/kubeconfig")


def test_bad_kubeconfig_is_a_backend_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    config = KubernetesConfig(connection=KubernetesConnection(kubeconfig=str(missing)))
    with pytest.raises(BackendError, match=str(missing)):
        KubernetesDeploy(config)


def test_in_cluster_outside_a_pod_is_a_backend_error() -> None:
    config = KubernetesConfig(connection=KubernetesConnection(mode="in_cluster"))
    with pytest.raises(BackendError, match="service account"):
        KubernetesDeploy(config)


def test_public_exports_are_curated() -> None:
    assert set(kube.__all__) == {
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
    }
    assert len(kube.__all__) == len(set(kube.__all__))
    assert all(hasattr(kube, name) for name in kube.__all__)
