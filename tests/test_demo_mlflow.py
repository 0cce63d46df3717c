"""The demo's MLflow backends: the world's versions mirrored into a local store, retrains run
as MLflow runs the world then serves, alias moves in both, and CLI sessions on such a run."""

from __future__ import annotations

import json
import os
import pickle
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from supervisor import ActionError
from supervisor.audit import verify
from supervisor.cli import main
from supervisor.config import config_from_dict
from supervisor.demo import demo_backends, demo_config, load_world, save_world
from supervisor.demo._mlflow import MirroredRegistry
from supervisor.domain import TimeWindow
from supervisor.runtime import Supervisor
from supervisor.telemetry import TelemetryConfig, setup_tracing
from tools.sim import DeploySpec, ModelSpec, WorldSpec, build_world, demo_world_spec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

MIN = timedelta(minutes=1)
URI_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def test_mlflow_and_the_world_stay_in_step(tmp_path: Path) -> None:
    world = build_world(
        WorldSpec(
            seed=11,
            models=[ModelSpec(name="m", owner="team-m", data_owner="team-data")],
            deploys=[DeploySpec(model="m", at_minutes=30, quality="good")],
        )
    )
    env = {k: os.environ.get(k) for k in URI_VARS}
    with demo_backends(world, tmp_path, mlflow=True) as (read, write):
        registry = write.registry
        assert isinstance(registry, MirroredRegistry)
        client = registry.mlflow.client

        def aliases() -> tuple[dict[str, str], dict[str, str]]:
            ours = {k: str(v) for k, v in client.get_registered_model("m").aliases.items()}
            sim = {a: v.version for v in world.versions("m") for a in v.aliases}
            return ours, sim

        # The world's versions are logged and registered once, with sim-time dates.
        assert registry.sync() == [("m", "1"), ("m", "2")]
        assert registry.sync() == []
        got, sim = read.registry.versions("m"), world.versions("m")
        assert [(v.version, v.aliases, v.created_at) for v in got] == [
            (v.version, v.aliases, v.created_at) for v in sim
        ]
        assert got[1].metrics == sim[1].metrics and got[1].tags["validation_status"] == "passed"
        assert got[1].training_window == sim[1].training_window

        # A version the world deploys on its own appears in MLflow at the next read,
        # challenger from the deploy time on.
        world.advance(45 * MIN)
        assert [(v.version, v.aliases) for v in read.registry.versions("m")][-1] == (
            "3",
            ["challenger"],
        )
        events = read.registry.timeline("m", world.start)
        assert [(e.kind, e.version) for e in events if e.at == world.start + 30 * MIN] == [
            ("registered", "3"),
            ("alias_moved", "3"),  # from MLflow's alias log
            ("canary_started", "3"),  # from the world: MLflow does not hold deployments
        ]

        # Alias preconditions hold; a refused move changes neither side.
        with pytest.raises(ActionError, match="not the expected '1'"):
            write.registry.set_alias("m", "champion", "3", expected="1")
        assert aliases() == ({"champion": "2", "challenger": "3"},) * 2

        # The supervisor's deploy changes are tagged on the MLflow version.
        write.deploy.abort_canary("m", expected_version="3")
        assert "mlops_supervisor.deploy.canary_aborted" in client.get_model_version("m", "3").tags

        # A retrain is an MLflow run on the world's rows: the model the world alone would fit.
        before = pickle.dumps(world)
        window = TimeWindow(start=world.start, end=world.now)
        result = write.train.retrain(
            "m", window=window, exclude=[], idempotency_key="k", min_accuracy=0.5
        )
        twin = pickle.loads(before)
        alone = twin.retrain("m", window=window, exclude=[], idempotency_key="k", min_accuracy=0.5)
        assert result.version == alone.version == "4" and result.validation_passed
        assert result.metrics["accuracy"] == pytest.approx(alone.metrics["accuracy"], abs=1e-4)
        assert result.details["holdout_rows"] == alone.details["holdout_rows"]
        assert np.allclose(world.estimator("m", "4")[-1].coef_, twin.estimator("m", "4")[-1].coef_)
        assert aliases() == ({"champion": "2", "challenger": "4"},) * 2
        assert write.train.retrain(
            "m", window=window, exclude=[], idempotency_key="k", min_accuracy=0.5
        ) == result  # fmt: skip

        # Canary, promotion: the world serves version 4, MLflow's champion moves with a log entry.
        write.deploy.serve_version("m", "4", expected_version="2", canary_weight=10)
        write.deploy.promote_canary("m", expected_version="4")
        write.registry.set_alias("m", "champion", "4", expected="2")
        assert aliases()[0]["champion"] == aliases()[1]["champion"] == "4"
        log = [
            json.loads(v)
            for k, v in client.get_registered_model("m").tags.items()
            if k.startswith("mlops_supervisor.alias_move.champion.")
        ]
        assert {(m["from"], m["to"], m["kind"]) for m in log} == {
            (None, "2", "alias_moved"),
            ("2", "4", "promoted"),
        }
        assert world.status("m").stable_version == "4"  # type: ignore[union-attr]

    # MLflow's process-wide URIs are as they were.
    assert {k: os.environ.get(k) for k in URI_VARS} == env

    # A crash after MLflow registered the retrain but before the world served it: the next
    # session's reconciliation (find_run) hands the registered model to the world.
    crashed = pickle.loads(before)
    with demo_backends(crashed, tmp_path) as (_, write):
        found = write.train.find_run("m", "k")
        assert found is not None and found.version == "4"
    assert [v.version for v in crashed.versions("m")] == ["1", "2", "3", "4"]
    assert np.allclose(crashed.estimator("m", "4")[-1].coef_, world.estimator("m", "4")[-1].coef_)


@pytest.fixture(scope="module")
def paused_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo on MLflow, stopped while the churn retrain has waited 20 minutes for approval."""
    state = tmp_path_factory.mktemp("demo") / "state"
    state.mkdir()
    raw = demo_config(state)
    (state / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    world = build_world(demo_world_spec(7))
    with demo_backends(world, state, mlflow=True) as (read, write):
        tracing = setup_tracing(TelemetryConfig())
        sup = Supervisor(
            config_from_dict(raw, source="test"),
            read=read,
            write=write,
            clock=world.clock,
            tracing=tracing,
            state_dir=state,
        )
        try:
            while not sup.pending_approvals():
                assert world.now < world.start + timedelta(hours=2), "no approval requested"
                world.advance(5 * MIN)
                sup.tick()
            (pending,) = sup.pending_approvals()
            for _ in range(4):  # alice reads the report first, as in the demo (labels arrive)
                world.advance(5 * MIN)
                sup.tick()
        finally:
            sup.close()
            tracing.shutdown()
    save_world(world, state)
    return state, pending.incident_id


def test_cli_approve_on_a_demo_run_retrains_in_its_mlflow_store(
    paused_demo: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    state, incident = paused_demo
    assert main(["approve", incident, "--by", "alice", "--state", str(state)]) == 0
    assert "incident is now mitigated" in capsys.readouterr().out
    uri = f"sqlite:///{state / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    v3 = client.get_model_version("churn", "3")
    assert v3.tags["validation_status"] == "passed" and v3.tags["trigger"] == "retrain"
    assert "mlops_supervisor.deploy.canary_started" in v3.tags
    assert str(client.get_registered_model("churn").aliases["challenger"]) == "3"
    world = load_world(state)
    assert world is not None
    status = world.status("churn")
    assert status is not None and status.canary_version == "3"
    assert world.versions("churn")[-1].run_id == v3.run_id
    assert verify(state / "audit.jsonl").ok
