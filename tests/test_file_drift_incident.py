"""A data-drift incident whose drift evidence comes from bad files: the supervisor must not act.

The drift port is the file adapter (missing reference, empty log, no overlapping columns,
empty window); every other port is the simulated world. Each case ends as
``insufficient_evidence``, escalates to the owner, and changes nothing in the world.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from simworld import MODEL, Rig, config_dict, world_spec
from test_file_drift import HOUR, REF_SEED, _rows, _write

from supervisor.config import config_from_dict
from supervisor.demo import sim_backends
from supervisor.domain import Incident, Signal, SignalKind, Symptom
from supervisor.runtime import Supervisor
from supervisor.telemetry import TelemetryConfig, setup_tracing
from tools import read_only
from tools.files import FileDriftAdapter, FileDriftSource
from tools.sim import build_world


def _files(tmp_path: Path, case: str) -> FileDriftSource:
    world_start = build_world(world_spec()).now
    ref, logs = tmp_path / "ref.parquet", tmp_path / "logs"
    _write(_rows(REF_SEED, world_start, n=600).drop(columns="timestamp"), ref)
    # Logs of the hour before the incident; for "empty_window", of the hour after it.
    logs_start = world_start + (HOUR if case == "empty_window" else -HOUR)
    _write(_rows(12, logs_start, shift=1.5), logs / "a.parquet")
    if case == "missing_reference":
        ref.unlink()
    elif case == "empty_log":
        (logs / "b.csv").write_bytes(b"")
    elif case == "no_overlapping_columns":
        _write(_rows(REF_SEED, world_start, n=600).drop(columns="timestamp").add_prefix("x_"), ref)
    return FileDriftSource(reference=str(ref), current=str(logs))


@contextmanager
def _incident(tmp_path: Path, case: str) -> Iterator[tuple[Rig, Incident]]:
    """A data-drift incident on the sim world, its drift evidence read from the case's files."""
    world = build_world(world_spec())
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    raw = config_dict(state_dir)
    _, write = sim_backends(world)
    drift = FileDriftAdapter({MODEL: _files(tmp_path, case)}, clock=world.clock)
    read = read_only(metrics=world, alerts=world, drift=drift, registry=world, deploy=world)
    tracing = setup_tracing(TelemetryConfig())
    sup = Supervisor(
        config_from_dict(raw, source="test config"),
        read=read,
        write=write,
        clock=world.clock,
        tracing=tracing,
        state_dir=state_dir,
    )
    rig = Rig(world=world, sup=sup, state_dir=state_dir, tracing=tracing, raw_config=raw)
    try:
        signal = Signal(
            id="s1",
            kind=SignalKind.CHECK,
            source="scheduler",
            model=MODEL,
            symptom=Symptom.DATA_DRIFT,
            observed_at=world.now,
            value=0.5,
        )
        incident = sup.handle(signal)
        assert incident is not None
        yield rig, incident
    finally:
        rig.close()


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("missing_reference", "error"),
        ("empty_log", "error"),
        ("no_overlapping_columns", "error"),
        ("empty_window", "no_data"),
    ],
)
def test_bad_drift_evidence_ends_as_insufficient_evidence_and_escalates(
    tmp_path: Path, case: str, status: str
) -> None:
    with _incident(tmp_path, case) as (rig, incident):
        drift_calls = [
            r for r in rig.tool_results(incident.id).values() if r["tool"] == "get_drift_report"
        ]
        assert drift_calls and {c["status"] for c in drift_calls} == {status}
        assert rig.diagnosis(incident.id)["root_cause"] == "insufficient_evidence"
        assert rig.plan(incident.id)["action"] == "escalate"
        assert rig.world_writes() == {}
        assert rig.verified()


def test_sound_files_get_a_diagnosis(tmp_path: Path) -> None:
    """The control: the same setup with sound files is decided, not left undecided.

    One shifted feature of four, no defects, accuracy as validated: benign drift, no action.
    """
    with _incident(tmp_path, "sound") as (rig, incident):
        assert rig.diagnosis(incident.id)["root_cause"] == "benign_change"
        assert rig.plan(incident.id)["action"] == "no_action"
        assert rig.world_writes() == {}
