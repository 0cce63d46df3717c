"""deploy/: the Kustomize base renders, and every object is valid for the API server; the
PrometheusRule's and the dashboard's PromQL parse (promtool) and name only metrics the service
exposes; the ConfigMaps match the repo's policies and playbooks and the config loads; the
Dockerfile runs the service as a non-root user with a health check. (The several-replica
overlay: tests/test_deploy_overlay_ha.py.)
"""

from __future__ import annotations

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
from deploykit import BASE, HA, REPO, one, raw_config, rendered
from kube_schemas import validate_core

from supervisor.config import config_from_dict

DASHBOARD = REPO / "deploy" / "grafana" / "mlops-supervisor.json"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


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
    # the image installs the built wheel (package data included), not the source tree
    build = steps[:last_from]
    assert any(
        w == "RUN" and "pip wheel" in rest and "pip install /wheels/" in rest for w, rest in build
    )
    # every COPY source exists in the build context (the repository root)
    for w, rest in steps:
        if w == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                assert (REPO / src).exists(), src
