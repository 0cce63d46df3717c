"""The HTTP side of the adapter: GET and PATCH of one namespaced object through the official
``kubernetes`` client, with every failure turned into a supervisor error that says what to fix.

Retry policy: a read is retried on connection errors and 5xx answers, up to ``read_retries``
extra attempts with exponential backoff on the injected clock. A write is never repeated here:
an answer of 409 (stale ``resourceVersion``) or an unknown outcome (5xx, connection lost) is
raised as :class:`Conflict` / :class:`OutcomeUnknown`, and the writer re-reads the object and
decides again. 4xx answers are not retried: asking again cannot help.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from supervisor import ActionError, BackendError, Clock, SystemClock

from ._config import KubernetesConfig, KubernetesConnection

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

Verb = Literal["get", "patch"]
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

_SHOWN_CHARS = 300


@dataclass(frozen=True)
class Resource:
    """A namespaced API resource the adapter reads and patches."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def qualified(self) -> str:
        """``plural.group`` as RBAC rules and kubectl name it, e.g. ``deployments.apps``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


INFERENCE_SERVICE = Resource(
    "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"
)
DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment")


class Conflict(Exception):
    """409: the object changed since it was read (stale ``resourceVersion``)."""


class OutcomeUnknown(Exception):
    """A write got no clear answer (5xx, connection lost): it may or may not have applied."""


def connect(connection: KubernetesConnection) -> ApiClient:
    """An ``ApiClient`` for ``connection``; the client's own retries are off (ours apply)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        if connection.mode == "in_cluster":
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=connection.kubeconfig,
                context=connection.context,
                client_configuration=configuration,
                persist_config=False,
            )
    except (ConfigException, OSError) as err:
        where = (
            "the pod's service account"
            if connection.mode == "in_cluster"
            else (
                f"kubeconfig {connection.kubeconfig or '$KUBECONFIG or ~/.kube/config'!r}"
                f" (context {connection.context or 'current'!r})"
            )
        )
        raise BackendError(
            f"kubernetes: cannot load credentials from {where}: {err}; "
            "fix deploy.kubernetes.connection in the config"
        ) from err
    configuration.retries = 0
    return client.ApiClient(configuration)


class KubeApi:
    """GET and PATCH of namespaced objects, counted, bounded and with explained failures."""

    def __init__(
        self, api_client: ApiClient, config: KubernetesConfig, *, clock: Clock | None = None
    ) -> None:
        from kubernetes.client import AppsV1Api, CustomObjectsApi

        self._client = api_client
        self._config = config
        self._clock = clock or SystemClock()
        self._custom = CustomObjectsApi(api_client)
        self._apps = AppsV1Api(api_client)
        self._timeout = config.connection.timeout_s
        #: HTTP requests sent, retries included.
        self.requests_sent = 0

    # ------------------------------------------------------------------ reads

    def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as a JSON dict, or None if it does not exist."""
        attempt = 0
        while True:
            try:
                return self._call("get", res, namespace, name)
            except OutcomeUnknown as err:
                if attempt >= self._config.read_retries:
                    raise BackendError(
                        f"kubernetes: GET {res.kind} {namespace}/{name} failed after "
                        f"{attempt + 1} attempt(s): {err}; check that the API server is reachable"
                    ) from err
                self._clock.sleep(
                    min(self._config.backoff_max_s, self._config.backoff_s * 2**attempt)
                )
                attempt += 1
            except _NotFound:
                return None

    # ------------------------------------------------------------------ writes

    def patch(
        self,
        res: Resource,
        namespace: str,
        name: str,
        body: dict[str, Any] | list[dict[str, Any]],
        *,
        content_type: str,
    ) -> dict[str, Any]:
        """Send one patch; the object after it. Raises Conflict, OutcomeUnknown or ActionError."""
        try:
            obj = self._call("patch", res, namespace, name, body=body, content_type=content_type)
        except _NotFound as err:
            raise ActionError(
                f"kubernetes: {res.kind} {namespace}/{name} does not exist (404 on patch); "
                "check deployment.namespace and deployment.name of the model in the config"
            ) from err
        assert obj is not None
        return obj

    # ------------------------------------------------------------------ the one call site

    def _call(
        self,
        verb: Verb,
        res: Resource,
        namespace: str,
        name: str,
        *,
        body: dict[str, Any] | list[dict[str, Any]] | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any] | None:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        self.requests_sent += 1
        patch_body = body if body is not None else {}
        try:
            answer: object
            if res == DEPLOYMENT:
                if verb == "get":
                    answer = self._apps.read_namespaced_deployment(
                        name, namespace, _request_timeout=self._timeout
                    )
                else:
                    answer = self._apps.patch_namespaced_deployment(
                        name,
                        namespace,
                        patch_body,
                        _content_type=content_type,
                        _request_timeout=self._timeout,
                    )
                answer = self._client.sanitize_for_serialization(answer)
            elif verb == "get":
                answer = self._custom.get_namespaced_custom_object(
                    res.group,
                    res.version,
                    namespace,
                    res.plural,
                    name,
                    _request_timeout=self._timeout,
                )
            else:
                answer = self._custom.patch_namespaced_custom_object(
                    res.group,
                    res.version,
                    namespace,
                    res.plural,
                    name,
                    patch_body,
                    _content_type=content_type,
                    _request_timeout=self._timeout,
                )
        except ApiException as err:
            raise self._explain(verb, res, namespace, name, err) from err
        except urllib3.exceptions.HTTPError as err:
            raise OutcomeUnknown(f"connection to the API server failed: {err}") from err
        if not isinstance(answer, dict):
            raise BackendError(
                f"kubernetes: {verb} {res.kind} {namespace}/{name} answered "
                f"{type(answer).__name__}, not a JSON object"
            )
        return answer

    def _explain(self, verb: Verb, res: Resource, namespace: str, name: str, err: Any) -> Exception:
        status = int(err.status or 0)
        detail = _status_message(err.body)
        error = ActionError if verb == "patch" else BackendError
        what = f"{verb} {res.kind} {namespace}/{name}"
        if status == 404:
            owner = "KServe" if res == INFERENCE_SERVICE else f"API group {res.group!r}"
            details = _status_details(err.body)
            if details.get("name") == name:
                return _NotFound(detail)
            return error(
                f"kubernetes: {what}: the API server does not serve {res.qualified}/"
                f"{res.version} (404: {detail}); is {owner} installed, "
                "and is the API version right?"
            )
        if status == 409:
            return Conflict(detail)
        if status == 403:
            return error(
                f"kubernetes: {what} is forbidden (403: {detail}); the supervisor's Role lacks "
                f"verb {verb!r} on resource {res.plural!r} in API group {res.group!r} in namespace "
                f"{namespace!r}: apply deploy/rbac/ (Role and RoleBinding) in that namespace"
            )
        if status == 401:
            return error(
                f"kubernetes: {what} was refused as unauthenticated (401: {detail}); the "
                "credentials in the kubeconfig or the service-account token are missing or expired"
            )
        if status == 422:
            return error(
                f"kubernetes: {what} was rejected as invalid (422: {detail}); the object does not "
                f"match the {res.kind} schema the adapter expects: check the object by hand"
            )
        if status == 0 or status >= 500 or status == 429:
            return OutcomeUnknown(f"HTTP {status or 'error'}: {detail or err.reason}")
        return error(f"kubernetes: {what} failed (HTTP {status}: {detail or err.reason})")


class _NotFound(Exception):
    """404 naming the object itself: it does not exist."""


def _status_payload(body: object) -> dict[str, Any]:
    if not isinstance(body, str | bytes):
        return {}
    try:
        payload = json.loads(body)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _status_message(body: object) -> str:
    message = _status_payload(body).get("message")
    if isinstance(message, str):
        return message
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}… ({len(text)} chars)"


def _status_details(body: object) -> dict[str, Any]:
    details = _status_payload(body).get("details")
    return details if isinstance(details, dict) else {}
