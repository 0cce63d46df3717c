"""The deploy port on Kubernetes: :class:`KubernetesDeploy` reads and moves KServe canaries and
plain Deployments.

Every write is a bounded read-check-patch loop. Each round reads the object, returns at once if
it already is in the intended state (so a replay after a crash writes nothing), checks the
caller's ``expected_version`` precondition (raising :class:`supervisor.ActionError` with nothing
written when it fails), and sends one patch guarded by the ``resourceVersion`` it read. A 409
or an unknown outcome (5xx, connection lost) starts the next round; nothing is resent blindly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from supervisor import ActionError, BackendError, Clock, SystemClock
from tools._ports import DeploymentStatus

from . import _deployment, _kserve
from ._api import (
    DEPLOYMENT,
    INFERENCE_SERVICE,
    JSON_PATCH,
    MERGE_PATCH,
    Conflict,
    KubeApi,
    OutcomeUnknown,
    Resource,
    connect,
)
from ._config import DeploymentTarget, KServeTarget, KubernetesConfig

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

Body = dict[str, Any] | list[dict[str, Any]]
#: Given the object read and its status: the patch body and its content type.
Builder = Callable[[dict[str, Any], DeploymentStatus], tuple[Body, str]]


class KubernetesDeploy:
    """DeployReader and DeployWriter over the Kubernetes API (KServe and Deployments).

    ``api_client`` is built from ``config.connection`` unless one is given (tests pass a
    client pointed at an emulator). ``clock`` paces retries.
    """

    def __init__(
        self,
        config: KubernetesConfig,
        *,
        api_client: ApiClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self._clock = clock or SystemClock()
        self._own_client = api_client is None
        self._client = api_client if api_client is not None else connect(config.connection)
        self.api = KubeApi(self._client, config, clock=self._clock)

    def close(self) -> None:
        """Release the connection pool if this adapter built the client."""
        if self._own_client:
            self._client.close()

    # ------------------------------------------------------------------ DeployReader

    def status(self, model: str) -> DeploymentStatus | None:
        """Current serving status, or None if the configured object does not exist."""
        target = self._target(model, BackendError)
        obj = self.api.get(_resource(target), target.namespace, target.name)
        return None if obj is None else self._read(model, target, obj)

    def traffic(self, model: str) -> list[_kserve.RevisionTraffic]:
        """The KServe predictor's traffic split, per revision with the version it serves."""
        target = self._target(model, BackendError)
        if not isinstance(target, KServeTarget):
            return []
        obj = self.api.get(INFERENCE_SERVICE, target.namespace, target.name)
        return [] if obj is None else list(_kserve.read(model, target, self.config, obj).traffic)

    # ------------------------------------------------------------------ DeployWriter

    def set_canary_weight(
        self, model: str, weight: int, *, expected_version: str
    ) -> DeploymentStatus:
        """Send ``weight`` percent to the canary, if the canary is still ``expected_version``."""
        _check_weight(weight)
        target = self._kserve_target(model, "set a canary weight")
        return self._write(
            model,
            target,
            reached=lambda s: s.canary_version == expected_version and s.canary_weight == weight,
            check=lambda s: _expect_canary(model, s, expected_version),
            build=lambda obj, _: (
                _kserve.weight_patch(self._view(model, target, obj), weight),
                MERGE_PATCH,
            ),
        )

    def promote_canary(self, model: str, *, expected_version: str) -> DeploymentStatus:
        """The canary ``expected_version`` becomes stable and takes all traffic."""
        target = self._kserve_target(model, "promote a canary")
        return self._write(
            model,
            target,
            reached=lambda s: s.stable_version == expected_version and s.canary_version is None,
            check=lambda s: _expect_canary(model, s, expected_version),
            build=lambda obj, _: (
                _kserve.promote_patch(self._view(model, target, obj), target, self.config),
                MERGE_PATCH,
            ),
        )

    def abort_canary(self, model: str, *, expected_version: str) -> DeploymentStatus:
        """Send all traffic back to stable and drop the canary ``expected_version``."""
        target = self._kserve_target(model, "abort a canary")
        return self._write(
            model,
            target,
            reached=lambda s: s.canary_version is None and s.stable_version != expected_version,
            check=lambda s: _expect_canary(model, s, expected_version),
            build=lambda obj, _: (
                _kserve.abort_patch(self._view(model, target, obj), target, self.config),
                MERGE_PATCH,
            ),
        )

    def serve_version(
        self, model: str, version: str, *, expected_version: str, canary_weight: int = 0
    ) -> DeploymentStatus:
        """Serve ``version``: as stable (rollback) or as a canary at ``canary_weight`` percent.

        ``expected_version`` is the stable version the caller saw. A plain Deployment has no
        canary: it takes only ``canary_weight=0``.
        """
        _check_weight(canary_weight)
        target = self._target(model, ActionError)

        def reached(s: DeploymentStatus) -> bool:
            if canary_weight == 0:
                return s.stable_version == version and s.canary_version is None
            return s.canary_version == version and s.canary_weight == canary_weight

        def check(s: DeploymentStatus) -> None:
            if s.stable_version != expected_version:
                raise ActionError(
                    f"kubernetes: {model!r} serves {s.stable_version!r} as stable, not the "
                    f"expected {expected_version!r}; re-read the deployment status"
                )
            if canary_weight and version == s.stable_version:
                raise ActionError(
                    f"kubernetes: {version!r} of {model!r} already serves as stable; "
                    "it cannot be its own canary"
                )

        if isinstance(target, DeploymentTarget):
            if canary_weight:
                raise ActionError(
                    f"kubernetes: {model!r} is served by a plain Deployment, which cannot run "
                    f"a canary at {canary_weight}%; serve it with canary_weight=0 or use KServe"
                )
            dep = target
            return self._write(
                model,
                target,
                reached=reached,
                check=check,
                build=lambda obj, _: (_deployment.version_patch(dep, obj, version), JSON_PATCH),
            )
        isvc = target
        return self._write(
            model,
            target,
            reached=reached,
            check=check,
            build=lambda obj, _: (
                _kserve.serve_patch(
                    self._view(model, isvc, obj), isvc, self.config, version, canary_weight
                ),
                MERGE_PATCH,
            ),
        )

    # ------------------------------------------------------------------ internals

    def _write(
        self,
        model: str,
        target: KServeTarget | DeploymentTarget,
        *,
        reached: Callable[[DeploymentStatus], bool],
        check: Callable[[DeploymentStatus], None],
        build: Builder,
    ) -> DeploymentStatus:
        res = _resource(target)
        where = f"{res.kind} {target.namespace}/{target.name}"
        trouble: list[str] = []
        for attempt in range(self.config.write_attempts):
            try:
                obj = self.api.get(res, target.namespace, target.name)
                if obj is None:
                    raise ActionError(
                        f"kubernetes: {where} of model {model!r} does not exist; check "
                        "deployment.namespace and deployment.name in the config"
                    )
                status = self._read(model, target, obj)
            except BackendError as err:
                raise ActionError(str(err)) from err
            if reached(status):
                return status
            check(status)
            body, content_type = build(obj, status)
            try:
                after = self.api.patch(
                    res, target.namespace, target.name, body, content_type=content_type
                )
            except Conflict as err:
                trouble.append(f"409 conflict ({err})")
                continue
            except OutcomeUnknown as err:
                trouble.append(f"outcome unknown ({err})")
                self._clock.sleep(
                    min(self.config.backoff_max_s, self.config.backoff_s * 2**attempt)
                )
                continue
            try:
                return self._read(model, target, after)
            except BackendError as err:
                raise ActionError(str(err)) from err
        raise ActionError(
            f"kubernetes: gave up on {where} after {self.config.write_attempts} attempt(s): "
            f"{'; '.join(trouble)}; something else keeps changing it: re-read the deployment status"
        )

    def _read(
        self, model: str, target: KServeTarget | DeploymentTarget, obj: dict[str, Any]
    ) -> DeploymentStatus:
        if isinstance(target, KServeTarget):
            return _kserve.read(model, target, self.config, obj).status
        return _deployment.read(model, target, obj)

    def _view(self, model: str, target: KServeTarget, obj: dict[str, Any]) -> _kserve.KServeView:
        return _kserve.read(model, target, self.config, obj)

    def _target(
        self, model: str, error: type[BackendError] | type[ActionError]
    ) -> KServeTarget | DeploymentTarget:
        target = self.config.models.get(model)
        if target is None:
            raise error(
                f"kubernetes: model {model!r} has no deploy target; configured: "
                f"{sorted(self.config.models)!r}"
            )
        return target

    def _kserve_target(self, model: str, what: str) -> KServeTarget:
        target = self._target(model, ActionError)
        if not isinstance(target, KServeTarget):
            raise ActionError(
                f"kubernetes: cannot {what} of {model!r}: it is served by a plain Deployment, "
                "which has no canary; use KServe for canary rollouts"
            )
        return target


def _resource(target: KServeTarget | DeploymentTarget) -> Resource:
    return INFERENCE_SERVICE if isinstance(target, KServeTarget) else DEPLOYMENT


def _check_weight(weight: int) -> None:
    if not 0 <= weight <= 100:
        raise ActionError(f"kubernetes: canary weight {weight!r} must be within 0..100")


def _expect_canary(model: str, status: DeploymentStatus, expected_version: str) -> None:
    if status.canary_version != expected_version:
        raise ActionError(
            f"kubernetes: canary of {model!r} is {status.canary_version!r}, not the expected "
            f"{expected_version!r}; re-read the deployment status"
        )
