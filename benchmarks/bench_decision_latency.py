"""Signal-to-guard-decision latency of the rules reasoner over the demo's incidents, and the wall
time of ``mlops-supervisor --help``.

Runs the demo scenario several times (fresh world each time, different seeds), reads the spans
it traced, and for every incident measures wall time from the start of ``node.triage`` to the
end of ``node.guard`` (signal handled -> decision recorded), and how much of that was spent in
``tool.get_drift_report`` (real Evidently work). Prints p50/p95 and the drift share.

    python benchmarks/bench_decision_latency.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path


def _t(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def decision_latencies(traces: Path) -> list[tuple[str, float, float]]:
    """(incident, seconds from triage start to guard end, seconds in drift reports) each."""
    spans: dict[str, list[dict[str, object]]] = defaultdict(list)
    for line in traces.read_text(encoding="utf-8").splitlines():
        span = json.loads(line)
        inc = span["attributes"].get("incident.id")
        if inc:
            spans[inc].append(span)
    out = []
    for inc, items in spans.items():
        triage = [s for s in items if s["name"] == "node.triage"]
        guard = [s for s in items if s["name"] == "node.guard"]
        if not triage or not guard:
            continue
        start, end = _t(triage[0]["start"]), _t(guard[0]["end"])  # type: ignore[arg-type]
        drift = sum(
            float(s["duration_ms"]) / 1000  # type: ignore[arg-type]
            for s in items
            if s["name"] == "tool.get_drift_report" and start <= _t(s["start"]) <= end  # type: ignore[arg-type]
        )
        out.append((inc, end - start, drift))
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="demo runs (seeds 7, 8, ...)")
    parser.add_argument(
        "--registry", choices=("mlflow", "sim"), default="mlflow", help="the demo's registry"
    )
    args = parser.parse_args()

    from supervisor.demo import run_demo

    rows: list[tuple[str, float, float]] = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            run_demo(Path(tmp), seed=7 + i, quiet=True, registry=args.registry)
            rows += decision_latencies(Path(tmp) / "state" / "traces.jsonl")
    lat = [r[1] for r in rows]
    drift = [r[2] for r in rows]

    helps = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "supervisor", "--help"], check=True, capture_output=True
        )
        helps.append(time.perf_counter() - t0)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"incidents measured: {len(rows)} over {args.runs} demo runs ({args.registry} registry)")
    print(
        f"signal -> guard decision: p50 {pct(lat, 0.5) * 1000:.0f} ms, "
        f"p95 {pct(lat, 0.95) * 1000:.0f} ms"
        f" (goal p50 < 1000 ms)"
    )
    print(
        f"share spent computing drift (Evidently): {sum(drift) / sum(lat):.0%} of decision time; "
        f"per incident p50 {pct(drift, 0.5) * 1000:.0f} ms"
    )
    print(
        f"mlops-supervisor --help: median {statistics.median(helps) * 1000:.0f} ms "
        "over 5 runs (goal < 500 ms)"
    )


if __name__ == "__main__":
    main()
