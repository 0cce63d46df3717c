"""deploy/kustomize/overlays/ha, several replicas: it renders valid objects, changes only what
running several replicas needs (replicas, rollout, per-pod state, the Postgres DSN and pod name,
a disruption budget), its config loads, and its lease Role lets the real elector lead and grants
nothing more.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploykit import HA, one, raw_config, rendered
from kube_emulator import KubeEmulator

from supervisor import SimClock
from supervisor.config import load_config
from supervisor.ha import LeaseElector
from tools.kubernetes import KubernetesConnection

# ------------------------------------------------------------------ the several-replica overlay

LEASE_ROLE = "mlops-supervisor-leader-election"
#: All the elector does with its Lease (supervisor/ha/_lease.py): read, create, replace.
LEASE_GRANTS = {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}


def ha_container() -> dict[str, Any]:
    container: dict[str, Any]
    [container] = one("Deployment", directory=HA)["spec"]["template"]["spec"]["containers"]
    return container


def load_config_from(directory: Path, tmp_path: Path) -> Any:
    """The config of ``directory``'s ConfigMap, through the loader the service uses."""
    path = tmp_path / "config.yaml"
    path.write_text(one("ConfigMap", "mlops-supervisor-config", directory)["data"]["config.yaml"])
    return load_config(path)


def secret_env(container: dict[str, Any], name: str) -> dict[str, Any]:
    """The secretKeyRef of env var ``name``; fails on a literal value."""
    [var] = [e for e in container["env"] if e["name"] == name]
    assert "value" not in var, f"{name} is a literal in the manifest; take it from a Secret"
    ref: dict[str, Any] = var["valueFrom"]["secretKeyRef"]
    return ref


def lease_grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    assert all(
        set(r) <= {"apiGroups", "resources", "resourceNames", "verbs"} for r in role["rules"]
    )
    return {
        (g, res, v)
        for r in role["rules"]
        for g in r["apiGroups"]
        for res in r["resources"]
        for v in r["verbs"]
    }


def rbac_allows(role: dict[str, Any], verb: str, group: str, resource: str, name: str) -> bool:
    """As the RBAC authorizer decides, resourceNames included: a create request carries no
    name when it is authorised, so a rule with resourceNames never allows it."""
    requested = "" if verb == "create" else name
    return any(
        group in r["apiGroups"]
        and resource in r["resources"]
        and verb in r["verbs"]
        and (not r.get("resourceNames") or requested in r["resourceNames"])
        for r in role["rules"]
    )


def test_the_ha_overlay_drops_the_volume_claim_and_adds_a_budget_and_the_lease_role() -> None:
    base = sorted(o["kind"] for o in rendered())
    base.remove("PersistentVolumeClaim")
    assert sorted(o["kind"] for o in rendered(HA)) == sorted(
        [*base, "PodDisruptionBudget", "Role", "RoleBinding"]
    )
    # what the overlay does not mean to change is the base's, as rendered
    ours = {(o["kind"], o["metadata"]["name"]): o for o in rendered(HA)}
    for obj in rendered():
        key = (obj["kind"], obj["metadata"]["name"])
        if key[0] not in ("Deployment", "PersistentVolumeClaim") and not key[1].startswith(
            "mlops-supervisor-config"
        ):
            assert ours.get(key) == obj, key


def test_the_ha_deployment_changes_only_what_several_replicas_need() -> None:
    dep, base = one("Deployment", directory=HA), one("Deployment")
    spec = dep["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pod = spec["template"]["spec"]
    [term] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    selector = term["podAffinityTerm"]["labelSelector"]["matchLabels"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    # undo the intended changes: what is left must be the base Deployment
    undone = copy.deepcopy(dep)
    undone["spec"].update(replicas=base["spec"]["replicas"], strategy=base["spec"]["strategy"])
    pod = undone["spec"]["template"]["spec"]
    del pod["affinity"]
    [container] = pod["containers"]
    added = {"POD_NAME", "MLOPS_SUPERVISOR_POSTGRES_DSN"}
    container["env"] = [e for e in container["env"] if e["name"] not in added]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["state"] == {"name": "state", "emptyDir": {"sizeLimit": "1Gi"}}
    config_map = one("ConfigMap", "mlops-supervisor-config", HA)["metadata"]["name"]
    assert volumes["config"]["configMap"]["name"] == config_map
    base_volumes = {v["name"]: v for v in base["spec"]["template"]["spec"]["volumes"]}
    volumes.update(state=base_volumes["state"], config=base_volumes["config"])
    pod["volumes"] = list(volumes.values())
    assert in_name_order(undone) == in_name_order(base)


def in_name_order(deployment: dict[str, Any]) -> dict[str, Any]:
    """``deployment`` with its volumes and env in name order (a patch may reorder them)."""
    out = copy.deepcopy(deployment)
    pod = out["spec"]["template"]["spec"]
    pod["volumes"].sort(key=lambda v: v["name"])
    for container in pod["containers"]:
        container["env"].sort(key=lambda e: e["name"])
    return out


def test_the_ha_state_dir_is_an_empty_dir_per_pod_and_no_claim_is_made() -> None:
    assert not [o for o in rendered(HA) if o["kind"] == "PersistentVolumeClaim"]
    pod = one("Deployment", directory=HA)["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in ha_container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    state = volumes[mounts[raw_config(HA)["state_dir"]]]
    assert "emptyDir" in state and "persistentVolumeClaim" not in state
    assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]


def test_the_ha_config_loads_and_names_the_env_the_deployment_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = raw_config(HA)
    ha = raw.pop("ha")
    assert raw == raw_config(), "overlays/ha/config.yaml must be the base's plus `ha:`"
    # as in the pod: the env the Deployment sets must not upset the loader's env overrides
    monkeypatch.setenv("POD_NAME", "mlops-supervisor-7d9f-abcde")
    monkeypatch.setenv(ha["postgres_dsn_env"], "postgresql://u:p@postgres:5432/supervisor")
    config = load_config_from(HA, tmp_path)
    assert config.ha.lease is not None and config.ha.lease.identity_env == "POD_NAME"
    assert config.ha.lease.connection.mode == "in_cluster"
    container, dep = ha_container(), one("Deployment", directory=HA)
    [pod_name] = [e for e in container["env"] if e["name"] == config.ha.lease.identity_env]
    assert pod_name["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert config.ha.postgres_dsn_env == "MLOPS_SUPERVISOR_POSTGRES_DSN"
    ref = secret_env(container, config.ha.postgres_dsn_env)
    assert ref == {"name": "mlops-supervisor-secrets", "key": "postgres-dsn"}  # not optional
    assert config.ha.lease.namespace == dep["metadata"]["namespace"]


def test_a_literal_dsn_is_caught() -> None:
    container = copy.deepcopy(ha_container())
    [dsn] = [e for e in container["env"] if e["name"] == "MLOPS_SUPERVISOR_POSTGRES_DSN"]
    dsn.pop("valueFrom")
    dsn["value"] = "postgresql://supervisor:hunter2@postgres:5432/supervisor"
    with pytest.raises(AssertionError, match="literal"):
        secret_env(container, "MLOPS_SUPERVISOR_POSTGRES_DSN")


def test_the_lease_role_grants_get_create_update_on_leases_to_the_service_account() -> None:
    role, binding = one("Role", LEASE_ROLE, HA), one("RoleBinding", LEASE_ROLE, HA)
    sa, lease = one("ServiceAccount", directory=HA), raw_config(HA)["ha"]["lease"]
    assert lease_grants(role) == LEASE_GRANTS
    assert role["metadata"]["namespace"] == lease["namespace"] == sa["metadata"]["namespace"]
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": lease["namespace"]}
    ]
    assert not [o for o in rendered(HA) if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_the_lease_role_lets_the_real_elector_create_renew_hand_over_and_release(
    tmp_path: Path,
) -> None:
    """Two electors with the overlay's lease config, against the API emulator; then every
    request they made must be one the overlay's Role allows, resourceNames included."""
    lease = load_config_from(HA, tmp_path).ha.lease
    assert lease is not None
    emulator = KubeEmulator()
    emulator.serve_leases()
    url = emulator.start()
    try:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "emu", "cluster": {"server": url}}],
                    "users": [{"name": "sa", "user": {"token": "t"}}],
                    "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "sa"}}],
                    "current-context": "emu",
                }
            )
        )
        cfg = lease.model_copy(
            update={"connection": KubernetesConnection(kubeconfig=str(kubeconfig))}
        )
        clock = SimClock()
        a = LeaseElector.from_config(cfg, clock, identity="pod-a")
        b = LeaseElector.from_config(cfg, clock, identity="pod-b")
        assert a.try_acquire_or_renew() is True  # creates the Lease
        assert b.try_acquire_or_renew() is False
        clock.sleep(lease.renew_every_seconds)
        assert a.try_acquire_or_renew() is True  # renews
        a.release()  # SIGTERM in a rolling update
        assert b.try_acquire_or_renew() is True  # takes over
    finally:
        emulator.stop()
    role = one("Role", LEASE_ROLE, HA)
    calls = emulator.calls
    assert {c.verb for c in calls} == {"get", "create", "update"}
    for c in calls:
        assert c.status in (200, 201) or (c.verb, c.status) == ("get", 404), c
        assert c.namespace == role["metadata"]["namespace"], c
        assert rbac_allows(role, c.verb, c.group, c.resource, c.name), c


def test_the_lease_role_checks_catch_a_wider_or_a_too_narrow_role() -> None:
    wider = copy.deepcopy(one("Role", LEASE_ROLE, HA))
    wider["rules"][0]["verbs"].append("patch")
    assert lease_grants(wider) != LEASE_GRANTS
    narrow = copy.deepcopy(one("Role", LEASE_ROLE, HA))
    for rule in narrow["rules"]:
        rule["resourceNames"] = ["mlops-supervisor"]
    group = "coordination.k8s.io"
    assert not rbac_allows(narrow, "create", group, "leases", "mlops-supervisor")
    assert rbac_allows(narrow, "update", group, "leases", "mlops-supervisor")
    assert not rbac_allows(narrow, "update", group, "leases", "another-lease")


def test_the_disruption_budget_keeps_one_of_the_deployments_pods() -> None:
    pdb, dep = one("PodDisruptionBudget", directory=HA), one("Deployment", directory=HA)
    assert pdb["metadata"]["namespace"] == dep["metadata"]["namespace"]
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert selector and selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert selector == dep["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] == 1 < dep["spec"]["replicas"]
