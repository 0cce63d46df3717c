"""Committed JSON Schemas match the models, YAML files point at them, and exports are curated."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from supervisor.schemas import generated

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(generated()))
def test_committed_schema_is_current(name: str) -> None:
    committed = (ROOT / "schemas" / name).read_text(encoding="utf-8")
    assert committed == generated()[name], (
        f"run `mlops-supervisor schema` to refresh schemas/{name}"
    )


@pytest.mark.parametrize(
    ("folder", "schema"),
    [("playbooks", "playbook.schema.json"), ("policies", "policy.schema.json")],
)
def test_yaml_files_declare_their_schema(folder: str, schema: str) -> None:
    files = sorted((ROOT / folder).glob("*.yaml"))
    assert files
    for f in files:
        first = f.read_text(encoding="utf-8").splitlines()[0]
        assert first == f"# yaml-language-server: $schema=../schemas/{schema}", f


#: Names a package may hold for typing alone (``from __future__``, lazy-import stubs).
TYPING_NAMES = {"annotations", "TYPE_CHECKING", "Any"}

PACKAGES = [
    "supervisor",
    "supervisor.domain",
    "supervisor.stats",
    "supervisor.config",
    "supervisor.reasoners",
    "supervisor.policy",
    "supervisor.audit",
    "supervisor.telemetry",
    "supervisor.graph",
    "supervisor.executor",
    "supervisor.incidents",
    "supervisor.runtime",
    "supervisor.demo",
    "supervisor.cli",
    "supervisor.service",
    "supervisor.metrics",
    "supervisor.llm",
    "supervisor.ha",
    "supervisor.chatops",
    "supervisor.text",
    "tools",
    "tools.sim",
    "tools.prometheus",
    "tools.files",
    "tools.kubernetes",
    "evals",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_public_exports_are_curated(name: str) -> None:
    mod = importlib.import_module(name)
    exported = mod.__all__
    assert len(exported) == len(set(exported)), "duplicates in __all__"
    assert sorted(exported, key=str) == sorted(exported, key=str)
    for symbol in exported:
        assert hasattr(mod, symbol), f"{name}.__all__ names missing {symbol!r}"
    public = {
        n
        for n in vars(mod)
        if not n.startswith("_") and not isinstance(getattr(mod, n), type(importlib))
    }
    assert public <= set(exported) | TYPING_NAMES, (
        f"{name} exposes unlisted names: {public - set(exported)}"
    )
