"""Playbooks: YAML files naming, per root cause, the checks that confirm or rule it out and the
action it recommends. Validated by these models; the JSON Schema is generated from them
(``schemas/playbook.schema.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from supervisor._errors import ConfigError
from supervisor._yaml import load_yaml_model
from supervisor.domain import ActionType, JsonScalar, RootCause

Op = Literal[">", ">=", "<", "<=", "==", "!="]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Condition(_Strict):
    """A further predicate a check needs, e.g. a p-value beside the effect size it tests."""

    field: str = Field(
        description="Dotted path into the same tool result, e.g. `p_value.error_rate`."
    )
    op: Op
    value: float | str | bool = Field(description="Constant the field is compared with.")
    reason: str = Field(min_length=1, description="Why this condition and this constant.")


class PowerMinimum(_Strict):
    """A minimum derived from the result itself: the sample at which a one-sided test at
    ``alpha`` sees the looked-for effect with ``power``, against the OBSERVED baseline
    (:func:`supervisor.stats.min_samples_for_effect`). A fixed constant would be too strict on
    a noisy baseline and too lax on a quiet one (a tripling of a 5% error rate shows on ~150
    requests, of a 0.5% one only on ~1,000).
    """

    events: str = Field(description="Dotted path to the baseline's event count, e.g. errors.")
    trials: str = Field(description="Dotted path to the baseline's sample size.")
    effect: Literal["ratio", "difference"] = Field(
        description="ratio: the alternative is `size` x the baseline proportion; difference: "
        "the baseline proportion + `size`."
    )
    size: float = Field(description="The looked-for effect, e.g. 3 (a tripling) or -0.2.")
    alpha: float = Field(gt=0, lt=0.5, description="The one-sided level of the check's test.")
    power: float = Field(default=0.8, gt=0, lt=1, description="Chance to see the effect.")


class MinSamples(_Strict):
    """The smallest sample a check may be decided on; below it the check is undecided.

    A comparison on too few observations is noise: below the minimum the check counts as
    unknown (neither pass nor fail), like missing data, so nothing is passed on noise.
    """

    field: str = Field(
        description="Dotted path to a count in the result, e.g. `counts.canary_labelled`."
    )
    value: int = Field(ge=1, description="Smallest count at which the check is decided.")
    power: PowerMinimum | None = Field(
        default=None,
        description="Derive the minimum from the result (the larger of it and `value` holds); "
        "when it cannot be derived (an empty or zero baseline) the check is undecided.",
    )
    guards: Literal["both", "fail", "pass"] = Field(
        default="both",
        description=(
            "Which outcome the minimum stops. fail: a check that looks for an effect and is "
            "significant stands at any size (its test bounds false alarms), but not seeing the "
            "effect below the powered size is no evidence it is absent, so a fail is undecided. "
            "pass: the reverse, for checks that pass on an absence (a canary in line). both: "
            "below the minimum nothing is decided."
        ),
    )
    reason: str = Field(
        min_length=1, description="Why this minimum, e.g. the power it gives for an effect size."
    )


class Check(_Strict):
    """One tool call and one predicate on a field of its result.

    With ``also`` the check passes only if every further condition holds too (e.g. an effect
    at least this large AND significant); with ``min_samples`` it is undecided below a count.
    """

    id: str = Field(description="Unique within the playbook.")
    tool: str = Field(
        description="Read-only tool to call; the incident's model is passed as `model`."
    )
    args: dict[str, JsonScalar] = Field(default_factory=dict, description="Extra tool arguments.")
    field: str = Field(description="Dotted path into the result data, e.g. `ratio.error_rate`.")
    op: Op
    value: float | str | bool = Field(description="Constant the field is compared with.")
    role: Literal["confirm", "confirm_any", "rule_out", "support"] = Field(
        default="confirm",
        description=(
            "confirm: must pass; confirm_any: at least one of these must pass; rule_out: if it "
            "passes the root cause is rejected; support: raises confidence when it passes."
        ),
    )
    on_no_data: Literal["unknown", "pass", "fail"] = Field(
        default="unknown",
        description="How a no_data result counts. unknown means the check cannot be decided.",
    )
    also: list[Condition] = Field(
        default_factory=list, description="Further conditions that must all hold for a pass."
    )
    min_samples: list[MinSamples] = Field(
        default_factory=list,
        description="Counts the result must reach before the check is decided (all of them).",
    )
    reason: str = Field(default="", description="Why this threshold.")
    finding: str = Field(description="Sentence for the evidence; `{value}` is the field's value.")


class RecommendedAction(_Strict):
    """What the playbook recommends once its root cause is confirmed."""

    type: ActionType
    parameters: dict[str, JsonScalar] = Field(default_factory=dict)
    rationale: str = Field(description="Why this action fixes this root cause.")


class Playbook(_Strict):
    """How to recognise one root cause and what to do about it."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Unique playbook id.")
    root_cause: RootCause
    title: str
    priority: int = Field(
        description="Higher is tried first; specific causes outrank general ones."
    )
    symptoms: list[str] = Field(
        default_factory=list, description="Symptoms it applies to; empty: all."
    )
    base_confidence: float = Field(
        ge=0, le=1, description="Confidence when every confirm check passes."
    )
    support_bonus: float = Field(
        default=0.04, ge=0, le=0.2, description="Added per passing support check."
    )
    checks: list[Check] = Field(min_length=1)
    action: RecommendedAction

    @model_validator(mode="after")
    def _well_formed(self) -> Playbook:
        ids = [c.id for c in self.checks]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"check ids {dupes} appear twice; give each check a unique id")
        if not any(c.role in ("confirm", "confirm_any") for c in self.checks):
            raise ValueError("a playbook needs at least one confirm or confirm_any check")
        return self


class PlaybookSet(_Strict):
    """All playbooks, highest priority first."""

    playbooks: list[Playbook]

    def for_symptom(self, symptom: str) -> list[Playbook]:
        return [p for p in self.playbooks if not p.symptoms or symptom in p.symptoms]


def load_playbooks(directory: Path, known_tools: set[str] | None = None) -> PlaybookSet:
    """Load every ``*.yaml`` playbook in ``directory``; ConfigError names file, field and fix."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ConfigError(f"no playbooks (*.yaml) found in {str(directory)!r}; check playbooks_dir")
    books = [load_yaml_model(Playbook, f) for f in files]
    seen: dict[str, Path] = {}
    for f, b in zip(files, books, strict=True):
        if b.id in seen:
            raise ConfigError(f"{f}: id {b.id!r} is already used by {seen[b.id]}; rename one")
        seen[b.id] = f
        for c in b.checks:
            if known_tools is not None and c.tool not in known_tools:
                raise ConfigError(
                    f"{f}: checks.{c.id}.tool: unknown tool {c.tool!r}; "
                    f"use one of {sorted(known_tools)}"
                )
    books.sort(key=lambda b: (-b.priority, b.id))
    return PlaybookSet(playbooks=books)


def field_value(data: dict[str, Any], path: str) -> Any:
    """Follow a dotted path into a result; None when any part is missing."""
    cur: Any = data
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return None
    return cur
