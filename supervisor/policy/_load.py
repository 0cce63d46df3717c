"""Loading policy files, with one error line per problem naming the field path and the fix."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from supervisor._errors import ConfigError
from supervisor._yaml import format_validation_error, json_schema, read_yaml

from ._model import POLICY_ERROR_TYPE, Policy


def _format(source: str, err: ValidationError) -> str:
    # Structural errors use the project-wide format; cross-field problems carry their own
    # field path and fix, which is more useful than the generic hint.
    generic = format_validation_error(source, err).splitlines()
    errors = err.errors()
    if len(generic) != len(errors):  # a message spanning lines: keep the generic text whole
        return "\n".join(generic)
    lines: list[str] = []
    for error, line in zip(errors, generic, strict=True):
        if error["type"] != POLICY_ERROR_TYPE:
            lines.append(line)
            continue
        base = [str(p) for p in error["loc"]]
        for field, problem, fix in error.get("ctx", {}).get("problems", ()):
            loc = ".".join([*base, field] if field else base) or "(top level)"
            lines.append(f"{source}: {loc}: {problem}; fix: {fix}")
    return "\n".join(lines)


def parse_policy(data: object, source: str) -> Policy:
    """Validate already-parsed YAML/JSON data as a policy; ConfigError names source and fields."""
    if data is None:
        raise ConfigError(f"{source}: the file is empty; it needs at least 'version: 1'")
    try:
        return Policy.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format(source, err)) from None


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file.

    Raises:
        ConfigError: one line per problem: ``file: field.path: what is wrong; fix: what to do``.
    """
    return parse_policy(read_yaml(path), str(path))


def policy_schema() -> str:
    """The JSON Schema of policy files, as committed at ``schemas/policy.schema.json``."""
    return json_schema(Policy)
