"""Plain Deployments: the served version lives in the pod template; switching it is a rollout.

Every stored Deployment is validated against the strict Kubernetes 1.30 schema by the emulator.
"""

from __future__ import annotations

import pytest
from kube_cluster import NS, Cluster, cluster_fixture, deployment  # noqa: F401

from supervisor import ActionError, BackendError
from tools.kubernetes import DeploymentTarget

JSON_PATCH = "application/json-patch+json"
ANNOTATION = "example.com/model-version"


def containers(obj: dict) -> dict[str, dict]:
    return {c["name"]: c for c in obj["spec"]["template"]["spec"]["containers"]}


@pytest.mark.parametrize(
    ("replicas", "updated", "available", "ready"),
    [(2, 2, 2, True), (2, 1, 1, False), (2, 2, 1, False), (3, 3, 3, True), (0, 0, 0, True)],
)
def test_status_reads_version_and_rollout(
    cluster: Cluster, replicas: int, updated: int, available: int, ready: bool
) -> None:
    cluster.put(deployment(replicas=replicas, updated=updated, available=available))
    status = cluster.adapter().status("churn")
    assert status is not None
    assert (status.stable_version, status.canary_version, status.canary_weight) == ("7", None, 0)
    assert status.ready is ready


def test_status_is_not_ready_before_the_controller_saw_the_new_generation(cluster: Cluster) -> None:
    cluster.put(deployment())
    cluster.adapter().serve_version("churn", "6", expected_version="7")
    status = cluster.adapter().status("churn")
    assert status is not None and status.stable_version == "6" and not status.ready


def test_serve_version_switches_the_env_var_with_a_guarded_json_patch(cluster: Cluster) -> None:
    stored = cluster.put(deployment())
    deploy = cluster.adapter()

    after = deploy.serve_version("churn", "6", expected_version="7")

    (write,) = cluster.emulator.writes()
    assert (write.method, write.content_type, write.status) == ("PATCH", JSON_PATCH, 200)
    assert write.path == f"/apis/apps/v1/namespaces/{NS}/deployments/churn"
    assert write.body == [
        {
            "op": "replace",
            "path": "/metadata/resourceVersion",
            "value": stored["metadata"]["resourceVersion"],
        },
        {
            "op": "test",
            "path": "/spec/template/spec/containers/1/env/1/name",
            "value": "MODEL_VERSION",
        },
        {"op": "replace", "path": "/spec/template/spec/containers/1/env/1/value", "value": "6"},
    ]
    now = cluster.deployment()
    assert containers(now)["server"]["env"] == [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "MODEL_VERSION", "value": "6"},
    ]
    assert "env" not in containers(now)["proxy"]
    assert now["metadata"]["generation"] == 2
    assert after.stable_version == "6"
    # replay: already serving 6, nothing is written
    deploy.serve_version("churn", "6", expected_version="7")
    assert len(cluster.emulator.writes()) == 1


def test_missing_version_is_a_clear_error_and_nothing_is_written(cluster: Cluster) -> None:
    cluster.put(deployment(version=None))
    deploy = cluster.adapter()
    with pytest.raises(BackendError, match="MODEL_VERSION"):
        deploy.status("churn")
    with pytest.raises(ActionError, match="MODEL_VERSION"):
        deploy.serve_version("churn", "6", expected_version="7")
    assert cluster.emulator.writes() == []


def test_serve_version_through_a_pod_template_annotation(cluster: Cluster) -> None:
    cluster.put(deployment(annotation=ANNOTATION))
    deploy = cluster.adapter(
        churn=DeploymentTarget(
            namespace=NS, name="churn", version_from="annotation", annotation=ANNOTATION
        )
    )
    assert deploy.status("churn").stable_version == "7"  # type: ignore[union-attr]

    after = deploy.serve_version("churn", "8", expected_version="7")

    assert cluster.patches()[0][1] == {
        "op": "replace",
        "path": "/spec/template/metadata/annotations/example.com~1model-version",
        "value": "8",
    }
    assert cluster.deployment()["spec"]["template"]["metadata"]["annotations"] == {ANNOTATION: "8"}
    assert after.stable_version == "8"


def test_single_container_needs_no_container_name(cluster: Cluster) -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"].pop(0)
    cluster.put(obj)
    deploy = cluster.adapter(churn=DeploymentTarget(namespace=NS, name="churn"))
    assert deploy.serve_version("churn", "9", expected_version="7").stable_version == "9"


def test_ambiguous_or_wrong_container_is_a_config_error(cluster: Cluster) -> None:
    cluster.put(deployment())
    with pytest.raises(BackendError, match=r"\['proxy', 'server'\]"):
        cluster.adapter(churn=DeploymentTarget(namespace=NS, name="churn")).status("churn")
    wrong = DeploymentTarget(namespace=NS, name="churn", container="model")
    with pytest.raises(BackendError, match="no container 'model'"):
        cluster.adapter(churn=wrong).status("churn")


def test_canary_operations_on_a_deployment_are_refused_without_a_write(cluster: Cluster) -> None:
    cluster.put(deployment())
    deploy = cluster.adapter()
    with pytest.raises(ActionError, match="plain Deployment"):
        deploy.set_canary_weight("churn", 10, expected_version="8")
    with pytest.raises(ActionError, match="plain Deployment"):
        deploy.promote_canary("churn", expected_version="8")
    with pytest.raises(ActionError, match="plain Deployment"):
        deploy.abort_canary("churn", expected_version="8")
    with pytest.raises(ActionError, match="cannot run a canary"):
        deploy.serve_version("churn", "8", expected_version="7", canary_weight=10)
    assert cluster.emulator.calls == []
