"""KServe ``InferenceService`` (v1beta1): serving status from the object, and the merge patches
that move a canary (see the module docstring of ``_config`` for how versions are mapped).

KServe canary semantics the patches follow (serverless mode):

* a new ``spec.predictor.model.storageUri`` plus ``canaryTrafficPercent: N`` creates a revision
  that gets N percent; the rest stays on ``latestRolledoutRevision``;
* changing ``canaryTrafficPercent`` moves the split;
* removing ``canaryTrafficPercent`` promotes: the latest revision takes all traffic;
* rollback is ``canaryTrafficPercent: 0``, which pins all traffic to the last rolled-out
  revision. The abort also puts the stable model back in the spec, so the spec says what serves
  and a later promotion cannot resurrect the aborted model.

Every patch carries ``metadata.resourceVersion``: the API server applies it only to the object
the decision was made on, and answers 409 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from supervisor import ActionError, BackendError
from tools._ports import DeploymentStatus

from ._config import KServeTarget, KubernetesConfig


@dataclass(frozen=True)
class RevisionTraffic:
    """One entry of ``status.components.predictor.traffic`` with the model version it serves."""

    revision: str
    percent: int
    latest: bool
    version: str | None


@dataclass(frozen=True)
class KServeView:
    """What the adapter reads from one InferenceService."""

    status: DeploymentStatus
    storage_uri: str | None
    stable_storage_uri: str | None
    canary_traffic_percent: int | None
    traffic: tuple[RevisionTraffic, ...]


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _where(target: KServeTarget) -> str:
    return f"InferenceService {target.namespace}/{target.name}"


def read(
    model: str, target: KServeTarget, config: KubernetesConfig, obj: dict[str, Any]
) -> KServeView:
    """Serving status of ``model`` from its InferenceService ``obj``."""
    meta = _dict(obj.get("metadata"))
    annotations = _dict(meta.get("annotations"))
    predictor = _dict(_dict(obj.get("spec")).get("predictor"))
    model_spec = predictor.get("model")
    if not isinstance(model_spec, dict):
        raise BackendError(
            f"kubernetes: {_where(target)} has no spec.predictor.model; the adapter supports the "
            "KServe >= 0.8 predictor schema (predictor.model.storageUri) only"
        )
    uri = model_spec.get("storageUri")
    uri = uri if isinstance(uri, str) else None
    annotated = annotations.get(target.version_annotation)
    parsed = target.version_of_uri(uri) if uri else None
    if annotated and parsed and annotated != parsed:
        # someone changed one without the other: which model serves is unknowable
        raise BackendError(
            f"kubernetes: {_where(target)} says version {annotated!r} in "
            f"{target.version_annotation} but its storageUri {uri!r} is version {parsed!r}; "
            "make them agree"
        )
    spec_version = annotated or parsed
    if not spec_version:
        raise BackendError(
            f"kubernetes: cannot tell which model version {_where(target)} serves: annotate it "
            f"with {target.version_annotation}=<version>, or set storage_uri_template so that it "
            f"matches its storageUri {uri!r}"
        )
    ctp_raw = predictor.get("canaryTrafficPercent")
    ctp = int(ctp_raw) if isinstance(ctp_raw, int) else None

    components = _dict(_dict(obj.get("status")).get("components"))
    status_pred = _dict(components.get("predictor"))
    raw_traffic = [t for t in status_pred.get("traffic") or [] if isinstance(t, dict)]
    stable_version = annotations.get(config.stable_version_key())
    stable_uri = annotations.get(config.stable_uri_key())
    # Every write of the adapter leaves canary-version equal to the spec's version; when they
    # differ, someone changed the model by hand and the stable-* annotations are stale.
    bookkept = bool(stable_version) and annotations.get(config.canary_version_key()) == spec_version

    canary: str | None = None
    weight = 0
    stable = spec_version
    if ctp is not None and bookkept and stable_version != spec_version:
        stable, canary, weight = str(stable_version), spec_version, ctp
    elif ctp is not None and not bookkept and any(not t.get("latestRevision") for t in raw_traffic):
        raise BackendError(
            f"kubernetes: {_where(target)} runs a canary (canaryTrafficPercent={ctp}) the "
            "supervisor did not start, so it cannot tell which version the stable revision "
            f"{status_pred.get('latestRolledoutRevision')!r} serves; annotate the object with "
            f"{config.stable_version_key()}=<version>, {config.stable_uri_key()}=<storageUri> "
            f"and {config.canary_version_key()}={spec_version}"
        )
    if canary is None:
        stable_uri = uri

    traffic = tuple(
        RevisionTraffic(
            revision=str(t.get("revisionName", "")),
            percent=int(t.get("percent") or 0),
            latest=bool(t.get("latestRevision")),
            version=spec_version if t.get("latestRevision") else stable,
        )
        for t in raw_traffic
    )
    conditions = _dict(obj.get("status")).get("conditions") or []
    ready_condition = any(
        _dict(c).get("type") == "Ready" and _dict(c).get("status") == "True" for c in conditions
    )
    observed = _dict(obj.get("status")).get("observedGeneration")
    current = observed is None or observed == meta.get("generation")
    latest_percent = sum(t.percent for t in traffic if t.latest)
    wanted = weight if canary is not None else (100 if ctp is None else ctp)
    status = DeploymentStatus(
        model=model,
        environment=target.environment,
        stable_version=stable,
        canary_version=canary,
        canary_weight=weight,
        ready=ready_condition and current and bool(traffic) and latest_percent == wanted,
        resource_version=str(meta.get("resourceVersion", "0")),
    )
    return KServeView(
        status=status,
        storage_uri=uri,
        stable_storage_uri=stable_uri,
        canary_traffic_percent=ctp,
        traffic=traffic,
    )


# --------------------------------------------------------------------------- patches


def _patch(
    view: KServeView,
    *,
    annotations: dict[str, str | None] | None = None,
    predictor: dict[str, Any],
) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": view.status.resource_version}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"predictor": predictor}}


def weight_patch(view: KServeView, weight: int) -> dict[str, Any]:
    """Send ``weight`` percent to the canary revision."""
    return _patch(view, predictor={"canaryTrafficPercent": weight})


def promote_patch(
    view: KServeView, target: KServeTarget, config: KubernetesConfig
) -> dict[str, Any]:
    """Remove ``canaryTrafficPercent``: the latest revision takes all traffic. The bookkeeping
    now records the promoted version as stable, so a later hand-made canary is not misread."""
    canary = view.status.canary_version or view.status.stable_version
    return _patch(
        view,
        annotations={
            config.stable_version_key(): canary,
            config.stable_uri_key(): view.storage_uri,
            config.canary_version_key(): canary,
        },
        predictor={"canaryTrafficPercent": None},
    )


def abort_patch(view: KServeView, target: KServeTarget, config: KubernetesConfig) -> dict[str, Any]:
    """Pin all traffic to the stable revision and put the stable model back in the spec."""
    stable = view.status.stable_version
    uri = view.stable_storage_uri or target.storage_uri(stable)
    if uri is None:
        raise ActionError(
            f"kubernetes: cannot restore the stable model {stable!r} of {_where(target)}: its "
            "storageUri was not recorded and storage_uri_template is not configured; set it"
        )
    return _patch(
        view,
        annotations={target.version_annotation: stable, config.canary_version_key(): stable},
        predictor={"canaryTrafficPercent": 0, "model": {"storageUri": uri}},
    )


def serve_patch(
    view: KServeView, target: KServeTarget, config: KubernetesConfig, version: str, weight: int
) -> dict[str, Any]:
    """Serve ``version``: as a canary at ``weight`` percent, or (weight 0) roll it out fully."""
    uri = target.storage_uri(version)
    if uri is None:
        raise ActionError(
            f"kubernetes: cannot serve version {version!r} on {_where(target)}: "
            "storage_uri_template is not configured for the model, so its storageUri is unknown"
        )
    if weight == 0:
        return _patch(
            view,
            annotations={
                target.version_annotation: version,
                config.stable_version_key(): version,
                config.stable_uri_key(): uri,
                config.canary_version_key(): version,
            },
            predictor={"canaryTrafficPercent": None, "model": {"storageUri": uri}},
        )
    stable = view.status.stable_version
    stable_uri = view.stable_storage_uri or target.storage_uri(stable)
    if stable_uri is None:
        raise ActionError(
            f"kubernetes: cannot start a canary on {_where(target)}: the stable model's "
            "storageUri is unknown, so an abort could not restore it"
        )
    return _patch(
        view,
        annotations={
            target.version_annotation: version,
            config.stable_version_key(): stable,
            config.stable_uri_key(): stable_uri,
            config.canary_version_key(): version,
        },
        predictor={"canaryTrafficPercent": weight, "model": {"storageUri": uri}},
    )
