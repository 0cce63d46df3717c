"""``eval --scenarios DIR --out DIR``: score the supervisor and the baselines on a scenario suite.

Only argparse is imported at module level; the harness (Evidently, matplotlib) loads when the
command runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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

    scenarios_dir: Path = args.scenarios or default_scenarios_dir()
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
    run = run_suite(
        scenarios,
        args.out,
        systems=systems,
        seeds=args.seeds,
        jobs=args.jobs,
        progress=not args.no_progress,
        policy_file=args.policy,
        playbooks_dir=args.playbooks,
        llm=_llm_flags(args),
        record_dir=args.record,
        replay_dir=args.replay,
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
    p.add_argument(
        "--scenarios",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory of scenario YAML files (default: the committed evals/scenarios)",
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
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--fail-on-goals", action="store_true", help="exit 1 when any goal is missed")
    p.set_defaults(handler=eval_command, func=eval_command)
