"""Loading YAML files into pydantic models, with errors that name the field and the fix,
and generating the JSON Schemas editors use to check those files."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ._defaults import shipped_dir
from ._errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: Where the generated schemas live (the checkout's schemas/, or the wheel's copy).
SCHEMA_DIR = shipped_dir("schemas")


def format_validation_error(source: str, err: ValidationError) -> str:
    """One line per problem: ``source: field.path: what is wrong (got ...); fix: ...``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = e.get("input")
        hint = _fix_hint(e["type"], e.get("ctx"))
        shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
        lines.append(f"{source}: {loc}: {e['msg']}{shown}; fix: {hint}")
    return "\n".join(lines)


def _fix_hint(kind: str, ctx: dict[str, Any] | None) -> str:
    if kind == "extra_forbidden":
        return "remove this field or check its spelling against the schema"
    if kind == "missing":
        return "add this required field"
    if kind in {"enum", "literal_error"} and ctx:
        return f"use one of {ctx.get('expected')}"
    return "correct the value to match the schema"


def parse_model(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` as ``model``; raise ConfigError naming ``source`` and each field."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(source, err)) from None


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; raise ConfigError naming the file and line on a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read {str(path)!r}: {err.strerror}; check the path") from None
    try:
        return copy.deepcopy(_parse(text))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}; fix the syntax") from None


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> Any:
    """``yaml.safe_load(text)``, remembered by content (performance only).

    The eval harness starts a supervisor per run, and each start parses the same playbooks and
    policy with pure-Python YAML (~0.2 s a run). The file is still read every time, so an edit
    is seen at once; callers get a deep copy, so none can change another's data. Syntax errors
    are not cached (they raise).
    """
    return yaml.safe_load(text)


def load_yaml_model(model: type[M], path: Path) -> M:
    """Read and validate one YAML file as ``model``."""
    data = read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty; see the schema for its fields")
    return parse_model(model, data, str(path))


def json_schema(model: type[BaseModel]) -> str:
    """The JSON Schema of ``model``, as committed under ``schemas/``."""
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
