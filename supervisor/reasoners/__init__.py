"""Reasoners: they choose read-only tool calls and name one root cause. The guard decides."""

from ._base import Finding, Reasoner
from ._hybrid import HybridReasoner, build_reasoner, llm_audit_sink
from ._llm import LLMReasoner
from ._playbook import Check, Playbook, PlaybookSet, RecommendedAction, load_playbooks
from ._rules import RulesReasoner, evaluate_check, insufficient, run_playbook
from ._session import BudgetExceeded, InvestigationSession

__all__ = [
    "BudgetExceeded",
    "Check",
    "Finding",
    "HybridReasoner",
    "InvestigationSession",
    "LLMReasoner",
    "Playbook",
    "PlaybookSet",
    "Reasoner",
    "RecommendedAction",
    "RulesReasoner",
    "build_reasoner",
    "evaluate_check",
    "insufficient",
    "llm_audit_sink",
    "load_playbooks",
    "run_playbook",
]
