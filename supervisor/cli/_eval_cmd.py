"""``eval``: score the supervisor and the baselines on a scenario suite; ``generate``: draw one.

Only argparse is imported at module level; the harness (Evidently, matplotlib) loads when the
command runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evals import GeneratedSuite, RunResult

_SYSTEMS = (
    "supervisor",
    "supervisor-llm",
    "supervisor-hybrid",
    "noop",
    "flagger",
    "naive-drift",
    "scheduled",
)
_BASELINES = ("noop", "flagger", "naive-drift", "scheduled")


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _count(text: str) -> int:
    """A count of at least 1, for argparse."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {value})")
    return value


def _seed(text: str) -> int:
    """A generator seed (0 or more), for argparse."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {value})")
    return value


class _RunLines:
    """One line per finished run, for ``--no-progress`` (logs, CI): who, what, how it went."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0

    def __call__(self, result: RunResult) -> None:
        self.done += 1
        if result.error is not None:
            verdict = f"crashed: {result.error}"
        else:
            verdict = "passed" if result.passed else "failed"
            unsafe = [u for c in result.cases for u in c.unsafe_actions]
            if unsafe:
                verdict += f", unsafe: {', '.join(unsafe)}"
        width = len(str(self.total))
        print(
            f"[{self.done:>{width}}/{self.total}] {result.system} {result.scenario} "
            f"(seed {result.seed}): {verdict} in {result.wall_seconds:.1f} s",
            flush=True,
        )


def _generated(args: argparse.Namespace) -> Path:
    """Draw ``--generate`` scenarios from ``--seed`` into OUT/generated; say what was drawn."""
    from evals import generate_scenarios

    suite = generate_scenarios(args.generate, args.seed)
    where: Path = args.out / "generated"
    suite.write(where)
    _say_generated(suite, where)
    return where


def _llm_flags(args: argparse.Namespace) -> dict[str, object] | None:
    """LLM settings given as flags; anything not given comes from MLOPS_SUPERVISOR_LLM__*."""
    given = {
        "base_url": args.llm_base_url,
        "model": args.llm_model,
        "api_key_env": args.llm_api_key_env,
    }
    flags = {k: v for k, v in given.items() if v is not None}
    return flags or None


def eval_command(args: argparse.Namespace) -> int:
    """Run the suite; write report.json, report.md, report.html into ``--out``.

    Exit 0 when the supervisor took no unsafe action and no run crashed (goals may be missed:
    the report says which and why); 1 otherwise, or with ``--fail-on-goals`` when a goal is
    missed. A malformed scenario raises ConfigError (exit 2) naming file, field and fix.
    """
    from evals import build_report, default_scenarios_dir, load_scenarios, run_suite, write_reports

    if args.generate is not None:
        scenarios_dir = _generated(args)
    else:
        scenarios_dir = args.scenarios or default_scenarios_dir()
    scenarios = load_scenarios(scenarios_dir, only=_csv(args.only) if args.only else None)
    if args.systems:
        systems = tuple(_csv(args.systems))
    elif args.reasoner == "rules":
        systems = ("supervisor", *_BASELINES)
    else:  # the model's results next to the rules reasoner's, on the same scenarios and seeds
        systems = ("supervisor", f"supervisor-{args.reasoner}", *_BASELINES)
    bad = [s for s in systems if s not in _SYSTEMS]
    if bad:
        print(f"error: unknown systems {bad!r}; choose from {list(_SYSTEMS)!r}", file=sys.stderr)
        return 2
    lines = _RunLines(len(scenarios) * len(systems) * args.seeds) if args.no_progress else None
    run = run_suite(
        scenarios,
        args.out,
        systems=systems,
        seeds=args.seeds,
        jobs=args.jobs,
        progress=not args.no_progress,
        on_result=lines,
        policy_file=args.policy,
        playbooks_dir=args.playbooks,
        llm=_llm_flags(args),
        record_dir=args.record,
        replay_dir=args.replay,
        # The report's title says which suite it scored: the hand-written one, or which draw.
        name=(
            f"generated (n={args.generate}, seed {args.seed})"
            if args.generate is not None
            else Path(scenarios_dir).name
        ),
    )
    report = build_report(run, price_per_1k_tokens=args.price_per_1k_tokens)
    paths = write_reports(report, args.out)
    sup = report.summaries.get("supervisor")
    print(
        f"{len(scenarios)} scenarios x {args.seeds} seed(s) x {len(systems)} system(s) "
        f"in {run.wall_seconds:.1f} s"
    )
    if sup is not None:
        o = sup.overall
        print(
            f"supervisor: root cause {o.root_cause_accuracy}, action {o.action_accuracy}, "
            f"mitigated {o.mitigation}, unsafe {o.unsafe_actions}, errors {o.errors}"
        )
    for g in report.goals:
        mark = {True: "MET   ", False: "MISSED", None: "N/A   "}[g.met]
        print(f"  {mark} {g.statement}: {g.detail}")
    for kind, path in paths.items():
        print(f"{kind:>4}: {path}")
    failed = sup is not None and (sup.overall.unsafe_actions > 0 or sup.overall.errors > 0)
    if args.fail_on_goals and any(g.met is False for g in report.goals):
        failed = True
    return 1 if failed else 0


def add_eval_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``eval``; sets ``handler(args) -> int`` (the exit code) on the namespace."""
    p = subparsers.add_parser(
        "eval",
        help="score the supervisor against baselines on a suite of incident scenarios",
        description="Run every scenario (YAML) in --scenarios with the supervisor (rules "
        "reasoner) and the baselines on the same simulated worlds and seeds; write JSON, "
        "Markdown and HTML reports into --out.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--scenarios",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory of scenario YAML files (default: the committed evals/scenarios)",
    )
    source.add_argument(
        "--generate",
        type=_count,
        default=None,
        metavar="N",
        help="draw N scenarios from --seed into OUT/generated and run those instead",
    )
    p.add_argument(
        "--seed",
        type=_seed,
        default=0,
        metavar="S",
        help="generator seed for --generate (default: 0); not the world seeds (--seeds)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="report directory")
    p.add_argument("--seeds", type=int, default=1, metavar="K", help="seeds per scenario (K)")
    p.add_argument(
        "--systems",
        default=None,
        metavar="LIST",
        help=f"comma-separated systems to run (default: all of {','.join(_SYSTEMS)})",
    )
    p.add_argument("--only", default=None, metavar="IDS", help="comma-separated scenario ids")
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="worker processes")
    p.add_argument(
        "--policy", type=Path, default=None, help="policy file (default: policies/default.yaml)"
    )
    p.add_argument("--playbooks", type=Path, default=None, help="playbooks directory")
    p.add_argument(
        "--price-per-1k-tokens",
        type=float,
        default=0.0,
        help="LLM price used for the cost column (the rules reasoner uses no tokens)",
    )
    p.add_argument(
        "--reasoner",
        choices=("rules", "llm", "hybrid"),
        default="rules",
        help="the supervisor's reasoner (llm and hybrid need a model: --llm-model or "
        "MLOPS_SUPERVISOR_LLM__MODEL)",
    )
    p.add_argument("--llm-base-url", default=None, help="OpenAI-compatible endpoint base URL")
    p.add_argument("--llm-model", default=None, help="model name at that endpoint")
    p.add_argument(
        "--llm-api-key-env", default=None, help="environment variable holding the API key"
    )
    p.add_argument("--record", type=Path, default=None, metavar="DIR", help="save LLM exchanges")
    p.add_argument(
        "--replay", type=Path, default=None, metavar="DIR", help="replay saved LLM exchanges"
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar: print one line per finished run instead",
    )
    p.add_argument("--fail-on-goals", action="store_true", help="exit 1 when any goal is missed")
    p.set_defaults(handler=eval_command, func=eval_command)


def _say_generated(suite: GeneratedSuite, where: Path) -> None:
    kinds = Counter(s.category for s in suite.scenarios)
    shares = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    print(f"generated {len(suite.scenarios)} scenarios (seed {suite.seed}) into {where}: {shares}")
    if suite.rejected:
        redraws = ", ".join(f"{k} {n}" for k, n in suite.rejected.items())
        print(f"  redrawn after the sim check: {redraws}")


def generate_command(args: argparse.Namespace) -> int:
    """Write ``--n`` generated scenario files drawn from ``--seed`` into ``--out``."""
    from evals import generate_scenarios

    suite = generate_scenarios(args.n, args.seed)
    suite.write(args.out)
    _say_generated(suite, args.out)
    return 0


def add_generate_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``generate``; sets ``handler(args) -> int`` on the namespace."""
    p = subparsers.add_parser(
        "generate",
        help="draw incident scenarios of every root cause (and controls) into YAML files",
        description="Draw N scenarios from seed S: faults of every root cause, healthy and "
        "benign cases, controls, compounds and distractors, each checked in the simulated "
        "world. The same N and S always give the same files; run them with "
        "'eval --scenarios DIR'. The distribution is documented in evals/README.md.",
    )
    p.add_argument("--n", type=_count, required=True, metavar="N", help="how many scenarios")
    p.add_argument("--seed", type=_seed, default=0, metavar="S", help="generator seed (default: 0)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory to write into")
    p.set_defaults(handler=generate_command, func=generate_command)
