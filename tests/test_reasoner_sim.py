"""Each playbook on its own incident in the simulated world, end to end through the supervisor.

For every root cause a one-model world gets the matching fault; the scheduled checks (ticked in
5-minute steps of sim time) open the incident, the rules reasoner investigates, and we check the
diagnosis, that its evidence cites tool calls that are really in the incident's audit trail (and
say what the evidence claims), and the proposed action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from simworld import DATA_OWNER, MODEL, OWNER, Rig, deploy, fault, make_rig

from supervisor.domain import AuditKind
from tools.sim import DeploySpec, FaultSpec

DEFAULT_SIGNALS: list[dict[str, Any]] = [
    {"metric": "error_rate", "threshold": 0.05},
    {"metric": "latency_p99", "threshold": 500.0},
    {"metric": "saturation", "threshold": 0.9},
]
#: Watching labelled accuracy too (labels arrive 10 min late, so a 30-minute window).
WITH_ACCURACY = [
    *DEFAULT_SIGNALS,
    {"metric": "accuracy", "op": "<", "threshold": 0.7, "window_minutes": 30},
]
#: Serving signals over 10 minutes, the window the infrastructure playbook reads saturation on.
TEN_MINUTE_SIGNALS = [{**s, "window_minutes": 10} for s in DEFAULT_SIGNALS]

Cited = dict[str, dict[str, Any]]


def _signals(signals: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "models": [{"name": MODEL, "owner": OWNER, "data_owner": DATA_OWNER, "signals": signals}]
    }


@dataclass
class Case:
    root_cause: str
    playbook: str
    symptom: str
    action: str
    faults: list[FaultSpec] = field(default_factory=list)
    deploys: list[DeploySpec] = field(default_factory=list)
    config: dict[str, Any] | None = None
    #: Checks on the data of the cited tool results, by tool name.
    evidence: Callable[[Cited], None] = lambda cited: None
    version: str | None = None
    owner: str | None = None


def _drift_without_defect(share: float) -> Callable[[Cited], None]:
    def check(c: Cited) -> None:
        assert c["get_drift_report"]["drift_share"] >= share
        assert c["get_drift_report"]["defect_count"] == 0

    return check


def _defect(text: str) -> Callable[[Cited], None]:
    def check(c: Cited) -> None:
        report = c["get_drift_report"]
        assert report["defect_count"] >= 1
        assert any(text in d for d in report["defects"]), report["defects"]

    return check


def _covariate(c: Cited) -> None:
    _drift_without_defect(0.3)(c)
    assert c["get_model_quality"]["accuracy_drop"] >= 0.05


def _concept(c: Cited) -> None:
    assert c["get_drift_report"]["drift_share"] < 0.3
    assert c["get_drift_report"]["defect_count"] == 0
    assert c["get_model_quality"]["accuracy_drop"] >= 0.05


def _skew(c: Cited) -> None:
    cmp = c["compare_canary"]
    assert cmp["accuracy_gap"] >= 0.08 and cmp["offline_gap"] < 0.03
    assert cmp["ratio"]["error_rate"] < 2.0
    assert c["get_change_timeline"]["minutes_since_last_deploy"] <= 240


def _bad(c: Cited) -> None:
    cmp = c["compare_canary"]
    assert cmp["canary_weight"] == 20
    assert cmp["ratio"]["error_rate"] >= 2.0


def _healthy(c: Cited) -> None:
    cmp = c["compare_canary"]
    assert cmp["canary_samples"] >= 100
    assert cmp["ratio"]["error_rate"] < 1.5 and cmp["ratio"]["latency_p99"] < 1.3
    assert cmp["accuracy_gap"] < 0.03


def _infrastructure(c: Cited) -> None:
    assert c["get_metric"]["metric"] == "saturation"
    assert c["get_metric"]["value"] >= 0.85


def _benign(c: Cited) -> None:
    assert c["get_drift_report"]["defect_count"] == 0
    assert c["get_model_quality"]["accuracy_drop"] < 0.03


CASES = {
    "covariate_drift": Case(
        "covariate_drift", "covariate-drift", "quality_drop", "retrain",
        faults=[fault("covariate_drift")], evidence=_covariate,
    ),
    "concept_drift": Case(
        "concept_drift", "concept-drift", "quality_drop", "retrain",
        faults=[fault("concept_drift")], config=_signals(WITH_ACCURACY), evidence=_concept,
    ),
    "upstream_null_spike": Case(
        "upstream_data_defect", "upstream-data-defect", "data_drift", "escalate",
        faults=[fault("null_spike")], evidence=_defect("null spike"), owner=DATA_OWNER,
    ),
    # A x1000 unit change wrecks accuracy at once: the quality watch (issue 12) sees it on
    # labelled rows before the next drift check is due, so the incident opens as quality_drop.
    "upstream_unit_change": Case(
        "upstream_data_defect", "upstream-data-defect", "quality_drop", "escalate",
        faults=[fault("unit_change")], evidence=_defect("unit change"), owner=DATA_OWNER,
    ),
    "upstream_schema_change": Case(
        "upstream_data_defect", "upstream-data-defect", "data_drift", "escalate",
        faults=[fault("schema_change")], evidence=_defect("column"), owner=DATA_OWNER,
    ),
    "training_serving_skew": Case(
        "training_serving_skew", "training-serving-skew", "canary_analysis", "abort_canary",
        deploys=[deploy("skewed")], evidence=_skew, version="3",
    ),
    "bad_model_version": Case(
        "bad_model_version", "bad-model-version", "canary_analysis", "abort_canary",
        deploys=[deploy("bad")], evidence=_bad, version="3",
    ),
    "infrastructure": Case(
        "infrastructure", "infrastructure", "high_error_rate", "escalate",
        faults=[fault("saturation")], config=_signals(TEN_MINUTE_SIGNALS),
        evidence=_infrastructure, owner=OWNER,
    ),
    "healthy_canary": Case(
        "healthy_canary", "healthy-canary", "canary_analysis", "promote_canary",
        deploys=[deploy("good")], evidence=_healthy, version="3",
    ),
    "benign_change": Case(
        "benign_change", "benign-change", "data_drift", "no_action",
        faults=[fault("seasonal_shift")], evidence=_benign,
    ),
    # A watched model that reports nothing at all (the world does not serve it).
    "insufficient_evidence": Case(
        "insufficient_evidence", "insufficient-evidence", "no_data", "escalate",
        config={"models": [{"name": "ghost", "owner": OWNER}]}, owner=OWNER,
        evidence=lambda c: None,
    ),
}  # fmt: skip


def run_case(case: Case, tmp_path: Path) -> tuple[Rig, str]:
    rig = make_rig(tmp_path, faults=case.faults, deploys=case.deploys, config=case.config)
    inc = rig.first_incident()
    return rig, inc.id


def assert_case(rig: Rig, incident_id: str, case: Case) -> None:
    inc = rig.incident(incident_id)
    assert inc.symptom.value == case.symptom
    diag = rig.diagnosis(incident_id)
    assert (diag["root_cause"], diag["playbook"]) == (case.root_cause, case.playbook), diag[
        "summary"
    ]
    assert diag["confidence"] >= 0.5

    # Every citation names a tool call the incident's investigation really made and recorded.
    calls = {
        r.data["call_id"]: r.data
        for r in rig.records(AuditKind.TOOL_CALL, incident_id)
        if r.actor == "investigate"
    }
    evidence = diag["evidence"]
    assert evidence, "a diagnosis must cite evidence"
    for e in evidence:
        assert e["call_id"] in calls, (e, sorted(calls))
        assert calls[e["call_id"]]["tool"] == e["tool"]
    cited = {
        calls[e["call_id"]]["tool"]: calls[e["call_id"]]["data"] for e in evidence if e["supports"]
    }
    case.evidence(cited)
    # The guard saw the same citations.
    assert rig.records(AuditKind.DECISION, incident_id)[-1].data["evidence"] == [
        e["call_id"] for e in evidence
    ]

    plan = rig.plan(incident_id)
    assert plan["action"] == case.action
    if case.version is not None:
        assert plan["target"]["version"] == case.version
    if case.owner is not None:
        assert plan["parameters"]["owner"] == case.owner
    assert rig.verified()


@pytest.mark.parametrize("name", list(CASES))
def test_playbook_diagnoses_its_own_incident(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    rig, incident_id = run_case(case, tmp_path)
    try:
        assert_case(rig, incident_id, case)
    finally:
        rig.close()


def test_infrastructure_with_default_signal_windows(tmp_path: Path) -> None:
    case = CASES["infrastructure"]
    default = Case(**{**case.__dict__, "config": None})
    rig, incident_id = run_case(default, tmp_path)
    try:
        assert_case(rig, incident_id, default)
    finally:
        rig.close()


def test_concept_drift_with_default_signals(tmp_path: Path) -> None:
    case = CASES["concept_drift"]
    default = Case(**{**case.__dict__, "config": None, "symptom": "quality_drop"})
    rig, incident_id = run_case(default, tmp_path)
    try:
        assert_case(rig, incident_id, default)
    finally:
        rig.close()


def test_tool_call_ids_are_unique_within_an_incident(tmp_path: Path) -> None:
    rig, incident_id = run_case(CASES["bad_model_version"], tmp_path)
    try:
        actors = {r.actor for r in rig.records(AuditKind.TOOL_CALL, incident_id)}
        assert actors == {"investigate", "verify"}  # the abort was verified
        ids = [r.data["call_id"] for r in rig.records(AuditKind.TOOL_CALL, incident_id)]
        assert len(ids) == len(set(ids)), ids
    finally:
        rig.close()
