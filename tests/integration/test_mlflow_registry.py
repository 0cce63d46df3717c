"""The MLflow registry adapter against a real ``mlflow server`` (sqlite backend)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mlflow_server import FaultProxy, free_port, mlflow_server

from supervisor import ActionError, BackendError, SimClock
from tools import RegistryReader, RegistryWriter
from tools.mlflow import MlflowConnection, MlflowRegistry

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:mlflow.*"),
]

# Ahead of the wall clock the server stamps registrations with, so moves sort after them.
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


@pytest.fixture(scope="session")
def mlflow_url(request: pytest.FixtureRequest) -> str:
    return mlflow_server(request.config).url


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture
def registry(mlflow_url: str, clock: SimClock) -> MlflowRegistry:
    return MlflowRegistry(MlflowConnection(tracking_uri=mlflow_url, max_retries=0), clock=clock)


@pytest.fixture
def proxy(mlflow_url: str) -> Iterator[FaultProxy]:
    p = FaultProxy(mlflow_url)
    yield p
    p.close()


def seed(
    registry: MlflowRegistry, statuses: list[str | None], aliases: dict[str, int] | None = None
) -> str:
    """A fresh model with one version per status (1-based), each with a run and lineage."""
    client = registry.client
    model = f"fraud-{uuid.uuid4().hex[:8]}"
    exp = client.get_experiment_by_name("seed") or None
    exp_id = exp.experiment_id if exp else client.create_experiment("seed")
    client.create_registered_model(model)
    for i, status in enumerate(statuses, start=1):
        run = client.create_run(
            exp_id, tags={"mlflow.source.git.commit": f"abc{i}", "mlflow.source.name": "train.py"}
        )
        rid = run.info.run_id
        client.log_param(rid, "data_ref", f"s3://data/fraud/day{i}.parquet")
        client.log_param(rid, "training_window_start", (T0 - timedelta(hours=2 * i)).isoformat())
        client.log_param(rid, "training_window_end", (T0 - timedelta(hours=i)).isoformat())
        client.log_metric(rid, "accuracy", 0.8 + i / 100)
        client.set_terminated(rid)
        tags = {} if status is None else {"validation_status": status}
        client.create_model_version(model, f"runs:/{rid}/model", run_id=rid, tags=tags)
    for alias, version in (aliases or {}).items():
        client.set_registered_model_alias(model, alias, str(version))
    return model


def _champion(registry: MlflowRegistry, model: str) -> str | None:
    return registry.aliases(model).get("champion")


def test_satisfies_the_ports(registry: MlflowRegistry) -> None:
    assert isinstance(registry, RegistryReader)
    assert isinstance(registry, RegistryWriter)


def test_versions_aliases_tags_metrics_and_lineage(registry: MlflowRegistry) -> None:
    model = seed(registry, ["passed", "passed", "failed"], {"champion": 2, "challenger": 3})
    versions = registry.versions(model)
    assert [v.version for v in versions] == ["1", "2", "3"]
    assert versions[1].aliases == ["champion"] and versions[2].aliases == ["challenger"]
    assert versions[2].tags == {"validation_status": "failed"}
    assert versions[0].metrics == {"accuracy": pytest.approx(0.81)}
    assert versions[0].training_window is not None
    assert versions[0].training_window.end == T0 - timedelta(hours=1)
    lineage = registry.lineage(model, "2")
    assert lineage.run_id == versions[1].run_id
    assert lineage.data_ref == "s3://data/fraud/day2.parquet"
    assert lineage.code_version == "abc2" and lineage.source_name == "train.py"
    assert lineage.source == f"runs:/{lineage.run_id}/model"


def test_missing_model_and_version_are_named(registry: MlflowRegistry) -> None:
    with pytest.raises(BackendError, match=r"no registered model 'nope-model'"):
        registry.versions("nope-model")
    with pytest.raises(BackendError, match=r"'nope-model'"):
        registry.timeline("nope-model", T0)
    with pytest.raises(ActionError, match=r"no registered model 'nope-model'"):
        registry.set_alias("nope-model", "champion", "1", expected=None)
    model = seed(registry, ["passed"])
    with pytest.raises(ActionError, match=rf"{model!r} has no version '9'.*\['1'\]"):
        registry.set_alias(model, "champion", "9", expected=None)


def test_set_alias_with_precondition(registry: MlflowRegistry) -> None:
    model = seed(registry, ["passed", "passed"], {"champion": 1})
    registry.set_alias(model, "champion", "2", expected="1")
    assert _champion(registry, model) == "2"
    # The alias moved under us: refused, nothing written.
    registry.client.set_registered_model_alias(model, "champion", "1")
    with pytest.raises(ActionError, match=r"points at '1', not the expected '2'"):
        registry.set_alias(model, "champion", "2", expected="2")
    assert _champion(registry, model) == "1"
    # expected=None means "unset".
    with pytest.raises(ActionError, match="not the expected None"):
        registry.set_alias(model, "champion", "2", expected=None)
    registry.set_alias(model, "challenger", "2", expected=None)
    assert registry.aliases(model) == {"champion": "1", "challenger": "2"}


def test_failed_version_never_becomes_champion(registry: MlflowRegistry) -> None:
    model = seed(registry, ["passed", "failed"], {"champion": 1, "challenger": 2})
    with pytest.raises(ActionError, match="failed validation"):
        registry.set_alias(model, "champion", "2", expected="1")
    with pytest.raises(ActionError, match="validation_status='failed'"):
        registry.promote(model, "2", expected_champion="1")
    assert _champion(registry, model) == "1"


def test_promote_then_rollback_and_timeline(registry: MlflowRegistry, clock: SimClock) -> None:
    model = seed(registry, ["passed", "passed", "passed"], {"champion": 2, "challenger": 3})
    since = datetime(2000, 1, 1, tzinfo=UTC)
    clock.advance(timedelta(minutes=5))
    change = registry.promote(model, "3", expected_champion="2")
    assert (change.previous, change.version, change.kind) == ("2", "3", "promoted")
    assert registry.aliases(model) == {"champion": "3"}  # challenger alias consumed
    tags = {v.version: v.tags for v in registry.versions(model)}
    assert tags["3"]["mlops_supervisor.previous_champion"] == "2"
    assert tags["2"]["mlops_supervisor.superseded_by"] == "3"
    # Replaying the promotion is harmless.
    assert registry.promote(model, "3", expected_champion="2").already_done
    # Rollback goes to the champion before: 2, from the alias log.
    with pytest.raises(ActionError, match="not the expected '2'"):
        registry.rollback(model, expected_champion="2")
    clock.advance(timedelta(minutes=5))
    back = registry.rollback(model, expected_champion="3")
    assert (back.previous, back.version, back.kind) == ("3", "2", "rolled_back")
    assert _champion(registry, model) == "2"
    events = registry.timeline(model, since)
    moves = [(e.kind, e.version, e.at) for e in events if e.kind in ("promoted", "rolled_back")]
    assert moves == [
        ("promoted", "3", T0 + timedelta(minutes=5)),
        ("rolled_back", "2", T0 + timedelta(minutes=10)),
    ]
    assert [e.version for e in events if e.kind == "registered"] == ["1", "2", "3"]
    # The seed's own alias moves were made outside the supervisor: derived, said so.
    assert not any("outside" in e.detail for e in events if e.version == "2")
    later = registry.timeline(model, T0 + timedelta(minutes=6))
    assert [e.kind for e in later] == ["rolled_back"]


def test_rollback_skips_failed_and_falls_back_to_older_validated(registry: MlflowRegistry) -> None:
    model = seed(registry, ["passed", "failed", None, "passed"], {"champion": 4})
    back = registry.rollback(model, expected_champion="4")
    assert back.version == "1"  # 3 has no verdict, 2 failed
    model2 = seed(registry, ["failed", "passed"], {"champion": 2})
    with pytest.raises(ActionError, match="no validated version to roll back to"):
        registry.rollback(model2, expected_champion="2")
    assert _champion(registry, model2) == "2"


def test_alias_moved_outside_appears_in_timeline(registry: MlflowRegistry) -> None:
    model = seed(registry, ["passed", "passed"], {"champion": 1})
    events = registry.timeline(model, datetime(2000, 1, 1, tzinfo=UTC))
    outside = [e for e in events if e.kind == "alias_moved"]
    assert len(outside) == 1 and outside[0].version == "1"
    assert "moved outside the supervisor" in outside[0].detail


def _via(proxy: FaultProxy, clock: SimClock) -> MlflowRegistry:
    conn = MlflowConnection(tracking_uri=proxy.url, max_retries=0, timeout_s=5)
    return MlflowRegistry(conn, clock=clock)


def test_503_on_the_write_leaves_the_registry_unchanged(
    registry: MlflowRegistry, proxy: FaultProxy, clock: SimClock
) -> None:
    model = seed(registry, ["passed", "passed"], {"champion": 1})
    proxy.fail("POST", "/registered-models/alias", times=5)
    with pytest.raises(ActionError) as err:
        _via(proxy, clock).set_alias(model, "champion", "2", expected="1")
    message = str(err.value)
    assert "still points at '1'" in message
    assert "MLflow server is running" in message and proxy.url in message
    assert _champion(registry, model) == "1"


def test_503_after_the_write_applied_is_reconciled(
    registry: MlflowRegistry, proxy: FaultProxy, clock: SimClock
) -> None:
    model = seed(registry, ["passed", "passed"], {"champion": 1})
    proxy.fail("POST", "/registered-models/alias", after_forward=True)
    _via(proxy, clock).set_alias(model, "champion", "2", expected="1")
    assert _champion(registry, model) == "2"
    statuses = [s for m, p, s in proxy.seen if "/alias" in p and m == "POST"]
    assert statuses == [503]  # the answer was lost, the re-read told the truth


def test_mlflow_down_is_a_backend_error_that_says_what_to_fix(
    proxy: FaultProxy, clock: SimClock
) -> None:
    proxy.down = True
    with pytest.raises(BackendError, match=r"check that the MLflow server is running"):
        _via(proxy, clock).versions("fraud")
    closed = MlflowConnection(tracking_uri=f"http://127.0.0.1:{free_port()}", max_retries=0)
    with pytest.raises(ActionError, match=r"nothing was changed.*MLflow server is running"):
        MlflowRegistry(closed).set_alias("fraud", "champion", "2", expected="1")


def test_retries_ride_out_a_transient_503(
    registry: MlflowRegistry, proxy: FaultProxy, clock: SimClock
) -> None:
    model = seed(registry, ["passed"])
    proxy.fail("GET", "/registered-models/get", times=1)
    conn = MlflowConnection(tracking_uri=proxy.url, max_retries=2, backoff_factor=0)
    versions = MlflowRegistry(conn, clock=clock).versions(model)
    assert [v.version for v in versions] == ["1"]
    assert [s for _, p, s in proxy.seen if "/registered-models/get" in p] == [503, 200]


def _unused(*_: Any) -> None:  # keeps the Any import honest for type checkers
    return None
