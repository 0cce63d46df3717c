"""Generated scenarios: deterministic, ordinary scenario files, truthful ground truth."""

from __future__ import annotations

import argparse
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from evalkit import case_result

from evals import (
    RunResult,
    Scenario,
    default_scenarios_dir,
    generate_scenarios,
    load_scenario,
    load_scenarios,
)
from evals._generate import schema_line
from evals._generate_space import KINDS, LABEL_DELAY_MINUTES
from evals._generate_truth import (
    EVAL_ROWS,
    MAX_BENIGN_DROP,
    MIN_HARM,
    QualityClaim,
    measure,
)
from supervisor.domain import RootCause
from tools.sim import FaultSpec, ModelSpec, WorldSpec, build_world

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def block() -> list[Scenario]:
    """One block of draws: every kind once."""
    return generate_scenarios(len(KINDS), seed=3).scenarios


def _dump(scenarios: list[Scenario]) -> list[dict[str, object]]:
    return [s.model_dump(mode="json") for s in scenarios]


def test_same_n_and_seed_give_the_same_scenarios_and_a_seed_extends(block: list[Scenario]) -> None:
    again = generate_scenarios(len(KINDS), seed=3).scenarios
    assert _dump(again) == _dump(block)
    first = generate_scenarios(4, seed=3).scenarios
    assert _dump(first) == _dump(block[:4])
    other = generate_scenarios(4, seed=4).scenarios
    assert _dump(other) != _dump(first)


def test_one_block_covers_every_root_cause_controls_and_compounds(block: list[Scenario]) -> None:
    categories = {s.category for s in block}
    injectable = {c.value for c in RootCause} - {"insufficient_evidence"}
    assert injectable | {"no_fault"} <= categories
    assert any("compound" in s.tags and len(s.ground_truth.expectations) == 2 for s in block)
    assert [s.id for s in block] == sorted(s.id for s in block)
    assert all(s.id.startswith("gen-s3-") for s in block)


def _truth_key(e: object) -> tuple[object, ...]:
    from evals import Expectation

    assert isinstance(e, Expectation)
    success = {k for k, v in e.success.model_dump(exclude_defaults=True).items() if v is not None}
    return (
        tuple(a.value for a in e.acceptable_actions),
        tuple(sorted(a.value for a in e.forbidden_actions)),
        tuple(a.value for a in e.required_approvals),
        tuple(sorted(success)),
    )


def test_ground_truth_mirrors_the_hand_written_suite() -> None:
    """Each generated expectation states exactly what some hand-written one of its cause does."""
    written: dict[str | None, set[tuple[object, ...]]] = defaultdict(set)
    for s in load_scenarios(default_scenarios_dir()):
        for e in s.ground_truth.expectations:
            written[None if e.root_cause is None else e.root_cause.value].add(_truth_key(e))
    drawn = generate_scenarios(20, seed=11).scenarios
    seen = set()
    for s in drawn:
        for e in s.ground_truth.expectations:
            cause = None if e.root_cause is None else e.root_cause.value
            seen.add(cause)
            assert _truth_key(e) in written[cause], (s.id, cause, _truth_key(e))
    assert len(seen) >= 9


def test_written_files_load_back_unchanged(tmp_path: Path, block: list[Scenario]) -> None:
    suite = generate_scenarios(len(KINDS), seed=3)
    paths = suite.write(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == sorted(p.name for p in paths)
    loaded = load_scenarios(tmp_path)
    assert _dump(loaded) == _dump(sorted(block, key=lambda s: s.id))
    # A later, smaller draw of the same seed leaves exactly its own files behind.
    generate_scenarios(2, seed=3).write(tmp_path)
    assert len(list(tmp_path.glob("*.yaml"))) == 2


def test_schema_comment_points_at_the_committed_schema(tmp_path: Path) -> None:
    generate_scenarios(1, seed=0).write(tmp_path)
    first = next(tmp_path.glob("*.yaml")).read_text(encoding="utf-8").splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix + "file://")
    assert Path(first.removeprefix(prefix + "file://")) == ROOT / "schemas" / "scenario.schema.json"
    inside = schema_line(ROOT / "evals" / "generated")
    assert inside == prefix + "../../schemas/scenario.schema.json"  # as the hand-written files


def _accuracy_drop(s: Scenario, model: str) -> float:
    """True accuracy lost by the stable version once every fault on ``model`` is in."""
    spec = s.world_spec(0)
    mine = [f for f in spec.faults if f.model == model]
    full = max(f.at_minutes + float(f.params.get("ramp_minutes", 0.0)) for f in mine)
    world = build_world(spec)
    before = world.evaluate(model, "2", rows=EVAL_ROWS)
    world.advance(timedelta(minutes=full + 1))
    return before - world.evaluate(model, "2", rows=EVAL_ROWS)


def test_drift_that_must_hurt_hurts_and_benign_drift_does_not() -> None:
    """Measured again from the written scenario, independently of the generator's own check."""
    checked = 0
    for s in generate_scenarios(30, seed=2).scenarios:
        for e in s.ground_truth.expectations:
            if e.root_cause in (RootCause.COVARIATE_DRIFT, RootCause.CONCEPT_DRIFT):
                assert _accuracy_drop(s, e.model) >= MIN_HARM, s.id
                checked += 1
            elif e.root_cause is RootCause.BENIGN_CHANGE:
                assert _accuracy_drop(s, e.model) <= MAX_BENIGN_DROP, s.id
                checked += 1
    assert checked >= 9


def _one_model(*faults: FaultSpec) -> WorldSpec:
    model = ModelSpec(name="m", owner="o", data_owner="d", n_features=6)
    return WorldSpec(seed=5, models=[model], faults=list(faults))


def test_truth_check_rejects_what_the_world_does_not_bear_out() -> None:
    weak = FaultSpec(
        kind="covariate_drift", model="m", at_minutes=10, params={"features": [2], "magnitude": 2}
    )
    got = measure(_one_model(weak), QualityClaim("m", "drops", "2", 10, 10))
    assert got.rule == "too_weak"  # the weak third signal feature alone does not hurt
    strong = FaultSpec(
        kind="covariate_drift",
        model="m",
        at_minutes=10,
        params={"features": [0, 1], "magnitude": 3},
    )
    got = measure(_one_model(strong), QualityClaim("m", "drops", "2", 10, 10))
    assert got.rule is None and got.retrained is not None
    assert got.before - got.after >= MIN_HARM and got.retrained >= got.before - 0.05
    floor = measure(_one_model(strong), QualityClaim("m", "drops", "2", 10, 10, must_cross=0.2))
    assert floor.rule == "floor_not_crossed"
    hurts = measure(_one_model(strong), QualityClaim("m", "holds", "2", 10, 10))
    assert hurts.rule == "not_benign"


def test_labels_stay_inside_the_accuracy_watch_window() -> None:
    """The harness's accuracy watch reads 30 minutes; a longer label delay leaves it no data."""
    delays = [
        m.label_delay_minutes
        for s in generate_scenarios(20, seed=9).scenarios
        for m in s.world.models
    ]
    assert max(delays) <= LABEL_DELAY_MINUTES[1] < 30


def test_generate_command_writes_files_that_eval_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from supervisor.cli._main import main

    assert main(["generate", "--n", "3", "--seed", "8", "--out", str(tmp_path)]) == 0
    files = sorted(tmp_path.glob("gen-s8-*.yaml"))
    assert len(files) == 3
    assert all(load_scenario(f).id == f.stem for f in files)
    out = capsys.readouterr().out
    assert out.startswith(f"generated 3 scenarios (seed 8) into {tmp_path}")
    with pytest.raises(SystemExit):
        main(["eval", "--generate", "3", "--scenarios", str(tmp_path), "--out", str(tmp_path)])


def test_eval_generate_flags_parse() -> None:
    from supervisor.cli._eval_cmd import add_eval_parser

    parser = argparse.ArgumentParser()
    add_eval_parser(parser.add_subparsers())
    args = parser.parse_args(["eval", "--generate", "30", "--seed", "7", "--out", "o"])
    assert (args.generate, args.seed, args.scenarios) == (30, 7, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--generate", "0", "--out", "o"])


def test_no_progress_prints_a_plain_line_per_run(capsys: pytest.CaptureFixture[str]) -> None:
    from supervisor.cli._eval_cmd import _RunLines

    case = case_result(
        model="churn",
        expected_root_cause="infrastructure",
        diagnosed_root_cause=None,
        expected_action="escalate",
        acceptable_actions=["escalate"],
        actual_action="rollback",
        action_correct=False,
        unsafe_actions=["rollback@42"],
        mitigated=False,
        mitigate_minutes=None,
    )
    lines = _RunLines(12)
    lines(
        RunResult(
            scenario="gen-s1-0004-infrastructure",
            category="infrastructure",
            difficulty="easy",
            tags=[],
            system="supervisor",
            seed=77,
            cases=[case],
            wall_seconds=2.04,
        )
    )
    lines(RunResult(scenario="x", category="c", difficulty="easy", tags=[], system="noop", seed=1))
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "[ 1/12] supervisor gen-s1-0004-infrastructure (seed 77): failed, unsafe: rollback@42 "
        "in 2.0 s",
        "[ 2/12] noop x (seed 1): passed in 0.0 s",
    ]
