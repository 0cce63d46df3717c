"""Readiness: cheap probes of every configured real backend and of the state directory."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from supervisor.config import SupervisorConfig
from tools import ReadBackends


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


def readiness_probes(config: SupervisorConfig, state_dir: Path, read: ReadBackends) -> list[Probe]:
    """The probes of a service: the state directory always, then each real backend configured.

    Prometheus answers ``/-/ready``; Kubernetes one GET of the first watched model's object
    (what the least-privilege Role allows); file drift: the configured paths exist. MLflow
    artifact references are not probed (a download is not cheap).
    """
    probes = [Probe("state", lambda: _state_writable(state_dir))]
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
