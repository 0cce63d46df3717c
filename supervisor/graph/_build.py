"""The incident graph, as in DESIGN.md: one thread per incident, checkpointed."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph

from . import _nodes as n
from ._context import SupervisorContext
from ._state import IncidentState


def build_graph(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """Compile the loop: triage -> investigate -> diagnose -> propose -> guard -> (approve) -> act
    -> verify -> report, with escalate on deny, timeout, failure or a symptom that remains."""
    g: StateGraph[IncidentState, SupervisorContext, IncidentState, IncidentState] = StateGraph(
        IncidentState, context_schema=SupervisorContext
    )
    for name, fn in [
        ("triage", n.triage),
        ("investigate", n.investigate),
        ("diagnose", n.diagnose),
        ("await_labels", n.await_labels),
        ("propose", n.propose),
        ("guard", n.guard),
        ("request_approval", n.request_approval),
        ("await_approval", n.await_approval),
        ("act", n.act),
        ("verify", n.verify),
        ("escalate", n.escalate),
        ("report", n.report),
    ]:
        g.add_node(name, fn)
    g.add_edge(START, "triage")
    g.add_conditional_edges(
        "triage", lambda s: END if s["status"] == "closed" else "investigate", ["investigate", END]
    )
    g.add_edge("investigate", "diagnose")
    # A retrain whose drifted rows have no labels yet waits for them, then investigates again.
    g.add_conditional_edges("diagnose", n.route_diagnose, ["await_labels", "propose"])
    g.add_edge("await_labels", "investigate")
    g.add_edge("propose", "guard")
    g.add_conditional_edges("guard", n.route_guard, ["act", "request_approval", "escalate"])
    g.add_edge("request_approval", "await_approval")
    g.add_conditional_edges("await_approval", n.route_approval, ["act", "escalate"])
    g.add_conditional_edges("act", n.route_act, ["verify", "escalate", "report"])
    g.add_conditional_edges("verify", n.route_verify, ["report", "escalate"])
    g.add_edge("escalate", "report")
    g.add_edge("report", END)
    return g.compile(checkpointer=checkpointer)
