"""Benchmark (not a test): the two eval workloads of issue 11's speed goal, run as a user runs them.

Workloads (the exact commands, in a child process, so start-up and report writing count):

- ``suite``: the hand-written suite, 1 seed, every system
  (``mlops-supervisor eval --scenarios evals/scenarios --no-progress``); target 60 s wall.
- ``generated``: N generated scenarios (default 300, seed 1), supervisor only
  (``mlops-supervisor eval --generate N --seed 1 --systems supervisor --no-progress``);
  target 600 s wall for 300, scaled linearly for a smaller ``--generate`` (a quick check).

Each row gives wall time, CPU time (the command and all its workers), runs per second, and the
target beside them; the header names the machine (cores, CPU model, load average at the start).
The machine may be shared: wall time then depends on what else runs, CPU time much less, so
compare CPU times between two commits and wall times only at similar load. The row also checks
that ``--no-progress`` printed one line per finished run.

    python benchmarks/bench_eval_speed.py                         # both workloads
    python benchmarks/bench_eval_speed.py --workload suite
    python benchmarks/bench_eval_speed.py --workload generated --generate 30   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE_TARGET_SECONDS = 60.0  # issue 11: hand-written suite, 1 seed, all systems
GENERATED_TARGET_SECONDS = 600.0  # issue 11: 300 generated scenarios, supervisor only
GENERATED_TARGET_N = 300
_RUN_LINE = re.compile(r"^\[\s*\d+/\d+\] ")


@dataclass
class Row:
    label: str
    runs: int
    lines: int
    wall: float
    cpu: float
    target: float
    exit_code: int

    def text(self) -> str:
        verdict = "MET" if self.wall <= self.target else "MISSED"
        rate = self.runs / self.wall if self.wall > 0 else 0.0
        lines_ok = "yes" if self.lines == self.runs else f"NO ({self.lines} lines)"
        return (
            f"{self.label}\n"
            f"  wall      {self.wall:8.1f} s   (target <= {self.target:.0f} s: {verdict})\n"
            f"  CPU       {self.cpu:8.1f} s   (all processes; CPU / wall = "
            f"{self.cpu / self.wall if self.wall else 0:.2f} cores busy)\n"
            f"  runs      {self.runs:8d}     ({rate:.2f} runs/s; "
            f"{self.wall / self.runs if self.runs else 0:.2f} s wall per run)\n"
            f"  one line per finished run with --no-progress: {lines_ok}; exit {self.exit_code}"
        )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(label: str, args: list[str], out: Path, target: float) -> Row:
    """Run ``mlops-supervisor eval ARGS --out OUT --no-progress``; time it; count its lines."""
    cmd = [sys.executable, "-m", "supervisor", "eval", *args, "--out", str(out)]
    cmd.append("--no-progress")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    print(f"$ {' '.join(cmd[1:])}", flush=True)
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    cpu = _children_cpu() - cpu
    report = out / "report.json"
    # Exit 1 means an unsafe action or a crashed run: still a timed run with a report.
    if proc.returncode not in (0, 1) or not report.exists():
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
    lines = sum(1 for line in proc.stdout.splitlines() if _RUN_LINE.match(line))
    runs = len(json.loads(report.read_text())["run"]["results"]) if report.exists() else 0
    return Row(label, runs, lines, wall, cpu, target, proc.returncode)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("suite", "generated", "both"), default="both")
    parser.add_argument(
        "--generate",
        type=int,
        default=GENERATED_TARGET_N,
        metavar="N",
        help=f"generated scenarios (default {GENERATED_TARGET_N}; fewer for a quick check, "
        "the target scales linearly)",
    )
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (eval's default)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the reports under DIR")
    args = parser.parse_args()

    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, {_cpu_model()}; load average at start "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    jobs = [] if args.jobs is None else ["--jobs", str(args.jobs)]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        if args.workload in ("suite", "both"):
            rows.append(
                _run(
                    "hand-written suite, 1 seed, all systems",
                    ["--scenarios", str(ROOT / "evals" / "scenarios"), *jobs],
                    base / "suite",
                    SUITE_TARGET_SECONDS,
                )
            )
            print(rows[-1].text(), flush=True)
        if args.workload in ("generated", "both"):
            target = GENERATED_TARGET_SECONDS * args.generate / GENERATED_TARGET_N
            rows.append(
                _run(
                    f"{args.generate} generated scenarios (seed {args.seed}), supervisor only",
                    [
                        "--generate",
                        str(args.generate),
                        "--seed",
                        str(args.seed),
                        "--systems",
                        "supervisor",
                        *jobs,
                    ],
                    base / "generated",
                    target,
                )
            )
            print(rows[-1].text(), flush=True)
    load = os.getloadavg()
    print(f"load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0 if all(r.runs and r.wall <= r.target and r.lines == r.runs for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
