"""The policy file schema: pydantic models that validate ``policies/*.yaml``.

Structural problems (unknown field, bad value) are reported by pydantic with the field path.
Problems that span fields (an unknown approver group, a duplicate rule id, a freeze window that
ends before it starts) are raised as :func:`policy_error` so the loader can print each one
with its own field path and fix.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from supervisor.domain import ActionType, PolicyDecision, RootCause, Verdict

#: The rule id a decision names when no rule matched and ``defaults`` decided.
DEFAULT_RULE_ID = "default"

#: Error type of cross-field problems; its ``ctx["problems"]`` holds (field, problem, fix).
POLICY_ERROR_TYPE = "policy_problem"

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def policy_error(problems: list[tuple[str, str, str]]) -> PydanticCustomError:
    """A validation error carrying (field path relative to the model, problem, fix) triples."""
    text = "; ".join(f"{field}: {problem} (fix: {fix})" for field, problem, fix in problems)
    return PydanticCustomError(
        POLICY_ERROR_TYPE, "{text}", {"text": text, "problems": tuple(problems)}
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FixedFreeze(_Strict):
    """A one-off freeze window, e.g. a release or a holiday: [start, end)."""

    start: datetime = Field(description="Start, ISO 8601 with a timezone, e.g. 2026-12-24T00:00Z.")
    end: datetime = Field(description="End (exclusive), ISO 8601 with a timezone.")

    @model_validator(mode="after")
    def _aware_and_ordered(self) -> FixedFreeze:
        problems = [
            (name, f"{value.isoformat()!r} has no timezone", "append Z (UTC) or an offset")
            for name, value in (("start", self.start), ("end", self.end))
            if value.tzinfo is None
        ]
        if not problems and self.end <= self.start:
            problems.append(
                ("end", f"{self.end.isoformat()!r} is not after start", "make end later than start")
            )
        if problems:
            raise policy_error(problems)
        return self

    def contains(self, now: datetime) -> bool:
        """True if ``now`` is inside the window."""
        return self.start <= now < self.end

    def describe(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def _hhmm(value: object, field: str) -> time:
    # Unquoted 18:00 is the integer 1080 to YAML 1.1 (base-60); say so instead of a type error.
    if isinstance(value, int):
        raise policy_error(
            [(field, f"{value!r} is a number, not a time", 'quote the time, e.g. "18:00"')]
        )
    if not isinstance(value, str) or not (m := _HHMM.match(value)):
        raise policy_error([(field, f"{value!r} is not a HH:MM time", 'write e.g. "18:00"')])
    return time(int(m.group(1)), int(m.group(2)))


class WeeklyFreeze(_Strict):
    """A recurring freeze window, in UTC, on the given weekdays from ``from`` to ``to``.

    Both ends are whole minutes and inclusive: ``to: "23:59"`` lasts until midnight.
    """

    model_config = ConfigDict(populate_by_name=True)

    weekdays: list[Weekday] = Field(min_length=1, description="Days the window recurs on (UTC).")
    from_: Annotated[str, Field(alias="from", description='Start time, quoted "HH:MM" UTC.')] = (
        "00:00"
    )
    to: Annotated[str, Field(description='End time, quoted "HH:MM" UTC, inclusive.')] = "23:59"

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _time_text(cls, value: object) -> str:
        _hhmm(value, "")  # pydantic already puts the field in the error's location
        return str(value)

    @model_validator(mode="after")
    def _same_day(self) -> WeeklyFreeze:
        if self.start_time > self.end_time:
            raise policy_error(
                [
                    (
                        "to",
                        f"{self.to!r} is before from {self.from_!r}; "
                        "a window cannot cross midnight",
                        "split it into two windows, one on each day",
                    )
                ]
            )
        return self

    @property
    def start_time(self) -> time:
        return _hhmm(self.from_, "from")

    @property
    def end_time(self) -> time:
        return _hhmm(self.to, "to")

    def contains(self, now: datetime) -> bool:
        """True if ``now`` (converted to UTC) falls inside the window."""
        utc = now.astimezone(UTC)
        if WEEKDAYS[utc.weekday()] not in self.weekdays:
            return False
        minute = utc.time().replace(second=0, microsecond=0)
        return self.start_time <= minute <= self.end_time

    def describe(self) -> str:
        return f"{','.join(self.weekdays)} {self.from_}-{self.to} UTC"


def _freeze_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "fixed" if ("start" in value or "end" in value) else "weekly"
    return "fixed" if isinstance(value, FixedFreeze) else "weekly"


FreezeWindow = Annotated[
    Annotated[FixedFreeze, Tag("fixed")] | Annotated[WeeklyFreeze, Tag("weekly")],
    Discriminator(_freeze_kind),
]


class RateLimit(_Strict):
    """Matches when at least ``max`` of the counted actions already ran on this model and
    environment in the last ``per_hours`` hours.

    Counted: the planned action itself (repeats of the same action), or, with ``counting``,
    runs of any of the listed actions together, e.g. every reverting action (rollback and
    abort_canary) so a second revert of either kind is limited.
    """

    max: int = Field(ge=1, description="How many runs in the window make the rule match.")
    per_hours: float = Field(gt=0, description="Length of the sliding window, in hours.")
    counting: list[ActionType] | None = Field(
        default=None,
        min_length=1,
        description="Actions whose runs count together; omitted: the planned action only.",
    )

    def counted(self, planned: ActionType) -> list[ActionType]:
        """The actions whose past runs count against a plan of ``planned``."""
        return list(self.counting) if self.counting else [planned]

    def window(self) -> timedelta:
        return timedelta(hours=self.per_hours)


class RuleMatch(_Strict):
    """When a rule applies. Every condition given must hold (AND); a list matches if any of its
    entries does (OR). An absent condition does not constrain; an empty block matches every plan.
    """

    actions: list[ActionType] | None = Field(
        default=None, min_length=1, description="Action types the rule covers."
    )
    models: list[str] | None = Field(
        default=None, min_length=1, description="Model name globs (fnmatch, case-sensitive)."
    )
    environments: list[str] | None = Field(
        default=None, min_length=1, description="Environment globs, e.g. 'prod*'."
    )
    root_causes: list[RootCause] | None = Field(
        default=None, min_length=1, description="Matches only if the diagnosed cause is listed."
    )
    not_root_causes: list[RootCause] | None = Field(
        default=None, min_length=1, description="Matches only if the diagnosed cause is NOT listed."
    )
    confidence_below: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Matches if diagnosis confidence < this."
    )
    confidence_at_least: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Matches if diagnosis confidence >= this."
    )
    missing_evidence: list[str] | None = Field(
        default=None,
        min_length=1,
        description=(
            "Tool names. Matches if, for any of them, the diagnosis cites no 'ok' result of that "
            "tool among the results the incident actually received."
        ),
    )
    rate_limit: RateLimit | None = Field(
        default=None, description="Matches once the action already ran this often for the model."
    )
    freeze: list[FreezeWindow] | None = Field(
        default=None,
        min_length=1,
        description="Matches while now is inside any window: {start, end} or {weekdays, from, to}.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> RuleMatch:
        problems: list[tuple[str, str, str]] = []
        both = set(self.root_causes or ()) & set(self.not_root_causes or ())
        if both:
            problems.append(
                (
                    "not_root_causes",
                    f"{sorted(c.value for c in both)!r} also listed in root_causes, "
                    "so the rule never matches",
                    "list each root cause in only one of them",
                )
            )
        low, high = self.confidence_below, self.confidence_at_least
        if low is not None and high is not None and low <= high:
            problems.append(
                (
                    "confidence_below",
                    f"{low!r} <= confidence_at_least {high!r}, so the rule never matches",
                    "make confidence_below greater than confidence_at_least",
                )
            )
        if problems:
            raise policy_error(problems)
        return self


class Rule(_Strict):
    """One policy rule: when it matches, it votes for its effect."""

    id: str = Field(pattern=_ID_PATTERN, description="Unique id, lowercase, e.g. 'deny-retrain'.")
    description: str = Field(min_length=1, description="Why the rule exists; shown in decisions.")
    effect: Verdict = Field(description="allow, deny or require_approval.")
    match: RuleMatch = Field(
        default_factory=RuleMatch, description="Conditions; omitted means every plan."
    )
    approvers: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Approver groups (require_approval only); defaults.approvers if omitted.",
    )
    approval_timeout_minutes: float | None = Field(
        default=None, gt=0, description="Approval timeout (require_approval only); then deny."
    )
    dry_run: bool = Field(
        default=False, description="If true and the rule matches, the action is recorded, not run."
    )

    @model_validator(mode="after")
    def _approval_fields(self) -> Rule:
        problems = []
        if self.id == DEFAULT_RULE_ID:
            problems.append(
                ("id", f"{self.id!r} is reserved for the policy default", "choose another id")
            )
        if self.effect is not Verdict.REQUIRE_APPROVAL:
            for name in ("approvers", "approval_timeout_minutes"):
                if getattr(self, name) is not None:
                    problems.append(
                        (
                            name,
                            f"only applies to require_approval rules, this one is {self.effect}",
                            f"remove {name} or set effect: require_approval",
                        )
                    )
        if problems:
            raise policy_error(problems)
        return self


class PolicyDefaults(_Strict):
    """What applies when no rule matches, and the fallbacks rules inherit."""

    verdict: Verdict = Field(default=Verdict.DENY, description="Verdict when no rule matches.")
    approval_timeout_minutes: float = Field(
        default=60, gt=0, description="Approval timeout when a rule gives none; then deny."
    )
    dry_run: bool = Field(default=False, description="If true, no action ever runs for real.")
    approvers: list[str] = Field(
        default_factory=list,
        description="Approver groups for require_approval rules that name none.",
    )


class Policy(_Strict):
    """A guard policy file.

    Precedence: every rule whose ``match`` holds is collected; the most restrictive effect wins
    (deny > require_approval > allow); if none matches, ``defaults.verdict`` decides.
    """

    version: Literal[1] = Field(description="Policy file format version.")
    defaults: PolicyDefaults = Field(default_factory=PolicyDefaults)
    approver_groups: dict[
        Annotated[str, Field(pattern=_ID_PATTERN)], Annotated[list[str], Field(min_length=1)]
    ] = Field(default_factory=dict, description="Group name -> the people in it.")
    rules: list[Rule] = Field(default_factory=list, description="Rules, in file order.")

    @model_validator(mode="after")
    def _references(self) -> Policy:
        problems: list[tuple[str, str, str]] = []
        known = sorted(self.approver_groups)
        fix_group = f"use one of {known!r} or define it under approver_groups"
        for j, group in enumerate(self.defaults.approvers):
            if group not in self.approver_groups:
                problems.append(
                    (f"defaults.approvers.{j}", f"unknown approver group {group!r}", fix_group)
                )
        needs_default = self.defaults.verdict is Verdict.REQUIRE_APPROVAL
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                problems.append(
                    (
                        f"rules.{i}.id",
                        f"duplicate rule id {rule.id!r} (first used by rules.{seen[rule.id]})",
                        "give every rule a unique id",
                    )
                )
            seen.setdefault(rule.id, i)
            for j, group in enumerate(rule.approvers or ()):
                if group not in self.approver_groups:
                    problems.append(
                        (f"rules.{i}.approvers.{j}", f"unknown approver group {group!r}", fix_group)
                    )
            if rule.effect is Verdict.REQUIRE_APPROVAL and rule.approvers is None:
                needs_default = True
        if needs_default and not self.defaults.approvers:
            problems.append(
                (
                    "defaults.approvers",
                    "a require_approval verdict names no approver group, so nobody could approve",
                    "set approvers on each require_approval rule or defaults.approvers",
                )
            )
        if problems:
            raise policy_error(problems)
        return self

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id; KeyError if there is none."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def members(self, groups: list[str]) -> list[str]:
        """The people in ``groups``, each once, in group then file order."""
        people: dict[str, None] = {}
        for group in groups:
            people.update(dict.fromkeys(self.approver_groups[group]))
        return list(people)

    def is_approver(self, person: str, decision: PolicyDecision) -> bool:
        """True if ``person`` may approve ``decision``: it requires approval and names them.

        The decision's own list counts, not the current groups, so an approval is checked
        against who was entitled when the guard decided.
        """
        return decision.verdict is Verdict.REQUIRE_APPROVAL and person in decision.approvers
