"""Official schemas to validate what the Kubernetes adapter sends, as an API server would.

* InferenceService: the ``v1beta1`` ``openAPIV3Schema`` of KServe's CRD (``tests/data/kserve``),
  with unknown fields rejected (the API server's ``fieldValidation=Strict``), via ``jsonschema``.
* Core kinds (Deployment, Role, RoleBinding, ServiceAccount): ``kubernetes-validate``'s strict
  schemas of Kubernetes 1.30.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

CRD = Path(__file__).parent / "data" / "kserve" / "serving.kserve.io_inferenceservices.yaml"
KUBERNETES_VERSION = "1.30.0"


def _strict(schema: Any) -> Any:
    """Reject unknown fields where the structural schema lists properties and does not say
    to keep unknown ones."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def _isvc_validator() -> Any:
    import jsonschema

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load(CRD.read_text(encoding="utf-8"), Loader=loader)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    schema = _strict(version["schema"]["openAPIV3Schema"])
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def validate_isvc(obj: dict[str, Any]) -> None:
    """Raise ValueError naming each violation of the InferenceService v1beta1 schema."""
    import jsonschema

    errors = sorted(_isvc_validator().iter_errors(obj), key=jsonschema.exceptions.relevance)
    if errors:
        raise ValueError(
            "; ".join(
                f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                for e in errors[:5]
            )
        )
    if (
        obj.get("apiVersion") != "serving.kserve.io/v1beta1"
        or obj.get("kind") != "InferenceService"
    ):
        raise ValueError(
            f"not an InferenceService v1beta1: {obj.get('apiVersion')}/{obj.get('kind')}"
        )


def validate_core(obj: dict[str, Any]) -> None:
    """Raise ValueError if ``obj`` violates its kind's strict Kubernetes 1.30 schema."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        raise ValueError(f"{err.message} at {'.'.join(map(str, err.path))}") from err
