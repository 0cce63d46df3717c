"""The HTML report: the Markdown rendered by markdown-it-py, with the plots inlined as PNG.

The page opens with the title and the goals, then the plots, then the tables. Plots mark a
figure that does not exist ("not mitigated") apart from a zero, and carry 95% intervals:
Wilson intervals on accuracies, Student-t intervals over seeds on times and totals.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import defaultdict
from typing import Any

from ._metrics import rates
from ._report import EvalReport, markdown_body, markdown_head
from ._results import SUPERVISOR, SUPERVISOR_REASONERS, RunResult
from ._stats import mean_interval


def markdown_to_html(text: str) -> str:
    """CommonMark with tables; raw HTML in the text is escaped, never passed through."""
    from markdown_it import MarkdownIt

    rendered: str = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    return rendered


def seed_rounds(runs: list[RunResult]) -> list[list[RunResult]]:
    """Runs grouped by seed index: round k holds each scenario's k-th seed."""
    by_scenario: dict[str, list[RunResult]] = defaultdict(list)
    for r in sorted(runs, key=lambda r: (r.scenario, r.seed)):
        by_scenario[r.scenario].append(r)
    rounds: dict[int, list[RunResult]] = defaultdict(list)
    for scenario_runs in by_scenario.values():
        for k, r in enumerate(scenario_runs):
            rounds[k].append(r)
    return [rounds[k] for k in sorted(rounds)]


def _over_seeds(values: list[float | None]) -> float:
    """Half-width of the 95% interval over seeds (0 when fewer than 2 seeds have a value)."""
    present = [v for v in values if v is not None]
    interval = mean_interval(present)
    return 0.0 if interval is None else interval[1]


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(report: EvalReport) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: list[tuple[str, str]] = []
    sup = report.summaries.get(SUPERVISOR)
    if sup is not None:
        for title, matrix in (
            ("Supervisor action confusion (expected, proposed)", sup.action_confusion),
            ("Supervisor root-cause confusion (expected, diagnosed)", sup.root_cause_confusion),
        ):
            if matrix:
                plots.append((title, _png(_confusion_plot(plt, title, matrix))))
    plots.append(_ttm_plot(plt, report))
    plots.append(_accuracy_plot(plt, report))
    plots.append(_totals_plot(plt, report))
    return plots


def _confusion_plot(plt: Any, title: str, matrix: dict[str, dict[str, int]]) -> Any:
    import numpy as np

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
    return fig


def _by_system(report: EvalReport) -> dict[str, list[RunResult]]:
    out: dict[str, list[RunResult]] = defaultdict(list)
    for r in report.run.results:
        out[r.system].append(r)
    return out


def _ttm_plot(plt: Any, report: EvalReport) -> tuple[str, str]:
    import numpy as np

    sums = report.summaries
    systems = list(sums)
    cats = sorted({k for s in sums.values() for k in s.by_category})
    runs = _by_system(report)
    width = 0.8 / max(len(systems), 1)
    x = np.arange(len(cats))
    fig, ax = plt.subplots(figsize=(max(8.0, len(cats) * 1.1), 4))
    never_x: list[float] = []
    no_onset_x: list[float] = []
    for i, name in enumerate(systems):
        heights, errors = [], []
        for j, c in enumerate(cats):
            r = sums[name].by_category.get(c)
            value = None if r is None else r.time_to_mitigate
            if r is not None and value is None:
                # Ran and never mitigated is not a zero; mitigated without an onset has no time.
                (no_onset_x if r.mitigation else never_x).append(x[j] + i * width)
            cat_runs = [run for run in runs.get(name, []) if run.category == c]
            per_seed = [rates(k).time_to_mitigate for k in seed_rounds(cat_runs)]
            heights.append(np.nan if value is None else value)
            errors.append(_over_seeds(per_seed))
        ax.bar(x + i * width, heights, width, yerr=errors, capsize=2, label=name)
    if never_x:
        ax.plot(never_x, [0] * len(never_x), "kx", markersize=7, label="not mitigated")
    if no_onset_x:
        ax.plot(no_onset_x, [0] * len(no_onset_x), "ko", mfc="none", label="no onset (no time)")
    ax.set_xticks(x + width * (len(systems) - 1) / 2, cats, rotation=30, ha="right")
    ax.set_ylabel("mean time to mitigate (sim min)")
    ax.set_title(
        _seeds_title(
            "Time to mitigate, successes only (x: never mitigated, o: nothing to mitigate)", report
        )
    )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # off the bars
    return "Time to mitigate", _png(fig)


def _accuracy_plot(plt: Any, report: EvalReport) -> tuple[str, str]:
    import numpy as np

    sums = report.summaries
    systems = list(sums)
    cats = sorted({k for s in sums.values() for k in s.by_category})
    width = 0.8 / max(len(systems), 1)
    x = np.arange(len(cats))
    fig, ax = plt.subplots(figsize=(max(8.0, len(cats) * 1.1), 4))
    for i, name in enumerate(systems):
        diagnoses = name in SUPERVISOR_REASONERS
        metric = "root_cause" if diagnoses else "action"
        values, low, high = [], [], []
        for c in cats:
            r = sums[name].by_category.get(c)
            value = None if r is None else getattr(r, f"{metric}_accuracy")
            interval = None if r is None else getattr(r, f"{metric}_interval")
            values.append(np.nan if value is None else value)
            low.append(0.0 if value is None or interval is None else value - interval[0])
            high.append(0.0 if value is None or interval is None else interval[1] - value)
        label = f"{name} ({metric.replace('_', ' ')} accuracy)"
        ax.bar(x + i * width, values, width, yerr=[low, high], capsize=2, label=label)
    ax.set_xticks(x + width * (len(systems) - 1) / 2, cats, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title("Per-category accuracy with 95% Wilson intervals")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # off the bars
    return "Per-category accuracy", _png(fig)


def _totals_plot(plt: Any, report: EvalReport) -> tuple[str, str]:
    systems = list(report.summaries)
    runs = _by_system(report)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, what, color in (
        (a1, "retrains", "tab:orange"),
        (a2, "accuracy_deficit", "tab:red"),
    ):
        means, errors = [], []
        for s in systems:
            per_seed = [float(sum(getattr(r, what) for r in k)) for k in seed_rounds(runs[s])]
            means.append(sum(per_seed) / len(per_seed) if per_seed else 0.0)
            errors.append(_over_seeds(list(per_seed)))
        ax.bar(systems, means, yerr=errors, capsize=3, color=color)
        ax.tick_params(axis="x", rotation=30)
    a1.set_title(_seeds_title("Retrains per suite run", report))
    a2.set_title(_seeds_title("Accuracy deficit per suite run (acc x h)", report))
    return "Retrains and accuracy deficit", _png(fig)


def _seeds_title(title: str, report: EvalReport) -> str:
    seeds = report.suite["seeds"]
    if seeds < 2:
        return f"{title}\n(one seed: no error bars over seeds)"
    return f"{title}\n(error bars: 95% interval over {seeds} seeds)"


def render_html(report: EvalReport) -> str:
    """One self-contained HTML file: title and goals, the plots, then the tables."""
    head = markdown_to_html(markdown_head(report))
    body = markdown_to_html(markdown_body(report))
    figures = "\n".join(
        f'<figure><img alt="{html.escape(t)}" src="{src}"><figcaption>{html.escape(t)}'
        "</figcaption></figure>"
        for t, src in _plots(report)
    )
    goals = json.dumps([g.model_dump() for g in report.goals])
    name = html.escape(str(report.suite.get("name", "scenarios")))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mlops-supervisor evaluation: {name}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse;font-size:12px;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}
th{{background:#f3f3f3}} td:first-child,th:first-child{{text-align:left}}
figure{{display:inline-block;margin:1em}} img{{max-width:100%}}
</style></head><body>
{head}
<h2>Plots</h2>
{figures}
{body}
<script type="application/json" id="goals">{html.escape(goals)}</script>
</body></html>
"""
