"""The LLM's final answer: validated against closed vocabularies before it becomes a Finding.

Only a few parameters are accepted from the model, per action, with ranges: nothing it writes can
lower a validation bar (``min_accuracy``) or name a target; the plan's target comes from the
backends, and the guard decides on the plan and the diagnosis fields alone.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from supervisor.domain import ActionType, JsonScalar, RootCause


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnswerEvidence(_Strict):
    """One finding resting on one tool result received in this conversation."""

    call_id: str = Field(description="call_id of a tool result you received.")
    finding: str = Field(max_length=600, description="What that result shows, one sentence.")
    supports: bool = Field(default=True, description="True if it supports the root cause.")


class AnswerRuledOut(_Strict):
    """An alternative root cause considered and rejected."""

    root_cause: RootCause
    reason: str = Field(max_length=600, description="Why it was rejected.")
    call_ids: list[str] = Field(default_factory=list, description="Results behind the reason.")


#: Parameters the model may set, per action: (kind, low, high) or the allowed strings.
ALLOWED_PARAMETERS: dict[ActionType, dict[str, tuple[type, float, float] | tuple[str, ...]]] = {
    ActionType.RETRAIN: {"window_hours": (float, 0.25, 48.0)},
    # Half the traffic at most: moving all of it is promote_canary, which the guard gates on a
    # healthy_canary diagnosis.
    ActionType.SET_CANARY_WEIGHT: {"weight": (int, 0, 50)},
    ActionType.ESCALATE: {"page": ("owner", "data_owner")},
}


class LLMAnswer(_Strict):
    """The final answer: one root cause with cited evidence, and one recommended action."""

    root_cause: RootCause = Field(description="Exactly one root cause from the closed set.")
    confidence: float = Field(ge=0.0, le=1.0, description="How sure you are, 0..1.")
    summary: str = Field(max_length=2000, description="One paragraph for the on-call engineer.")
    evidence: list[AnswerEvidence] = Field(
        default_factory=list, description="Required unless root_cause is insufficient_evidence."
    )
    ruled_out: list[AnswerRuledOut] = Field(default_factory=list)
    action: ActionType = Field(description="One action from the closed set.")
    parameters: dict[str, JsonScalar] = Field(
        default_factory=dict,
        description="Only: retrain.window_hours (0.25..48), set_canary_weight.weight (0..50), "
        "escalate.page (owner|data_owner).",
    )
    rationale: str = Field(default="", max_length=1000, description="Why this action.")

    @model_validator(mode="after")
    def _checked(self) -> LLMAnswer:
        if self.root_cause is not RootCause.INSUFFICIENT_EVIDENCE and not self.evidence:
            raise ValueError(
                f"root_cause {self.root_cause.value!r} cites no evidence; cite the call_id of "
                "at least one tool result or answer insufficient_evidence"
            )
        allowed = ALLOWED_PARAMETERS.get(self.action, {})
        for key, value in self.parameters.items():
            rule = allowed.get(key)
            if rule is None:
                raise ValueError(
                    f"parameter {key!r} is not accepted for action {self.action.value!r}; "
                    f"accepted: {sorted(allowed)}"
                )
            _check_parameter(key, value, rule)
        return self


def _check_parameter(key: str, value: Any, rule: tuple[Any, ...]) -> None:
    if rule and isinstance(rule[0], type):
        kind, low, high = rule
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"parameter {key!r} must be a number, not {value!r}")
        if kind is int and value != int(value):
            raise ValueError(f"parameter {key!r} must be a whole number, not {value!r}")
        if not low <= value <= high:
            raise ValueError(f"parameter {key!r}={value!r} is outside {low}..{high}")
    elif value not in rule:
        raise ValueError(f"parameter {key!r} must be one of {list(rule)}, not {value!r}")
