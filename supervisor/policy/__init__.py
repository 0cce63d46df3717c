"""The guard: a deterministic policy engine that alone decides allow, deny or require_approval.

A policy file (``policies/*.yaml``, schema ``schemas/policy.schema.json``) lists rules; each
has an ``effect`` and a ``match`` block whose conditions are AND-ed: scope (``actions``,
``models``, ``environments`` globs), root cause (``root_causes`` / ``not_root_causes``),
confidence (``confidence_below`` / ``confidence_at_least``), evidence (``missing_evidence``),
``rate_limit`` and ``freeze`` windows.

Precedence: all matching rules are collected; the most restrictive effect wins
(deny > require_approval > allow); the decision names every matching rule, most decisive first,
then in file order, with one reason each. If none matches, ``defaults.verdict`` decides under
the rule id ``default``. See :class:`PolicyEngine` for dry runs, approvers and timeouts.
"""

from ._engine import SEVERITY, ActionHistory, PolicyEngine, approval_deadline
from ._load import load_policy, parse_policy, policy_schema
from ._model import (
    DEFAULT_RULE_ID,
    FixedFreeze,
    Policy,
    PolicyDefaults,
    RateLimit,
    Rule,
    RuleMatch,
    WeeklyFreeze,
)

__all__ = [
    "DEFAULT_RULE_ID",
    "SEVERITY",
    "ActionHistory",
    "FixedFreeze",
    "Policy",
    "PolicyDefaults",
    "PolicyEngine",
    "RateLimit",
    "Rule",
    "RuleMatch",
    "WeeklyFreeze",
    "approval_deadline",
    "load_policy",
    "parse_policy",
    "policy_schema",
]
