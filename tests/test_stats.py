"""supervisor.stats against textbook values, and the playbook checks that use it.

Covers: the tests and intervals (known results from the literature), minimum sample sizes
(the closed-form power formula), checks that are undecided below their minimum or without
their test, and that every minimum a playbook states is the one its reason derives.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from supervisor.domain import ToolResult, ToolStatus
from supervisor.reasoners import load_playbooks
from supervisor.reasoners._playbook import Check
from supervisor.reasoners._rules import evaluate_check
from supervisor.stats import (
    difference_interval,
    fisher_exact,
    holm_reject,
    mann_whitney,
    min_minutes_rank_test,
    min_samples_one_proportion,
    min_samples_two_proportions,
    one_proportion_test,
    two_proportion_test,
    wilson_interval,
)

PLAYBOOKS = Path(__file__).resolve().parents[1] / "playbooks"


# --- tests and intervals ---------------------------------------------------------------------


def test_wilson_interval_matches_the_closed_form() -> None:
    # Wilson (1927): centre (p + z²/2n) / (1 + z²/n), half-width z·sqrt(p(1-p)/n + z²/4n²)/(...)
    x, n, z = 9, 10, norm.ppf(0.975)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    iv = wilson_interval(x, n, 0.05)
    assert iv is not None
    assert iv.low == pytest.approx(centre - half) and iv.high == pytest.approx(centre + half)
    # Unlike the Wald interval it stays inside [0, 1] at the edges.
    edge = wilson_interval(10, 10)
    assert edge is not None and edge.high <= 1.0 and edge.low > 0.6
    assert wilson_interval(0, 0) is None


def test_fisher_exact_lady_tasting_tea() -> None:
    # Fisher's tea-tasting experiment: 3 of 4 right, one-sided p = 17/70.
    assert fisher_exact(3, 4, 1, 4, "greater") == pytest.approx(17 / 70)


def test_tests_point_the_right_way() -> None:
    # 30 errors in 500 canary requests against 5 in 2000 stable ones: the canary errs more.
    assert fisher_exact(30, 500, 5, 2000, "greater") < 1e-10
    assert fisher_exact(30, 500, 5, 2000, "less") > 0.99
    z = two_proportion_test(30, 500, 5, 2000, "greater")
    assert z is not None and z < 1e-10
    assert two_proportion_test(0, 10, 0, 20) is None  # no variance, no test
    assert one_proportion_test(70, 100, 0.85, "less") == pytest.approx(0.000105, rel=0.05)
    slow = mann_whitney([5.0, 6, 7, 8, 9], [0.0, 1, 2, 3, 4], "greater")
    assert slow == pytest.approx(1 / math.comb(10, 5))
    assert mann_whitney([], [1.0]) is None


def test_difference_interval_contains_the_observed_difference() -> None:
    iv = difference_interval(80, 100, 60, 100)
    assert iv is not None and iv.contains(0.2) and iv.low > 0
    with pytest.raises(ValueError, match="impossible"):
        difference_interval(5, 4, 1, 4)


def test_min_samples_follow_the_power_formula() -> None:
    # n1 = ((z_a + z_b) / h)² · (1 + 1/ratio), h = Cohen's arcsine effect size.
    h = abs(2 * math.asin(math.sqrt(0.65)) - 2 * math.asin(math.sqrt(0.85)))
    zz = norm.ppf(0.95) + norm.ppf(0.8)
    assert min_samples_two_proportions(0.85, 0.65, alpha=0.05, ratio=4) == math.ceil(
        (zz / h) ** 2 * 1.25
    )
    assert min_samples_one_proportion(0.85, 0.65, alpha=0.05) == math.ceil((zz / h) ** 2)
    # Smaller effects need more samples; a stricter alpha too.
    assert min_samples_two_proportions(
        0.85, 0.75, alpha=0.05, ratio=4
    ) > min_samples_two_proportions(0.85, 0.65, alpha=0.05, ratio=4)
    with pytest.raises(ValueError, match="no effect"):
        min_samples_two_proportions(0.5, 0.5, alpha=0.05)


def test_min_minutes_rank_test_is_where_the_exact_test_can_first_decide() -> None:
    n = min_minutes_rank_test(0.01)
    assert n == 5
    best = mann_whitney([float(i + 100) for i in range(n)], [float(i) for i in range(n)])
    worse = mann_whitney([float(i + 100) for i in range(n - 1)], [float(i) for i in range(n - 1)])
    assert best is not None and best <= 0.01
    assert worse is not None and worse > 0.01


# --- checks with a test and a minimum sample ---------------------------------------------------


def _check(**extra: object) -> Check:
    return Check.model_validate(
        {
            "id": "gap",
            "tool": "compare_canary",
            "field": "accuracy_gap",
            "op": ">=",
            "value": 0.08,
            "finding": "gap {value}",
            **extra,
        }
    )


def _result(gap: float, labelled: int, p: float | None) -> ToolResult:
    data: dict[str, object] = {"accuracy_gap": gap, "counts": {"canary_labelled": labelled}}
    if p is not None:
        data["p_value"] = {"accuracy": p}
    return ToolResult(call_id="c1", tool="compare_canary", status=ToolStatus.OK, data=data)


MIN = {"field": "counts.canary_labelled", "value": 35, "reason": "power"}
SIG = {"field": "p_value.accuracy", "op": "<=", "value": 0.05, "reason": "Fisher"}


def test_a_check_below_its_minimum_is_undecided_not_passed() -> None:
    check = _check(min_samples=[MIN], also=[SIG])
    # The case: a large gap on 9 labelled rows decides nothing.
    few = evaluate_check(check, _result(0.5, 9, 0.01))
    assert few.outcome == "unknown"
    assert (
        "too few samples to decide (counts.canary_labelled is 9, the minimum is 35)"
        in few.sentence()
    )
    assert evaluate_check(check, _result(0.5, 40, 0.001)).outcome == "pass"
    # The count missing altogether is not enough either.
    bare = ToolResult(
        call_id="c1", tool="compare_canary", status=ToolStatus.OK, data={"accuracy_gap": 0.5}
    )
    assert evaluate_check(check, bare).outcome == "unknown"


def test_a_check_needs_its_test_as_well_as_its_effect() -> None:
    check = _check(min_samples=[MIN], also=[SIG])
    assert evaluate_check(check, _result(0.5, 40, 0.2)).outcome == "fail"  # not significant
    assert evaluate_check(check, _result(0.02, 40, 0.001)).outcome == "fail"  # too small
    assert evaluate_check(check, _result(0.5, 40, None)).outcome == "unknown"  # no test
    # Without `also` and `min_samples` the old behaviour holds: the threshold alone decides.
    assert evaluate_check(_check(), _result(0.5, 9, None)).outcome == "pass"


# --- the minimums the shipped playbooks state -----------------------------------------------------

#: Each stated minimum, by the count it bounds, and the computation its reason names.
DERIVED = {
    "canary_labelled": (
        min_samples_two_proportions(0.85, 0.65, alpha=0.05, ratio=4),
        min_samples_two_proportions(0.85, 0.65, alpha=0.01, ratio=4),  # skew: repeated looks
    ),
    "early_labelled": min_samples_two_proportions(0.85, 0.65, alpha=0.05, ratio=4),
    "current_labelled": (
        min_samples_two_proportions(0.85, 0.65, alpha=0.05, ratio=4),
        min_samples_one_proportion(0.85, 0.65, alpha=0.05),
    ),
    "previous_labelled": min_samples_two_proportions(0.85, 0.65, alpha=0.05, ratio=4),
    "canary_minutes": (min_minutes_rank_test(0.01), 2 * min_minutes_rank_test(0.01)),
    "stable_minutes": min_minutes_rank_test(0.01),
    "current_minutes": min_minutes_rank_test(0.01),
    "previous_minutes": min_minutes_rank_test(0.01),
    # 5 expected errors at twice a 0.5% baseline (presence checks), and 80% power for a
    # doubling from 0.5% at alpha 0.05 (the healthy-canary absence check).
    "canary_requests": (
        math.ceil(5 / (2 * 0.005)),
        min_samples_two_proportions(0.005, 0.01, alpha=0.05, ratio=4),
    ),
    "current_requests": math.ceil(5 / (2 * 0.005)),
}


#: Floors below which a count gives no rate at all (a step of over 3 points at 30 requests, of
#: 10 points at 10 labelled rows); the power-derived minimum beside them does the deciding.
FLOORS = {"canary_requests": (30, 100), "canary_labelled": (10,)}


def test_every_stated_minimum_is_the_one_its_reason_derives() -> None:
    seen = 0
    for book in load_playbooks(PLAYBOOKS).playbooks:
        for check in book.checks:
            if (check.also or check.min_samples) and not check.reason:
                raise AssertionError(f"{book.id}/{check.id}: a threshold without its reason")
            for need in check.min_samples:
                count = need.field.rsplit(".", 1)[-1]
                if need.power is not None or need.value in FLOORS.get(count, ()):
                    # Derived from the result at run time (test_power_minimums.py), or a
                    # floor below which there is no rate at all.
                    seen += 1
                    continue
                allowed = DERIVED.get(count)
                assert allowed is not None, f"{book.id}/{check.id}: {need.field} not derived here"
                values = allowed if isinstance(allowed, tuple) else (allowed,)
                assert need.value in values, (book.id, check.id, need.value, values)
                seen += 1
    assert seen >= 10


def test_every_canary_comparison_that_decides_has_a_minimum_and_a_test() -> None:
    compared = {
        "ratio.error_rate",
        "ratio.latency_p99",
        "accuracy_gap",
        "early_accuracy_gap",
        "offline_drop",
    }
    for book in load_playbooks(PLAYBOOKS).playbooks:
        for check in book.checks:
            if check.tool in ("compare_canary", "compare_with_previous_version") and (
                check.field in compared
            ):
                assert check.min_samples, f"{book.id}/{check.id} has no minimum sample"
                assert any(c.field.startswith("p_value.") for c in check.also), (
                    f"{book.id}/{check.id} has no test"
                )


# --- compare_canary reports what its tests rest on ---------------------------------------------


def test_compare_canary_reports_counts_tests_and_intervals() -> None:
    from datetime import timedelta

    from simworld import MODEL, deploy, world_spec

    from tools._catalog import default_registry
    from tools._toolkit import ToolContext
    from tools.sim import build_world

    world = build_world(world_spec(deploys=[deploy("bad", at=30)]))
    world.advance(timedelta(minutes=60))
    ctx = ToolContext(backends=world.read_backends(), clock=world.clock)
    r = default_registry().call(
        ctx, "compare_canary", {"model": MODEL, "window_minutes": 10}, call_id="c1"
    )
    assert r.ok, r.message
    d = r.data
    c = d["counts"]
    # A 20% canary: about a quarter of the stable version's requests, over 10 minutes.
    assert 0.15 < c["canary_requests"] / c["stable_requests"] < 0.35
    assert c["canary_errors"] / c["canary_requests"] == pytest.approx(
        d["canary"]["error_rate"], abs=1e-3
    )
    assert c["canary_minutes"] == c["stable_minutes"] == 10
    assert d["p_value"]["error_rate"] < 1e-6  # the bad canary errs ~13x more
    assert d["p_value"]["latency_p99"] < 1e-3  # every minute of the canary is slower
    assert c["canary_labelled"] > 0 and 0 <= d["p_value"]["accuracy"] <= 1
    iv = d["accuracy_interval"]["canary"]
    assert iv["low"] <= c["canary_correct"] / c["canary_labelled"] <= iv["high"]
    gap = d["accuracy_gap_interval"]
    assert gap["low"] <= d["accuracy_gap"] <= gap["high"]
    # The online deficit offline validation did not predict (what tells skew from a worse model).
    assert d["unexplained_gap"] == pytest.approx(d["accuracy_gap"] - d["offline_gap"], abs=1e-4)


def test_holm_agrees_with_statsmodels_on_random_families(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from statsmodels.stats.multitest import multipletests

    # multipletests runs gc.collect() on every call (the reason holm_reject does not use it);
    # 300 of them would cost most of a minute here, and collection has no part in the result.
    monkeypatch.setattr(gc, "collect", lambda *args: 0)

    rng = np.random.default_rng(0)
    for _ in range(300):
        m = int(rng.integers(1, 12))
        # a mix of clear signals and noise, so both outcomes occur
        p = [float(x) for x in rng.uniform(0, 0.08, m) ** rng.uniform(0.5, 3, m)]
        expected, *_ = multipletests(p, alpha=0.05, method="holm")
        assert holm_reject(p, 0.05) == [bool(r) for r in expected], p
    assert holm_reject([]) == []
    assert holm_reject([0.01, 0.04, 0.03]) == [True, False, False]  # 0.03 > 0.05 / 2
