"""Helpers for the MLflow tests: one real ``mlflow server`` per test session, a loopback proxy
that injects 5xx answers, and training entry points the retrain tests run in a subprocess.

The server runs on sqlite in a temp dir, on a free loopback port, with its job executor off.
It is started by the first test that asks for it (``mlflow_server()``) and stopped when the
session ends (``config.add_cleanup``). If it cannot start, the test fails with its log.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

READY_TIMEOUT_S = 90.0


@dataclass
class MlflowServer:
    """A running ``mlflow server``."""

    url: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """Stop the server and every process it started (its own process group)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


_server: MlflowServer | None = None
_failure: str | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server() -> MlflowServer:
    """Start ``mlflow server`` on sqlite; wait (bounded) until ``/health`` answers."""
    binary = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    if binary is None:
        raise RuntimeError("the mlflow CLI is not installed: pip install 'mlflow>=3,<4'")
    root = Path(tempfile.mkdtemp(prefix="mlflow-server-"))
    port = free_port()
    log = root / "server.log"
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_SERVER_JOB_ENABLE_PERIODIC_TASKS": "false",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                "server",
                "--backend-store-uri",
                f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination",
                str(root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=env,
            start_new_session=True,
        )
    server = MlflowServer(url=f"http://127.0.0.1:{port}", root=root, proc=proc, log=log)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"mlflow server exited with {proc.returncode}; log:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=1) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(
        f"mlflow server not ready after {READY_TIMEOUT_S:g} s; log:\n{log.read_text()[-3000:]}"
    )


def mlflow_server(config: pytest.Config) -> MlflowServer:
    """The session's server, started on first use; fails the calling test if it cannot run."""
    global _server, _failure
    if _failure is not None:
        pytest.fail(_failure)
    if _server is None:
        try:
            _server = start_server()
        except RuntimeError as err:
            _failure = f"cannot start mlflow server: {err}"
            pytest.fail(_failure)
        config.add_cleanup(_stop)
    return _server


def _stop() -> None:
    global _server
    if _server is not None:
        _server.stop()
        shutil.rmtree(_server.root, ignore_errors=True)
        _server = None


# --------------------------------------------------------------------------- fault proxy


@dataclass
class _Rule:
    method: str
    path_part: str
    status: int
    times: int
    after_forward: bool


@dataclass
class FaultProxy:
    """A loopback HTTP proxy to ``upstream`` that answers some requests with a 5xx.

    ``fail("POST", "/aliases", times=1)`` answers the next matching request 503 without
    forwarding it; ``after_forward=True`` forwards it first (the write applies, the answer is
    lost). ``down = True`` answers everything 503.
    """

    upstream: str
    rules: list[_Rule] = field(default_factory=list)
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    down: bool = False

    def __post_init__(self) -> None:
        proxy = self
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def fail(
        self, method: str, path_part: str, *, status: int = 503, times: int = 1,
        after_forward: bool = False,
    ) -> None:  # fmt: skip
        with self._lock:
            self.rules.append(_Rule(method, path_part, status, times, after_forward))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _rule_for(self, method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.times > 0 and rule.method == method and rule.path_part in path:
                    rule.times -= 1
                    return rule
        return None

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else None
        rule = None if self.down else self._rule_for(req.command, req.path)
        if self.down or (rule is not None and not rule.after_forward):
            self._reply(
                req,
                503 if rule is None else rule.status,
                b'{"error_code":"TEMPORARILY_UNAVAILABLE"}',
                "application/json",
            )
            return
        host = self.upstream.removeprefix("http://")
        conn = http.client.HTTPConnection(host, timeout=30)
        headers = {k: v for k, v in req.headers.items() if k.lower() not in ("host", "connection")}
        headers["Host"] = host
        conn.request(req.command, req.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if rule is not None:  # forwarded, then the answer is lost
            self._reply(
                req, rule.status, b'{"error_code":"TEMPORARILY_UNAVAILABLE"}', "application/json"
            )
            return
        self._reply(req, resp.status, data, resp.getheader("Content-Type") or "application/json")

    def _reply(self, req: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str) -> None:
        with self._lock:
            self.seen.append((req.command, req.path, status))
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)


# --------------------------------------------------------------------------- training data


def make_dataset(path: Path, *, rows: int = 2000, start: str = "2026-01-05T00:00:00") -> Path:
    """A labelled classification table with a timestamp column ``t`` (one row a minute)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, 4))
    y = ((x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=rows)) > 0).astype(int)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(4)])
    frame["label"] = y
    frame["t"] = pd.date_range(start, periods=rows, freq="1min")
    frame.to_parquet(path)
    return path


def train_classifier(request: Any) -> Any:
    """A training entry point: logistic regression on the window minus excluded windows.

    ``request.params``: ``data`` (a parquet from :func:`make_dataset`).
    """
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from tools.mlflow import TrainedModel

    frame = pd.read_parquet(request.params["data"])
    lo = np.datetime64(request.window.start.replace(tzinfo=None), "ns")
    hi = np.datetime64(request.window.end.replace(tzinfo=None), "ns")
    in_window = frame[(frame["t"] >= lo) & (frame["t"] < hi)]
    dropped = request.excluded(in_window["t"])
    kept = in_window[~dropped].drop(columns=["t"])
    holdout = kept.sample(frac=0.25, random_state=0)
    train = kept.drop(holdout.index)
    features = [c for c in kept.columns if c != "label"]
    estimator = LogisticRegression().fit(train[features], train["label"])
    return TrainedModel(
        estimator=estimator,
        holdout=holdout.reset_index(drop=True),
        target="label",
        rows_used=len(train),
        rows_excluded=int(dropped.sum()),
        data_ref=str(request.params["data"]),
    )


def train_crashing(request: Any) -> Any:
    """A training entry point that fails, as a broken pipeline would."""
    raise RuntimeError("feature table missing column f3")
