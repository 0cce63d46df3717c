"""The shipped RBAC (deploy/rbac/) is valid, covers every call the adapter makes, and grants
nothing the adapter does not use."""

from __future__ import annotations

from typing import Any

import pytest
from kube_cluster import (
    Cluster,
    cluster_fixture,  # noqa: F401 (the `cluster` fixture)
    deployment,
    isvc,
    rbac_documents,
    role_rules,
)
from kube_emulator import allowed
from kube_schemas import validate_core

from tools.kubernetes import DEPLOYMENT, INFERENCE_SERVICE


def tour(cluster: Cluster) -> None:
    """Every operation of the adapter, on both kinds, including a reconciled conflict."""
    cluster.put(isvc(version="2"))
    cluster.put(deployment())
    deploy = cluster.adapter()
    deploy.status("fraud")
    deploy.traffic("fraud")
    deploy.serve_version("fraud", "3", expected_version="2", canary_weight=10)
    cluster.emulator.before_next_write(
        lambda: cluster.emulator.mutate(
            "serving.kserve.io",
            "inferenceservices",
            "ml-serving",
            "fraud",
            lambda o: o["metadata"].update(labels={"x": "y"}),
        )
    )
    deploy.set_canary_weight("fraud", 50, expected_version="3")
    deploy.abort_canary("fraud", expected_version="3")
    deploy.serve_version("fraud", "3", expected_version="2", canary_weight=20)
    deploy.promote_canary("fraud", expected_version="3")
    deploy.serve_version("fraud", "2", expected_version="3")
    deploy.status("churn")
    deploy.serve_version("churn", "6", expected_version="7")


def test_rbac_manifests_are_valid_kubernetes_objects() -> None:
    docs = rbac_documents()
    assert sorted(d["kind"] for d in docs) == ["Role", "RoleBinding", "ServiceAccount"]
    for doc in docs:
        validate_core(doc)
    sa = next(d for d in docs if d["kind"] == "ServiceAccount")
    role = next(d for d in docs if d["kind"] == "Role")
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": sa["metadata"]["name"],
            "namespace": sa["metadata"]["namespace"],
        }
    ]


def test_role_covers_every_call_and_grants_nothing_unused(cluster: Cluster) -> None:
    tour(cluster)  # the emulator enforces the Role: an uncovered call would answer 403

    calls = cluster.emulator.calls
    assert {c.status for c in calls} == {200, 409}, [c for c in calls if c.status >= 400]
    used = {(c.group, c.resource, c.verb) for c in calls}
    rules = role_rules()
    for group, resource, verb in used:
        assert allowed(rules, verb, group, resource), (verb, group, resource)
    granted = {
        (g, r, v)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert granted == used, f"unused grants: {granted - used}"
    assert used == {
        (INFERENCE_SERVICE.group, INFERENCE_SERVICE.plural, "get"),
        (INFERENCE_SERVICE.group, INFERENCE_SERVICE.plural, "patch"),
        (DEPLOYMENT.group, DEPLOYMENT.plural, "get"),
        (DEPLOYMENT.group, DEPLOYMENT.plural, "patch"),
    }


@pytest.mark.parametrize("verb", ["get", "patch"])
def test_removing_any_grant_breaks_the_tour(cluster: Cluster, verb: str) -> None:
    rules: list[dict[str, Any]] = [
        {**r, "verbs": [v for v in r["verbs"] if v != verb]} for r in role_rules()
    ]
    cluster.emulator.rbac_rules = rules
    with pytest.raises(Exception, match=f"lacks verb '{verb}'"):
        tour(cluster)
