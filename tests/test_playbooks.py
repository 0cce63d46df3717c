"""Playbooks: every root cause is covered, and bad playbook files name file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor import ConfigError
from supervisor.domain import RootCause
from supervisor.reasoners import load_playbooks
from tools._catalog import default_registry

ROOT = Path(__file__).resolve().parent.parent
TOOLS = set(default_registry().names())


def test_shipped_playbooks_cover_the_taxonomy() -> None:
    books = load_playbooks(ROOT / "playbooks", known_tools=TOOLS)
    assert {b.root_cause for b in books.playbooks} == set(RootCause)
    priorities = [b.priority for b in books.playbooks]
    assert priorities == sorted(priorities, reverse=True)
    # The trap pairs: the specific cause must be tried before its look-alike.
    order = [b.root_cause for b in books.playbooks]
    assert order.index(RootCause.UPSTREAM_DATA_DEFECT) < order.index(RootCause.COVARIATE_DRIFT)
    assert order.index(RootCause.INFRASTRUCTURE) < order.index(RootCause.BAD_MODEL_VERSION)
    assert order.index(RootCause.TRAINING_SERVING_SKEW) < order.index(RootCause.BAD_MODEL_VERSION)


GOOD = """\
id: test-book
root_cause: covariate_drift
title: t
priority: 1
base_confidence: 0.8
checks:
  - {id: c, tool: get_drift_report, field: drift_share, op: ">=", value: 0.3, finding: "x {value}"}
action: {type: retrain, rationale: r}
"""


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (GOOD.replace("covariate_drift", "cosmic_rays"), "root_cause"),
        (GOOD.replace("type: retrain", "type: reboot"), "action.type"),
        (GOOD.replace('op: ">="', 'op: "~"'), "checks.0.op"),
        (GOOD.replace("title: t", "title: t\nowner: me"), "owner: "),
        (GOOD.replace("tool: get_drift_report", "tool: rm_rf"), "unknown tool 'rm_rf'"),
        (GOOD.replace("{id: c,", "{id: c, role: support,"), "at least one confirm"),
    ],
)
def test_bad_playbooks_are_rejected(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "book.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_playbooks(tmp_path, known_tools=TOOLS)
    msg = str(err.value)
    assert ("book.yaml" in msg and "fix" in msg.lower()) or "use one of" in msg, msg
    assert needle.split(":")[0] in msg, msg


def test_duplicate_ids_and_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no playbooks"):
        load_playbooks(tmp_path)
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(ConfigError, match="already used"):
        load_playbooks(tmp_path)
