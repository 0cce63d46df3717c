"""Reasoners: they choose read-only tool calls and name one root cause. The guard decides."""

from ._base import Finding, Reasoner
from ._playbook import Check, Playbook, PlaybookSet, RecommendedAction, load_playbooks
from ._rules import RulesReasoner, evaluate_check, insufficient, run_playbook
from ._session import BudgetExceeded, InvestigationSession

__all__ = [
    "BudgetExceeded",
    "Check",
    "Finding",
    "InvestigationSession",
    "Playbook",
    "PlaybookSet",
    "Reasoner",
    "RecommendedAction",
    "RulesReasoner",
    "evaluate_check",
    "insufficient",
    "load_playbooks",
    "run_playbook",
]
