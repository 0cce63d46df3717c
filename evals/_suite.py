"""Running a suite: every system on every scenario and seed, in parallel, with a progress bar."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from supervisor._defaults import default_playbooks_dir, default_policy_file

from ._baselines import BASELINES
from ._harness import EVALS_DIR, RunSpec, run
from ._provenance import Provenance, collect
from ._results import SUPERVISOR, SUPERVISOR_REASONERS, RunResult
from ._scenario import Scenario

SYSTEMS = (*SUPERVISOR_REASONERS, *BASELINES)

#: The label of a suite run without one.
DEFAULT_NAME = "scenarios"


class SuiteRun(BaseModel):
    """All results of one suite run, with how long it took."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        default=DEFAULT_NAME,
        description="Label of the suite (e.g. hand-written, generated), so reports of two "
        "suites can be shown side by side.",
    )
    scenarios: list[str]
    systems: list[str]
    seeds: int
    jobs: int
    wall_seconds: float
    supervisor_seconds: float = Field(description="Sum of the supervisor runs' wall time.")
    results: list[RunResult]
    provenance: Provenance | None = Field(
        default=None, description="Commit, packages, policy and playbook hashes, date, seeds."
    )


def _warm() -> None:
    """Import Evidently (seconds) once, before the first task, not inside a timed run.

    Then freeze what is loaded: the ~400,000 objects of the imported libraries move out of the
    garbage collector's reach, so a full collection looks only at what the runs create.
    (statsmodels' Holm correction ran ``gc.collect()`` on every drift family test, 0.2 s each
    over the whole heap; ``supervisor.stats.holm_reject`` now computes Holm itself, but any
    library's full collection stays cheap.) Freezing changes only which objects a collection
    scans, never a result; it also keeps forked workers from copying the shared pages the
    collector would otherwise touch.
    """
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import evidently.metrics  # noqa: F401
        from evidently.legacy.calculations import stattests  # noqa: F401
    gc.freeze()


def _run_frozen(spec: RunSpec) -> RunResult:
    """``run(spec)``, then freeze what outlives it (modules imported lazily on a first run, the
    compiled graph's caches), so later runs' collections skip those too (see ``_warm``).

    The collection first frees the run's own garbage, so only live objects are frozen.
    """
    import gc

    result = run(spec)
    gc.collect()
    gc.freeze()
    return result


def _warm_supervisor() -> None:
    """Import the supervisor's runtime (LangGraph: seconds) once, before the workers fork.

    Forked workers inherit it, so each does not pay the import on its first supervisor run.
    Importing starts no threads, so forking afterwards is safe.
    """
    import supervisor.runtime  # noqa: F401


def run_suite(
    scenarios: list[Scenario],
    out: Path,
    *,
    systems: tuple[str, ...] = SYSTEMS,
    seeds: int = 1,
    jobs: int | None = None,
    progress: bool = True,
    policy_file: Path | None = None,
    playbooks_dir: Path | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    llm: dict[str, Any] | None = None,
    record_dir: Path | None = None,
    replay_dir: Path | None = None,
    name: str = DEFAULT_NAME,
) -> SuiteRun:
    """Run ``systems`` x ``scenarios`` x ``seeds``; supervisor state goes under ``out/runs``,
    one folder per system and world seed (``runs/<scenario>/<system>-seed<seed>``)."""
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise ValueError(f"unknown systems {sorted(unknown)!r}; choose from {list(SYSTEMS)!r}")
    jobs = jobs or min(os.cpu_count() or 1, 4)
    extra: dict[str, Any] = {"llm": llm}
    extra["record_dir"] = None if record_dir is None else record_dir.resolve()
    extra["replay_dir"] = None if replay_dir is None else replay_dir.resolve()
    if policy_file is not None:
        extra["policy_file"] = policy_file
    if playbooks_dir is not None:
        extra["playbooks_dir"] = playbooks_dir
    specs = [
        RunSpec(sc, system, k, (out / "runs" / sc.id / f"{system}-seed{seed}").resolve(), **extra)
        for system in systems
        for sc in scenarios
        for k, seed in enumerate(scenario_seeds(sc, seeds))
    ]
    provenance = collect(
        EVALS_DIR.parent,  # the checkout (an installed package has no git: commit "unknown")
        policy_file or default_policy_file(),
        playbooks_dir or default_playbooks_dir(),
        {sc.id: scenario_seeds(sc, seeds) for sc in scenarios},
    )
    started = time.perf_counter()
    results: list[RunResult] = []
    if set(systems) & set(SUPERVISOR_REASONERS):
        _warm_supervisor()
    with _Progress(len(specs), progress) as bar:
        if jobs <= 1:
            _warm()
            for spec in specs:
                results.append(_run_frozen(spec))
                bar.advance(results[-1])
                if on_result is not None:
                    on_result(results[-1])
        else:
            _warm()  # forked workers inherit the imported modules
            ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_warm) as pool:
                futures = [pool.submit(_run_frozen, spec) for spec in specs]
                for fut in as_completed(futures):
                    results.append(fut.result())
                    bar.advance(results[-1])
                    if on_result is not None:
                        on_result(results[-1])
    order = {s: i for i, s in enumerate(SYSTEMS)}
    results.sort(key=lambda r: (order[r.system], r.scenario, r.seed))
    return SuiteRun(
        name=name,
        scenarios=[s.id for s in scenarios],
        systems=list(systems),
        seeds=seeds,
        jobs=jobs,
        wall_seconds=round(time.perf_counter() - started, 2),
        supervisor_seconds=round(sum(r.wall_seconds for r in results if r.system == SUPERVISOR), 2),
        results=results,
        provenance=provenance,
    )


def scenario_seeds(scenario: Scenario, seeds: int) -> list[int]:
    """The world seeds run ``k`` of ``seeds`` uses: the scenario's base seed + k."""
    return [scenario.world.seed + k for k in range(seeds)]


class _Progress:
    """A rich progress bar (or nothing), counting runs and naming the last one."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self._progress: object | None = None
        self._task: object | None = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            progress = Progress(
                TextColumn("[bold]eval"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                transient=False,
            )
            progress.start()
            self._task = progress.add_task("", total=self.total)
            self._progress = progress
        return self

    def advance(self, result: RunResult) -> None:
        if self._progress is not None:
            from rich.progress import Progress, TaskID

            assert isinstance(self._progress, Progress)
            assert isinstance(self._task, int)
            self._progress.update(
                TaskID(self._task), advance=1, description=f"{result.system} {result.scenario}"
            )

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            from rich.progress import Progress

            assert isinstance(self._progress, Progress)
            self._progress.stop()


def default_scenarios_dir() -> Path:
    """The committed suite."""
    return EVALS_DIR / "scenarios"
