"""`eval --reasoner llm` against an OpenAI-compatible endpoint on loopback, recorded, then
replayed offline with the endpoint gone: the same diagnoses, tokens counted in the report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fake_openai import FakeOpenAI, Step, call, reply, tool_messages

from supervisor.cli import main

SCENARIO = "defect-unit-change-pricing"


def scripted_model(body: dict[str, Any]) -> Step:
    """Look at recent inputs once, then diagnose from what came back (citing its call id)."""
    results = list(tool_messages(body))
    if not results:
        return reply(tool_calls=[call("get_drift_report", {"window_minutes": 15})])
    ids = re.findall(r'call_id="([^"]+)"', results[-1]["content"])
    defect = "unit change" in results[-1]["content"]
    return reply(
        {
            "root_cause": "upstream_data_defect" if defect else "insufficient_evidence",
            "confidence": 0.9,
            "summary": "A feature's units changed upstream.",
            "evidence": [{"call_id": ids[0], "finding": "the drift report shows a unit change"}],
            "action": "escalate",
            "parameters": {"page": "data_owner"},
        },
        prompt_tokens=1200,
        completion_tokens=80,
    )


def _run(out: Path, *extra: str) -> dict[str, Any]:
    code = main(
        [
            "eval",
            "--out",
            str(out),
            "--only",
            SCENARIO,
            "--systems",
            "supervisor,supervisor-llm",
            "--jobs",
            "1",
            "--no-progress",
            "--reasoner",
            "llm",
            "--llm-model",
            "fake-model",
            *extra,
        ]
    )
    assert code == 0
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


def _supervisor_runs(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report["run"]["results"] if r["system"] == "supervisor-llm"]


def test_llm_eval_records_then_replays_offline(tmp_path: Path) -> None:
    record = tmp_path / "exchanges"
    with FakeOpenAI(scripted_model) as fake:
        live = _run(tmp_path / "live", "--llm-base-url", fake.base_url, "--record", str(record))
    assert any(record.rglob("*.json")), "the exchanges were saved"
    md = (tmp_path / "live" / "report.md").read_text()
    assert "Reasoners side by side" in md and "supervisor-llm" in md
    rules = [r for r in live["run"]["results"] if r["system"] == "supervisor"]
    assert rules and rules[0]["tokens"] == 0  # the rules reasoner, side by side
    (run,) = _supervisor_runs(live)
    # One scripted exchange (1,400 tokens) per investigated incident: the default quality watch
    # may open a second incident on the model beside the drift check's.
    assert run["incidents"] >= 1 and run["tokens"] == 1400 * run["incidents"]
    assert run["error"] is None
    assert run["cases"][0]["diagnosed_root_cause"] == "upstream_data_defect"
    assert run["cases"][0]["actual_action"] == "escalate"
    # Offline: the endpoint is gone, the recording answers.
    replay = _run(
        tmp_path / "replay", "--llm-base-url", "http://127.0.0.1:9/v1", "--replay", str(record)
    )
    (again,) = _supervisor_runs(replay)
    assert again["error"] is None and again["tokens"] == run["tokens"]
    assert again["cases"] == run["cases"]
