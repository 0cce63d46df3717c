"""Typed tools: schemas come from signatures and docstrings; every outcome is a ToolResult."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from supervisor import BackendError, SimClock, SupervisorError
from supervisor.domain import ToolStatus
from tools._catalog import default_registry
from tools._toolkit import ToolContext, ToolRegistry, make_tool


class Answer(BaseModel):
    value: float


def lookup(ctx: ToolContext, model: str, window_minutes: int = 15) -> Answer | None:
    """Look a value up for a model.

    Args:
        model: Name of the model.
        window_minutes: Window length,
            in minutes.
    """
    if model == "missing":
        return None
    if model == "broken":
        raise BackendError("metrics backend at http://prom:9090 timed out; check it is up")
    return Answer(value=window_minutes * 2.0)


CTX = ToolContext(backends=None, clock=SimClock())  # type: ignore[arg-type]


def test_schema_is_generated_from_signature_and_docstring() -> None:
    schema = make_tool(lookup).openai_schema()
    fn = schema["function"]
    assert schema["type"] == "function"
    assert fn["name"] == "lookup"
    assert fn["description"] == "Look a value up for a model."
    params = fn["parameters"]
    assert params["required"] == ["model"]
    assert params["additionalProperties"] is False
    assert params["properties"]["window_minutes"] == {
        "default": 15,
        "description": "Window length, in minutes.",
        "type": "integer",
    }


def test_every_outcome_becomes_a_typed_result() -> None:
    reg = ToolRegistry.of(lookup)
    ok = reg.call(CTX, "lookup", {"model": "m", "window_minutes": 5}, call_id="c1")
    assert ok.status is ToolStatus.OK and ok.data == {"value": 10.0} and ok.call_id == "c1"
    assert reg.call(CTX, "lookup", {"model": "missing"}, call_id="c2").status is ToolStatus.NO_DATA
    err = reg.call(CTX, "lookup", {"model": "broken"}, call_id="c3")
    assert err.status is ToolStatus.ERROR and "timed out" in err.message
    bad = reg.call(CTX, "lookup", {"model": "m", "window_minutes": "ten"}, call_id="c4")
    assert bad.status is ToolStatus.ERROR and "window_minutes" in bad.message
    extra = reg.call(CTX, "lookup", {"model": "m", "rm": "-rf"}, call_id="c5")
    assert extra.status is ToolStatus.ERROR and "rm" in extra.message
    unknown = reg.call(CTX, "delete_model", {"model": "m"}, call_id="c6")
    assert unknown.status is ToolStatus.ERROR and "lookup" in unknown.message


def test_undocumented_tools_are_refused() -> None:
    def bare(ctx: ToolContext, model: str) -> Answer:
        """No Args section."""
        return Answer(value=1)

    with pytest.raises(SupervisorError, match="'model' is not documented"):
        make_tool(bare)


def test_default_registry_lists_only_read_tools_with_full_schemas() -> None:
    reg = default_registry()
    names = reg.names()
    assert "get_drift_report" in names and "compare_canary" in names
    for schema in reg.openai_schemas():
        fn = schema["function"]
        assert fn["description"]
        assert "model" in fn["parameters"]["required"]
        for prop in fn["parameters"]["properties"].values():
            assert prop.get("description"), fn["name"]
    mutating = ("set", "promote", "rollback", "abort", "retrain", "delete", "update", "page")
    assert not [n for n in names if n.split("_")[0] in mutating]
