"""Bad input and backend faults during an action, through the executor on the real adapters
(issue 4, requirement 7).

MLflow unreachable, an alias that moved under us, a model name that does not exist, and a
Kubernetes 403 (a verb missing from the Role), 404 and 409: each must leave the backends
unchanged or reconciled, end in an audited outcome, and fail with a message that tells the
operator what to fix. The Kubernetes side is the loopback API emulator enforcing the shipped
Role; the MLflow side a local sqlite store (``crashkit``). The graph-level tests at the end show
the same failures reach the operator as an escalation.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from crashkit import (  # noqa: F401 (fixtures)
    INCIDENT,
    MLFLOW_WARNINGS,
    MODEL,
    A,
    Backends,
    Lab,
    Setup,
    Station,
    alias_moves,
    applied_patches,
    lab_fixture,
    mlflow_template_fixture,
    plan_for,
    record_guard,
    runs_with_key,
    start_emulator,
)
from kube_cluster import KSERVE, NS, isvc, role_rules
from kube_emulator import KubeEmulator
from mlflow_server import free_port
from simworld import MODEL as SIM_MODEL
from simworld import config_dict, deploy, world_spec

from supervisor.audit import verify
from supervisor.config import config_from_dict
from supervisor.domain import ActionPlan, AuditKind, Incident, IncidentStatus, OutcomeStatus
from supervisor.runtime import Supervisor
from supervisor.telemetry import TelemetryConfig, setup_tracing
from tools import WriteBackends, read_only
from tools.kubernetes import KubernetesDeploy
from tools.sim import build_world

pytestmark = MLFLOW_WARNINGS

ISVC = "inferenceservices"


def act(station: Station, plan: ActionPlan, incident: Incident = INCIDENT) -> Any:
    """Record the guard's decision as the graph does, then execute the plan."""
    record_guard(station.recorder, plan, station.clock.now(), incident_id=incident.id)
    return station.execute(plan, incident)


def audited_outcome(station: Station) -> dict[str, Any]:
    [record] = station.audit.find(AuditKind.ACTION_OUTCOME)
    return dict(record.data["outcome"])


def spec(lab: Lab, name: str = MODEL) -> dict[str, Any]:
    """What the InferenceService declares (the emulator's stored object minus its status)."""
    obj = lab.isvc(name)
    return {"metadata": obj["metadata"], "spec": obj["spec"]}


def assert_failed_and_audited(station: Station, outcome: Any, *needles: str) -> None:
    assert outcome.status is OutcomeStatus.FAILED, outcome.detail
    for needle in needles:
        assert needle in outcome.detail, f"{needle!r} not in {outcome.detail!r}"
    audited = audited_outcome(station)
    assert audited["status"] == "failed" and audited["detail"] == outcome.detail
    assert station.audit.find(AuditKind.ACTION_INTENT), "the intent precedes the call"
    assert verify(station.audit.path).ok


# --------------------------------------------------------------------------- Kubernetes 403


@pytest.mark.parametrize("verb", ["patch", "get"])
@pytest.mark.parametrize("action", [A.ABORT_CANARY, A.SET_CANARY_WEIGHT, A.PROMOTE_CANARY])
def test_a_verb_missing_from_the_role_fails_unchanged_naming_the_grant(
    verb: str, action: Any, lab: Lab
) -> None:
    lab.emulator.rbac_rules = [
        {**r, "verbs": [v for v in r["verbs"] if v != verb]} if r["apiGroups"] == [KSERVE] else r
        for r in role_rules()
    ]
    before, champion = spec(lab), lab.champion()
    station = lab.station()
    outcome = act(station, plan_for(action))
    assert_failed_and_audited(
        station,
        outcome,
        "403",
        f"lacks verb {verb!r} on resource 'inferenceservices'",
        "API group 'serving.kserve.io'",
        f"namespace '{NS}'",
        "apply deploy/rbac/",
    )
    assert spec(lab) == before and applied_patches(lab.emulator) == []
    assert lab.champion() == champion


# --------------------------------------------------------------------------- Kubernetes 404


def test_a_model_whose_object_does_not_exist_fails_with_nothing_written(lab: Lab) -> None:
    # "churn" is configured to be served by ml-serving/churn, which is not in the cluster.
    lab = lab.with_setup(kube_models=(MODEL, "churn"))
    station = lab.station()
    outcome = act(station, plan_for(A.ABORT_CANARY, model="churn"))
    assert_failed_and_audited(station, outcome, "no deployment of 'churn'")
    assert lab.emulator.writes() == []


def test_an_object_deleted_between_read_and_patch_fails_naming_it(lab: Lab) -> None:
    lab.emulator.fail("patch", ISVC, 404, message=f'{ISVC}.{KSERVE} "fraud" not found')
    station = lab.station()
    outcome = act(station, plan_for(A.SET_CANARY_WEIGHT))
    assert_failed_and_audited(
        station, outcome, f"InferenceService {NS}/fraud does not exist (404 on patch)"
    )
    assert applied_patches(lab.emulator) == []


def test_kserve_not_installed_fails_saying_so(lab: Lab) -> None:
    lab.emulator.served.discard((KSERVE, "v1beta1", ISVC))
    station = lab.station()
    outcome = act(station, plan_for(A.ABORT_CANARY))
    assert_failed_and_audited(
        station, outcome, "does not serve inferenceservices.serving.kserve.io/v1beta1",
        "is KServe installed",
    )  # fmt: skip
    assert applied_patches(lab.emulator) == []


# --------------------------------------------------------------------------- Kubernetes 409


def _race(lab: Lab, change: Any) -> None:
    """Another actor changes the InferenceService just before our next patch lands."""
    lab.emulator.before_next_write(lambda: lab.emulator.mutate(KSERVE, ISVC, NS, MODEL, change))


def test_an_injected_conflict_is_re_read_and_the_action_completes_once(lab: Lab) -> None:
    lab.emulator.fail("patch", ISVC, 409)
    station = lab.station()
    outcome = act(station, plan_for(A.SET_CANARY_WEIGHT))
    assert outcome.status is OutcomeStatus.SUCCEEDED, outcome.detail
    assert [c.status for c in lab.emulator.writes()] == [409, 200]
    assert lab.isvc()["spec"]["predictor"]["canaryTrafficPercent"] == 50


def test_a_conflict_that_already_reached_the_intended_state_writes_nothing_more(
    lab: Lab,
) -> None:
    _race(lab, lambda o: o["spec"]["predictor"].update(canaryTrafficPercent=50))
    station = lab.station()
    outcome = act(station, plan_for(A.SET_CANARY_WEIGHT))
    assert outcome.status is OutcomeStatus.SUCCEEDED, outcome.detail
    assert outcome.state["canary_weight"] == 50
    assert [c.status for c in lab.emulator.writes()] == [409]


def test_a_conflict_that_replaced_the_canary_fails_keeping_the_other_actors_change(
    lab: Lab,
) -> None:
    def replace(o: dict[str, Any]) -> None:
        o["metadata"]["annotations"].update(
            {
                "mlops-supervisor.io/model-version": "4",
                "mlops-supervisor.io/canary-version": "4",
            }
        )
        o["spec"]["predictor"]["model"]["storageUri"] = "s3://models/fraud/4"

    _race(lab, replace)
    station = lab.station()
    outcome = act(station, plan_for(A.ABORT_CANARY))
    assert_failed_and_audited(
        station, outcome, "canary of 'fraud' is '4', not the expected '3'",
        "re-read the deployment status",
    )  # fmt: skip
    assert lab.isvc()["spec"]["predictor"]["model"]["storageUri"] == "s3://models/fraud/4"
    assert applied_patches(lab.emulator) == []


def test_endless_conflicts_give_up_unchanged_after_the_configured_attempts(lab: Lab) -> None:
    lab.emulator.fail("patch", ISVC, 409, times=10)
    before = spec(lab)
    station = lab.station()
    outcome = act(station, plan_for(A.ABORT_CANARY))
    assert_failed_and_audited(
        station, outcome, f"gave up on InferenceService {NS}/fraud after 3 attempt(s)",
        "409 conflict", "something else keeps changing it",
    )  # fmt: skip
    assert spec(lab) == before


# --------------------------------------------------------------------------- MLflow


@pytest.fixture
def unreachable(lab: Lab) -> Lab:
    """The lab with MLflow at a loopback port nothing listens on."""
    return lab.with_setup(tracking_uri=f"http://127.0.0.1:{free_port()}")


def test_mlflow_unreachable_fails_a_retrain_with_nothing_changed(unreachable: Lab) -> None:
    station = unreachable.station()
    outcome = act(station, plan_for(A.RETRAIN))
    assert_failed_and_audited(
        station,
        outcome,
        unreachable.setup.tracking_uri or "?",
        "check that the MLflow server is running and reachable",
    )
    assert unreachable.emulator.writes() == []
    registry = unreachable.registry()  # the store itself, reached directly
    assert runs_with_key(registry, plan_for(A.RETRAIN).idempotency_key(INCIDENT.id)) == 0
    assert [v.version for v in registry.versions(MODEL)] == ["1", "2", "3"]


@pytest.mark.parametrize("action", [A.PROMOTE_CANARY, A.ROLLBACK])
def test_mlflow_unreachable_fails_a_promotion_naming_the_store(
    action: Any, unreachable: Lab
) -> None:
    station = unreachable.station()
    outcome = act(station, plan_for(action))
    assert_failed_and_audited(
        station,
        outcome,
        f"'{unreachable.setup.tracking_uri}'",
        "check that the MLflow server is running and reachable",
    )
    assert alias_moves(unreachable.registry(), "champion") == []
    assert unreachable.champion() == "2"


def test_a_model_name_that_does_not_exist_anywhere_fails_naming_it(lab: Lab) -> None:
    station = lab.station()
    incident = INCIDENT.model_copy(update={"id": "inc-0002-frued", "model": "frued"})
    outcome = act(station, plan_for(A.ROLLBACK, model="frued"), incident)
    assert outcome.status is OutcomeStatus.FAILED
    assert "'frued' has no deploy target; configured: ['fraud']" in outcome.detail
    assert lab.emulator.writes() == [] and lab.champion() == "2"


def test_retraining_a_model_mlflow_does_not_know_fails_naming_it(lab: Lab) -> None:
    # "ghost" is served in the cluster and has an entry point, but was never registered.
    lab.emulator.put(isvc("ghost", version="3", stable="2", weight=20))
    lab = lab.with_setup(kube_models=(MODEL, "ghost"))
    station = lab.station()
    incident = INCIDENT.model_copy(update={"id": "inc-0003-ghost", "model": "ghost"})
    plan = plan_for(A.RETRAIN, model="ghost")
    outcome = act(station, plan, incident)
    assert outcome.status is OutcomeStatus.FAILED
    assert "no registered model 'ghost'" in outcome.detail
    assert "check the model name in the watch config" in outcome.detail
    assert lab.emulator.writes() == []
    assert runs_with_key(lab.registry(), plan.idempotency_key(incident.id)) == 0


def _move_champion(lab: Lab, to: str) -> None:
    """Another MLflow client (the UI, a script) moves champion, bypassing the supervisor."""
    lab.registry().client.set_registered_model_alias(MODEL, "champion", to)


class _RacingRegistry:
    """The registry write port, with another client moving champion to ``to`` right before
    our alias write (inside the window the adapter's read-compare-set guards)."""

    def __init__(self, inner: Any, lab: Lab, to: str) -> None:
        self._inner, self._lab, self._to = inner, lab, to

    def set_tag(self, *args: Any, **kwargs: Any) -> None:
        self._inner.set_tag(*args, **kwargs)

    def set_alias(self, model: str, alias: str, version: str, *, expected: str | None) -> None:
        _move_champion(self._lab, self._to)
        self._inner.set_alias(model, alias, version, expected=expected)


def test_champion_moved_as_we_move_it_fails_keeping_the_other_clients_choice(
    lab: Lab,
) -> None:
    def racing(b: Backends) -> WriteBackends:
        w = b.write
        registry = _RacingRegistry(w.registry, lab, "1")
        return WriteBackends(registry=registry, deploy=w.deploy, train=w.train,  # type: ignore[arg-type]
                             notifier=w.notifier)  # fmt: skip

    station = lab.station(wrap=racing)
    outcome = act(station, plan_for(A.PROMOTE_CANARY))
    assert_failed_and_audited(
        station,
        outcome,
        "alias 'champion' of 'fraud' points at '1', not the expected '2'",
        "someone else moved it: re-read the registry",
    )
    assert lab.champion() == "1"
    assert alias_moves(lab.registry(), "champion") == []


# --------------------------------------------------------------------------- known bugs


def _registry_down(lab: Lab) -> Lab:
    return lab.with_setup(tracking_uri=f"http://127.0.0.1:{free_port()}")


def _not_registered(lab: Lab) -> Lab:
    lab.registry().client.delete_registered_model(MODEL)
    return lab


@pytest.mark.parametrize("action", [A.PROMOTE_CANARY, A.ROLLBACK])
@pytest.mark.parametrize(
    "fault",
    [_registry_down, _not_registered],
    ids=["mlflow-unreachable", "model-not-registered"],
)
def test_a_registry_failure_leaves_the_deployment_unchanged(
    fault: Any, action: Any, lab: Lab
) -> None:
    before = copy.deepcopy(spec(lab))
    lab = fault(lab)
    station = lab.station()
    outcome = act(station, plan_for(action))
    assert outcome.status is OutcomeStatus.FAILED
    assert spec(lab) == before, "the deployment was changed although the action failed"


@pytest.mark.parametrize("when", ["before-act", "during-deploy-write"])
@pytest.mark.parametrize("action", [A.PROMOTE_CANARY, A.ROLLBACK])
def test_champion_moved_under_us_fails_and_is_not_overwritten(
    action: Any, when: str, lab: Lab
) -> None:
    plan = plan_for(action)  # made while champion is 2
    other = "3" if action is A.ROLLBACK else "1"  # someone else's choice
    if when == "before-act":
        _move_champion(lab, other)
    else:
        lab.emulator.before_next_write(lambda: _move_champion(lab, other))
    station = lab.station()
    outcome = act(station, plan)
    assert lab.champion() == other, f"the other client's champion was overwritten: {outcome}"
    assert outcome.status is OutcomeStatus.FAILED
    assert re.search(r"champion.*moved", outcome.detail)


# --------------------------------------------------------------------------- through the graph


def _forbid_patch(emulator: KubeEmulator) -> None:
    emulator.rbac_rules = [
        {**r, "verbs": ["get"]} if r["apiGroups"] == [KSERVE] else r for r in role_rules()
    ]


GRAPH_FAULTS: dict[str, tuple[Callable[[KubeEmulator], None], list[str]]] = {
    "403-missing-verb": (
        _forbid_patch,
        ["lacks verb 'patch' on resource 'inferenceservices'", "apply deploy/rbac/"],
    ),
    "404-deleted-mid-action": (
        lambda e: e.fail("patch", ISVC, 404, message=f'{ISVC}.{KSERVE} "m" not found'),
        [f"InferenceService {NS}/m does not exist (404 on patch)"],
    ),
    "409-endless-conflicts": (
        lambda e: e.fail("patch", ISVC, 409, times=10),
        ["after 3 attempt(s)", "something else keeps changing it"],
    ),
}


@pytest.mark.parametrize("fault", list(GRAPH_FAULTS))
def test_a_failed_action_escalates_with_what_to_fix(fault: str, tmp_path: Path) -> None:
    """A bad canary on the sim world's signals, served by the emulator's InferenceService:
    the supervisor aborts it, the Kubernetes fault fails the action, the incident escalates."""
    inject, needles = GRAPH_FAULTS[fault]
    emulator = start_emulator(tmp_path / "kubeconfig")
    try:
        emulator.put(isvc(SIM_MODEL, version="3", stable="2", weight=20))
        world = build_world(world_spec(deploys=[deploy("bad", at=0)]))
        deploy_port = KubernetesDeploy(
            Setup(
                state_dir="", kubeconfig=str(tmp_path / "kubeconfig"), mlflow_dir="", data="",
                kube_models=(SIM_MODEL,),
            ).kube_config(),
            clock=world.clock,
        )  # fmt: skip
        inject(emulator)
        state = tmp_path / "state"
        tracing = setup_tracing(TelemetryConfig())
        sup = Supervisor(
            config_from_dict(config_dict(state), source="test config"),
            read=read_only(metrics=world, alerts=world, drift=world, registry=world,
                           deploy=deploy_port),
            write=WriteBackends(registry=world, deploy=deploy_port, train=world, notifier=world),
            clock=world.clock,
            tracing=tracing,
            state_dir=state,
        )  # fmt: skip
        try:
            for _ in range(12):
                world.advance(timedelta(minutes=5))
                sup.tick()
                if sup.incidents.all():
                    break
            [inc] = sup.incidents.all()
            assert inc.status is IncidentStatus.ESCALATED
            [outcome] = sup.audit.find(AuditKind.ACTION_OUTCOME, incident_id=inc.id)
            assert outcome.data["action"] == "abort_canary"
            assert outcome.data["outcome"]["status"] == "failed"
            [escalation] = sup.audit.find(AuditKind.ESCALATION, incident_id=inc.id)
            reason = escalation.data["reason"]
            assert reason.startswith("the action failed: kubernetes: ")
            for needle in needles:
                assert needle in reason, f"{needle!r} not in {reason!r}"
            assert applied_patches(emulator) == []
            assert [p["owner"] for p in world.pages] == ["team-m"]
        finally:
            sup.close()
            tracing.shutdown()
            deploy_port.close()
        assert verify(state / "audit.jsonl").ok
    finally:
        emulator.stop()
