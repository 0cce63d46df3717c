"""Checking a drawn scenario's ground truth against the simulated world before it is kept.

The generator injects faults and knows the root cause it injected; what it cannot know from the
parameters alone is whether the fault *matters* in the world: a covariate shift of the weak
signal feature can even raise accuracy, and a seasonal shift of nuisance features can still nudge
a fitted model. So each drawn scenario is measured in the sim on its base seed, with the sim's
own ground truth (:meth:`tools.sim.SimWorld.evaluate`, fresh rows whose labels are known at once),
and redrawn when the world does not bear its ground truth out. These thresholds judge the world,
never the supervisor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from supervisor.domain import TimeWindow
from tools.sim import WorldSpec, build_world

#: Rows per true-accuracy measurement. 10,000 rows give a standard error of about 0.0035 on an
#: accuracy near 0.85, so the thresholds below sit many standard errors away from noise.
EVAL_ROWS = 10_000

#: A fault that should hurt ("drops") must cost at least this much true accuracy at full effect.
#: The hand-written ground truth judges recovery with a 0.05 tolerance (``quality_restored``);
#: a fault costing less than that is met by doing nothing, so it is no incident to retrain for.
#: 0.03 on top keeps it clear of the 0.05 bar under the harness's own 2,000-row evaluations
#: (standard error about 0.008 each, 0.011 on a difference: about 3 of them).
MIN_HARM = 0.08

#: A model retrained on an hour of affected, labelled data must come back within this much of the
#: starting accuracy, else the ground truth's ``quality_restored`` would be unreachable by any
#: system. 0.01 inside the 0.05 tolerance, so the harness's noisier evaluations see it hold.
MAX_RETRAINED_GAP = 0.04

#: Window of affected data the retrain check fits on: an hour of rows, as an operator retraining
#: on "the last hour" would; 1,800 logged rows at the sim's 30 rows per minute.
RETRAIN_WINDOW = timedelta(hours=1)

#: What "holds" means: the stable version loses at most this much true accuracy at full effect.
#: Benign change is drift "with no impact on quality"; 0.02 is about 4 standard errors of a
#: 10,000-row difference, so a real impact this small or larger is not called benign.
MAX_BENIGN_DROP = 0.02

#: With an accuracy watch, a concept drift's accuracy must fall at least this far below the floor
#: at full effect: the watch averages the labelled rows of a 30-minute window, as few as 300 with
#: the longest label delay drawn (standard error about 0.025), so 0.05 is 2 standard errors: the
#: floor is genuinely crossed, not grazed.
FLOOR_GAP = 0.05


#: Rejection rules, by name (the generator counts redraws per rule).
Rule = Literal["too_weak", "floor_not_crossed", "retrain_cannot_restore", "not_benign"]


@dataclass(frozen=True)
class QualityClaim:
    """What the ground truth says about one model's true accuracy once every fault is in."""

    model: str
    expect: Literal["drops", "holds"]
    stable: str
    """The version serving as stable when the faults arrive."""
    full_effect_minutes: float
    """When every fault on the model has reached its full size (onset plus ramp)."""
    label_delay_minutes: float
    must_cross: float | None = None
    """An accuracy floor the drop must cross by :data:`FLOOR_GAP` (accuracy-watch trigger)."""


@dataclass(frozen=True)
class Measurement:
    """True accuracies of one model, measured in the sim on the scenario's base seed."""

    model: str
    before: float
    """Stable version, at the world's start."""
    after: float
    """Stable version, at full effect."""
    retrained: float | None = None
    """A model fitted on an hour of affected data, scored at the same time (``drops`` only)."""
    rule: Rule | None = None
    """The rule the claim breaks (None: it holds)."""
    detail: str = ""
    """The numbers behind ``rule``."""


def references(spec: WorldSpec) -> dict[str, float]:
    """True accuracy of what serves at the world's start, per model (before any fault)."""
    world = build_world(spec)
    return {m.name: world.evaluate(m.name, rows=EVAL_ROWS) for m in spec.models}


def measure(spec: WorldSpec, claim: QualityClaim) -> Measurement:
    """Measure ``claim`` in a fresh world built from ``spec`` and say whether it holds."""
    world = build_world(spec)
    before = world.evaluate(claim.model, claim.stable, rows=EVAL_ROWS)
    full = timedelta(minutes=claim.full_effect_minutes + 1)
    world.advance(full)
    after = world.evaluate(claim.model, claim.stable, rows=EVAL_ROWS)
    b, a = round(before, 4), round(after, 4)
    if claim.expect == "holds":
        if before - after > MAX_BENIGN_DROP:
            detail = f"accuracy fell {before - after:.3f} (at most {MAX_BENIGN_DROP} allowed)"
            return Measurement(claim.model, b, a, rule="not_benign", detail=detail)
        return Measurement(claim.model, b, a)
    # "drops": the fault hurts, and a retrain on the affected data undoes the harm.
    if before - after < MIN_HARM:
        detail = f"accuracy fell only {before - after:.3f} (at least {MIN_HARM} needed)"
        return Measurement(claim.model, b, a, rule="too_weak", detail=detail)
    if claim.must_cross is not None and after > claim.must_cross - FLOOR_GAP:
        detail = f"accuracy {after:.3f} is not {FLOOR_GAP} below the floor {claim.must_cross}"
        return Measurement(claim.model, b, a, rule="floor_not_crossed", detail=detail)
    start = world.now
    world.advance(RETRAIN_WINDOW + timedelta(minutes=claim.label_delay_minutes + 1))
    window = TimeWindow(start=start, end=start + RETRAIN_WINDOW)
    run = world.retrain(
        claim.model, window=window, exclude=[], idempotency_key="generator-check", min_accuracy=0.0
    )
    retrained = world.evaluate(claim.model, run.version, rows=EVAL_ROWS)
    r = round(retrained, 4)
    if before - retrained > MAX_RETRAINED_GAP:
        detail = (
            f"a retrain on an hour of affected data reaches only {retrained:.3f} "
            f"(start {before:.3f}, at most {MAX_RETRAINED_GAP} below allowed)"
        )
        return Measurement(claim.model, b, a, r, rule="retrain_cannot_restore", detail=detail)
    return Measurement(claim.model, b, a, r)
