"""Benchmark: one observation cycle of N models against a real Prometheus.

Backfills synthetic series for 1,000 models x 2 versions (the ``model_labels`` scheme) into a
temporary data dir with ``promtool tsdb create-blocks-from openmetrics``, starts Prometheus
(Debian package: ``apt-get install prometheus``) on a free loopback port, then times
``PrometheusMetrics.observe(models, every MetricName, 5 min)`` for 10, 100 and 1,000 models.

Goal: at most 15 queries and under 2 s per cycle at 1,000 models. The last row repeats 1,000
models without per-model totals (per-version readings only), which halves Prometheus's work.

    python benchmarks/bench_prometheus_observe.py [--cycles 5] [--keep]
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from supervisor import SystemClock
from supervisor.domain import MetricName
from tools.prometheus import PrometheusClient, PrometheusConfig, PrometheusMetrics

MODELS = 1000
VERSIONS = ("v1", "v2")
STEP_S = 15
STEPS = 40  # 10 minutes of history
WINDOW = timedelta(minutes=5)
SIZES = (10, 100, 1000)
GOAL_QUERIES, GOAL_SECONDS = 15, 2.0
BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1", "+Inf")


def write_openmetrics(out: TextIO, end: datetime, seed: int = 7) -> int:
    """Write the synthetic history, series by series; return the number of series."""
    rng = random.Random(seed)
    start = end.timestamp() - STEP_S * STEPS
    stamps = [f"{start + STEP_S * i:.0f}" for i in range(STEPS + 1)]
    series = 0

    def emit(name: str, labels: str, values: list[float]) -> None:
        nonlocal series
        series += 1
        out.writelines(
            f"{name}{{{labels}}} {v:g} {t}\n" for v, t in zip(values, stamps, strict=True)
        )

    def counter(per_step: float) -> list[float]:
        return [per_step * i for i in range(STEPS + 1)]

    for m in range(MODELS):
        for version in VERSIONS:
            base = f'model="model-{m:04d}",version="{version}"'
            rps = rng.uniform(1, 50) * STEP_S
            err = rps * rng.uniform(0, 0.1)
            emit("model_requests_total", base + ',status="200"', counter(rps - err))
            emit("model_requests_total", base + ',status="500"', counter(err))
            cumulative = 0.0
            shares = [rng.random() for _ in BUCKETS[:-1]]
            for le, share in zip(BUCKETS, [*shares, 0.0], strict=True):
                cumulative = rps if le == "+Inf" else min(rps, cumulative + share * rps / 2)
                emit(
                    "model_request_duration_seconds_bucket",
                    base + f',le="{le}"',
                    counter(cumulative),
                )
            emit("model_request_duration_seconds_count", base, counter(rps))
            emit("model_prediction_score_sum", base, counter(rps * rng.uniform(0.2, 0.8)))
            emit("model_prediction_score_count", base, counter(rps))
            emit("model_accuracy", base, [rng.uniform(0.8, 0.95)] * (STEPS + 1))
            emit("node_cpu_saturation", base, [rng.uniform(0.1, 0.9)] * (STEPS + 1))
    out.write("# EOF\n")
    return series


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"prometheus exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"prometheus not ready after {timeout_s}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5, help="measured cycles per size")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args()
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if binary is None or promtool is None:
        sys.exit("prometheus/promtool not found: apt-get install prometheus")

    root = Path(tempfile.mkdtemp(prefix="bench-prom-"))
    data = root / "data"
    end = datetime.fromtimestamp(int(time.time()) // 60 * 60 - 120, tz=UTC)
    t0 = time.perf_counter()
    with (root / "seed.om").open("w") as f:
        n_series = write_openmetrics(f, end)
    t1 = time.perf_counter()
    subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "-q",
            str(root / "seed.om"),
            str(data),
        ],
        check=True,
        capture_output=True,
    )
    t2 = time.perf_counter()
    print(
        f"seeded {n_series:,} series x {STEPS + 1} samples ({MODELS} models x {len(VERSIONS)} "
        f"versions): generate {t1 - t0:.1f}s, promtool backfill {t2 - t1:.1f}s"
    )
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=30d",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    failed = False
    try:
        wait_ready(url, proc)
        print(f"prometheus {url} ready after {time.perf_counter() - t2:.1f}s\n")
        print(
            f"{'models':>7} {'totals':>6} {'queries/cycle':>14} {'readings':>9}"
            f" {'median s':>9} {'max s':>7} {'client cpu s':>13}"
        )
        client = PrometheusClient(PrometheusConfig(url=url, timeout_s=30), clock=SystemClock())
        metrics = PrometheusMetrics(client)
        everything = list(MetricName)
        for size, totals in [(n, True) for n in SIZES] + [(MODELS, False)]:
            models = [f"model-{m:04d}" for m in range(size)]
            metrics.observe(models, everything, WINDOW, end=end, totals=totals)  # warm-up
            times, cpu, queries, readings = [], [], set(), 0
            for _ in range(args.cycles):
                before = client.queries_issued
                started, started_cpu = time.perf_counter(), time.process_time()
                answer = metrics.observe(models, everything, WINDOW, end=end, totals=totals)
                readings = len(answer)
                times.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
                queries.add(client.queries_issued - before)
            q, median = max(queries), statistics.median(times)
            print(
                f"{size:>7} {'yes' if totals else 'no':>6} {q:>14} {readings:>9} "
                f"{median:>9.3f} {max(times):>7.3f}"
                f" {statistics.median(cpu):>13.3f}"
            )
            expected = size * (len(VERSIONS) + totals) * len(everything)
            if readings != expected:
                print(f"        expected {expected} readings, got {readings}")
                failed = True
            if size == MODELS and totals and (q > GOAL_QUERIES or median >= GOAL_SECONDS):
                failed = True
        client.close()
        verdict = "MET" if not failed else "NOT MET"
        print(
            f"\ngoal (<= {GOAL_QUERIES} queries, median < {GOAL_SECONDS:g} s "
            f"at {MODELS} models): {verdict}"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
        if args.keep:
            print(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
