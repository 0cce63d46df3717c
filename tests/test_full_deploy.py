"""Full-deploy regressions (issue 12, requirement 5): a version serving 100% that degrades is
judged against the version it replaced and its own validation, and rolled back.

No canary runs beside a full deploy, so the canary playbooks cannot decide; these tests make
the new version stable by promoting a canary in the world (as a human or a CD system would)
before the supervisor looks, then run the supervisor end to end.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from simworld import MODEL, PLAYBOOKS, Rig, deploy, fault, make_rig, open_session, world_spec

from supervisor import SimClock
from supervisor.domain import Symptom
from supervisor.reasoners import load_playbooks
from supervisor.reasoners._rules import run_playbook
from tools._catalog import default_registry
from tools._toolkit import ToolContext
from tools.sim import build_world
from tools.sim._world import SimWorld

WITH_ACCURACY: list[dict[str, Any]] = [
    {"metric": "error_rate", "threshold": 0.05},
    {"metric": "latency_p99", "threshold": 500.0},
    {"metric": "saturation", "threshold": 0.9},
    {"metric": "accuracy", "op": "<", "threshold": 0.7, "window_minutes": 30},
]


def _promote_new_version(world: SimWorld, at_minutes: float = 90) -> str:
    """Let the canary start, then promote it to 100% at ``at_minutes`` (outside the supervisor)."""
    world.advance(timedelta(minutes=at_minutes) - (world.now - world.start))
    status = world.status(MODEL)
    assert status is not None and status.canary_version is not None
    world.promote_canary(MODEL, expected_version=status.canary_version)
    return status.canary_version


def _collapse(world: SimWorld, version: str) -> None:
    """Make ``version`` predict one class for every input (a broken export, say)."""
    v = world._models[MODEL].versions[version]
    v.scorer = replace(v.scorer, coef=np.zeros_like(v.scorer.coef), intercept=4.0)


def _rig(tmp_path: Path, quality: str, signals: list[dict[str, Any]] | None = None) -> Rig:
    config = None
    if signals is not None:
        config = {"models": [{"name": MODEL, "owner": "team-m", "signals": signals}]}
    return make_rig(tmp_path, deploys=[deploy(quality, at=30, weight=20)], config=config)


def _tool(world: SimWorld, name: str, **args: Any) -> Any:
    ctx = ToolContext(backends=world.read_backends(), clock=world.clock)
    return default_registry().call(ctx, name, {"model": MODEL, **args}, call_id="t1")


def test_compare_with_previous_version_reports_counts_and_tests() -> None:
    world = build_world(world_spec(deploys=[deploy("bad", at=30)]), SimClock(world_spec().start))
    world.advance(timedelta(minutes=40))
    # While a canary runs, compare_canary is the comparison: this tool has no data.
    assert _tool(world, "compare_with_previous_version").status.value == "no_data"
    new = _promote_new_version(world)
    world.advance(timedelta(minutes=30))
    r = _tool(world, "compare_with_previous_version")
    assert r.ok, r.message
    d = r.data
    assert (d["version"], d["previous_version"]) == (new, "2")
    assert d["deployed_minutes_ago"] == 30.0
    assert d["ratio"]["error_rate"] > 5  # the bad version adds 6 points of errors
    assert d["p_value"]["error_rate"] < 1e-6
    assert d["counts"]["current_requests"] > 1000 and d["counts"]["previous_requests"] > 1000
    assert d["counts"]["current_minutes"] >= 5 and d["counts"]["previous_minutes"] >= 5
    low, high = d["accuracy_interval"]["current"]["low"], d["accuracy_interval"]["current"]["high"]
    assert low <= d["current"]["accuracy"] <= high


def test_full_deploy_with_errors_is_rolled_back(tmp_path: Path) -> None:
    rig = _rig(tmp_path, "bad")
    try:
        new = _promote_new_version(rig.world)
        inc = rig.first_incident()
        diag = rig.diagnosis(inc.id)
        assert diag["root_cause"] == "bad_model_version", diag["summary"]
        assert diag["playbook"] == "bad-model-version-full-deploy"
        plan = rig.plan(inc.id)
        assert plan["action"] == "rollback"
        assert plan["target"]["version"] == "2"
        assert rig.decision(inc.id)["verdict"] == "allow"
        assert [o["outcome"]["status"] for o in rig.outcomes(inc.id)] == ["succeeded"]
        status = rig.world.status(MODEL)
        assert status is not None and status.stable_version == "2" != new
    finally:
        rig.close()


def test_full_deploy_collapsed_to_one_class_is_rolled_back(tmp_path: Path) -> None:
    # A "good" version (no extra errors or latency) whose predictions collapse: only the
    # score distribution and labelled accuracy show it.
    rig = _rig(tmp_path, "good", WITH_ACCURACY)
    try:
        new = _promote_new_version(rig.world)
        _collapse(rig.world, new)
        inc = rig.first_incident()
        diag = rig.diagnosis(inc.id)
        assert diag["root_cause"] == "bad_model_version", diag["summary"]
        assert diag["playbook"] == "bad-model-version-full-deploy"
        assert rig.plan(inc.id)["action"] == "rollback"
        status = rig.world.status(MODEL)
        assert status is not None and status.stable_version == "2"
    finally:
        rig.close()


def test_healthy_full_deploy_is_not_rolled_back(tmp_path: Path) -> None:
    # The control: a good version promoted to 100% raises nothing the playbook confirms.
    rig = _rig(tmp_path, "good", WITH_ACCURACY)
    try:
        new = _promote_new_version(rig.world)
        for _ in range(12):  # an hour of checks
            rig.world.advance(timedelta(minutes=5))
            rig.sup.tick()
        assert rig.world_writes().get("rollback", 0) == 0
        status = rig.world.status(MODEL)
        assert status is not None and status.stable_version == new
        r = _tool(rig.world, "compare_with_previous_version")
        assert r.ok and r.data["ratio"]["error_rate"] < 2
    finally:
        rig.close()


def test_concept_drift_after_a_full_deploy_is_not_blamed_on_it() -> None:
    # A good version takes all traffic; an hour later the concept drifts (inputs unchanged).
    # Its accuracy since the deploy falls well below the previous version's pre-deploy figure,
    # but it was fine for its first half hour: drift, not the deploy, so no rollback.
    world = build_world(
        world_spec(deploys=[deploy("good", at=30)], faults=[fault("concept_drift", at=150)])
    )
    _promote_new_version(world)
    world.advance(timedelta(minutes=120))
    r = _tool(world, "compare_with_previous_version")
    assert r.ok, r.message
    # Over the whole time since the deploy it looks like a regression (the old check's view).
    assert r.data["accuracy_gap"] >= 0.08 and r.data["p_value"]["accuracy"] <= 0.05
    assert r.data["early_accuracy_gap"] < 0.08
    session = open_session(world, Symptom.QUALITY_DROP)
    book = next(
        b for b in load_playbooks(PLAYBOOKS).playbooks if b.id == "bad-model-version-full-deploy"
    )
    verdict = run_playbook(book, session)
    assert not verdict.matched, verdict.reason
