"""Rendering deploy/kustomize with `kubectl kustomize`, for the deploy tests."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "deploy" / "kustomize" / "base"
HA = REPO / "deploy" / "kustomize" / "overlays" / "ha"


@cache
def rendered(directory: Path = BASE) -> tuple[dict[str, Any], ...]:
    """The objects `kubectl kustomize directory` renders (a base or an overlay)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (for `kubectl kustomize`) is not installed")
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def one(kind: str, name: str | None = None, directory: Path = BASE) -> dict[str, Any]:
    [obj] = [
        o
        for o in rendered(directory)
        if o["kind"] == kind and (name is None or o["metadata"]["name"].startswith(name))
    ]
    return obj


def raw_config(directory: Path = BASE) -> dict[str, Any]:
    text = one("ConfigMap", "mlops-supervisor-config", directory)["data"]["config.yaml"]
    raw: dict[str, Any] = yaml.safe_load(text)
    return raw
