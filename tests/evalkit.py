"""Shared inputs for the eval harness tests: the smallest valid scenario and a scored case.

Import with ``from evalkit import MINIMAL_SCENARIO, case_result``; copy the scenario dict
before changing it (``copy.deepcopy``), since it is shared.
"""

from __future__ import annotations

from typing import Any

from evals import CaseResult

#: One model with a covariate drift at minute 30, found by the scheduled check; retrain is right.
MINIMAL_SCENARIO: dict[str, Any] = {
    "id": "tiny",
    "title": "t",
    "category": "covariate_drift",
    "difficulty": "easy",
    "world": {"models": [{"name": "churn", "owner": "o", "data_owner": "d"}]},
    "faults": [{"kind": "covariate_drift", "model": "churn", "at_minutes": 30}],
    "trigger": {"kind": "scheduled_check"},
    "ground_truth": {
        "expectations": [
            {"model": "churn", "root_cause": "covariate_drift", "acceptable_actions": ["retrain"]}
        ]
    },
}


def case_result(**kw: Any) -> CaseResult:
    """A case on ``m`` scored right (a bad version found in 2 minutes and its canary aborted),
    with ``kw`` changing any field."""
    base: dict[str, Any] = {
        "model": "m",
        "expected_root_cause": "bad_model_version",
        "diagnosed_root_cause": "bad_model_version",
        "needs_response": True,
        "responded": True,
        "detect_minutes": 2.0,
        "expected_action": "abort_canary",
        "acceptable_actions": ["abort_canary", "rollback"],
        "actual_action": "abort_canary",
        "action_correct": True,
        "false_alarm": False,
        "mitigated": True,
        "mitigate_minutes": 2.0,
    }
    return CaseResult.model_validate(base | kw)
