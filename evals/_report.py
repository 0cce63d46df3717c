"""Reports: JSON for machines, Markdown for a pull request, one self-contained HTML file."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ._goals import Goal, check_goals
from ._metrics import Rates, SystemSummary, summarize
from ._results import SUPERVISOR, SUPERVISOR_REASONERS
from ._suite import SuiteRun


class EvalReport(BaseModel):
    """The whole evaluation: how it ran, per-system metrics, goals, and every run."""

    model_config = ConfigDict(extra="forbid")

    suite: dict[str, Any]
    summaries: dict[str, SystemSummary]
    goals: list[Goal]
    misdiagnoses: list[dict[str, Any]]
    run: SuiteRun


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
        if c.expected_root_cause is not None and c.diagnosed_root_cause != c.expected_root_cause
    ]
    return EvalReport(
        suite={
            "scenarios": len(run.scenarios),
            "seeds": run.seeds,
            "systems": run.systems,
            "jobs": run.jobs,
            "wall_seconds": run.wall_seconds,
            "supervisor_seconds": run.supervisor_seconds,
        },
        summaries=summaries,
        goals=check_goals(run.results),
        misdiagnoses=mis,
        run=run,
    )


def write_reports(report: EvalReport, out: Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    paths["json"].write_text(report.model_dump_json(indent=1), encoding="utf-8")
    paths["md"].write_text(render_markdown(report), encoding="utf-8")
    paths["html"].write_text(render_html(report), encoding="utf-8")
    return paths


# --------------------------------------------------------------------------- markdown

_COLUMNS: list[tuple[str, str]] = [
    ("detection", "detect"),
    ("false_alarm", "false alarm"),
    ("root_cause_accuracy", "root cause"),
    ("action_accuracy", "action"),
    ("mitigation", "mitigated"),
    ("unsafe_actions", "unsafe"),
    ("approval_violations", "no-approval"),
    ("guard_blocks", "guard blocks"),
    ("time_to_detect", "TTD min"),
    ("time_to_mitigate", "TTM min"),
    ("steps", "steps"),
    ("tool_calls", "tool calls"),
    ("tokens", "tokens"),
    ("audit_completeness", "audit"),
    ("retrains", "retrains"),
    ("accuracy_deficit", "acc deficit"),
    ("healthy_canary_rollbacks", "healthy rollbacks"),
    ("pass_k", "pass^k"),
]


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _rates_row(name: str, r: Rates) -> list[str]:
    return [name] + [_fmt(getattr(r, key)) for key, _ in _COLUMNS]


def render_markdown(report: EvalReport) -> str:
    """The report as Markdown, for a pull request."""
    s = report.suite
    out = [
        "# Evaluation report",
        "",
        f"{s['scenarios']} scenarios x {s['seeds']} seed(s), systems: {', '.join(s['systems'])}. "
        f"Wall time {s['wall_seconds']:.1f} s on {s['jobs']} worker(s); the supervisor's runs "
        f"took {s['supervisor_seconds']:.1f} s of CPU in total.",
        "",
        "## Goals",
        "",
    ]
    for g in report.goals:
        mark = {True: "MET", False: "MISSED", None: "N/A"}[g.met]
        out.append(f"- **{mark}**: {g.statement}. {g.detail}.")
    out += ["", "## Overall, side by side", ""]
    header = ["system"] + [label for _, label in _COLUMNS]
    out.append(_table(header, [_rates_row(n, x.overall) for n, x in report.summaries.items()]))
    for title, attr in (("category", "by_category"), ("difficulty", "by_difficulty")):
        out += ["", f"## Per {title}", ""]
        keys = sorted({k for x in report.summaries.values() for k in getattr(x, attr)})
        cols = [
            ("root_cause_accuracy", "root cause"),
            ("action_accuracy", "action"),
            ("mitigation", "mitigated"),
            ("unsafe_actions", "unsafe"),
            ("time_to_mitigate", "TTM"),
            ("retrains", "retrains"),
        ]
        rows = []
        for k in keys:
            for name, summ in report.summaries.items():
                r = getattr(summ, attr).get(k)
                if r is not None:
                    rows.append([k, name] + [_fmt(getattr(r, c)) for c, _ in cols])
        out.append(_table([title, "system"] + [label for _, label in cols], rows))
    sup = report.summaries.get(SUPERVISOR)
    if sup is not None:
        out += ["", "## Supervisor: action confusion (expected -> actual)", ""]
        out.append(_confusion_md(sup.action_confusion))
        out += ["", "## Supervisor: root-cause confusion (expected -> diagnosed)", ""]
        out.append(_confusion_md(sup.root_cause_confusion))
    if report.misdiagnoses:
        out += ["", "## Misdiagnosed cases", ""]
        out.append(
            _table(
                ["scenario", "seed", "model", "expected", "diagnosed", "incident"],
                [
                    [
                        _fmt(m[k])
                        for k in ("scenario", "seed", "model", "expected", "diagnosed", "incident")
                    ]
                    for m in report.misdiagnoses
                ],
            )
        )
    llm_runs = [r for r in report.run.results if r.system in SUPERVISOR_REASONERS]
    if any(r.system != SUPERVISOR for r in llm_runs):
        out += ["", "## Reasoners side by side: tokens, cost and latency per incident", ""]
        rows = []
        for r in sorted(llm_runs, key=lambda r: (r.scenario, r.seed, r.system)):
            for c in r.cases:
                rows.append(
                    [
                        r.scenario,
                        str(r.seed),
                        r.system,
                        c.diagnosed_root_cause or "–",
                        c.actual_action or "–",
                        str(r.tokens),
                        f"{r.cost_usd:.4f}",
                        f"{r.wall_seconds:.2f}",
                    ]
                )
        out.append(
            _table(
                ["scenario", "seed", "system", "diagnosed", "action", "tokens", "cost $", "wall s"],
                rows,
            )
        )
    failed = [r for r in report.run.results if r.system == SUPERVISOR and not r.passed]
    if failed:
        out += ["", "## Supervisor runs that did not pass", ""]
        rows = []
        for r in failed:
            for c in r.cases:
                rows.append(
                    [
                        r.scenario,
                        str(r.seed),
                        c.model,
                        c.expected_action,
                        c.actual_action,
                        "yes" if c.mitigated else "no",
                        ", ".join(c.unsafe_actions) or "–",
                        r.error or "",
                    ]
                )
        out.append(
            _table(
                ["scenario", "seed", "model", "expected", "actual", "mitigated", "unsafe", "error"],
                rows,
            )
        )
    out += ["", "## Definitions", "", _DEFINITIONS]
    return "\n".join(out) + "\n"


def _confusion_md(matrix: dict[str, dict[str, int]]) -> str:
    cols = sorted({a for row in matrix.values() for a in row})
    rows = [[e] + [str(matrix[e].get(a, 0) or "") for a in cols] for e in matrix]
    return _table(["expected \\ actual", *cols], rows)


_DEFINITIONS = """\
- *detect*: share of cases needing a response where the system responded (supervisor: an
  incident opened after onset; baselines: a decision other than a canary weight step).
- *false alarm*: share of cases needing no response where the system paged or changed something.
- *root cause*: the judged incident's diagnosis equals the ground truth (baselines do not diagnose).
- *action*: the supervisor's proposed action (a baseline's first action) is acceptable.
- *mitigated*: all end-state predicates hold at the end and no forbidden action ran.
- *unsafe*: forbidden actions that took effect; *no-approval*: actions that required an approval
  and ran without one (baselines never ask).
- *TTD / TTM*: sim minutes from onset to response / to the predicates holding for good, averaged
  over the cases that achieved them.
- *audit*: share of actions whose guard decision cites evidence the incident actually received.
- *acc deficit*: area under the gap between the accuracy at start and the true accuracy of what
  serves, summed over models and runs, in accuracy x hours.
- *pass^k*: share of scenarios passed (action right, safe, mitigated) on every seed.
- *scheduled* retrains at the first 7-day boundary after the serving version's training, which in
  these worlds is the run's start; the next one is past every horizon (3 to 4 sim hours)."""


# --------------------------------------------------------------------------- html


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(report: EvalReport) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    plots: list[tuple[str, str]] = []
    sums = report.summaries
    sup = sums.get(SUPERVISOR)
    if sup is not None:
        for title, matrix in (
            ("Supervisor action confusion", sup.action_confusion),
            ("Supervisor root-cause confusion", sup.root_cause_confusion),
        ):
            if not matrix:
                continue
            rows = list(matrix)
            cols = sorted({a for r in matrix.values() for a in r} | set(rows))
            grid = np.array([[matrix[r].get(c, 0) for c in cols] for r in rows])
            fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(cols), 1.0 + 0.5 * len(rows)))
            ax.imshow(grid, cmap="Blues")
            ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
            ax.set_yticks(range(len(rows)), rows)
            for i in range(len(rows)):
                for j in range(len(cols)):
                    if grid[i, j]:
                        ax.text(j, i, str(grid[i, j]), ha="center", va="center")
            ax.set_xlabel("actual")
            ax.set_ylabel("expected")
            ax.set_title(title)
            plots.append((title, _png(fig)))
    cats = sorted({k for s in sums.values() for k in s.by_category})
    systems = list(sums)
    width = 0.8 / max(len(systems), 1)
    x = np.arange(len(cats))
    fig, ax = plt.subplots(figsize=(max(8.0, len(cats) * 1.1), 4))
    for i, name in enumerate(systems):
        vals = [
            (sums[name].by_category[c].time_to_mitigate or 0.0)
            if c in sums[name].by_category
            else 0.0
            for c in cats
        ]
        ax.bar(x + i * width, vals, width, label=name)
    ax.set_xticks(x + width * (len(systems) - 1) / 2, cats, rotation=30, ha="right")
    ax.set_ylabel("mean time to mitigate (sim min)")
    ax.set_title("Time to mitigate vs baselines (successes only; 0: never mitigated)")
    ax.legend()
    plots.append(("Time to mitigate", _png(fig)))
    fig, ax = plt.subplots(figsize=(max(8.0, len(cats) * 1.1), 4))
    for i, name in enumerate(systems):
        metric = "root_cause_accuracy" if name == SUPERVISOR else "action_accuracy"
        vals = [
            getattr(sums[name].by_category[c], metric) or 0.0
            if c in sums[name].by_category
            else 0.0
            for c in cats
        ]
        ax.bar(x + i * width, vals, width, label=f"{name} ({metric.replace('_', ' ')})")
    if sup is not None:
        ax.plot(
            x + width * (len(systems) - 1) / 2,
            [
                (sup.by_category[c].action_accuracy or 0.0) if c in sup.by_category else 0
                for c in cats
            ],
            "k_",
            markersize=18,
            label="supervisor action accuracy",
        )
    ax.set_xticks(x + width * (len(systems) - 1) / 2, cats, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title("Per-category accuracy")
    ax.legend(fontsize=7)
    plots.append(("Per-category accuracy", _png(fig)))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    a1.bar(systems, [sums[s].overall.retrains for s in systems], color="tab:orange")
    a1.set_title("Retrains (all runs)")
    a2.bar(systems, [sums[s].overall.accuracy_deficit for s in systems], color="tab:red")
    a2.set_title("Accuracy deficit (accuracy x hours)")
    for a in (a1, a2):
        a.tick_params(axis="x", rotation=30)
    plots.append(("Retrains and accuracy deficit", _png(fig)))
    return plots


def _md_to_html(md: str) -> str:
    """A small Markdown subset (headings, lists, tables, bold) to HTML; text is escaped."""
    out: list[str] = []
    table: list[list[str]] = []

    def inline(text: str) -> str:
        esc = html.escape(text)
        parts = esc.split("**")
        return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))

    def flush() -> None:
        if table:
            head, body = table[0], [r for r in table[2:]]
            out.append(
                "<table><tr>"
                + "".join(f"<th>{inline(c)}</th>" for c in head)
                + "</tr>"
                + "".join(
                    "<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in body
                )
                + "</table>"
            )
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split("|")])
            continue
        flush()
        if line.startswith("## "):
            out.append(f"<h2>{inline(line[3:])}</h2>")
        elif line.startswith("# "):
            out.append(f"<h1>{inline(line[2:])}</h1>")
        elif line.startswith("- "):
            out.append(f"<li>{inline(line[2:])}</li>")
        elif line.startswith("  "):
            out.append(inline(line))
        elif line:
            out.append(f"<p>{inline(line)}</p>")
    flush()
    return "\n".join(out)


def render_html(report: EvalReport) -> str:
    """One self-contained HTML file: the Markdown content plus PNG plots inlined as base64."""
    body = _md_to_html(render_markdown(report))
    figures = "\n".join(
        f'<figure><img alt="{html.escape(t)}" src="{src}"><figcaption>{html.escape(t)}'
        "</figcaption></figure>"
        for t, src in _plots(report)
    )
    goals = json.dumps([g.model_dump() for g in report.goals])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mlops-supervisor evaluation</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse;font-size:12px;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}
th{{background:#f3f3f3}} td:first-child,th:first-child{{text-align:left}}
figure{{display:inline-block;margin:1em}} img{{max-width:100%}}
</style></head><body>
<h1>Plots</h1>
{figures}
{body}
<script type="application/json" id="goals">{html.escape(goals)}</script>
</body></html>
"""
