"""Benchmark: the eval suite as ``mlops-supervisor eval`` runs it, against the speed goals.

Goals (issue 11): the hand-written suite, 1 seed, all systems (the supervisor and the four
baselines) in at most 60 s; 300 generated scenarios, supervisor only, in at most 10 minutes.

Each row prints wall time and CPU time (this process and its workers). On a shared machine the
wall time depends on what else runs; CPU time divided by the workers is the wall time the same
work takes when the cores are free, so both are printed, with the load average at the start.

    python benchmarks/bench_eval_suite.py                        # hand-written: supervisor, all
    python benchmarks/bench_eval_suite.py --generated 300 --seed 1   # + 300 generated, supervisor
    python benchmarks/bench_eval_suite.py --skip-suite --generated 30 --seed 7
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evals import Scenario

SUITE_GOAL_SECONDS = 60.0
GENERATED_GOAL_SECONDS = 600.0
GENERATED_GOAL_N = 300


def _cpu_seconds() -> float:
    """CPU time of this process and of every worker it has waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


@dataclass
class Row:
    label: str
    runs: int
    crashed: int
    wall: float
    cpu: float
    jobs: int

    def line(self) -> str:
        idle = self.cpu / self.jobs
        return (
            f"{self.label:<44} {self.wall:7.1f} s wall {self.cpu:7.1f} s CPU "
            f"(~{idle:5.1f} s on {self.jobs} free cores; {self.runs} runs, {self.crashed} crashed)"
        )


def _time(label: str, scenarios: list[Scenario], systems: tuple[str, ...], jobs: int) -> Row:
    from evals import run_suite

    cpu = _cpu_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        run = run_suite(
            scenarios,
            Path(tmp),
            systems=systems,
            seeds=1,
            jobs=jobs,
            progress=False,
        )
    errors = sum(1 for r in run.results if r.error)
    return Row(label, len(run.results), errors, run.wall_seconds, _cpu_seconds() - cpu, jobs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 4))
    parser.add_argument("--supervisor-only", action="store_true", help="skip the baselines")
    parser.add_argument("--skip-suite", action="store_true", help="skip the hand-written suite")
    parser.add_argument("--generated", type=int, default=0, metavar="N", help="N generated")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default: 1)")
    args = parser.parse_args()
    started = time.perf_counter()
    from evals import BASELINES, default_scenarios_dir, generate_scenarios, load_scenarios

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPU(s), {args.jobs} worker(s), load average {load} at start")
    print(f"imports: {time.perf_counter() - started:.1f} s")
    verdicts: list[bool] = []
    if not args.skip_suite:
        suite = load_scenarios(default_scenarios_dir())
        rows = [("supervisor",)]
        if not args.supervisor_only:
            rows.append(("supervisor", *BASELINES))
        for systems in rows:
            label = f"{len(suite)} hand-written, {'+'.join(systems)}"
            row = _time(label, list(suite), tuple(systems), args.jobs)
            print(row.line())
        if not args.supervisor_only:
            ok = row.wall <= SUITE_GOAL_SECONDS
            verdicts.append(ok)
            print(
                f"  goal: all systems <= {SUITE_GOAL_SECONDS:.0f} s: "
                f"{'met' if ok else 'MISSED'} ({row.wall:.1f} s wall, ~{row.cpu / row.jobs:.1f} s "
                "on free cores)"
            )
    if args.generated:
        t = time.perf_counter()
        drawn = generate_scenarios(args.generated, args.seed)
        drawing = time.perf_counter() - t
        print(f"drawing {args.generated} (seed {args.seed}, with sim checks): {drawing:.1f} s")
        label = f"{args.generated} generated (seed {args.seed}), supervisor"
        row = _time(label, drawn.scenarios, ("supervisor",), args.jobs)
        print(row.line())
        # The goal covers what 'eval --generate' does: drawing, then running.
        goal = GENERATED_GOAL_SECONDS * args.generated / GENERATED_GOAL_N
        total = drawing + row.wall
        ok = total <= goal
        verdicts.append(ok)
        print(
            f"  goal: drawing + running <= {goal:.0f} s ({GENERATED_GOAL_SECONDS:.0f} s per "
            f"{GENERATED_GOAL_N}): {'met' if ok else 'MISSED'} ({total:.1f} s wall, "
            f"~{drawing + row.cpu / row.jobs:.1f} s on free cores)"
        )
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
