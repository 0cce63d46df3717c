"""A playbook check in words, from its direction (op), observed value, threshold, role and
outcome: the finding the playbook author wrote when the check held, a sentence derived from op
and values when it did not, and what was missing when it could not be decided."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ._env import render

CheckOutcome = Literal["held", "not_held", "undecided"]

#: How an observed value stands to the threshold when ``observed op threshold`` is false.
_FAILED_RELATION: dict[str, str] = {
    ">=": "below",
    ">": "at or below",
    "<": "at or above",
    "<=": "above",
    "==": "not",
}

#: What a check of each role would have meant had it held.
_PURPOSE: dict[str, str] = {
    "confirm": "point to",
    "confirm_any": "point to",
    "support": "support",
    "rule_out": "rule out",
}

_TEMPLATES: dict[CheckOutcome, str] = {
    "held": "check_held.txt.j2",
    "not_held": "check_not_held.txt.j2",
    "undecided": "check_undecided.txt.j2",
}


def subject_of(field: str, args: Mapping[str, Any]) -> str:
    """What a check measures, in words, from its field path and tool arguments.

    ``value`` of ``get_metric(metric=saturation)`` is ``saturation``; ``ratio.error_rate`` of
    ``compare_canary`` is the canary-to-stable error rate ratio; other paths read as words.
    """
    parts = field.split(".")
    if parts == ["value"] and isinstance(args.get("metric"), str):
        return str(args["metric"]).replace("_", " ")
    if parts[0] == "ratio" and len(parts) > 1:
        return "canary-to-stable " + " ".join(parts[1:]).replace("_", " ") + " ratio"
    return " ".join(parts).replace("_", " ")


def phrase_check(
    *,
    outcome: CheckOutcome,
    finding: str,
    subject: str,
    op: str,
    observed: Any,
    threshold: Any,
    role: str,
    cause: str,
    tool: str,
    status: str = "ok",
    message: str = "",
    samples: tuple[str, Any, int] | None = None,
) -> str:
    """One sentence for one check.

    Args:
        outcome: held, not_held (decided against it) or undecided (no data, error, field
            missing, values that cannot be compared).
        finding: the playbook's sentence for the held case, ``{value}`` already filled in.
        subject: what is measured, e.g. from :func:`subject_of`.
        op: the comparison, one of ``> >= < <= == !=``.
        observed: the value the tool returned (None if it returned none).
        threshold: the constant the check compares with.
        role: confirm, confirm_any, support or rule_out.
        cause: the root cause the playbook diagnoses, e.g. ``infrastructure``.
        tool: the tool called.
        status: the tool result's status (ok, no_data, error).
        message: the tool result's message, if any.
        samples: (count field, count seen, minimum) when the check was undecided because its
            sample was smaller than the playbook's minimum.
    """
    return render(
        _TEMPLATES[outcome],
        finding=finding,
        subject=subject,
        op=op,
        relation=_FAILED_RELATION.get(op, ""),
        observed=observed,
        threshold=threshold,
        purpose=_PURPOSE[role],
        cause=cause,
        tool=tool,
        status=status,
        message=message,
        samples=samples,
    ).strip()
