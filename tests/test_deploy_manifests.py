"""deploy/: the Kustomize base renders, and every object is valid for the API server; the
PrometheusRule's and the dashboard's PromQL parse (promtool) and name only metrics the service
exposes; the ConfigMaps match the repo's policies and playbooks and the config loads; the
Dockerfile runs the service as a non-root user with a health check. The several-replica overlay
renders valid objects, changes only what running several replicas needs, and its lease Role
lets the real elector lead and grants nothing more.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from kube_emulator import KubeEmulator
from kube_schemas import validate_core

from supervisor import SimClock
from supervisor.config import config_from_dict, load_config
from supervisor.ha import LeaseElector
from tools.kubernetes import KubernetesConnection

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "deploy" / "kustomize" / "base"
HA = REPO / "deploy" / "kustomize" / "overlays" / "ha"
DASHBOARD = REPO / "deploy" / "grafana" / "mlops-supervisor.json"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


@cache
def rendered(directory: Path = BASE) -> tuple[dict[str, Any], ...]:
    """The objects `kubectl kustomize directory` renders (a base or an overlay)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (for `kubectl kustomize`) is not installed")
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def one(kind: str, name: str | None = None, directory: Path = BASE) -> dict[str, Any]:
    [obj] = [
        o
        for o in rendered(directory)
        if o["kind"] == kind and (name is None or o["metadata"]["name"].startswith(name))
    ]
    return obj


@cache
def exposed_metrics() -> frozenset[str]:
    """Every sample name the service's /metrics can show (families and their suffixes)."""
    from prometheus_client.parser import text_string_to_metric_families

    from supervisor.metrics import SupervisorMetrics

    text = SupervisorMetrics(models=["m"]).render().decode()
    names = {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}
    # Families with no sample until the first report (drift gauges): named by HELP lines.
    names |= set(re.findall(r"^# HELP (\S+)", text, flags=re.M))
    return frozenset(names)


def promtool_check(groups: list[dict[str, Any]], tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    res = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stdout + res.stderr


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(mlops_supervisor_[a-z_]+)", expr))


# ------------------------------------------------------------------ Kubernetes objects


def test_the_base_renders_every_object_the_service_needs() -> None:
    kinds = sorted(o["kind"] for o in rendered())
    assert kinds == sorted(
        [
            "ConfigMap",
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "Namespace",
            "PersistentVolumeClaim",
            "PrometheusRule",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]
    )


@pytest.mark.parametrize("directory", [BASE, HA], ids=["base", "overlay-ha"])
def test_every_core_object_is_valid_for_kubernetes_1_30(directory: Path) -> None:
    checked = 0
    for obj in rendered(directory):
        if obj["kind"] in CRD_KINDS:
            continue
        validate_core(obj)
        checked += 1
    assert checked == len(rendered(directory)) - len(CRD_KINDS)


def test_an_invalid_object_is_caught() -> None:
    """The validation above can fail: an unknown field in the Deployment is rejected."""
    bad = json.loads(json.dumps(one("Deployment")))
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy_"] = "Always"
    with pytest.raises(ValueError):
        validate_core(bad)


_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_META = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": _LABELS},
}
SERVICE_MONITOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": _META,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": _LABELS},
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}
_DURATION = {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d|w|y))+$"}
PROMETHEUS_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": _META,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string"},
                            "interval": _DURATION,
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["alert", "expr"],
                                    "properties": {
                                        "alert": {"type": "string", "pattern": "^[A-Za-z]+$"},
                                        "expr": {"type": "string"},
                                        "for": _DURATION,
                                        "labels": _LABELS,
                                        "annotations": {
                                            "type": "object",
                                            "required": ["summary", "description"],
                                            "additionalProperties": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}


@pytest.mark.parametrize(
    ("kind", "schema"),
    [("ServiceMonitor", SERVICE_MONITOR), ("PrometheusRule", PROMETHEUS_RULE)],
)
def test_prometheus_operator_objects_have_the_crd_structure(
    kind: str, schema: dict[str, Any]
) -> None:
    jsonschema.validate(one(kind), schema)
    broken = json.loads(json.dumps(one(kind)))
    broken["spec"]["unknownField"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_the_servicemonitor_scrapes_the_service_port() -> None:
    svc, sm, dep = one("Service"), one("ServiceMonitor"), one("Deployment")
    labels = svc["metadata"]["labels"]
    assert sm["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert sm["spec"]["endpoints"][0]["port"] in {p["name"] for p in svc["spec"]["ports"]}
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert svc["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}


# ------------------------------------------------------------------ the Deployment


def test_the_deployment_runs_the_service_safely() -> None:
    dep = one("Deployment")
    pod = dep["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert pod["serviceAccountName"] == one("ServiceAccount")["metadata"]["name"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # the state directory is a volume; config, policies and playbooks come from the ConfigMaps
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config = service_config()
    assert (
        volumes[mounts[str(config.state_dir)]]["persistentVolumeClaim"]["claimName"]
        == one("PersistentVolumeClaim")["metadata"]["name"]
    )
    for path, cm in (
        (config.policy_file.parent, "mlops-supervisor-policies"),
        (config.playbooks_dir, "mlops-supervisor-playbooks"),
        (Path(container["args"][1]).parent, "mlops-supervisor-config"),
    ):
        assert (
            volumes[mounts[str(path)]]["configMap"]["name"]
            == one("ConfigMap", cm)["metadata"]["name"]
        )
    # the approval token comes from a Secret, under the name the config reads
    env = {e["name"]: e for e in container["env"]}
    token = env[config.service.approval_token_env]["valueFrom"]["secretKeyRef"]
    assert token["name"] == "mlops-supervisor-secrets" and "optional" not in token
    # shutdown: Kubernetes waits longer than the service's own grace
    assert pod["terminationGracePeriodSeconds"] > config.service.shutdown_grace_seconds + 5
    assert container["ports"][0]["containerPort"] == config.service.port


def test_the_probes_name_routes_the_service_serves(tmp_path: Path) -> None:
    from servicekit import make_service

    app, runtime, backends = make_service(tmp_path)
    try:
        paths = {getattr(r, "path", None) for r in app.routes}
        container = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["path"] in paths
        assert one("ServiceMonitor")["spec"]["endpoints"][0]["path"] in paths
    finally:
        runtime.shutdown(grace=1)
        runtime.supervisor.close()
        backends.close()


# ------------------------------------------------------------------ ConfigMaps and RBAC


def raw_config(directory: Path = BASE) -> dict[str, Any]:
    text = one("ConfigMap", "mlops-supervisor-config", directory)["data"]["config.yaml"]
    raw: dict[str, Any] = yaml.safe_load(text)
    return raw


def service_config() -> Any:
    return config_from_dict(raw_config(), source="deploy config.yaml")


def test_the_configmaps_hold_the_repo_policies_and_playbooks() -> None:
    policies = one("ConfigMap", "mlops-supervisor-policies")["data"]
    assert policies == {"default.yaml": (REPO / "policies" / "default.yaml").read_text()}
    playbooks = one("ConfigMap", "mlops-supervisor-playbooks")["data"]
    assert playbooks == {p.name: p.read_text() for p in sorted((REPO / "playbooks").glob("*.yaml"))}


def test_the_config_loads_and_its_policy_and_playbooks_are_valid(tmp_path: Path) -> None:
    from supervisor.policy import load_policy
    from supervisor.reasoners import load_playbooks

    config = service_config()
    assert config.service.host == "0.0.0.0" and config.service.check_interval_seconds > 0
    assert config.backends.kubernetes is not None
    assert config.backends.kubernetes.connection.mode == "in_cluster"
    for name, text in one("ConfigMap", "mlops-supervisor-policies")["data"].items():
        (tmp_path / name).write_text(text)
        load_policy(tmp_path / name)
    books = tmp_path / "playbooks"
    books.mkdir()
    for name, text in one("ConfigMap", "mlops-supervisor-playbooks")["data"].items():
        (books / name).write_text(text)
    assert len(load_playbooks(books).playbooks) == len(list((REPO / "playbooks").glob("*.yaml")))


def test_rbac_is_the_least_privilege_role_of_deploy_rbac() -> None:
    reference = {
        (o["kind"], o["metadata"]["name"]): o
        for o in yaml.safe_load_all((REPO / "deploy" / "rbac" / "supervisor-rbac.yaml").read_text())
    }
    for kind in ("ServiceAccount", "Role", "RoleBinding"):
        obj = one(kind)
        ref = reference[(kind, obj["metadata"]["name"])]
        assert obj["metadata"]["namespace"] == ref["metadata"]["namespace"]
        for key in ("rules", "roleRef", "subjects"):
            assert obj.get(key) == ref.get(key), (kind, key)
    assert not [o for o in rendered() if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


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


# ------------------------------------------------------------------ PromQL


def test_prometheus_rule_expressions_parse_and_use_exposed_metrics(tmp_path: Path) -> None:
    groups = one("PrometheusRule")["spec"]["groups"]
    promtool_check(groups, tmp_path)
    used = {m for g in groups for r in g["rules"] for m in metric_names(r["expr"])}
    assert used and used <= exposed_metrics(), used - exposed_metrics()


def test_promtool_rejects_a_broken_expression(tmp_path: Path) -> None:
    with pytest.raises(AssertionError):
        promtool_check(
            [{"name": "x", "rules": [{"alert": "X", "expr": "sum(rate(up[5m])"}]}], tmp_path
        )


def _dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_dashboard_queries_parse_and_use_exposed_metrics(tmp_path: Path) -> None:
    substitutions = {"$__rate_interval": "5m", "$job": "mlops-supervisor", "$model": ".*"}
    rules = []
    for i, expr in enumerate(_dashboard_exprs()):
        for var, value in substitutions.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    promtool_check([{"name": "dashboard", "rules": rules}], tmp_path)
    used = {m for e in _dashboard_exprs() for m in metric_names(e)}
    assert used <= exposed_metrics(), used - exposed_metrics()


def test_dashboard_covers_every_metric_family_of_the_brief() -> None:
    used = {m for e in _dashboard_exprs() for m in metric_names(e)}
    for family in (
        "mlops_supervisor_incidents_current",  # incidents by state
        "mlops_supervisor_actions_total",  # actions by type and outcome
        "mlops_supervisor_guard_decisions_total",  # guard decisions
        "mlops_supervisor_decision_latency_seconds_bucket",  # decision latency histogram
        "mlops_supervisor_llm_tokens_total",  # LLM tokens
        "mlops_supervisor_drift_share",  # drift figures
        "mlops_supervisor_feature_drift_score",
    ):
        assert family in used, family
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource", "job", "model"}


# ------------------------------------------------------------------ Dockerfile


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_runs_serve_as_a_non_root_user_with_a_health_check() -> None:
    steps = _instructions()
    assert steps[0][0] == "FROM"
    last_from = max(i for i, (w, _) in enumerate(steps) if w == "FROM")
    final = steps[last_from:]
    users = [rest for w, rest in final if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(w == "HEALTHCHECK" and "/healthz" in rest for w, rest in final)
    [entrypoint] = [json.loads(rest) for w, rest in final if w == "ENTRYPOINT"]
    assert entrypoint == ["mlops-supervisor", "serve"]
    [cmd] = [json.loads(rest) for w, rest in final if w == "CMD"]
    dep = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert cmd == dep["args"]  # the image's default and the Deployment agree
    assert [rest for w, rest in final if w == "EXPOSE"] == [str(dep["ports"][0]["containerPort"])]
    # every COPY source exists in the build context (the repository root)
    for w, rest in steps:
        if w == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                assert (REPO / src).exists(), src
