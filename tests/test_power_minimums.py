"""Minimum samples derived from power at the observed baseline, and which outcome they guard.

The shipped canary playbooks state their minimums as the sample at which the check's test sees
the looked-for effect (a tripled error rate, a 20-point accuracy gap) at the stable version's
observed rate and the observed traffic split, not as a constant: a clear regression on a small
canary is decided, and "no difference" is never concluded on too little traffic.
"""

from __future__ import annotations

from pathlib import Path

from supervisor.domain import ToolResult, ToolStatus
from supervisor.reasoners import load_playbooks
from supervisor.reasoners._playbook import Check
from supervisor.reasoners._rules import evaluate_check
from supervisor.stats import fisher_exact, min_samples_for_effect, min_samples_two_proportions

PLAYBOOKS = Path(__file__).resolve().parents[1] / "playbooks"


def test_the_minimum_follows_the_observed_baseline_and_split() -> None:
    # A tripling of a 5% error rate shows on far fewer requests than of a 0.5% one.
    noisy = min_samples_for_effect(50, 1000, effect="ratio", size=3, alpha=0.01, allocation=4)
    quiet = min_samples_for_effect(5, 1000, effect="ratio", size=3, alpha=0.01, allocation=4)
    assert noisy is not None and quiet is not None and noisy * 5 < quiet
    assert quiet == min_samples_two_proportions(0.005, 0.015, alpha=0.01, ratio=4)
    # A larger stable sample beside the canary (a 5% canary) needs fewer canary rows.
    small = min_samples_for_effect(
        90, 100, effect="difference", size=-0.2, alpha=0.01, allocation=19
    )
    even = min_samples_for_effect(90, 100, effect="difference", size=-0.2, alpha=0.01, allocation=1)
    assert small is not None and even is not None and small < even
    # A zero baseline rate has no ratio to move, an empty one no rate: nothing is derived.
    assert min_samples_for_effect(0, 1000, effect="ratio", size=3, alpha=0.01) is None
    assert min_samples_for_effect(0, 0, effect="difference", size=-0.2, alpha=0.01) is None


def _bad_version_errors() -> Check:
    book = next(b for b in load_playbooks(PLAYBOOKS).playbooks if b.id == "bad-model-version")
    return next(c for c in book.checks if c.id == "canary-errors")


def _errors(canary_errors: int, canary_n: int, stable_errors: int, stable_n: int) -> ToolResult:
    p = fisher_exact(canary_errors, canary_n, stable_errors, stable_n, "greater")
    ratio = (canary_errors / canary_n) / max(stable_errors / stable_n, 1e-6)
    data = {
        "ratio": {"error_rate": round(ratio, 4)},
        "p_value": {"error_rate": p},
        "counts": {
            "canary_requests": canary_n,
            "stable_requests": stable_n,
            "canary_errors": canary_errors,
            "stable_errors": stable_errors,
        },
    }
    return ToolResult(call_id="c1", tool="compare_canary", status=ToolStatus.OK, data=data)


def test_a_clear_regression_on_a_small_canary_is_decided() -> None:
    # 334 canary requests, 12x the stable error rate: the generated case the old constant
    # minimum of 500 requests left undecided (and so escalated instead of aborting).
    assert evaluate_check(_bad_version_errors(), _errors(20, 334, 8, 1600)).outcome == "pass"


def test_not_seeing_a_regression_on_too_little_traffic_is_undecided() -> None:
    check = _bad_version_errors()
    # Same rate as stable on 334 requests: a tripling would be seen only on ~1,000 at 0.5%.
    outcome = evaluate_check(check, _errors(2, 334, 8, 1600))
    assert outcome.outcome == "unknown"
    assert outcome.short is not None and outcome.short[2] > 334
    # With enough traffic the same absence of an excess is a decided fail.
    assert evaluate_check(check, _errors(8, 3000, 40, 12000)).outcome == "fail"
    # A stable version with no errors at all gives no rate to triple: undecided.
    assert evaluate_check(check, _errors(1, 3000, 0, 12000)).outcome == "unknown"


def test_a_healthy_canary_needs_the_power_at_the_observed_rate() -> None:
    book = next(b for b in load_playbooks(PLAYBOOKS).playbooks if b.id == "healthy-canary")
    check = next(c for c in book.checks if c.id == "errors-in-line")
    # 1,865 canary requests beside an equal stable sample at 0.5%: a doubling would need
    # ~3,600, so "in line" cannot be concluded yet.
    assert evaluate_check(check, _errors(9, 1865, 9, 1865)).outcome == "unknown"
    # At a 2% stable rate the same traffic is ample.
    assert evaluate_check(check, _errors(37, 1865, 37, 1865)).outcome == "pass"
