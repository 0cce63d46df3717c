"""The LangGraph incident graph: nodes, state, dependencies and the report."""

from ._build import build_graph
from ._context import RecheckPending, SupervisorContext, VerifyPending
from ._propose import plan_action
from ._report import render_report
from ._state import IncidentState

__all__ = [
    "IncidentState",
    "RecheckPending",
    "SupervisorContext",
    "VerifyPending",
    "build_graph",
    "plan_action",
    "render_report",
]
