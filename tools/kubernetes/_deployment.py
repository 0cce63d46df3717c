"""Plain ``apps/v1`` Deployment: the served model version lives in the pod template (an env var
on a named container, or an annotation); switching it is a rollout. No canary.

The switch is a JSON patch (RFC 6902) that touches only that one value and also sets
``/metadata/resourceVersion`` to the version read: the API server then applies it only to the
object the decision was made on, and answers 409 otherwise.
"""

from __future__ import annotations

from typing import Any

from supervisor import BackendError
from tools._ports import DeploymentStatus

from ._config import DeploymentTarget


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _where(target: DeploymentTarget) -> str:
    return f"Deployment {target.namespace}/{target.name}"


def _pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from raw path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _container_index(target: DeploymentTarget, obj: dict[str, Any]) -> int:
    pod = _dict(_dict(_dict(obj.get("spec")).get("template")).get("spec"))
    containers = [_dict(c) for c in pod.get("containers") or []]
    names = [c.get("name") for c in containers]
    if target.container is None:
        if len(containers) == 1:
            return 0
        raise BackendError(
            f"kubernetes: {_where(target)} has containers {names!r}; name the one that carries "
            f"{target.env_var} as 'container' in the model's deploy config"
        )
    if target.container not in names:
        raise BackendError(
            f"kubernetes: {_where(target)} has no container {target.container!r} (it has "
            f"{names!r}); fix 'container' in the model's deploy config"
        )
    return names.index(target.container)


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    pod = _dict(_dict(_dict(obj.get("spec")).get("template")).get("spec"))
    return [_dict(c) for c in pod.get("containers") or []]


def served_version(target: DeploymentTarget, obj: dict[str, Any]) -> str:
    """The model version the pod template names."""
    if target.version_from == "annotation":
        meta = _dict(_dict(_dict(obj.get("spec")).get("template")).get("metadata"))
        version = _dict(meta.get("annotations")).get(target.annotation)
        where = f"pod-template annotation {target.annotation!r}"
    else:
        container = _containers(obj)[_container_index(target, obj)]
        env = [_dict(e) for e in container.get("env") or []]
        entry = next((e for e in env if e.get("name") == target.env_var), None)
        if entry is not None and "valueFrom" in entry:
            raise BackendError(
                f"kubernetes: {_where(target)} takes {target.env_var} from valueFrom; the "
                "adapter needs a literal value it can switch"
            )
        version = None if entry is None else entry.get("value")
        where = f"env {target.env_var!r} of container {container.get('name')!r}"
    if not isinstance(version, str) or not version:
        raise BackendError(
            f"kubernetes: {_where(target)} does not name its model version in the {where}; "
            "set it there, or change version_from in the model's deploy config"
        )
    return version


def read(model: str, target: DeploymentTarget, obj: dict[str, Any]) -> DeploymentStatus:
    """Serving status of ``model`` from its Deployment ``obj`` (rollout status as ``ready``)."""
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    st = _dict(obj.get("status"))
    replicas = spec.get("replicas")
    wanted = replicas if isinstance(replicas, int) else 1  # the API server's default
    # As `kubectl rollout status` judges it: the controller saw this generation, every replica
    # runs the new template, no old replica is left and all of them are available.
    ready = (
        int(st.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
        and int(st.get("updatedReplicas") or 0) >= wanted
        and int(st.get("replicas") or 0) <= int(st.get("updatedReplicas") or 0)
        and int(st.get("availableReplicas") or 0) >= int(st.get("updatedReplicas") or 0)
    )
    return DeploymentStatus(
        model=model,
        environment=target.environment,
        stable_version=served_version(target, obj),
        ready=ready,
        resource_version=str(meta.get("resourceVersion", "0")),
    )


def version_patch(
    target: DeploymentTarget, obj: dict[str, Any], version: str
) -> list[dict[str, Any]]:
    """JSON patch that names ``version`` in the pod template, guarded by resourceVersion.

    The object was read with :func:`served_version` succeeding, so the env var or annotation
    exists: the patch replaces it in place.
    """
    rv = str(_dict(obj.get("metadata")).get("resourceVersion", ""))
    ops: list[dict[str, Any]] = [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": rv}
    ]
    if target.version_from == "annotation":
        path = _pointer("spec", "template", "metadata", "annotations", target.annotation)
        ops.append({"op": "replace", "path": path, "value": version})
        return ops
    i = _container_index(target, obj)
    env = [_dict(e) for e in _containers(obj)[i].get("env") or []]
    j = [e.get("name") for e in env].index(target.env_var)
    base = ("spec", "template", "spec", "containers", i, "env", j)
    # test first: the index must still hold the variable this decision was made on.
    ops.append({"op": "test", "path": _pointer(*base, "name"), "value": target.env_var})
    ops.append({"op": "replace", "path": _pointer(*base, "value"), "value": version})
    return ops
