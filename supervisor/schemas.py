"""JSON Schemas for the YAML files users write (config, policy, playbook)."""

from __future__ import annotations

from pathlib import Path

from supervisor._yaml import json_schema

__all__ = ["SCHEMAS", "generated", "write_schemas"]

#: File name -> dotted path of the pydantic model it is generated from.
SCHEMAS = {
    "config.schema.json": "supervisor.config:SupervisorConfig",
    "policy.schema.json": "supervisor.policy:Policy",
    "playbook.schema.json": "supervisor.reasoners:Playbook",
    "scenario.schema.json": "evals:Scenario",
}


def generated() -> dict[str, str]:
    """File name -> schema text, as it should be committed."""
    import importlib

    out = {}
    for name, target in SCHEMAS.items():
        module, attr = target.split(":")
        out[name] = json_schema(getattr(importlib.import_module(module), attr))
    return out


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in generated().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
