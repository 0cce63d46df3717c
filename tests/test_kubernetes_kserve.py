"""KServe InferenceService canaries through the real kubernetes client and the API emulator.

Every stored object is validated against KServe's v1beta1 CRD schema by the emulator (a
violation answers 422 and fails the action), and the shipped Role is enforced.
"""

from __future__ import annotations

import pytest
from kube_cluster import (
    CANARY_KEY,
    KSERVE,
    NS,
    STABLE_KEY,
    STABLE_URI_KEY,
    URI,
    Cluster,
    cluster_fixture,  # noqa: F401 (the `cluster` fixture)
    isvc,
)

from supervisor import ActionError, BackendError
from tools.kubernetes import DEFAULT_VERSION_ANNOTATION, KServeTarget, RevisionTraffic

MERGE = "application/merge-patch+json"


def predictor(obj: dict) -> dict:
    return obj["spec"]["predictor"]


def test_status_of_a_canary_maps_revisions_to_versions(cluster: Cluster) -> None:
    stored = cluster.put(isvc(version="3", stable="2", weight=10))
    deploy = cluster.adapter()

    status = deploy.status("fraud")

    assert status is not None
    assert (status.stable_version, status.canary_version, status.canary_weight) == ("2", "3", 10)
    assert status.ready and status.environment == "production"
    assert status.resource_version == stored["metadata"]["resourceVersion"]
    assert deploy.traffic("fraud") == [
        RevisionTraffic(revision="fraud-predictor-00001", percent=90, latest=False, version="2"),
        RevisionTraffic(revision="fraud-predictor-00002", percent=10, latest=True, version="3"),
    ]
    assert (cluster.emulator.calls[0].method, cluster.emulator.calls[0].path) == (
        "GET",
        f"/apis/{KSERVE}/v1beta1/namespaces/{NS}/inferenceservices/fraud",
    )


def test_status_without_canary_and_version_from_storage_uri(cluster: Cluster) -> None:
    cluster.put(isvc(version="4", annotate=False))
    status = cluster.adapter().status("fraud")
    assert status is not None
    assert (status.stable_version, status.canary_version, status.canary_weight) == ("4", None, 0)


def test_status_not_ready_until_the_split_matches_the_spec(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", stable="2", weight=10))
    cluster.emulator.mutate(
        KSERVE,
        "inferenceservices",
        NS,
        "fraud",
        lambda o: predictor(o).update(canaryTrafficPercent=40),
    )
    status = cluster.adapter().status("fraud")
    assert status is not None and status.canary_weight == 40 and not status.ready


def test_status_of_a_canary_the_supervisor_did_not_start_says_how_to_annotate(
    cluster: Cluster,
) -> None:
    obj = isvc(version="3", stable="2", weight=10)
    for key in (STABLE_KEY, STABLE_URI_KEY, CANARY_KEY):
        del obj["metadata"]["annotations"][key]
    cluster.put(obj)
    with pytest.raises(BackendError, match=STABLE_KEY):
        cluster.adapter().status("fraud")


def test_bookkeeping_is_not_trusted_for_a_canary_started_by_hand(cluster: Cluster) -> None:
    cluster.put(isvc(version="2"))
    deploy = cluster.adapter()
    deploy.serve_version("fraud", "3", expected_version="2", canary_weight=10)
    deploy.promote_canary("fraud", expected_version="3")

    def by_hand(o: dict) -> None:  # kubectl edit: canary of 4 over the promoted 3
        o["metadata"]["annotations"][DEFAULT_VERSION_ANNOTATION] = "4"
        predictor(o).update(
            canaryTrafficPercent=10,
            model={**predictor(o)["model"], "storageUri": URI.format(version="4")},
        )
        o["status"] = isvc(version="4", stable="3", weight=10)["status"]

    cluster.emulator.mutate(KSERVE, "inferenceservices", NS, "fraud", by_hand)
    # the bookkeeping was written for version 3, not for the hand-made canary 4: not trusted
    with pytest.raises(BackendError, match=f"{CANARY_KEY}=4"):
        deploy.status("fraud")


def test_canary_percent_set_by_hand_without_a_new_model_is_no_canary(cluster: Cluster) -> None:
    cluster.put(isvc(version="2"))
    deploy = cluster.adapter()
    deploy.serve_version("fraud", "3", expected_version="2", canary_weight=10)
    deploy.promote_canary("fraud", expected_version="3")
    cluster.emulator.mutate(
        KSERVE,
        "inferenceservices",
        NS,
        "fraud",
        lambda o: predictor(o).update(canaryTrafficPercent=10),
    )
    status = deploy.status("fraud")
    assert status is not None
    assert (status.stable_version, status.canary_version, status.canary_weight) == ("3", None, 0)


def test_annotation_and_storage_uri_must_agree(cluster: Cluster) -> None:
    obj = isvc(version="3")
    obj["spec"]["predictor"]["model"]["storageUri"] = URI.format(version="5")
    cluster.put(obj)
    with pytest.raises(BackendError, match="make them agree"):
        cluster.adapter().status("fraud")


def test_status_without_a_version_anywhere_is_a_clear_error(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", annotate=False))
    deploy = cluster.adapter(fraud=KServeTarget(namespace=NS, name="fraud"))
    with pytest.raises(BackendError, match=DEFAULT_VERSION_ANNOTATION):
        deploy.status("fraud")


def test_set_weight_sends_one_guarded_merge_patch(cluster: Cluster) -> None:
    stored = cluster.put(isvc(version="3", stable="2", weight=10))
    deploy = cluster.adapter()

    after = deploy.set_canary_weight("fraud", 50, expected_version="3")

    (write,) = cluster.emulator.writes()
    assert (write.method, write.content_type, write.status) == ("PATCH", MERGE, 200)
    assert write.body == {
        "metadata": {"resourceVersion": stored["metadata"]["resourceVersion"]},
        "spec": {"predictor": {"canaryTrafficPercent": 50}},
    }
    assert predictor(cluster.isvc())["canaryTrafficPercent"] == 50
    assert (after.canary_version, after.canary_weight, after.stable_version) == ("3", 50, "2")
    assert after.resource_version == cluster.isvc()["metadata"]["resourceVersion"]
    # already there: nothing more is written
    deploy.set_canary_weight("fraud", 50, expected_version="3")
    assert len(cluster.emulator.writes()) == 1


def test_promote_removes_canary_traffic_percent(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", stable="2", weight=50))
    deploy = cluster.adapter()

    after = deploy.promote_canary("fraud", expected_version="3")

    assert cluster.patches()[0]["spec"] == {"predictor": {"canaryTrafficPercent": None}}
    assert cluster.patches()[0]["metadata"]["annotations"] == {
        STABLE_KEY: "3",
        STABLE_URI_KEY: URI.format(version="3"),
        CANARY_KEY: "3",
    }
    stored = cluster.isvc()
    assert "canaryTrafficPercent" not in predictor(stored)
    assert predictor(stored)["model"]["storageUri"] == URI.format(version="3")
    assert (after.stable_version, after.canary_version, after.canary_weight) == ("3", None, 0)
    assert deploy.promote_canary("fraud", expected_version="3") == deploy.status("fraud")
    assert len(cluster.emulator.writes()) == 1


def test_abort_pins_traffic_to_stable_and_restores_its_model(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", stable="2", weight=20))
    deploy = cluster.adapter()

    after = deploy.abort_canary("fraud", expected_version="3")

    stored = cluster.isvc()
    assert predictor(stored)["canaryTrafficPercent"] == 0
    assert predictor(stored)["model"]["storageUri"] == URI.format(version="2")
    assert predictor(stored)["model"]["modelFormat"] == {"name": "sklearn"}
    assert stored["metadata"]["annotations"][DEFAULT_VERSION_ANNOTATION] == "2"
    assert stored["metadata"]["annotations"][CANARY_KEY] == "2"
    assert (after.stable_version, after.canary_version, after.canary_weight) == ("2", None, 0)
    # replay after a crash: the abort already took effect, nothing is written again
    deploy.abort_canary("fraud", expected_version="3")
    assert len(cluster.emulator.writes()) == 1


def test_serve_version_with_weight_starts_a_canary_and_records_the_stable(cluster: Cluster) -> None:
    cluster.put(isvc(version="2"))
    deploy = cluster.adapter()

    after = deploy.serve_version("fraud", "3", expected_version="2", canary_weight=10)

    stored = cluster.isvc()
    assert predictor(stored)["canaryTrafficPercent"] == 10
    assert predictor(stored)["model"]["storageUri"] == URI.format(version="3")
    assert stored["metadata"]["annotations"] == {
        DEFAULT_VERSION_ANNOTATION: "3",
        STABLE_KEY: "2",
        STABLE_URI_KEY: URI.format(version="2"),
        CANARY_KEY: "3",
    }
    assert (after.stable_version, after.canary_version, after.canary_weight) == ("2", "3", 10)
    # the canary can then be aborted back to the recorded stable model
    deploy.abort_canary("fraud", expected_version="3")
    assert predictor(cluster.isvc())["model"]["storageUri"] == URI.format(version="2")


def test_serve_version_without_weight_rolls_back_fully(cluster: Cluster) -> None:
    cluster.put(isvc(version="3", stable="2", weight=30))
    deploy = cluster.adapter()

    after = deploy.serve_version("fraud", "1", expected_version="2")

    stored = cluster.isvc()
    assert "canaryTrafficPercent" not in predictor(stored)
    assert predictor(stored)["model"]["storageUri"] == URI.format(version="1")
    assert (after.stable_version, after.canary_version) == ("1", None)
    assert stored["metadata"]["generation"] == 2


def test_serve_version_needs_a_storage_uri_template(cluster: Cluster) -> None:
    cluster.put(isvc(version="2"))
    deploy = cluster.adapter(
        fraud=KServeTarget(namespace=NS, name="fraud", storage_uri_template=None)
    )
    with pytest.raises(ActionError, match="storage_uri_template"):
        deploy.serve_version("fraud", "3", expected_version="2", canary_weight=10)
    assert cluster.emulator.writes() == []


def test_a_version_cannot_be_its_own_canary(cluster: Cluster) -> None:
    cluster.put(isvc(version="2"))
    with pytest.raises(ActionError, match="already serves as stable"):
        cluster.adapter().serve_version("fraud", "2", expected_version="2", canary_weight=10)
    assert cluster.emulator.writes() == []


def test_canary_lifecycle_end_to_end(cluster: Cluster) -> None:
    cluster.put(isvc(version="2"))
    deploy = cluster.adapter()
    deploy.serve_version("fraud", "3", expected_version="2", canary_weight=10)
    deploy.set_canary_weight("fraud", 50, expected_version="3")
    final = deploy.promote_canary("fraud", expected_version="3")
    assert (final.stable_version, final.canary_version) == ("3", None)
    assert [c.status for c in cluster.emulator.writes()] == [200, 200, 200]
    # every write was guarded by the resourceVersion read just before it
    gets = [c for c in cluster.emulator.calls if c.verb == "get"]
    assert len(gets) == 3
    assert all(p["metadata"]["resourceVersion"] for p in cluster.patches())
