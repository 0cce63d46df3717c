"""Where a report's numbers come from: commit, package versions, policy and playbook hashes,
date and seeds, so two reports can be compared knowing what differed."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

#: Distributions whose versions move the figures: the supervisor itself, the drift and model
#: libraries the simulated world and the checks run on, the graph runtime, the statistics.
PACKAGES = (
    "mlops-supervisor",
    "evidently",
    "scikit-learn",
    "langgraph",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "pydantic",
    "matplotlib",
)

#: What a figure the run could not determine reads as.
UNKNOWN = "unknown"


class Provenance(BaseModel):
    """How and from what a suite ran."""

    model_config = ConfigDict(extra="forbid")

    commit: str = Field(description="git commit of the code (unknown outside a git checkout).")
    dirty: bool | None = Field(
        default=None, description="Uncommitted changes to tracked files (None: unknown)."
    )
    date: str = Field(description="When the suite ran, UTC, ISO 8601.")
    packages: dict[str, str] = Field(description="Distribution -> installed version.")
    policy_file: str
    policy_sha256: str
    playbooks: dict[str, str] = Field(description="Playbook file -> sha256 of its bytes.")
    seeds: dict[str, list[int]] = Field(description="Scenario -> the world seeds it ran with.")


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return UNKNOWN


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=10,  # git answers in milliseconds; a hung filesystem must not hang a report
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def collect(
    repo: Path, policy_file: Path, playbooks_dir: Path, seeds: dict[str, list[int]]
) -> Provenance:
    """The provenance of a suite run now from ``repo`` with these files and seeds."""
    commit = _git(repo, "rev-parse", "HEAD")
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    playbooks = (
        {p.name: _sha256(p) for p in sorted(playbooks_dir.glob("*.y*ml"))}
        if playbooks_dir.is_dir()
        else {}
    )
    return Provenance(
        commit=commit or UNKNOWN,
        dirty=None if status is None else bool(status),
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        packages={name: _version(name) for name in PACKAGES},
        policy_file=str(policy_file),
        policy_sha256=_sha256(policy_file),
        playbooks=playbooks,
        seeds=seeds,
    )
