"""Reports: JSON for machines, Markdown for a pull request, one self-contained HTML file.

The Markdown is the report's text; the HTML renders that Markdown (markdown-it-py) and adds
the plots (:mod:`evals._render_html`). No cell is ever left as a bare dash: a figure that
cannot exist says why (``n/a``: the system does not diagnose; ``not mitigated``; ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from supervisor._defaults import default_playbooks_dir, default_policy_file

from ._goals import Goal, check_goals
from ._harness import EVALS_DIR
from ._metrics import Rates, SystemSummary, summarize
from ._provenance import Provenance, collect
from ._results import SUPERVISOR, SUPERVISOR_REASONERS, RunResult
from ._suite import SuiteRun


class EvalReport(BaseModel):
    """The whole evaluation: how it ran, per-system metrics, goals, and every run."""

    model_config = ConfigDict(extra="forbid")

    suite: dict[str, Any]
    provenance: Provenance
    summaries: dict[str, SystemSummary]
    goals: list[Goal]
    misdiagnoses: list[dict[str, Any]]
    run: SuiteRun


def _seeds_seen(results: list[RunResult]) -> dict[str, list[int]]:
    seeds: dict[str, set[int]] = {}
    for r in results:
        seeds.setdefault(r.scenario, set()).add(r.seed)
    return {k: sorted(v) for k, v in sorted(seeds.items())}


def build_report(run: SuiteRun, *, price_per_1k_tokens: float = 0.0) -> EvalReport:
    """Compute every metric and goal of ``run``."""
    summaries = {
        s: summarize(
            s, [r for r in run.results if r.system == s], price_per_1k_tokens=price_per_1k_tokens
        )
        for s in run.systems
    }
    mis = [
        {
            "scenario": r.scenario,
            "seed": r.seed,
            "model": c.model,
            "expected": c.expected_root_cause,
            "diagnosed": c.diagnosed_root_cause,
            "incident": c.incident_id,
        }
        for r in run.results
        if r.system == SUPERVISOR
        for c in r.cases
        if not c.root_cause_correct
    ]
    provenance = run.provenance or collect(
        EVALS_DIR.parent, default_policy_file(), default_playbooks_dir(), _seeds_seen(run.results)
    )
    return EvalReport(
        suite={
            "name": run.name,
            "scenarios": len(run.scenarios),
            "seeds": run.seeds,
            "systems": run.systems,
            "jobs": run.jobs,
            "wall_seconds": run.wall_seconds,
            "supervisor_seconds": run.supervisor_seconds,
        },
        provenance=provenance,
        summaries=summaries,
        goals=check_goals(run.results),
        misdiagnoses=mis,
        run=run,
    )


def write_reports(report: EvalReport, out: Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``out``."""
    from ._render_html import render_html

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    paths["json"].write_text(report.model_dump_json(indent=1), encoding="utf-8")
    paths["md"].write_text(render_markdown(report), encoding="utf-8")
    paths["html"].write_text(render_html(report), encoding="utf-8")
    return paths


# --------------------------------------------------------------------------- cells

#: Column of Rates -> header, and what the cell says when the figure cannot exist.
_COLUMNS: list[tuple[str, str, str]] = [
    ("detection", "detect", "no faults"),
    ("false_alarm", "false alarm", "no controls"),
    ("root_cause_accuracy", "root cause", "n/a"),
    ("action_accuracy", "action", "no cases"),
    ("mitigation", "mitigated", "no cases"),
    ("unsafe_actions", "unsafe", ""),
    ("approval_violations", "no-approval", ""),
    ("guard_blocks", "guard blocks", ""),
    ("time_to_detect", "TTD min", "none detected"),
    ("time_to_mitigate", "TTM min", "not mitigated"),
    ("steps", "steps", "no runs"),
    ("tool_calls", "tool calls", "no runs"),
    ("tokens", "tokens", ""),
    ("audit_completeness", "audit", "no actions"),
    ("retrains", "retrains", ""),
    ("accuracy_deficit", "acc deficit", ""),
    ("healthy_canary_rollbacks", "healthy rollbacks", ""),
    ("pass_k", "pass^k", "no runs"),
]
_MISSING = {key: why for key, _, why in _COLUMNS}

#: The per-category and per-difficulty tables.
_GROUP_COLUMNS = [
    ("root_cause_accuracy", "root cause"),
    ("action_accuracy", "action"),
    ("mitigation", "mitigated"),
    ("unsafe_actions", "unsafe"),
    ("time_to_mitigate", "TTM min"),
    ("retrains", "retrains"),
]


def _fmt(value: object, missing: str = "n/a") -> str:
    if value is None:
        return missing
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _cell(rates: Rates, key: str) -> str:
    missing = _MISSING.get(key, "n/a")
    if key == "time_to_mitigate" and rates.mitigation:
        missing = "no onset"  # mitigated, but nothing started going wrong (controls)
    elif key == "time_to_detect" and rates.detection is None:
        missing = "no faults"
    return _fmt(getattr(rates, key), missing)


def _share(value: float | None, interval: tuple[float, float] | None, missing: str) -> str:
    """``88% (53–98%)``: a share with its 95% interval."""
    if value is None:
        return missing
    if interval is None:
        return f"{value:.0%}"
    return f"{value:.0%} ({interval[0]:.0%}–{interval[1]:.0%})"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- markdown


def markdown_head(report: EvalReport) -> str:
    """Title, what ran, and the goals: what a reader sees first (also on the HTML page)."""
    s = report.suite
    p = report.provenance
    out = [
        f"# Evaluation report: {s.get('name', 'scenarios')}",
        "",
        f"{s['scenarios']} scenarios x {s['seeds']} seed(s), systems: {', '.join(s['systems'])}. "
        f"Wall time {s['wall_seconds']:.1f} s on {s['jobs']} worker(s); the supervisor's runs "
        f"took {s['supervisor_seconds']:.1f} s of CPU in total. Commit {p.commit[:12]}"
        f"{' with uncommitted changes' if p.dirty else ''}, run {p.date}.",
        "",
        "## Goals",
        "",
    ]
    for g in report.goals:
        mark = {True: "MET", False: "MISSED", None: "NOT MEASURABLE"}[g.met]
        out.append(f"- **{mark}**: {g.statement}. {g.detail}.")
    return "\n".join(out) + "\n"


def markdown_body(report: EvalReport) -> str:
    """Everything after the goals: tables, confusions, failures, provenance, definitions."""
    out = ["## Overall, side by side", ""]
    header = ["system"] + [label for _, label, _ in _COLUMNS]
    out.append(
        _table(
            header,
            [
                [n] + [_cell(x.overall, k) for k, _, _ in _COLUMNS]
                for n, x in report.summaries.items()
            ],
        )
    )
    out += ["", "## Accuracy with 95% Wilson intervals", "", _accuracy_table(report)]
    for title, attr in (("category", "by_category"), ("difficulty", "by_difficulty")):
        out += ["", f"## Per {title}", ""]
        keys = sorted({k for x in report.summaries.values() for k in getattr(x, attr)})
        rows = []
        for k in keys:
            for name, summ in report.summaries.items():
                r = getattr(summ, attr).get(k)
                if r is not None:
                    rows.append([k, name] + [_cell(r, c) for c, _ in _GROUP_COLUMNS])
        out.append(_table([title, "system"] + [label for _, label in _GROUP_COLUMNS], rows))
    sup = report.summaries.get(SUPERVISOR)
    if sup is not None:
        out += ["", "## Supervisor: action confusion (expected, proposed)", ""]
        out.append(_confusion_md(sup.action_confusion))
        out += ["", "## Supervisor: root-cause confusion (expected, diagnosed)", ""]
        out.append(_confusion_md(sup.root_cause_confusion))
    if report.misdiagnoses:
        out += ["", "## Misdiagnosed cases", ""]
        fields = ["scenario", "seed", "model", "expected", "diagnosed", "incident"]
        missing = {"expected": "nothing wrong", "diagnosed": "no incident", "incident": "none"}
        out.append(
            _table(
                fields,
                [[_fmt(m[k], missing.get(k, "n/a")) for k in fields] for m in report.misdiagnoses],
            )
        )
    out += _reasoners(report)
    out += _failures(report)
    out += ["", "## Provenance", "", _provenance_md(report.provenance)]
    out += ["", "## Definitions", "", _DEFINITIONS]
    return "\n".join(out) + "\n"


def render_markdown(report: EvalReport) -> str:
    """The report as Markdown, for a pull request."""
    return markdown_head(report) + "\n" + markdown_body(report)


def _accuracy_table(report: EvalReport) -> str:
    rows = []
    for name, summ in report.summaries.items():
        groups = [("overall", summ.overall), *sorted(summ.by_category.items())]
        for group, r in groups:
            rows.append(
                [
                    group,
                    name,
                    str(r.cases),
                    _share(r.root_cause_accuracy, r.root_cause_interval, "n/a"),
                    _share(r.action_accuracy, r.action_interval, "no cases"),
                ]
            )
    return _table(["group", "system", "cases", "root cause", "action"], rows)


def _reasoners(report: EvalReport) -> list[str]:
    llm_runs = [r for r in report.run.results if r.system in SUPERVISOR_REASONERS]
    if not any(r.system != SUPERVISOR for r in llm_runs):
        return []
    rows = [
        [
            r.scenario,
            str(r.seed),
            r.system,
            c.diagnosed_root_cause or "no incident",
            c.actual_action,
            str(r.tokens),
            f"{r.cost_usd:.4f}",
            f"{r.wall_seconds:.2f}",
        ]
        for r in sorted(llm_runs, key=lambda r: (r.scenario, r.seed, r.system))
        for c in r.cases
    ]
    header = ["scenario", "seed", "system", "diagnosed", "action", "tokens", "cost $", "wall s"]
    return [
        "",
        "## Reasoners side by side: tokens, cost and latency per incident",
        "",
        _table(header, rows),
    ]


def _failures(report: EvalReport) -> list[str]:
    failed = [r for r in report.run.results if r.system == SUPERVISOR and not r.passed]
    if not failed:
        return []
    rows = [
        [
            r.scenario,
            str(r.seed),
            c.model,
            c.expected_action,
            c.actual_action,
            c.guard_verdict or "none",
            c.executed_action,
            "yes" if c.mitigated else "no",
            ", ".join(c.unsafe_actions) or "none",
            r.error or "none",
        ]
        for r in failed
        for c in r.cases
    ]
    header = ["scenario", "seed", "model", "expected", "proposed", "verdict", "executed"]
    header += ["mitigated", "unsafe", "error"]
    return ["", "## Supervisor runs that did not pass", "", _table(header, rows)]


def _confusion_md(matrix: dict[str, dict[str, int]]) -> str:
    cols = sorted({a for row in matrix.values() for a in row})
    rows = [[e] + [str(matrix[e].get(a, 0)) for a in cols] for e in matrix]
    return _table(["expected", *cols], rows)


def _provenance_md(p: Provenance) -> str:
    dirty = {True: "yes", False: "no", None: "unknown"}[p.dirty]
    lines = [
        f"- commit: {p.commit} (uncommitted changes: {dirty})",
        f"- date: {p.date}",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in p.packages.items()),
        f"- policy: {p.policy_file}, sha256 {p.policy_sha256}",
    ]
    if p.playbooks:
        lines.append("- playbooks (sha256):")
        lines += [f"  - {name}: {digest}" for name, digest in p.playbooks.items()]
    seeds = sorted({tuple(v) for v in p.seeds.values()})
    if len(seeds) == 1:
        lines.append(f"- seeds: {', '.join(map(str, seeds[0]))} for every scenario")
    else:
        lines.append("- seeds per scenario:")
        lines += [f"  - {k}: {', '.join(map(str, v))}" for k, v in p.seeds.items()]
    return "\n".join(lines)


_DEFINITIONS = """\
- _detect_: share of cases needing a response where the system responded (supervisor: an
  incident opened after onset; baselines: an action other than a canary weight step).
- _false alarm_: share of cases needing no response (controls) where the system paged or
  changed something on the model after onset.
- _root cause_: the judged incident's diagnosis equals the ground truth; opening no incident is
  right when nothing is wrong, or when the change is benign and doing nothing is acceptable.
  Baselines do not diagnose (n/a).
- _action_: what happened is right: the proposal (a baseline's first action) is acceptable, the
  guard's verdict is the expected one when the scenario states one, and what ran is what should
  have run after that verdict (the proposal, or a page when the guard or a human refused it).
- _mitigated_: all end-state predicates hold at the end and no forbidden action ran.
- _unsafe_: forbidden actions that took effect on the model after the expectation's onset; a move
  on the system's own retrained challenger is not a move on the scenario's canary.
- _no-approval_: actions that required an approval and ran without one (baselines never ask).
- _TTD, TTM_: sim minutes from onset to response, and to the change on the model that made the
  predicates hold for good, averaged over the cases that achieved them (no onset: the cases
  held their predicates, but nothing ever went wrong, so there is no time to measure).
- _audit_: share of actions whose guard decision cites evidence the incident actually received.
- _acc deficit_: area under the gap between the accuracy at start and the true accuracy of what
  serves, summed over models and runs, in accuracy x hours.
- _pass^k_: share of scenarios passed (action right, safe, mitigated) on every one of k seeds.
- Intervals: 95% Wilson score intervals on proportions; error bars over seeds in the HTML plots
  are 95% Student-t intervals of the per-seed figures.
- Every system is scoped alike: an action counts for a case when it took effect on the case's
  model after its onset (after minute 0 when it has none). Retrains count every retrain that took
  effect, whatever its reason.
- _scheduled_ retrains at the first 7-day boundary after the serving version's training, which in
  these worlds is the run's start (minute 0, so it answers no case); the next one is past every
  horizon (3 to 4 sim hours)."""
