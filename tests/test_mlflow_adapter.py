"""MLflow adapters without a server: lazy import, exports, the Kubernetes Job template and
runner, and the local sqlite store the demo uses."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kube_schemas import validate_core

import tools.mlflow
from supervisor import ActionError, ConfigError, SimClock
from supervisor.domain import TimeWindow
from tools.mlflow import KubernetesJobRunner, MlflowConnection, TrainingRequest, render_job
from tools.mlflow._training import REQUEST_ENV

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:mlflow.*"),
]

START = datetime(2026, 1, 5, tzinfo=UTC)
TEMPLATE = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: placeholder
  labels: {team: risk, model: "${model}"}
spec:
  backoffLimit: 1
  ttlSecondsAfterFinished: 86400
  template:
    spec:
      restartPolicy: Never
      serviceAccountName: trainer
      containers:
        - name: train
          image: registry.example/fraud-train:1.4
          command: ["python", "-m", "tools.mlflow.worker"]
          env:
            - {name: MLOPS_SUPERVISOR_TRAIN_REQUEST, value: "${request_json}"}
            - {name: MLFLOW_TRACKING_URI, value: "${tracking_uri}"}
            - {name: RUN_NOTE, value: "window ${window_start} to ${window_end}, costs $$0"}
          resources:
            requests: {cpu: "1", memory: 2Gi}
"""


def _request(**kw: Any) -> TrainingRequest:
    return TrainingRequest(
        model="fraud",
        idempotency_key="inc-7/retrain/fraud",
        run_id="0123abcd",
        window=TimeWindow(start=START, end=START + timedelta(hours=6)),
        exclude=[TimeWindow(start=START + timedelta(hours=1), end=START + timedelta(hours=2))],
        entry_point="fraud_training:fit",
        min_accuracy=0.8,
        **kw,
    )


def test_importing_the_package_does_not_import_mlflow() -> None:
    code = (
        "import sys, tools.mlflow, tools.mlflow.worker; "
        "heavy = ('mlflow', 'kubernetes', 'pandas', 'sklearn'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_exports() -> None:
    assert sorted(tools.mlflow.__all__) == [
        "AliasChange",
        "AliasMove",
        "InProcessRunner",
        "KubernetesJobRunner",
        "LocalRunner",
        "MlflowConnection",
        "MlflowRegistry",
        "MlflowTrainer",
        "TrainedModel",
        "TrainingRequest",
        "TrainingRunner",
        "VersionLineage",
        "render_job",
    ]
    for name in tools.mlflow.__all__:
        assert getattr(tools.mlflow, name).__doc__


def test_rendered_job_is_a_valid_job_carrying_the_request(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(TEMPLATE)
    conn = MlflowConnection(tracking_uri="http://mlflow.ml:5000")
    job = render_job(tmp_path / "job.yaml", _request(), conn, namespace="ml")
    validate_core(job)  # kubernetes-validate, strict, Kubernetes 1.30
    name = job["metadata"]["name"]
    assert name.startswith("retrain-fraud-") and len(name) <= 63
    assert job["metadata"]["namespace"] == "ml"
    assert job["metadata"]["labels"]["model"] == "fraud"
    assert job["metadata"]["labels"]["mlops-supervisor/model"] == "fraud"
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    carried = TrainingRequest.model_validate_json(env[REQUEST_ENV])
    assert carried == _request()
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.ml:5000"
    assert (
        env["RUN_NOTE"] == "window 2026-01-05T00:00:00+00:00 to 2026-01-05T06:00:00+00:00, costs $0"
    )
    # The same key gives the same Job name: a replay cannot start a second Job.
    again = render_job(TEMPLATE_DICT(), _request(), conn)
    assert again["metadata"]["name"] == name


def TEMPLATE_DICT() -> dict[str, Any]:
    import yaml

    doc: dict[str, Any] = yaml.safe_load(TEMPLATE)
    return doc


def test_template_errors_name_the_problem() -> None:
    conn = MlflowConnection(tracking_uri="http://mlflow:5000")
    bad = TEMPLATE_DICT()
    bad["spec"]["template"]["spec"]["containers"][0]["image"] = "img:${tag}"
    with pytest.raises(ConfigError, match=r"unknown placeholder 'tag'.*spec.template.spec"):
        render_job(bad, _request(), conn)
    with pytest.raises(ConfigError, match="must be a batch/v1 Job"):
        render_job({"apiVersion": "apps/v1", "kind": "Deployment"}, _request(), conn)


class _FakeBatchApi:
    """Loopback stand-in for the Job endpoints of the API server: create, then read status."""

    def __init__(self, outcome: dict[str, Any], *, exists: bool = False) -> None:
        self.created: list[dict[str, Any]] = []
        self.status_reads = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.created.append(body)
                code = 409 if exists else 201
                self._send(code, body if code == 201 else {"kind": "Status", "code": 409})

            def do_GET(self) -> None:
                fake.status_reads += 1
                done = fake.status_reads >= 2
                self._send(200, {"kind": "Job", "status": outcome if done else {"active": 1}})

            def _send(self, code: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.clients: list[Any] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def client(self) -> Any:
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        api = client.ApiClient(cfg)
        self.clients.append(api)
        return api

    def close(self) -> None:
        for api in self.clients:
            api.close()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_ok() -> Iterator[_FakeBatchApi]:
    fake = _FakeBatchApi({"succeeded": 1})
    yield fake
    fake.close()


def test_job_runner_creates_the_job_once_and_waits(fake_ok: _FakeBatchApi) -> None:
    clock = SimClock(START)
    runner = KubernetesJobRunner(
        TEMPLATE_DICT(), namespace="ml", api_client=fake_ok.client(), poll_s=30, clock=clock
    )
    where = runner.run(_request(), MlflowConnection(tracking_uri="http://mlflow:5000"))
    assert where.startswith("Job ml/retrain-fraud-")
    assert len(fake_ok.created) == 1 and fake_ok.created[0]["metadata"]["namespace"] == "ml"
    assert clock.now() == START + timedelta(seconds=30)  # one poll interval, no real sleep


def test_job_runner_replay_and_failure() -> None:
    clock = SimClock(START)
    conn = MlflowConnection(tracking_uri="http://mlflow:5000")
    replay = _FakeBatchApi({"succeeded": 1}, exists=True)
    failed = _FakeBatchApi(
        {"failed": 2, "conditions": [{"type": "Failed", "status": "True", "message": "OOMKilled"}]}
    )
    try:
        runner = KubernetesJobRunner(
            TEMPLATE_DICT(), namespace="ml", api_client=replay.client(), clock=clock
        )
        assert runner.run(_request(), conn)  # 409 AlreadyExists: waits for the existing Job
        runner = KubernetesJobRunner(
            TEMPLATE_DICT(), namespace="ml", api_client=failed.client(), clock=clock
        )
        with pytest.raises(ActionError, match=r"failed: OOMKilled.*kubectl logs -n ml job/"):
            runner.run(_request(), conn)
    finally:
        replay.close()
        failed.close()


def test_local_sqlite_store_without_a_server(tmp_path: Path) -> None:
    """The demo's setup: a sqlite store and artifact dir in the output directory."""
    from tools.mlflow import MlflowRegistry

    conn = MlflowConnection.local(tmp_path / "mlflow")
    assert conn.tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    registry = MlflowRegistry(conn, clock=SimClock(datetime.now(UTC) + timedelta(hours=1)))
    client = registry.client
    client.create_registered_model("fraud")
    exp = client.create_experiment("seed", artifact_location=conn.artifact_location)
    for status in ("passed", "passed"):
        run = client.create_run(exp)
        client.create_model_version(
            "fraud", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id,
            tags={"validation_status": status},
        )  # fmt: skip
    registry.set_alias("fraud", "champion", "1", expected=None)
    registry.set_alias("fraud", "challenger", "2", expected=None)
    registry.promote("fraud", "2", expected_champion="1")
    assert registry.aliases("fraud") == {"champion": "2"}
    kinds = [e.kind for e in registry.timeline("fraud", datetime(2000, 1, 1, tzinfo=UTC))]
    assert kinds.count("promoted") == 1 and kinds.count("registered") == 2
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()
