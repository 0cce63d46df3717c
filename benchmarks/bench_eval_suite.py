"""Benchmark: the whole eval suite with one seed, as ``mlops-supervisor eval`` runs it.

Times the supervisor (rules reasoner) alone on every committed scenario, then every system
(supervisor and the four baselines), and prints the wall time of each against the 120 s goal.

    python benchmarks/bench_eval_suite.py [--jobs 2] [--systems-only supervisor]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 120.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 4))
    parser.add_argument("--supervisor-only", action="store_true", help="skip the baselines")
    args = parser.parse_args()
    started = time.perf_counter()
    from evals import SYSTEMS, default_scenarios_dir, load_scenarios, run_suite

    scenarios = load_scenarios(default_scenarios_dir())
    rows = [("supervisor",)] if args.supervisor_only else [("supervisor",), SYSTEMS]
    print(f"{len(scenarios)} scenarios, 1 seed, {args.jobs} worker(s), {os.cpu_count()} CPU(s)")
    print(f"imports and loading: {time.perf_counter() - started:.1f} s")
    worst = 0.0
    for systems in rows:
        with tempfile.TemporaryDirectory() as tmp:
            run = run_suite(
                scenarios,
                Path(tmp),
                systems=tuple(systems),
                seeds=1,
                jobs=args.jobs,
                progress=False,
            )
        errors = sum(1 for r in run.results if r.error)
        print(
            f"{'+'.join(systems):<50} {run.wall_seconds:7.1f} s wall  "
            f"({len(run.results)} runs, {errors} crashed)"
        )
        if systems == ("supervisor",):
            worst = run.wall_seconds
    ok = worst < GOAL_SECONDS
    print(
        f"supervisor suite: {worst:.1f} s, goal < {GOAL_SECONDS:.0f} s: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
