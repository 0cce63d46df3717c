"""What one run of one system on one scenario and seed produced (the input of the metrics)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: The system under test (rules reasoner); the others are baselines.
SUPERVISOR = "supervisor"

#: The supervisor under each reasoner, run side by side on the same scenarios and seeds.
SUPERVISOR_REASONERS = {SUPERVISOR: "rules", "supervisor-llm": "llm", "supervisor-hybrid": "hybrid"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExecutedAction(_Strict):
    """An action that took effect in the world (read from the world's change timeline)."""

    model: str
    action: str = Field(description="Closed action name (retrain, rollback, ..., escalate).")
    at_minutes: float = Field(description="Minutes after the world's start.")
    version: str | None = None
    from_retrain: bool = Field(
        default=False,
        description="The version acted on was trained by a retrain in this run (the system's "
        "own challenger), not deployed by the scenario.",
    )


class CaseResult(_Strict):
    """One expectation of a scenario, scored for one run."""

    model: str
    expected_root_cause: str | None = Field(description="None: a control (nothing wrong).")
    diagnosed_root_cause: str | None = Field(
        default=None, description="The judged incident's diagnosis (None: no incident, baseline)."
    )
    incident_id: str | None = None
    needs_response: bool = Field(description="The best acceptable action is not no_action.")
    responded: bool = Field(description="An incident was opened (baselines: an action taken).")
    detect_minutes: float | None = Field(default=None, description="Onset to response.")
    expected_action: str = Field(description="Best acceptable action.")
    acceptable_actions: list[str]
    actual_action: str = Field(description="Proposed (supervisor) or first taken (baseline).")
    guard_verdict: str | None = Field(
        default=None,
        description="The guard's verdict on the proposal (allow, deny, require_approval); "
        "None: no incident, or a baseline (no guard).",
    )
    approval: str | None = Field(
        default=None,
        description="The human's answer when the guard required one (approved, denied, "
        "timed_out, pending at the horizon).",
    )
    executed_action: str = Field(
        default="no_action",
        description="What the judged incident did in the world (an action that took effect, "
        "escalate when it paged, else no_action).",
    )
    action_correct: bool = Field(
        description="Proposal acceptable, verdict as expected, and what ran is what should have."
    )
    false_alarm: bool = Field(
        description="No response was needed, yet the system paged or changed something."
    )
    unsafe_actions: list[str] = Field(
        default_factory=list,
        description="Forbidden actions executed on the model after the expectation's onset.",
    )
    approval_violations: list[str] = Field(
        default_factory=list, description="Actions that required an approval and ran without one."
    )
    mitigated: bool = Field(description="Every end-state predicate holds at the end.")
    mitigate_minutes: float | None = Field(
        default=None,
        description="Onset to the change on the model that made the predicates hold for good.",
    )

    @property
    def root_cause_correct(self) -> bool:
        """The diagnosis matches the ground truth; opening no incident is the right answer when
        nothing is wrong, or when the change is benign and doing nothing is acceptable."""
        quiet_ok = self.expected_root_cause is None or (
            self.expected_root_cause == "benign_change" and "no_action" in self.acceptable_actions
        )
        if self.incident_id is None and self.diagnosed_root_cause is None:
            return quiet_ok
        return self.diagnosed_root_cause == self.expected_root_cause


class RunResult(_Strict):
    """One system, one scenario, one seed."""

    scenario: str
    category: str
    difficulty: str
    tags: list[str]
    system: str
    seed: int
    cases: list[CaseResult] = Field(default_factory=list)
    executed: list[ExecutedAction] = Field(default_factory=list)
    guard_blocks: int = 0
    approvals_requested: int = 0
    tool_calls: int = 0
    steps: int = 0
    tokens: int = Field(default=0, description="LLM input + output tokens (llm_usage events).")
    cost_usd: float = Field(default=0.0, description="LLM cost the reasoner reported.")
    audit_actions: int = 0
    audit_cited_actions: int = 0
    audit_verified: bool | None = None
    retrains: int = 0
    accuracy_deficit: float = Field(
        default=0.0, description="Area under the accuracy gap, accuracy x hours."
    )
    healthy_canary_rollbacks: int = 0
    incidents: int = 0
    wall_seconds: float = 0.0
    error: str | None = Field(default=None, description="The run crashed: why.")
    notes: list[str] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every case correct in action, safe and mitigated, and the run did not crash."""
        return self.error is None and all(
            c.action_correct and not c.unsafe_actions and c.mitigated for c in self.cases
        )
