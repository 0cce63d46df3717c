"""The wheel ships the default policies, playbooks and schemas (issue 13: only the editable
install used to work; an installed wheel had no playbooks and `demo` failed).

scripts/wheel-smoke.sh (run by `make check`) installs the wheel in a clean venv and runs the
demo from it; this test checks the wheel's contents and how the defaults resolve, quickly.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from supervisor._defaults import default_playbooks_dir, default_policy_file, shipped_dir

REPO = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_every_policy_playbook_schema_and_scenario(tmp_path: Path) -> None:
    # pip builds in the tree; a stale build/lib would carry deleted modules into the wheel.
    shutil.rmtree(REPO / "build", ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    shutil.rmtree(REPO / "build", ignore_errors=True)
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, pattern in (("policies", "*.yaml"), ("playbooks", "*.yaml"), ("schemas", "*.json")):
        files = sorted((REPO / folder).glob(pattern))
        assert files
        for f in files:
            assert f"supervisor/_data/{folder}/{f.name}" in names, f"{f.name} not in the wheel"
    for f in sorted((REPO / "evals" / "scenarios").glob("*.yaml")):
        assert f"evals/scenarios/{f.name}" in names
    assert "evals/ci_floor.yaml" in names


def test_a_checkout_reads_its_own_folders() -> None:
    assert default_policy_file() == REPO / "policies" / "default.yaml"
    assert default_playbooks_dir() == REPO / "playbooks"
    assert shipped_dir("schemas") == REPO / "schemas"


def test_a_config_without_policy_or_playbooks_gets_the_shipped_ones(tmp_path: Path) -> None:
    from supervisor.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text("models: [{name: churn, owner: a, data_owner: b}]\n", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.policy_file == default_policy_file()
    assert cfg.playbooks_dir == default_playbooks_dir()
    # Files beside the config win over the shipped ones.
    (tmp_path / "playbooks").mkdir()
    assert load_config(path).playbooks_dir == tmp_path / "playbooks"
