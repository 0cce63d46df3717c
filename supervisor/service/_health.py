"""Readiness: cheap probes of every configured real backend and of the state directory."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from supervisor.config import SupervisorConfig
from tools import ReadBackends

log = logging.getLogger("mlops_supervisor.service")


@dataclass(frozen=True)
class Probe:
    """One readiness check: ``check`` returns nothing when healthy and raises otherwise."""

    name: str
    check: Callable[[], None]


def run_probes(probes: list[Probe]) -> tuple[bool, dict[str, str]]:
    """(all ok, name -> "ok" or the failure)."""
    results: dict[str, str] = {}
    for probe in probes:
        try:
            probe.check()
            results[probe.name] = "ok"
        except Exception as err:  # a probe reports, it never raises
            results[probe.name] = f"{type(err).__name__}: {err}"[:500]
    return all(v == "ok" for v in results.values()), results


class WarmUp:
    """Slow one-off work (heavy imports) a service does on a background thread after it
    starts, so that neither the boot nor the first incident waits for it.

    ``/readyz`` answers 503 "warming up" until every step has run: the work competes for the
    GIL with request handling, so a Kubernetes Service sends no traffic to the pod meanwhile.
    A step that fails is logged and counts as done (it only moved work earlier: whatever
    needs it pays for it, or fails, later).
    """

    def __init__(self, steps: list[tuple[str, Callable[[], object]]]) -> None:
        self.steps = steps
        self._done = threading.Event()
        self._current = steps[0][0] if steps else ""
        if not steps:
            self._done.set()

    def start(self) -> None:
        """Run the steps, in order, on a daemon thread."""
        if self.steps:
            threading.Thread(target=self._run, name="warm-up", daemon=True).start()

    def _run(self) -> None:
        try:
            for name, step in self.steps:
                self._current = name
                try:
                    step()
                except Exception:
                    log.exception("warm-up step %s failed; what needs it pays later", name)
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        """True once every step ran (or failed)."""
        return self._done.is_set()

    @property
    def current(self) -> str:
        """The step running now (the first one before :meth:`start`)."""
        return self._current

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until done; whether it is."""
        return self._done.wait(timeout)


def readiness_probes(
    config: SupervisorConfig,
    state_dir: Path,
    read: ReadBackends,
    *,
    postgres: Callable[[], None] | None = None,
) -> list[Probe]:
    """The probes of a service: its state always, then each real backend configured.

    State: the state directory's files are writable, or, when replicas share their state in
    Postgres, the directory is writable (reports) and ``postgres`` (a round trip to the server)
    succeeds. Prometheus answers ``/-/ready``; Kubernetes one GET of the first watched model's
    object (what the least-privilege Role allows); file drift: the configured paths exist.
    MLflow artifact references are not probed (a download is not cheap).
    """
    if postgres is None:
        probes = [Probe("state", lambda: _state_writable(state_dir))]
    else:
        probes = [Probe("state", lambda: _writable(state_dir)), Probe("postgres", postgres)]
    prom = config.backends.prometheus
    if prom is not None:
        probes.append(Probe("prometheus", lambda: _prometheus_ready(prom.url, prom.timeout_s)))
    if config.backends.kubernetes is not None:
        kube_models = [m.name for m in config.models if m.deployment.kind != "sim"]
        if kube_models:
            probes.append(Probe("kubernetes", lambda: _kubernetes_get(read, kube_models[0])))
    paths = [
        (m.name, side, value)
        for m in config.models
        for side, value in (("reference", m.data.reference), ("current", m.data.current))
        if value is not None
    ]
    if paths:
        probes.append(Probe("drift_files", lambda: _paths_exist(paths)))
    return probes


def _state_writable(state_dir: Path) -> None:
    for path in (state_dir, state_dir / "audit.jsonl", state_dir / "checkpoints.sqlite"):
        _writable(path)


def _writable(path: Path) -> None:
    if not os.access(path, os.W_OK):
        raise OSError(f"{str(path)!r} is not writable (missing or read-only)")


def _prometheus_ready(url: str, timeout: float) -> None:
    import httpx

    res = httpx.get(f"{url.rstrip('/')}/-/ready", timeout=min(timeout, 5.0))
    if res.status_code != 200:
        raise OSError(f"{url}/-/ready answered {res.status_code}: {res.text[:200]!r}")


def _kubernetes_get(read: ReadBackends, model: str) -> None:
    if read.deploy.status(model) is None:
        raise LookupError(f"the deployment of {model!r} was not found")


def _paths_exist(paths: list[tuple[str, str, str]]) -> None:
    missing = []
    for model, side, value in paths:
        parsed = urlparse(value)
        if parsed.scheme not in ("", "file"):
            continue  # runs:/, models:/, mlflow-artifacts: are resolved when a report runs
        local = Path(parsed.path if parsed.scheme == "file" else value)
        if not local.exists():
            missing.append(f"{model}.data.{side}={value!r}")
    if missing:
        raise FileNotFoundError(f"missing: {', '.join(missing)}")
