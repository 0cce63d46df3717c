"""The demo's embedded default: three models, three incidents, one policy, one approver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from supervisor._defaults import default_playbooks_dir, default_policy_file

#: The person who approves in the demo (named in policies/default.yaml's ml-oncall group).
DEMO_APPROVER = "alice"


def demo_config(state_dir: Path) -> dict[str, Any]:
    """Watch config of the demo, as a user would write it in YAML."""
    return {
        "models": [
            {"name": "churn", "owner": "growth-ml", "data_owner": "data-platform"},
            {"name": "fraud", "owner": "risk-ml", "data_owner": "payments-data"},
            {"name": "pricing", "owner": "pricing-ml", "data_owner": "catalog-data"},
        ],
        "policy_file": str(default_policy_file()),
        "playbooks_dir": str(default_playbooks_dir()),
        "state_dir": str(state_dir),
        "timing": {"verify_settle_seconds": 600, "canary_analysis_minutes": 30},
    }
