"""The Kubernetes API emulator serving Leases, and electors over it, for the HA tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_emulator import KubeEmulator

from supervisor.ha import LeaseConfig, LeaseElector
from tools.kubernetes import KubernetesConnection

NS = "mlops"
LEASE = "mlops-supervisor"
#: All an elector needs: the Role a replica's service account must have.
LEASE_RULES = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
     "verbs": ["get", "create", "update"]},
]  # fmt: skip


@pytest.fixture(name="emulator")
def emulator_fixture() -> Iterator[KubeEmulator]:
    emu = KubeEmulator(rbac_rules=LEASE_RULES)
    emu.serve_leases()
    emu.url = emu.start()  # type: ignore[attr-defined]
    yield emu
    emu.stop()


def kubeconfig(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: emu, cluster: {{server: "{url}"}}}}]
users: [{{name: sa, user: {{token: t}}}}]
contexts: [{{name: emu, context: {{cluster: emu, user: sa}}}}]
current-context: emu
""",
        encoding="utf-8",
    )
    return path


def elector(emu: KubeEmulator, tmp_path: Path, who: str, clock: Any) -> LeaseElector:
    cfg = LeaseConfig(
        name=LEASE,
        namespace=NS,
        duration_seconds=15,
        connection=KubernetesConnection(kubeconfig=str(kubeconfig(tmp_path, emu.url))),  # type: ignore[attr-defined]
    )
    return LeaseElector.from_config(cfg, clock, identity=who)


def lease(emu: KubeEmulator) -> dict[str, Any]:
    return emu.get("coordination.k8s.io", "leases", NS, LEASE)
