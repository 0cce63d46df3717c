"""Conflicts, preconditions and API errors: reconciled by re-reading, never retried blindly,
and explained in terms an operator can act on."""

from __future__ import annotations

from typing import Any

import pytest
from kube_cluster import (
    KSERVE,
    NS,
    Cluster,
    cluster_fixture,  # noqa: F401 (the `cluster` fixture)
    deployment,
    isvc,
    role_rules,
)

from supervisor import ActionError, BackendError

ISVC = "inferenceservices"


def race(cluster: Cluster, change: Any, name: str = "fraud") -> None:
    """Another actor changes the InferenceService just before the adapter's next write lands."""
    cluster.emulator.before_next_write(
        lambda: cluster.emulator.mutate(KSERVE, ISVC, NS, name, change)
    )


def trace(cluster: Cluster) -> list[tuple[str, int]]:
    return [(c.verb, c.status) for c in cluster.emulator.calls]


# --------------------------------------------------------------------------- 409 conflicts


def test_conflict_is_re_read_and_retried_when_still_needed(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", stable="2", weight=10))
    race(cluster, lambda o: o["metadata"].setdefault("labels", {}).update(team="risk"))

    after = cluster.adapter().set_canary_weight("fraud", 50, expected_version="3")

    assert trace(cluster) == [("get", 200), ("patch", 409), ("get", 200), ("patch", 200)]
    second = cluster.emulator.writes()[1].body
    assert (
        second["metadata"]["resourceVersion"]
        != cluster.emulator.writes()[0].body["metadata"]["resourceVersion"]
    )
    stored = cluster.isvc()
    assert stored["spec"]["predictor"]["canaryTrafficPercent"] == 50
    assert stored["metadata"]["labels"] == {"team": "risk"}  # the other actor's change survives
    assert after.canary_weight == 50


def test_conflict_with_the_intended_state_already_reached_writes_nothing_more(
    cluster: Cluster,
) -> None:
    cluster.put(isvc(version="3", stable="2", weight=10))
    race(cluster, lambda o: o["spec"]["predictor"].update(canaryTrafficPercent=50))

    after = cluster.adapter().set_canary_weight("fraud", 50, expected_version="3")

    assert trace(cluster) == [("get", 200), ("patch", 409), ("get", 200)]
    assert after.canary_weight == 50


def test_conflict_that_changed_the_canary_fails_the_precondition(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", stable="2", weight=10))

    def new_canary(o: dict[str, Any]) -> None:
        # another supervisor replica moved the canary to 4, bookkeeping included
        o["metadata"]["annotations"]["mlops-supervisor.io/model-version"] = "4"
        o["metadata"]["annotations"]["mlops-supervisor.io/canary-version"] = "4"
        o["spec"]["predictor"]["model"]["storageUri"] = "s3://models/fraud/4"

    race(cluster, new_canary)
    with pytest.raises(ActionError, match=r"canary of 'fraud' is '4', not the expected '3'"):
        cluster.adapter().promote_canary("fraud", expected_version="3")
    assert trace(cluster) == [("get", 200), ("patch", 409), ("get", 200)]
    assert cluster.isvc()["spec"]["predictor"]["canaryTrafficPercent"] == 10


def test_endless_conflicts_end_after_the_configured_attempts(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", stable="2", weight=10))
    for _ in range(3):
        race(cluster, lambda o: o["metadata"].setdefault("labels", {}).update(n="x"))
    with pytest.raises(ActionError, match=r"gave up .* after 3 attempt\(s\): 409 conflict"):
        cluster.adapter().set_canary_weight("fraud", 50, expected_version="3")
    assert [c.status for c in cluster.emulator.writes()] == [409, 409, 409]


def test_deployment_conflict_is_reconciled_too(cluster: Cluster) -> None:
    cluster.put(deployment())

    def same_switch(o: dict[str, Any]) -> None:
        o["spec"]["template"]["spec"]["containers"][1]["env"][1]["value"] = "6"

    cluster.emulator.before_next_write(
        lambda: cluster.emulator.mutate("apps", "deployments", NS, "churn", same_switch)
    )
    after = cluster.adapter().serve_version("churn", "6", expected_version="7")
    assert trace(cluster) == [("get", 200), ("patch", 409), ("get", 200)]
    assert after.stable_version == "6"


# --------------------------------------------------------------------------- preconditions


def test_expected_version_mismatch_writes_nothing(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", stable="2", weight=10))
    deploy = cluster.adapter()
    with pytest.raises(ActionError, match=r"canary of 'fraud' is '3', not the expected '4'"):
        deploy.set_canary_weight("fraud", 50, expected_version="4")
    with pytest.raises(ActionError, match=r"canary of 'fraud' is '3', not the expected '4'"):
        deploy.abort_canary("fraud", expected_version="4")
    with pytest.raises(ActionError, match=r"serves '2' as stable, not the expected '1'"):
        deploy.serve_version("fraud", "5", expected_version="1", canary_weight=10)
    assert cluster.emulator.writes() == []


def test_out_of_range_weight_is_refused_before_any_call(cluster: Cluster) -> None:
    with pytest.raises(ActionError, match=r"within 0\.\.100"):
        cluster.adapter().set_canary_weight("fraud", 101, expected_version="3")
    assert cluster.emulator.calls == []


# --------------------------------------------------------------------------- API errors


def test_forbidden_patch_names_the_missing_verb_and_resource(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", stable="2", weight=10))
    rules = role_rules()
    cluster.emulator.rbac_rules = [
        {**r, "verbs": ["get"]} if r["apiGroups"] == [KSERVE] else r for r in rules
    ]
    with pytest.raises(ActionError) as err:
        cluster.adapter().set_canary_weight("fraud", 50, expected_version="3")
    message = str(err.value)
    assert "403" in message and "verb 'patch'" in message
    assert "resource 'inferenceservices'" in message and "API group 'serving.kserve.io'" in message
    assert f"namespace '{NS}'" in message and "deploy/rbac/" in message
    assert "cannot patch resource" in message  # the API server's own words are kept
    assert cluster.isvc()["spec"]["predictor"]["canaryTrafficPercent"] == 10


def test_forbidden_read_is_a_backend_error_naming_get(cluster: Cluster) -> None:
    cluster.put(deployment())
    cluster.emulator.rbac_rules = [r for r in role_rules() if r["apiGroups"] != ["apps"]]
    with pytest.raises(BackendError, match=r"lacks verb 'get' on resource 'deployments'"):
        cluster.adapter().status("churn")
    with pytest.raises(ActionError, match=r"lacks verb 'get' on resource 'deployments'"):
        cluster.adapter().serve_version("churn", "6", expected_version="7")


def test_missing_object_is_none_for_status_and_a_clear_error_for_writes(cluster: Cluster) -> None:
    deploy = cluster.adapter()
    assert deploy.status("fraud") is None
    with pytest.raises(
        ActionError, match=rf"InferenceService {NS}/fraud of model 'fraud' does not"
    ):
        deploy.promote_canary("fraud", expected_version="3")
    assert cluster.emulator.writes() == []


def test_object_deleted_between_read_and_patch(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", stable="2", weight=10))
    cluster.emulator.fail("patch", ISVC, 404)
    with pytest.raises(ActionError, match=r"does not exist \(404 on patch\)"):
        cluster.adapter().set_canary_weight("fraud", 50, expected_version="3")


def test_kserve_not_installed(cluster: Cluster) -> None:
    cluster.emulator.served.discard((KSERVE, "v1beta1", ISVC))
    with pytest.raises(BackendError, match="is KServe installed"):
        cluster.adapter().status("fraud")


def test_invalid_patch_is_reported_not_retried(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", stable="2", weight=10))
    cluster.emulator.fail("patch", ISVC, 422, message="spec.predictor: Invalid value")
    with pytest.raises(ActionError, match=r"rejected as invalid \(422: spec\.predictor"):
        cluster.adapter().set_canary_weight("fraud", 50, expected_version="3")
    assert len(cluster.emulator.writes()) == 1


def test_server_error_on_write_is_reconciled_by_re_reading(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", stable="2", weight=10))
    cluster.emulator.fail("patch", ISVC, 503)
    after = cluster.adapter().set_canary_weight("fraud", 50, expected_version="3")
    assert trace(cluster) == [("get", 200), ("patch", 503), ("get", 200), ("patch", 200)]
    assert after.canary_weight == 50


def test_reads_retry_server_errors_with_backoff_on_the_clock(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", stable="2", weight=10))
    cluster.emulator.fail("get", ISVC, 500, times=2)
    start = cluster.clock.now()
    status = cluster.adapter().status("fraud")
    assert status is not None and status.canary_version == "3"
    assert (cluster.clock.now() - start).total_seconds() == pytest.approx(0.5 + 1.0)
    cluster.emulator.fail("get", ISVC, 500, times=3)
    with pytest.raises(BackendError, match=r"failed after 3 attempt\(s\).*HTTP 500"):
        cluster.adapter().status("fraud")


def test_unreachable_api_server(cluster: Cluster) -> None:
    cluster.emulator.stop()
    with pytest.raises(BackendError, match="check that the API server is reachable"):
        cluster.adapter().status("fraud")


def test_unknown_model(cluster: Cluster) -> None:
    deploy = cluster.adapter()
    with pytest.raises(BackendError, match=r"'nope' has no deploy target; configured: \['churn'"):
        deploy.status("nope")
    with pytest.raises(ActionError, match="'nope' has no deploy target"):
        deploy.promote_canary("nope", expected_version="1")
