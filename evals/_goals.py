"""The goals the report states and checks for the supervisor against the baselines."""

from __future__ import annotations

from statistics import fmean

from pydantic import BaseModel, ConfigDict

from ._results import SUPERVISOR, RunResult
from ._stats import wilson

CANARY_REGRESSIONS = ("bad_model_version", "training_serving_skew")

#: The product's bars (issue 11 and the design brief); each goal says why it is what it is.
ROOT_CAUSE_GOAL = 0.9  # the design brief's bar for the rules reasoner
#: A supervisor that pages on one quiet model in fifty is still trusted on call; more is noise.
FALSE_ALARM_GOAL = 0.02
#: pass^k over 3 seeds: a scenario counts only if it passes on three worlds in a row, so luck on
#: one seed does not count; 90% leaves room for a few genuinely hard scenarios.
PASS_K = 3
PASS_K_GOAL = 0.9


class Goal(BaseModel):
    """One goal: what it asks, the figures, whether it is met and, if not, why."""

    model_config = ConfigDict(extra="forbid")

    id: str
    statement: str
    met: bool | None
    """None: not measurable on this suite (say why in ``detail``)."""
    figures: dict[str, float | int | None]
    detail: str


def _by(results: list[RunResult], system: str) -> list[RunResult]:
    return [r for r in results if r.system == system]


def check_goals(results: list[RunResult]) -> list[Goal]:
    """Check every goal on ``results`` (all systems, same scenarios and seeds)."""
    sup = _by(results, SUPERVISOR)
    return [
        _root_cause(sup),
        _unsafe(sup),
        _canary(sup, _by(results, "flagger")),
        _drift(sup, _by(results, "naive-drift")),
        _false_alarms(sup),
        _pass_k(sup),
    ]


def _root_cause(sup: list[RunResult]) -> Goal:
    cases = [c for r in sup for c in r.cases]
    right = sum(c.root_cause_correct for c in cases)
    acc = right / len(cases) if cases else None
    misses = sorted(
        {
            f"{r.scenario}: {c.expected_root_cause or 'nothing wrong'} -> "
            f"{c.diagnosed_root_cause or 'no incident'}"
            for r in sup
            for c in r.cases
            if not c.root_cause_correct
        }
    )
    return Goal(
        id="root-cause-accuracy",
        statement="Root-cause accuracy of the rules reasoner >= 90%",
        met=None if acc is None else acc >= ROOT_CAUSE_GOAL,
        figures={"accuracy": None if acc is None else round(acc, 4), "cases": len(cases)},
        detail="misdiagnosed: " + "; ".join(misses) if misses else "every case diagnosed right",
    )


def _unsafe(sup: list[RunResult]) -> Goal:
    unsafe = [
        f"{r.scenario}/seed {r.seed}: {', '.join(c.unsafe_actions)} on {c.model}"
        for r in sup
        for c in r.cases
        if c.unsafe_actions
    ]
    return Goal(
        id="zero-unsafe",
        statement="Zero unsafe actions (no forbidden action ever takes effect)",
        met=not unsafe,
        figures={"unsafe_actions": len(unsafe)},
        detail="; ".join(unsafe) if unsafe else "no forbidden action took effect",
    )


def _canary(sup: list[RunResult], flagger: list[RunResult]) -> Goal:
    def ttm(runs: list[RunResult]) -> dict[tuple[str, int, str], float]:
        return {
            (r.scenario, r.seed, c.model): c.mitigate_minutes
            for r in runs
            for c in r.cases
            if c.expected_root_cause in CANARY_REGRESSIONS
            and c.mitigated
            and c.mitigate_minutes is not None
        }

    cases = [
        (r.scenario, r.seed, c.model)
        for r in sup
        for c in r.cases
        if c.expected_root_cause in CANARY_REGRESSIONS
    ]
    s, f = ttm(sup), ttm(flagger)
    both = sorted(set(s) & set(f))
    healthy = sum(r.healthy_canary_rollbacks for r in sup)
    s_mean = fmean(s[k] for k in both) if both else None
    f_mean = fmean(f[k] for k in both) if both else None
    figures: dict[str, float | int | None] = {
        "cases": len(cases),
        "supervisor_mitigated": len(s),
        "flagger_mitigated": len(f),
        "paired": len(both),
        "supervisor_ttm": None if s_mean is None else round(s_mean, 2),
        "flagger_ttm": None if f_mean is None else round(f_mean, 2),
        "healthy_canary_rollbacks": healthy,
    }
    if not cases or flagger == []:
        return Goal(
            id="canary-ttm",
            statement="Canary regressions: time to mitigate <= half of flagger's, "
            "zero rollbacks of healthy canaries",
            met=None,
            figures=figures,
            detail="no canary-regression cases, or flagger was not run",
        )
    fast = s_mean is not None and f_mean is not None and s_mean <= 0.5 * f_mean
    detail = []
    if not both:
        detail.append("no case mitigated by both systems, so times cannot be paired")
    elif not fast:
        detail.append(
            f"supervisor mitigates in {s_mean:.1f} min vs flagger {f_mean:.1f} min on "
            f"{len(both)} paired cases (needs <= {0.5 * (f_mean or 0):.1f})"
        )
    if healthy:
        detail.append(f"{healthy} healthy canaries rolled back")
    missed = len(cases) - len(s)
    if missed:
        detail.append(f"supervisor did not mitigate {missed} of {len(cases)} cases")
    if len(f) < len(cases):
        detail.append(f"flagger mitigated only {len(f)} of {len(cases)}")
    return Goal(
        id="canary-ttm",
        statement="Canary regressions: time to mitigate <= half of flagger's, "
        "zero rollbacks of healthy canaries",
        met=fast and healthy == 0,
        figures=figures,
        detail="; ".join(detail) or "met",
    )


def _drift(sup: list[RunResult], naive: list[RunResult]) -> Goal:
    s = [r for r in sup if "drift" in r.tags]
    n = [r for r in naive if "drift" in r.tags]
    sr, nr = sum(r.retrains for r in s), sum(r.retrains for r in n)
    sd, nd = sum(r.accuracy_deficit for r in s), sum(r.accuracy_deficit for r in n)
    figures: dict[str, float | int | None] = {
        "runs": len(s),
        "supervisor_retrains": sr,
        "naive_retrains": nr,
        "supervisor_deficit": round(sd, 4),
        "naive_deficit": round(nd, 4),
    }
    if not s or not n:
        return Goal(
            id="drift-retrains",
            statement="Drift: >= 40% fewer retrains than naive-drift, no larger accuracy deficit",
            met=None,
            figures=figures,
            detail="no drift-tagged runs, or naive-drift was not run",
        )
    fewer = sr <= 0.6 * nr
    no_worse = sd <= nd
    detail = [f"{sr} vs {nr} retrains ({(1 - sr / nr) * 100 if nr else 0:.0f}% fewer)"]
    detail.append(f"deficit {sd:.3f} vs {nd:.3f} accuracy-hours")
    return Goal(
        id="drift-retrains",
        statement="Drift: >= 40% fewer retrains than naive-drift, no larger accuracy deficit",
        met=fewer and no_worse,
        figures=figures,
        detail="; ".join(detail),
    )


def _false_alarms(sup: list[RunResult]) -> Goal:
    statement = (
        f"False-alarm rate <= {FALSE_ALARM_GOAL:.0%} on controls (cases where nothing needs doing)"
    )
    calm = [(r, c) for r in sup for c in r.cases if not c.needs_response]
    alarms = sorted({f"{r.scenario}/seed {r.seed} on {c.model}" for r, c in calm if c.false_alarm})
    figures: dict[str, float | int | None] = {"cases": len(calm), "false_alarms": len(alarms)}
    if not calm:
        return Goal(
            id="false-alarms",
            statement=statement,
            met=None,
            figures=figures,
            detail="not measurable: the suite has no control cases",
        )
    rate = len(alarms) / len(calm)
    figures["rate"] = round(rate, 4)
    interval = wilson(len(alarms), len(calm))
    if interval is not None:
        figures["rate_low"], figures["rate_high"] = interval
    detail = f"{len(alarms)} of {len(calm)} control cases alarmed ({rate:.1%})"
    if alarms:
        detail += ": " + "; ".join(alarms)
    return Goal(
        id="false-alarms",
        statement=statement,
        met=rate <= FALSE_ALARM_GOAL,
        figures=figures,
        detail=detail,
    )


def _pass_k(sup: list[RunResult]) -> Goal:
    statement = f"pass^{PASS_K} >= {PASS_K_GOAL:.0%} (a scenario passes on all of {PASS_K} seeds)"
    by_scenario: dict[str, list[RunResult]] = {}
    for r in sorted(sup, key=lambda r: r.seed):
        by_scenario.setdefault(r.scenario, []).append(r)
    fewest = min((len(v) for v in by_scenario.values()), default=0)
    figures: dict[str, float | int | None] = {"scenarios": len(by_scenario), "seeds": fewest}
    if fewest < PASS_K:
        return Goal(
            id="pass-k",
            statement=statement,
            met=None,
            figures=figures,
            detail=f"not measurable: each scenario ran on {fewest} seed(s), and pass^{PASS_K} "
            f"needs {PASS_K} runs of every scenario (run with --seeds {PASS_K})",
        )
    failed = sorted(
        s for s, runs in by_scenario.items() if not all(r.passed for r in runs[:PASS_K])
    )
    share = 1 - len(failed) / len(by_scenario)
    figures["pass_k"] = round(share, 4)
    detail = f"{len(by_scenario) - len(failed)} of {len(by_scenario)} scenarios pass on all "
    detail += f"{PASS_K} seeds"
    if failed:
        detail += "; not on every seed: " + ", ".join(failed)
    return Goal(
        id="pass-k",
        statement=statement,
        met=share >= PASS_K_GOAL,
        figures=figures,
        detail=detail,
    )
