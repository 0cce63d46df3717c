"""What counts as an upstream data defect in a drift report (one rule, used everywhere).

A broken pipeline shows as a null-share jump, a unit change (values scaled by orders of
magnitude), a dtype change, or a missing or new column. These separate it from real drift.
"""

from __future__ import annotations

from ._ports import DriftReport

#: Rise in a feature's null share (current - reference) that marks a null spike.
NULL_SPIKE = 0.2
#: Scale change (either way) of a feature's median magnitude that marks a unit change.
SCALE_CHANGE = 20.0


def scale_change(ratio: float | None) -> float:
    """How many times larger or smaller values became (>= 1); 1 when unknown."""
    if not ratio:
        return 1.0
    return max(ratio, 1 / ratio) if ratio > 0 else float("inf")


def data_defects(report: DriftReport) -> list[str]:
    """One human-readable line per upstream defect in ``report``."""
    out: list[str] = []
    for q in report.quality:
        if q.null_share_current - q.null_share_reference >= NULL_SPIKE:
            out.append(
                f"null spike on {q.feature!r}: "
                f"{q.null_share_reference:.0%} -> {q.null_share_current:.0%}"
            )
        if scale_change(q.scale_ratio) >= SCALE_CHANGE:
            out.append(f"unit change on {q.feature!r}: values x{q.scale_ratio:.3g}")
        if q.dtype_reference and q.dtype_current and q.dtype_reference != q.dtype_current:
            out.append(f"dtype change on {q.feature!r}: {q.dtype_reference} -> {q.dtype_current}")
    out += [f"missing column {c!r}" for c in report.missing_columns]
    out += [f"new column {c!r}" for c in report.new_columns]
    return out
