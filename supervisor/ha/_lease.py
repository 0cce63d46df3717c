"""Leader election on a Kubernetes ``coordination.k8s.io/v1`` Lease, as client-go does it.

Every replica runs a :class:`LeaseElector`. One step (:meth:`LeaseElector.try_acquire_or_renew`)
reads the Lease and then:

* creates it holding it, when there is none (a 409 AlreadyExists: another replica was first);
* renews it (``renewTime``) when this replica holds it;
* takes it over (``holderIdentity``, ``acquireTime``, ``leaseTransitions`` + 1) when the holder
  has not renewed for ``leaseDurationSeconds``, measured on this replica's clock from when it
  last saw the record change (so clock skew between replicas does not matter);
* otherwise follows.

Writes carry the ``resourceVersion`` that was read: when two replicas race, the API server lets
one write and answers 409 to the other, which then follows. A leader considers itself leader
only until ``renew_deadline`` (shorter than the lease duration) after its last successful renew,
so a leader that stalls stops acting before another replica can take over. Time comes from the
injected clock; nothing here sleeps except :meth:`LeaseElector.run`, between steps.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from supervisor._clock import Clock
from supervisor._errors import ConfigError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from ._config import LeaseConfig

log = logging.getLogger(__name__)


class LeaseElector:
    """One replica's view of the leader Lease; :meth:`is_leader` is the gate for acting."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        name: str,
        namespace: str,
        identity: str,
        clock: Clock,
        duration_seconds: int = 15,
        renew_deadline_seconds: float | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        from kubernetes.client import CoordinationV1Api

        if not identity:
            raise ConfigError("a lease elector needs a non-empty identity (holderIdentity)")
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.clock = clock
        self.duration = timedelta(seconds=duration_seconds)
        # client-go's default ratio (10 s of 15 s): step down well before a rival may take over.
        deadline = renew_deadline_seconds or duration_seconds * 2 / 3
        if deadline >= duration_seconds:
            raise ConfigError(
                f"renew deadline {deadline!r} s must be shorter than the lease duration "
                f"{duration_seconds!r} s, or two replicas could both act"
            )
        self.renew_deadline = timedelta(seconds=deadline)
        self._api = CoordinationV1Api(api_client)
        self._timeout = timeout_s
        self._lock = threading.Lock()
        self._renewed_at: datetime | None = None
        self._observed: tuple[str | None, str | None] | None = None  # (holder, renewTime)
        self._observed_at: datetime | None = None
        #: The holder seen on the last read (None: no lease or nobody holds it).
        self.observed_holder: str | None = None

    @classmethod
    def from_config(
        cls, config: LeaseConfig, clock: Clock, *, identity: str | None = None
    ) -> LeaseElector:
        """An elector for ``ha.lease``; the identity comes from ``identity_env`` or the host."""
        from tools.kubernetes._api import connect

        who = identity or os.environ.get(config.identity_env) or socket.gethostname()
        return cls(
            connect(config.connection),
            name=config.name,
            namespace=config.namespace,
            identity=who,
            clock=clock,
            duration_seconds=config.duration_seconds,
            timeout_s=config.connection.timeout_s,
        )

    # ------------------------------------------------------------------ the gate

    def is_leader(self) -> bool:
        """True while this replica holds the Lease and renewed it within the renew deadline."""
        with self._lock:
            return (
                self._renewed_at is not None
                and self.clock.now() < self._renewed_at + self.renew_deadline
            )

    # ------------------------------------------------------------------ one step

    def try_acquire_or_renew(self) -> bool:
        """Read the Lease, then create, renew, take over or follow; returns :meth:`is_leader`.

        API errors never raise: a replica that cannot reach the API server keeps its old view
        and so stops leading at its renew deadline.
        """
        with self._lock:
            was = self._leading_locked()
            try:
                self._step()
            except _api_errors() as err:
                log.warning("lease %s/%s: %s", self.namespace, self.name, _explain(err))
            now = self._leading_locked()
        if now != was:
            log.info(
                "lease %s/%s: %s %s leader",
                self.namespace,
                self.name,
                self.identity,
                "became" if now else "is no longer",
            )
        return now

    def release(self) -> None:
        """Give the Lease up (graceful shutdown), so a follower takes over without waiting."""
        with self._lock:
            if not self._leading_locked():
                return
            self._renewed_at = None
            try:
                current = self._read()
                if current is None or current.get("spec", {}).get("holderIdentity") != (
                    self.identity
                ):
                    return
                current["spec"]["holderIdentity"] = None
                current["spec"]["leaseDurationSeconds"] = 1
                self._replace(current)
            except _api_errors() as err:
                log.warning("lease %s/%s: release: %s", self.namespace, self.name, _explain(err))

    def run(self, stopping: threading.Event, every_seconds: float) -> None:
        """Step every ``every_seconds`` until ``stopping`` is set, then release the Lease."""
        while not stopping.is_set():
            self.try_acquire_or_renew()
            if stopping.wait(every_seconds):
                break
        self.release()

    # ------------------------------------------------------------------ internals

    def _leading_locked(self) -> bool:
        return (
            self._renewed_at is not None
            and self.clock.now() < self._renewed_at + self.renew_deadline
        )

    def _step(self) -> None:
        from kubernetes.client.exceptions import ApiException

        now = self.clock.now()
        current = self._read()
        if current is None:
            body: dict[str, Any] = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._held_spec({}, now, transitions=0),
            }
            try:
                self._create(body)
            except ApiException as err:
                if err.status != 409:
                    raise
                self._renewed_at = None  # another replica created it first
                return
            self._won(now, body["spec"])
            return
        spec: dict[str, Any] = current.get("spec") or {}
        holder = spec.get("holderIdentity") or None
        self.observed_holder = holder
        seen = (holder, spec.get("renewTime"))
        if seen != self._observed or self._observed_at is None:
            self._observed, self._observed_at = seen, now
        duration = timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0)) or self.duration
        if holder not in (None, self.identity) and now < self._observed_at + duration:
            self._renewed_at = None  # a live leader holds it
            return
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder != self.identity:
            transitions += 1
        current["spec"] = self._held_spec(spec, now, transitions=transitions)
        if holder != self.identity:
            current["spec"]["acquireTime"] = _micro(now)
        try:
            self._replace(current)
        except ApiException as err:
            if err.status != 409:
                raise
            self._renewed_at = None  # a rival wrote first: follow it
            return
        self._won(now, current["spec"])

    def _held_spec(
        self, spec: dict[str, Any], now: datetime, *, transitions: int
    ) -> dict[str, Any]:
        return {
            **spec,
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.duration.total_seconds()),
            "acquireTime": spec.get("acquireTime") or _micro(now),
            "renewTime": _micro(now),
            "leaseTransitions": transitions,
        }

    def _won(self, now: datetime, spec: dict[str, Any]) -> None:
        self._renewed_at = now
        self.observed_holder = self.identity
        self._observed, self._observed_at = (self.identity, spec["renewTime"]), now

    def _read(self) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            resp = self._api.read_namespaced_lease(
                self.name, self.namespace, _preload_content=False, _request_timeout=self._timeout
            )
        except ApiException as err:
            if err.status == 404:
                self.observed_holder = None
                return None
            raise
        lease: dict[str, Any] = json.loads(resp.data)
        return lease

    def _create(self, body: dict[str, Any]) -> None:
        self._api.create_namespaced_lease(
            self.namespace, body, _preload_content=False, _request_timeout=self._timeout
        )

    def _replace(self, body: dict[str, Any]) -> None:
        self._api.replace_namespaced_lease(
            self.name, self.namespace, body, _preload_content=False, _request_timeout=self._timeout
        )


def _micro(when: datetime) -> str:
    """A MicroTime as the API server writes it (RFC 3339, microseconds, UTC)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _api_errors() -> tuple[type[BaseException], ...]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    return (ApiException, HTTPError, OSError)


def _explain(err: BaseException) -> str:
    status = getattr(err, "status", None)
    if status == 403:
        return (
            "forbidden: grant the service account get, create and update on "
            "leases.coordination.k8s.io in the lease's namespace"
        )
    reason = getattr(err, "reason", None) or err
    return f"{type(err).__name__} {status or ''} {reason}".strip()
